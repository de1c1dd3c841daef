import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rankedLeaderboard } from '../../controller/funnel-plan.js';
import { openRun } from '../../controller/run.js';
import * as nos from '../../index.js';
import { nos as nosCli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'nos-api-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('nos from code (import "nos")', () => {
  it('evaluate: one result per seed, a summary over them, and a paired comparison with a baseline', async () => {
    const e = await nos.evaluate('adam', { task: 'quadratic', seeds: 3, steps: 40, baseline: 'sgd' });
    expect(e.task).toBe('quadratic');
    expect(e.results.map((r) => r.seed)).toEqual([0, 1, 2]);
    expect(e.summary.valAcc.mean).toBeCloseTo(e.results.reduce((a, r) => a + r.valAcc, 0) / 3, 12);
    const v = e.vsBaseline!;
    expect(v.baseline).toBe('sgd');
    expect(v.n).toBe(3);
    expect(v.test).toBe('paired t-test (two-sided)');
    expect(['better', 'worse', 'tied']).toContain(v.verdict);
    await expect(nos.evaluate('adam', { task: 'no-such-task' })).rejects.toBeInstanceOf(nos.RunConfigError);
    // The same comparison as `nos eval` (one evaluateRules): the same accuracy, difference, interval and test.
    const cli = await nosCli(
      'eval',
      ...['--rules', 'adam', '--baseline', 'sgd', '--task', 'quadratic', '--seeds', '3', '--steps', '40'],
      ...['--workers', '1', '--json'],
    );
    expect(cli.code, cli.stderr).toBe(0);
    const vs = (JSON.parse(cli.stdout) as { results: { vsBaseline?: Record<string, unknown> }[] }).results[0]
      ?.vsBaseline;
    expect(vs).toEqual({
      baseline: 'sgd',
      seeds: 3,
      accuracy: v.accuracy,
      diff: { mean: v.mean, ci95: v.ci95 },
      p: v.p,
      test: v.test,
      verdict: v.verdict,
    });
  }, 60_000);

  it('search: a run with progress callbacks, a summary and its leaderboard', async () => {
    const seen: number[] = [];
    const r = await nos.search({
      root,
      run: 'api-run',
      task: 'quadratic',
      budget: 6,
      batchSize: 3,
      strategy: 'random',
      seed: 1,
      steps: 30,
      workers: 1,
      onProgress: (p) => seen.push(p.sampled),
    });
    expect(r.run).toBe('api-run');
    // The budget counts rules trained; cache hits and rejected rules are sampled on top.
    expect(r.evaluated).toBe(6);
    expect(seen).toEqual(Array.from({ length: r.sampled }, (_, i) => i + 1));
    expect(r.evaluated + r.cached + r.rejected).toBe(r.sampled);
    expect(r.leaderboard.length).toBeGreaterThan(0);
    // The one ranked leaderboard, as `nos leaderboard` shows it: by the highest rung reached
    // (the default funnel ran), then the mean there.
    const stored = openRun('api-run', { root });
    expect(r.leaderboard).toEqual(rankedLeaderboard(stored.config, stored.candidates(), stored.evaluations(), 10));
    stored.close();
    expect(r.leaderboard[0]!.rung).toBe(2);
    for (const [i, e] of r.leaderboard.entries()) {
      expect(e.rank).toBe(i + 1);
      const next = r.leaderboard[i + 1];
      if (next) expect(e.rung > next.rung || (e.rung === next.rung && e.reward >= next.reward)).toBe(true);
    }
    await expect(nos.search({ root, run: 'api-run', task: 'quadratic', budget: 6 })).rejects.toBeInstanceOf(
      nos.StoreError,
    );
  }, 120_000);

  it('exports tasks, schedules, the screen and the statistics', () => {
    expect(nos.TASKS.map((t) => t.id)).toContain(nos.DEFAULT_TASK);
    expect(nos.parseScheduleSpec('cosine').schedule.name).toBe('cosine');
    expect(nos.screenRule(nos.library().get('adam')!).ok).toBe(true);
    expect(nos.pairedTest([1.5, 2.5], [1, 2]).mean).toBe(0.5);
  });
});
