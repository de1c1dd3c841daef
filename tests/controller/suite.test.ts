import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { verdictLines } from '../../cli/search.js';
import type { RunConfig } from '../../controller/config.js';
import { runFunnel } from '../../controller/funnel.js';
import { indexEvaluations, rankedLeaderboard, rungsOf, score, verdicts } from '../../controller/funnel-plan.js';
import { renderReport } from '../../controller/report.js';
import { createRun, planRun, RunConfigError, resumeRun } from '../../controller/run.js';
import { runSearch } from '../../controller/search.js';
import { type Proposal, RandomSearch, type Strategy } from '../../controller/strategy.js';
import { evaluateSuite, searchWorkloads } from '../../controller/suite.js';
import { lookupRule } from '../../dsl/index.js';
import type { EvalRequest, Evaluator } from '../../evaluator/protocol.js';
import {
  HeldOutLeakError,
  normalise,
  PROFILE_TAU_MAX,
  profileScore,
  scoreFloor,
  suiteReward,
  suiteTasks,
} from '../../evaluator/suite.js';
import { findTask } from '../../evaluator/tasks.js';
import type { EvalResult } from '../../evaluator/train.js';
import { runPath, SqliteStore } from '../../search-results/store.js';

const root = () => mkdtempSync(join(tmpdir(), 'nos-suite-'));

const hashOf = (text: string) => {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h;
};

/**
 * A deterministic stand-in for the pool: a score per rule, workload and seed. `heldOutShift`
 * changes every held-out workload's score (and nothing else): a search whose rewards moved with
 * it would have seen held-out data.
 */
class SuiteEvaluator implements Evaluator {
  readonly requests: EvalRequest[] = [];
  constructor(private readonly heldOutShift = 0) {}

  async evaluate(req: EvalRequest): Promise<{ result: EvalResult }> {
    this.requests.push(req);
    await new Promise((r) => setTimeout(r, hashOf(req.rule + req.task) % 3));
    const task = findTask(req.task);
    const base = 0.3 + 0.6 * ((hashOf(`${req.rule}/${req.task}`) % 1000) / 1000);
    const noise = ((hashOf(`${req.seed}/${req.task}/${req.rule}`) % 100) - 50) / 5000;
    const shift = task?.suite === 'held-out' ? this.heldOutShift : 0;
    const reward = Math.max(0, Math.min(1, base + noise + shift));
    return {
      result: {
        rule: req.rule,
        hash: '',
        task: req.task,
        seed: req.seed,
        status: 'ok',
        reward,
        bestLr: 0.01,
        valAcc: reward,
        testAcc: reward,
        finalLoss: 1 - reward,
        grid: [],
        curve: [1],
        curveEvery: 1,
        seconds: 0.001,
      },
    };
  }
}

/** A strategy that records every reward it is given. */
class Recording implements Strategy {
  readonly rewards: number[] = [];
  constructor(private readonly inner: Strategy) {}
  get name() {
    return this.inner.name;
  }
  propose(n: number): Proposal[] {
    return this.inner.propose(n);
  }
  observe(p: readonly Proposal[], rewards: readonly number[], idx: readonly number[], fresh: readonly boolean[]) {
    this.rewards.push(...rewards);
    return this.inner.observe(p, rewards, idx, fresh);
  }
  save(): string {
    return this.inner.save();
  }
  restore(s: string): void {
    this.inner.restore(s);
  }
}

function suiteConfig(run: string, aggregate: 'mean' | 'profile' = 'mean'): RunConfig {
  return planRun({
    run,
    strategy: 'random',
    budget: 24,
    seed: 3,
    suite: { aggregate },
    funnel: { promote: 0.2, longTop: 3, finalists: 2, seeds: [3, 3, 4], longFactor: 2 },
  });
}

