import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rankedLeaderboard } from '../../controller/funnel-plan.js';
import { openRun } from '../../controller/run.js';
import * as nos from '../../index.js';
import { sampleKind } from '../../search-results/samples.js';
import { nos as nosCli } from '../helpers/cli.js';
import { rejection } from '../helpers/rejection.js';

const temp = mkdtempSync(join(tmpdir(), 'nos-api-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));
let dirs = 0;
/** A runs folder of its own (not created yet). */
const runsFolder = () => join(temp, `runs-${++dirs}`);

/** Quadratic-task evaluations of about half a second each on these machines (5 grid rates x 20k steps). */
const SLOW = { task: 'quadratic', steps: 20_000 } as const;

describe('evaluate() from code', () => {
  it('one result per seed, a summary, and the paired comparison in the shape nos eval --json gives', async () => {
    const progress: [number, number, string, number][] = [];
    const e = await nos.evaluate('adam', {
      task: 'quadratic',
      seeds: 3,
      steps: 40,
      baseline: 'sgd',
      workers: 2,
      onProgress: (p) => progress.push([p.done, p.total, p.rule, p.seed]),
    });
    expect(e.task).toBe('quadratic');
    expect(e.results.map((r) => r.seed)).toEqual([0, 1, 2]);
    expect(e.summary.valAcc.mean).toBeCloseTo(e.results.reduce((a, r) => a + r.valAcc, 0) / 3, 12);
    // One call per evaluation (rule and baseline, each seed), counted in the order they finished.
    expect(progress.map((p) => p[0])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(progress.every((p) => p[1] === 6)).toBe(true);
    expect(progress.map((p) => `${p[2]}:${p[3]}`).sort()).toEqual(
      ['adam:0', 'adam:1', 'adam:2', 'sgd:0', 'sgd:1', 'sgd:2'].sort(),
    );
    const cli = await nosCli(
      'eval',
      ...['--rules', 'adam', '--baseline', 'sgd', '--task', 'quadratic', '--seeds', '3', '--steps', '40'],
      ...['--workers', '1', '--json'],
    );
    expect(cli.code, cli.stderr).toBe(0);
    const vs = (JSON.parse(cli.stdout) as { results: { vsBaseline?: Record<string, unknown> }[] }).results[0]
      ?.vsBaseline;
    // The same object, key for key, as the CLI's JSON (the contract's shape).
    expect(e.vsBaseline).toEqual(vs);
    expect(Object.keys(e.vsBaseline ?? {}).sort()).toEqual(
      ['accuracy', 'baseline', 'diff', 'p', 'seeds', 'test', 'verdict'].sort(),
    );
    expect(e.vsBaseline?.seeds).toBe(3);
  }, 60_000);

  it('trains off the calling thread: a 20 ms timer keeps ticking while evaluations of half a second each run', async () => {
    let last = performance.now();
    let longest = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      ticks++;
    }, 20);
    let e: nos.Evaluation;
    try {
      e = await nos.evaluate('adam', { ...SLOW, seeds: 2, workers: 1 });
    } finally {
      clearInterval(timer);
    }
    const shortest = Math.min(...e.results.map((r) => r.seconds)) * 1000;
    // Trained here, each evaluation would hold the thread for its whole time (the issue measured
    // one tick of 309 ms): the longest gap must be far below one evaluation.
    expect(shortest).toBeGreaterThan(150);
    expect(longest).toBeLessThan(shortest / 2);
    expect(ticks).toBeGreaterThan((2 * shortest) / 20 / 4);
  }, 60_000);

  it('an AbortSignal stops it within one evaluation (the running one is stopped) with an AbortError', async () => {
    const ac = new AbortController();
    let abortedAt = 0;
    let first = 0;
    const calls: number[] = [];
    const reason = new Error('enough');
    const err = await rejection(
      nos.evaluate('adam', {
        ...SLOW,
        seeds: 4,
        workers: 1,
        signal: ac.signal,
        onProgress: (p) => {
          calls.push(p.done);
          first = p.result.seconds * 1000;
          abortedAt = performance.now();
          ac.abort(reason);
        },
      }),
    );
    const took = performance.now() - abortedAt;
    expect(err.name).toBe('AbortError');
    expect(err.cause).toBe(reason);
    expect(calls).toEqual([1]);
    // The second evaluation had started (one worker); it was stopped, not waited for.
    expect(took).toBeLessThan(first);
    // Aborted before the call: nothing starts.
    const t0 = performance.now();
    const before = await rejection(nos.evaluate('adam', { ...SLOW, signal: AbortSignal.abort() }));
    expect(before.name).toBe('AbortError');
    expect(performance.now() - t0).toBeLessThan(first);
  }, 60_000);

  it('refuses unknown options and bad values before training, naming the option (and the CLI flag it mirrors)', async () => {
    const lrs = await rejection(nos.evaluate('adam', { task: 'quadratic', lrs: [0.1] } as nos.EvaluateOptions));
    expect(lrs).toBeInstanceOf(nos.UnknownOptionError);
    expect(lrs).toBeInstanceOf(TypeError);
    expect(lrs).toMatchObject({ option: 'lrs', suggestion: 'lrGrid' });
    expect(lrs.message).toMatch(/^evaluate\(\): unknown option 'lrs'; did you mean 'lrGrid'\?/);
    const typo = await rejection(nos.evaluate('adam', { sedes: 2 } as nos.EvaluateOptions));
    expect(typo).toMatchObject({ option: 'sedes', suggestion: 'seeds' });
    const cases: [nos.EvaluateOptions, string, RegExp][] = [
      [
        { task: 'quadratc' },
        'task',
        /^task: unknown task 'quadratc'; did you mean 'quadratic'\? \(TASKS lists them\)$/,
      ],
      [{ seeds: 0 }, 'seeds', /^seeds must be a positive integer, got 0$/],
      [{ workers: 1.5 }, 'workers', /^workers must be a positive integer/],
      [{ lrGrid: [] }, 'lrGrid', /^lrGrid must be a non-empty list of positive numbers/],
      [{ baseline: 'adamm' }, 'baseline', /^baseline must be a built-in name or rule text/],
      [{ task: 'quadratic', labelNoise: 0.2 }, 'labelNoise', /^labelNoise: .*quadratic is analytic/],
      [{ schedule: 'nope' }, 'schedule', /^schedule: /],
      [{ signal: 'stop' as unknown as AbortSignal }, 'signal', /^signal must be an AbortSignal/],
    ];
    for (const [options, option, message] of cases) {
      const e = await rejection(nos.evaluate('adam', options));
      expect(e, JSON.stringify(options)).toBeInstanceOf(nos.RunConfigError);
      expect((e as nos.RunConfigError).option, JSON.stringify(options)).toBe(option);
      expect(e.message, JSON.stringify(options)).toMatch(message);
      expect(e.message).not.toMatch(/--/);
    }
    const rule = await rejection(nos.evaluate('adam +'));
    expect(rule).toMatchObject({ name: 'RunConfigError', option: 'rule' });
  });
});

describe('search() from code', () => {
  it('a run with progress callbacks, a summary and its leaderboard, in the runs folder `root`', async () => {
    const root = runsFolder();
    const seen: number[] = [];
    const funnel: nos.FunnelProgress[] = [];
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
      onFunnel: (p) => funnel.push(p),
    });
    expect(r.run).toBe('api-run');
    // The funnel's progress: each rung as it starts (the baseline on the proxy, then rungs 1
    // and 2; quadratic has no transfer task), then each evaluation it ran, counting down.
    const rungs = funnel.filter((p) => p.kind === 'rung');
    expect(rungs.map((p) => p.rung.rung)).toEqual([0, 1, 2]);
    const evaluations = funnel.filter((p) => p.kind === 'evaluation');
    expect(evaluations.length).toBe(rungs.reduce((n, p) => n + p.evaluations, 0));
    expect(evaluations.length).toBe(r.funnel?.evaluated);
    // `root` is the folder of run folders, as documented (also when $NOS_RUNS is set).
    expect(readdirSync(root)).toEqual(['api-run']);
    expect(existsSync(join(root, 'api-run', 'run.db'))).toBe(true);
    // The budget counts rules trained; cache hits and rejected rules are sampled on top.
    expect(r.evaluated).toBe(6);
    expect(seen).toEqual(Array.from({ length: r.sampled }, (_, i) => i + 1));
    expect(r.evaluated + r.cached + r.rejected).toBe(r.sampled);
    expect(r.notes).toEqual([]);
    // The one ranked leaderboard, as `nos leaderboard` shows it: by the highest rung reached
    // (the default funnel ran), then the mean there.
    const stored = openRun('api-run', { runs: root });
    expect(r.leaderboard).toEqual(rankedLeaderboard(stored.config, stored.candidates(), stored.evaluations(), 10));
    stored.close();
    expect(r.leaderboard[0]!.rung).toBe(2);
    for (const [i, e] of r.leaderboard.entries()) {
      expect(e.rank).toBe(i + 1);
      const next = r.leaderboard[i + 1];
      if (next) expect(e.rung > next.rung || (e.rung === next.rung && e.reward >= next.reward)).toBe(true);
    }
    // A taken name: the error says what to pass in the library's terms.
    const taken = await rejection(nos.search({ root, run: 'api-run', task: 'quadratic', budget: 6 }));
    expect(taken).toBeInstanceOf(nos.RunExistsError);
    expect(taken.message).toMatch(/pass resume: true to continue it, or choose another run name$/);
    expect(taken.stack).toMatch(/^RunExistsError: run 'api-run' already exists.*resume: true/);
  }, 120_000);

  it('an AbortSignal stops it within one evaluation; resume: true continues it to the same rules as an uninterrupted run', async () => {
    const root = runsFolder();
    const settings = {
      root,
      task: 'quadratic',
      strategy: 'random',
      seed: 3,
      budget: 3,
      batchSize: 2,
      workers: 1,
      funnel: false,
      steps: SLOW.steps,
    } as const;
    const ac = new AbortController();
    let abortedAt = 0;
    let first = 0;
    let calls = 0;
    let late = 0;
    const err = await rejection(
      nos.search({
        ...settings,
        run: 'stopped',
        signal: ac.signal,
        onProgress: (_p, c) => {
          calls++;
          if (abortedAt > 0) late++;
          if (c.status !== 'ok' || abortedAt > 0) return;
          first = c.seconds * 1000;
          abortedAt = performance.now();
          ac.abort();
        },
      }),
    );
    const took = performance.now() - abortedAt;
    expect(err.name).toBe('AbortError');
    expect(first).toBeGreaterThan(150);
    expect(took).toBeLessThan(first);
    // No callback after the abort (a polled stop ran the batch in flight to its end), and the
    // run kept what it stored.
    expect(late).toBe(0);
    const stored = openRun('stopped', { runs: root });
    const kept = stored.candidates().length;
    // The pipelined loop (staleness 4) hands out batches ahead, and stores the rules the screen
    // rejects at once: count the trained ones against the budget of 3 (the synchronous loop
    // stored fewer than 3 candidates of any kind here).
    const trained = stored.candidates().filter((c) => sampleKind(c.status) === 'trained').length;
    stored.close();
    expect(calls).toBe(kept);
    expect(trained).toBeGreaterThan(0);
    expect(trained).toBeLessThan(3);

    const resumed = await nos.search({ root, run: 'stopped', resume: true, workers: 1 });
    expect(resumed.stopped).toBe(false);
    const straight = await nos.search({ ...settings, run: 'straight' });
    const rows = (run: string) => {
      const s = openRun(run, { runs: root });
      const out = s.candidates().map((c) => [c.index, c.rule, c.status, c.reward]);
      s.close();
      return out;
    };
    expect(rows('stopped')).toEqual(rows('straight'));
    expect(resumed.best).toEqual(straight.best);
  }, 120_000);

  it('refuses unknown options and bad settings in its own terms, creating nothing; an aborted start leaves nothing', async () => {
    const root = runsFolder();
    const base = { root, task: 'quadratic', strategy: 'random', funnel: false } as const;
    const unknown: [Record<string, unknown>, string, string | undefined][] = [
      [{ lrGrid: [0.1] }, 'lrGrid', undefined],
      [{ 'long-top': 3 }, 'long-top', 'funnel.longTop'],
      [{ baseline: 'sgd' }, 'baseline', 'funnel.baseline'],
      [{ budgetunit: 'sampled' }, 'budgetunit', 'budgetUnit'],
      [{ funnel: { longtop: 3 } }, 'funnel.longtop', 'funnel.longTop'],
    ];
    for (const [extra, option, suggestion] of unknown) {
      const e = await rejection(nos.search({ ...base, ...extra } as nos.SearchOptions));
      expect(e, option).toBeInstanceOf(nos.UnknownOptionError);
      expect(e, option).toMatchObject({ option, suggestion });
    }
    const bad: [nos.SearchOptions, string, RegExp][] = [
      [{ budget: 0 }, 'budget', /^budget must be an integer from 1 to 10000000, got 0$/],
      [{ budgetUnit: 'rules' }, 'budgetUnit', /^budgetUnit must be one of trained, sampled/],
      [{ batchSize: 0 }, 'batchSize', /^batchSize must be an integer/],
      [{ strategy: 'evolutoin' }, 'strategy', /did you mean 'evolution'/],
      [{ warmStart: true }, 'warmStart', /^warmStart seeds evolution's .*strategy random.*leave out warmStart\)$/],
      [{ funnel: { finalists: 9, longTop: 3 } }, 'funnel.finalists', /^funnel.finalists 9 exceeds funnel.longTop 3/],
      [{ run: 'a/b' }, 'run', /^run: run name 'a\/b' must be/],
      [{ resume: true }, 'run', /^resume: true needs run/],
      [{ workers: 0 }, 'workers', /^workers must be a positive integer/],
    ];
    for (const [extra, option, message] of bad) {
      const e = await rejection(nos.search({ ...base, ...extra }));
      expect(e, option).toBeInstanceOf(nos.RunConfigError);
      expect((e as nos.RunConfigError).option, option).toBe(option);
      expect(e.message, option).toMatch(message);
      expect(e.message, option).not.toMatch(/--|nos tasks|nos rules/);
    }
    const missing = await rejection(nos.search({ ...base, run: 'nope', resume: true }));
    expect(missing).toBeInstanceOf(nos.RunMissingError);
    expect(existsSync(root)).toBe(false);
    // Aborted at the loop's first check, after the run folder was made: the run, and the
    // folders made for it, are removed (its name stays free).
    const ac = new AbortController();
    const aborted = await rejection(
      nos.search({
        ...base,
        root: join(root, 'deeper'),
        run: 'gone',
        budget: 2,
        signal: ac.signal,
        shouldStop: () => {
          ac.abort();
          return false;
        },
      }),
    );
    expect(aborted.name).toBe('AbortError');
    expect(existsSync(root)).toBe(false);
  }, 60_000);

  it('exports tasks, schedules, the screen and the statistics', () => {
    expect(nos.TASKS.map((t) => t.id)).toContain(nos.DEFAULT_TASK);
    expect(nos.parseScheduleSpec('cosine').schedule.name).toBe('cosine');
    expect(nos.screenRule(nos.library().get('adam')!).ok).toBe(true);
    expect(nos.pairedTest([1.5, 2.5], [1, 2]).mean).toBe(0.5);
  });
});