describe('the workload suite', () => {
  it('normalises each workload against the baseline and aggregates: golden values', () => {
    expect(normalise(0.9, 0.9, 0.1)).toBe(1);
    expect(normalise(0.5, 0.9, 0.1)).toBeCloseTo(0.5, 12);
    expect(normalise(0.05, 0.9, 0.1)).toBe(0);
    expect(normalise(Number.NaN, 0.9, 0.1)).toBe(0);
    expect(normalise(0.99, 0.9, 0.1)).toBeCloseTo(1.1125, 12);
    expect(scoreFloor({ kind: 'classifier' })).toBe(0.1);
    expect(scoreFloor({ kind: 'autoencoder' })).toBe(0);
    // The profile: at least as good as the baseline everywhere scores 1; a ratio past tau_max 0.
    expect(profileScore([1, 1.2])).toBe(1);
    expect(profileScore([1, 1 / PROFILE_TAU_MAX])).toBeCloseTo(0.5, 12);
    expect(profileScore([0.8])).toBeCloseTo((PROFILE_TAU_MAX - 1.25) / (PROFILE_TAU_MAX - 1), 12);
    expect(profileScore([0])).toBe(0);
    const search = suiteTasks('search');
    expect(search).toEqual(['mlp-mnist', 'ae-mnist']);
    expect(suiteTasks('held-out')).toEqual(['char-brown', 'convnet-fashion-2ep']);
    const baselines = { 'mlp-mnist': 0.9, 'ae-mnist': 0.5 };
    const results = [
      { task: 'mlp-mnist', reward: 0.95, status: 'ok' },
      { task: 'ae-mnist', reward: 0.4, status: 'ok' },
    ];
    // mean of (0.95 - 0.1) / 0.8 and 0.4 / 0.5
    expect(suiteReward(results, baselines, 'mean')).toBeCloseTo((0.85 / 0.8 + 0.8) / 2, 12);
    expect(suiteReward(results, baselines, 'profile')).toBeCloseTo(profileScore([0.85 / 0.8, 0.8]), 12);
    // A failed workload counts 0; a missing one or a missing baseline is an error.
    expect(suiteReward([results[0]!, { ...results[1]!, status: 'diverged' }], baselines)).toBeCloseTo(
      0.85 / 0.8 / 2,
      12,
    );
    expect(() => suiteReward([results[0]!], baselines)).toThrow(/no result for the search workload ae-mnist/);
    expect(() => suiteReward(results, { 'mlp-mnist': 0.9 })).toThrow(/no baseline score/);
  });

  it('a held-out result never reaches the reward: refused by the aggregation, never requested by the search, and changing it changes no reward', async () => {
    expect(() =>
      suiteReward(
        [
          { task: 'mlp-mnist', reward: 0.9, status: 'ok' },
          { task: 'ae-mnist', reward: 0.5, status: 'ok' },
          { task: 'char-brown', reward: 0.5, status: 'ok' },
        ],
        { 'mlp-mnist': 0.9, 'ae-mnist': 0.5, 'char-brown': 0.5 },
        'mean',
        ['mlp-mnist', 'ae-mnist', 'char-brown'],
      ),
    ).toThrow(HeldOutLeakError);
    // A run config that lists a held-out workload among its search workloads is refused.
    const bad = { ...suiteConfig('bad'), suite: { ...suiteConfig('bad').suite!, search: ['mlp-mnist', 'char-brown'] } };
    expect(() => searchWorkloads(bad)).toThrow(HeldOutLeakError);
    await expect(evaluateSuite(new SuiteEvaluator(), 'adam', bad, {})).rejects.toThrow(HeldOutLeakError);
    // Two searches whose evaluators differ only on held-out workloads: the controller sees the same rewards.
    const seen: number[][] = [];
    for (const shift of [0, -0.25]) {
      const store = SqliteStore.create(suiteConfig(`leak${shift}`), root());
      const ev = new SuiteEvaluator(shift);
      const strategy = new Recording(new RandomSearch({ seed: 3, groups: 2 }));
      await runSearch(store, strategy, ev);
      expect(ev.requests.length).toBeGreaterThan(0);
      expect(ev.requests.filter((r) => findTask(r.task)?.suite === 'held-out')).toEqual([]);
      seen.push(strategy.rewards);
      // The funnel's held-out rung trains the finalists (and the baseline) only.
      await runFunnel(store, ev);
      const heldOut = ev.requests.filter((r) => findTask(r.task)?.suite === 'held-out');
      expect(new Set(heldOut.map((r) => r.rule)).size).toBe(3);
      store.close();
    }
    // At least one whole batch observed (the pipelined loop does not observe batches proposed past the budget).
    expect(seen[0]!.length).toBeGreaterThanOrEqual(10);
    expect(seen[1]).toEqual(seen[0]);
  });

  it('the reward is the suite aggregate against the baseline, and the funnel climbs the suite: per-workload results with mean, CI, seeds and verdict', async () => {
    const dir = root();
    const store = SqliteStore.create(suiteConfig('s'), dir);
    const ev = new SuiteEvaluator();
    await runSearch(store, new RandomSearch({ seed: 3, groups: 2 }), ev);
    const adam = lookupRule('adam');
    if (!adam.ok) throw new Error(adam.message);
    // The baseline ran once per search workload at the run's seed, stored as rung-0 rows.
    const base0 = store.evaluations().filter((e) => e.hash === adam.rule.hash && e.rung === 0);
    expect(base0.map((e) => e.task).sort()).toEqual(['ae-mnist', 'mlp-mnist']);
    const baselines = Object.fromEntries(base0.map((e) => [e.task, e.reward]));
    for (const c of store
      .candidates()
      .filter((x) => x.status === 'ok')
      .slice(0, 5)) {
      const w = (JSON.parse(c.detail) as { workloads: Record<string, { reward: number; status: string }> }).workloads;
      const expected = suiteReward(
        Object.entries(w).map(([task, x]) => ({ task, reward: x.reward, status: x.status })),
        baselines,
      );
      expect(c.reward).toBeCloseTo(expected, 12);
    }
    const summary = await runFunnel(store, ev);
    const cfg = store.config;
    expect(rungsOf(cfg).map((r) => [r.rung, r.tasks, r.stepsFactor ?? null, r.seeds.length])).toEqual([
      [0, ['mlp-mnist', 'ae-mnist'], null, 1],
      [1, ['mlp-mnist', 'ae-mnist'], null, 3],
      [2, ['mlp-mnist', 'ae-mnist'], 2, 3],
      [3, ['char-brown', 'convnet-fashion-2ep'], null, 4],
    ]);
    // Rung 2 asks each workload for twice its own steps.
    const rung2 = ev.requests.filter((r) => r.steps !== undefined);
    expect(rung2.length).toBeGreaterThan(0);
    for (const r of rung2) expect(r.steps).toBe(2 * findTask(r.task)!.steps);
    const evals = store.evaluations();
    const keys = evals.map((e) => `${e.hash}/${e.rung}/${e.task}/${e.seed}`);
    expect(new Set(keys).size).toBe(keys.length);
    const board = rankedLeaderboard(cfg, store.candidates(), evals, 30);
    expect(board.slice(0, 2).map((e) => e.rung)).toEqual([3, 3]);
    const top = board[0]!;
    expect(Object.keys(top.workloads ?? {})).toEqual(['char-brown', 'convnet-fashion-2ep']);
    const rows = indexEvaluations(evals);
    for (const [task, w] of Object.entries(top.workloads!)) {
      const mine = evals.filter((e) => e.hash === top.candidate.hash && e.rung === 3 && e.task === task);
      expect(w.seeds).toBe(4);
      expect(w.mean).toBeCloseTo(mine.reduce((a, e) => a + e.reward, 0) / 4, 12);
      expect(w.ci95).not.toBeNull();
      expect(['better', 'worse', 'tied']).toContain(w.verdict);
      expect(w.diff?.n).toBe(4);
    }
    // The aggregate at the held-out rung: the mean of normalised scores per seed, as `score` computes it.
    const s = score(rows, top.candidate.hash, rungsOf(cfg)[3]!, { baseHash: adam.rule.hash, aggregate: 'mean' });
    expect(top.reward).toBeCloseTo(s!.mean, 12);
    // Verdicts: the search suite at rung 2, each held-out workload at rung 3.
    const v = verdicts(cfg, store.candidates(), evals);
    expect(v).toHaveLength(3);
    expect(v[2]?.transfer).toBeNull();
    expect(v[0]?.proxy?.rung).toBe(2);
    expect(v[0]?.transfer?.task).toBe('held-out suite');
    expect(Object.keys(v[0]?.workloads ?? {})).toEqual(['char-brown', 'convnet-fashion-2ep']);
    expect(summary.verdicts).toEqual(v);
    // As nos search prints them: a suite's rungs by their names, a rule that stopped at rung 2 too.
    const text = verdictLines(v, 'adam', true);
    expect(text).toContain('    held-out suite, rung 3: ');
    expect(text).toContain('\n      char-brown: ');
    expect(text.match(/ {4}search suite, /g)).toHaveLength(3);
    expect(text).toContain('    held-out suite: not reached');
    expect(text).not.toMatch(/proxy task|transfer|held-out suite \(held-out suite\)/);
    const html = renderReport({
      config: cfg,
      candidates: store.candidates(),
      checkpoints: store.checkpoints(),
      evaluations: evals,
    });
    expect(html).toContain('<table id="workloads">');
    expect(html).toContain('char-brown');
    expect(html).toContain('convnet-fashion-2ep');
    // A second funnel pass recomputes nothing.
    const before = ev.requests.length;
    await runFunnel(store, ev);
    expect(ev.requests.length).toBe(before);
    store.close();
  });

  it('a suite run is planned without --task or --steps, and stores its suite', () => {
    const c = suiteConfig('p', 'profile');
    expect(c.suite).toEqual({
      search: ['mlp-mnist', 'ae-mnist'],
      heldOut: ['char-brown', 'convnet-fashion-2ep'],
      aggregate: 'profile',
      baseline: 'adam',
    });
    expect(c.funnel?.transfer).toBeNull();
    // The defaults of a suite run: 60 rules, rung 2 at the workloads' own horizon, 3, 3 and 2 seeds.
    const d = planRun({ suite: {} });
    expect([d.budget, d.funnel?.longFactor, d.funnel?.longTop, d.funnel?.finalists, d.funnel?.seeds]).toEqual([
      60,
      1,
      3,
      2,
      [3, 3, 2],
    ]);
    expect(rungsOf(d).map((r) => r.label)).toEqual([
      'search suite, 1 seed',
      'search suite, 3 seeds',
      'search suite, verdict protocol, 3 seeds',
      'held-out suite (char-brown, convnet-fashion-2ep), 2 seeds',
    ]);
    expect(() => planRun({ suite: {}, task: 'mlp-mnist' })).toThrow(RunConfigError);
    expect(() => planRun({ suite: {}, steps: 10 })).toThrow(/--steps/);
    expect(() => planRun({ suite: { aggregate: 'median' } })).toThrow(/--aggregate must be one of mean, profile/);
    expect(planRun({}).suite).toBeUndefined();
  });

  it('the search workloads can be chosen (--search-workloads): the reward and rungs 0-2 use only them; held-out, unknown or repeated ones are refused', async () => {
    const request = (search: readonly string[], run = 'w') => ({
      run,
      strategy: 'random',
      budget: 12,
      seed: 3,
      suite: { search },
      funnel: { promote: 0.2, longTop: 2, finalists: 1, seeds: [2, 2, 2], longFactor: 1 },
    });
    const plan = (search: readonly string[], run = 'w') => planRun(request(search, run));
    const c = plan(['softmax-mnist', 'mlp-mnist']);
    expect(c.suite?.search).toEqual(['softmax-mnist', 'mlp-mnist']);
    expect(c.suite?.heldOut).toEqual(suiteTasks('held-out'));
    expect(c.task).toBe('softmax-mnist');
    expect(rungsOf(c)[0]?.label).toBe('search suite, 1 seed');
    expect(() => plan(['mlp-mnist', 'char-brown'])).toThrow(/'char-brown' is a held-out workload/);
    expect(() => plan(['mlp-mnist', 'nope'])).toThrow(/unknown task 'nope'/);
    expect(() => plan(['mlp-mnist', 'mlp-mnist'])).toThrow(/given twice/);
    expect(() => plan([])).toThrow(/1 to 64 task ids/);
    // A search on mlp-mnist alone: nothing else is trained before the held-out rung, and each
    // reward is mlp-mnist's score normalised against the baseline's.
    const store = SqliteStore.create(plan(['mlp-mnist'], 'one'), root());
    const ev = new SuiteEvaluator();
    await runSearch(store, new RandomSearch({ seed: 3, groups: 2 }), ev);
    expect(new Set(ev.requests.map((r) => r.task))).toEqual(new Set(['mlp-mnist']));
    const adam = lookupRule('adam');
    if (!adam.ok) throw new Error(adam.message);
    const base = store.evaluations().find((e) => e.hash === adam.rule.hash && e.rung === 0 && e.task === 'mlp-mnist');
    expect(base).toBeDefined();
    const ok = store.candidates().filter((x) => x.status === 'ok');
    expect(ok.length).toBeGreaterThan(3);
    for (const cand of ok) {
      const w = (JSON.parse(cand.detail) as { workloads: Record<string, { reward: number; status: string }> })
        .workloads;
      expect(Object.keys(w)).toEqual(['mlp-mnist']);
      expect(cand.reward).toBeCloseTo(
        suiteReward(
          [{ task: 'mlp-mnist', reward: w['mlp-mnist']!.reward, status: 'ok' }],
          { 'mlp-mnist': base!.reward },
          'mean',
          ['mlp-mnist'],
        ),
        12,
      );
    }
    await runFunnel(store, ev);
    const rung3 = new Set(ev.requests.filter((r) => r.task !== 'mlp-mnist').map((r) => r.task));
    expect(rung3).toEqual(new Set(suiteTasks('held-out')));
    store.close();
    // A resume keeps the stored workloads: other ones are refused, the same ones or none accepted.
    const dir = root();
    createRun(request(['mlp-mnist'], 'r'), { root: dir }).close();
    expect(() => resumeRun('r', { suite: { search: ['mlp-mnist', 'softmax-mnist'] } }, { root: dir })).toThrow(
      RunConfigError,
    );
    for (const req of [{}, { suite: { search: ['mlp-mnist'] } }]) {
      const resumed = resumeRun('r', req, { root: dir });
      expect(resumed.store.config.suite?.search).toEqual(['mlp-mnist']);
      resumed.store.close();
    }
    // A stored suite naming a task this nos does not know (an edited run.db) is refused on resume.
    const db = new Database(join(runPath('r', { root: dir }), 'run.db'));
    const row = db.prepare("select value from meta where key = 'config'").get() as { value: string };
    const edited = JSON.parse(row.value) as RunConfig;
    db.prepare("update meta set value = ? where key = 'config'").run(
      JSON.stringify({ ...edited, suite: { ...edited.suite, search: ['mlp-mnist', 'no-such-task'] } }),
    );
    db.close();
    expect(() => resumeRun('r', {}, { root: dir })).toThrow(/workload 'no-such-task' in its suite/);
  });

  it('a run made before the suite: its evaluations table gains the workload in its key, rows kept', () => {
    const dir = root();
    const store = SqliteStore.create(planRun({ run: 'old', task: 'quadratic' }), dir);
    const path = join(store.dir, 'run.db');
    store.close();
    const db = new Database(path);
    db.exec('DROP TABLE evaluations');
    db.exec(`CREATE TABLE evaluations (
      hash TEXT NOT NULL, rung INTEGER NOT NULL, seed INTEGER NOT NULL, rule TEXT NOT NULL, task TEXT NOT NULL,
      status TEXT NOT NULL, reward REAL NOT NULL, best_lr REAL, val_acc REAL, test_acc REAL, seconds REAL NOT NULL,
      PRIMARY KEY (hash, rung, seed))`);
    db.prepare("INSERT INTO evaluations VALUES ('h', 1, 0, 'adam', 'quadratic', 'ok', 0.5, 0.01, 0.5, null, 1)").run();
    db.close();
    mkdirSync(dir, { recursive: true });
    const again = SqliteStore.open('old', dir);
    expect(again.evaluations().map((e) => [e.hash, e.task, e.reward])).toEqual([['h', 'quadratic', 0.5]]);
    again.addEvaluation({ ...again.evaluations()[0]!, task: 'rosenbrock', reward: 0.7 });
    expect(
      again
        .evaluations()
        .map((e) => e.task)
        .sort(),
    ).toEqual(['quadratic', 'rosenbrock']);
    again.close();
  });
});
