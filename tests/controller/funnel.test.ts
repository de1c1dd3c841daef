import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type FunnelConfig, openStore, type RunConfig } from '../../controller/config.js';
import { FUNNEL_DEFAULTS, runFunnel } from '../../controller/funnel.js';
import {
  planFunnel,
  poolPlacement,
  rankedLeaderboard,
  rungSeed,
  rungsOf,
  verdicts,
} from '../../controller/funnel-plan.js';
import { renderReport } from '../../controller/report.js';
import { funnelConfig, planRun, RunConfigError } from '../../controller/run.js';
import { runSearch } from '../../controller/search.js';
import { RandomSearch } from '../../controller/strategy.js';
import { lookupRule } from '../../dsl/index.js';
import type { EvalRequest, Evaluator } from '../../evaluator/protocol.js';
import { findTask } from '../../evaluator/tasks.js';
import type { EvalResult } from '../../evaluator/train.js';
import { SqliteStore } from '../../search-results/store.js';
import { tfReady } from '../helpers/tf.js';

const root = () => mkdtempSync(join(tmpdir(), 'nos-funnel-'));

const funnel: FunnelConfig = {
  ...FUNNEL_DEFAULTS,
  promote: 0.2,
  minPromoted: 4,
  longTop: 3,
  finalists: 2,
  seeds: [3, 4, 2],
  longFactor: 2,
  transfer: 'rosenbrock',
};

function config(run: string, f: FunnelConfig | null = funnel, budget = 30): RunConfig {
  return {
    run,
    task: 'quadratic',
    strategy: 'random',
    budget,
    budgetUnit: 'trained',
    seed: 5,
    workers: 1,
    batchSize: 10,
    steps: null,
    groups: 2,
    warmStart: false,
    funnel: f,
    createdAt: 'test',
    nosVersion: 'test',
  } as RunConfig;
}

const hashOf = (text: string) => {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h;
};

/**
 * A deterministic evaluator whose reward depends on the rule, the seed and the run's length: a
 * rule's quality, seed noise, and (for long runs and the transfer task) a reshuffle, so higher
 * rungs can reorder what the proxy said. Counts every request it serves.
 */
class RungEvaluator implements Evaluator {
  readonly calls = new Map<string, number>();
  served = 0;
  constructor(private readonly stopAfter?: { n: number; flag: { stop: boolean } }) {}

  async evaluate(req: EvalRequest): Promise<{ result: EvalResult }> {
    const key = JSON.stringify([req.rule, req.task, req.seed, req.steps ?? null]);
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
    this.served++;
    if (this.stopAfter && this.served >= this.stopAfter.n) this.stopAfter.flag.stop = true;
    await new Promise((r) => setTimeout(r, hashOf(key) % 3));
    const h = hashOf(req.rule);
    const quality = (h % 1000) / 1000;
    const noise = ((hashOf(`${req.seed}`) % 100) - 50) / 2000;
    const reshuffle = req.task !== 'quadratic' || (req.steps ?? 200) > 200 ? ((h >>> 10) % 100) / 400 : 0;
    const reward = Math.max(0, Math.min(1, 0.5 * quality + 0.4 + noise + reshuffle - 0.1));
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

async function searchAndFunnel(dir: string, name: string, ev: Evaluator, stop?: { stop: boolean }) {
  const store = SqliteStore.create(config(name), dir);
  await runSearch(store, new RandomSearch({ seed: 5, groups: 2 }), ev);
  const summary = await runFunnel(store, ev, stop ? { shouldStop: () => stop.stop } : {});
  return { store, summary };
}

describe('funnel', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('promotes the top fraction rung by rung, runs the baseline on the same seeds, and reuses rung 0 at rung 1', async () => {
    const ev = new RungEvaluator();
    const { store, summary } = await searchAndFunnel(root(), 'f', ev);
    const cfg = store.config;
    const evals = store.evaluations();
    const rungs = rungsOf(cfg);
    expect(rungs.map((r) => [r.rung, r.task, r.steps, r.seeds])).toEqual([
      [0, 'quadratic', null, [5]],
      [1, 'quadratic', null, [5, 6, 7]],
      [2, 'quadratic', 400, [5, 6, 7, 8]],
      [3, 'rosenbrock', null, [5, 6]],
    ]);
    const trained = store.candidates().filter((c) => c.status === 'ok');
    const plan = planFunnel(cfg, store.candidates(), evals);
    expect(plan.complete).toBe(3);
    // Rung 1: max(minPromoted, ceil(0.2 x trained)) best rung-0 rules, in rung-0 order.
    const n1 = Math.max(
      4,
      Math.ceil(0.2 * store.candidates().filter((c) => c.status !== 'cached' && c.status !== 'rejected').length),
    );
    const byReward = [...trained].sort((a, b) => b.reward - a.reward || a.index - b.index).map((c) => c.hash);
    expect(plan.members[1]).toEqual(byReward.slice(0, n1));
    // Rung 2: the best 3 of rung 1 by their 3-seed mean; rung 3: the best 2 of rung 2.
    const mean = (hash: string, rung: number) => {
      const xs = evals.filter((e) => e.hash === hash && e.rung === rung).map((e) => e.reward);
      return xs.reduce((a, b) => a + b, 0) / xs.length;
    };
    const by = (rung: number) => (a: string, b: string) => mean(b, rung) - mean(a, rung);
    expect(plan.members[2]).toEqual([...(plan.members[1] as string[])].sort(by(1)).slice(0, 3));
    expect(plan.members[3]).toEqual([...(plan.members[2] as string[])].sort(by(2)).slice(0, 2));
    // One row per rule x rung x seed; the baseline at every rung and seed.
    const keys = evals.map((e) => `${e.hash}/${e.rung}/${e.seed}`);
    expect(new Set(keys).size).toBe(keys.length);
    const adam = lookupRule('adam');
    if (!adam.ok) throw new Error(adam.message);
    for (const r of rungs)
      expect(evals.filter((e) => e.hash === adam.rule.hash && e.rung === r.rung).map((e) => e.seed)).toEqual(r.seeds);
    for (const r of rungs.slice(1)) {
      for (const h of plan.members[r.rung] as string[])
        expect(evals.filter((e) => e.hash === h && e.rung === r.rung).map((e) => e.seed)).toEqual(r.seeds);
    }
    // No request twice; rung 1's first seed is rung 0's row, not a new run.
    expect([...ev.calls.values()].every((n) => n === 1)).toBe(true);
    const rung1Requests = [...ev.calls.keys()]
      .map((k) => JSON.parse(k) as [string, string, number, number | null])
      .filter(([, task, , steps]) => task === 'quadratic' && steps === null);
    expect(rung1Requests.filter(([, , seed]) => seed === 5).length).toBe(trained.length + 1);
    // The transfer rung ran on its task.
    expect(evals.filter((e) => e.rung === 3).every((e) => e.task === 'rosenbrock')).toBe(true);
    // Leaderboard: by highest rung, then mean; rung, seeds and a CI; verdicts for the finalists.
    const board = rankedLeaderboard(cfg, store.candidates(), evals, 50);
    expect(board.slice(0, 2).map((e) => e.rung)).toEqual([3, 3]);
    expect(board.slice(2, 3).map((e) => e.rung)).toEqual([2]);
    expect(board[0]?.seeds).toBe(2);
    expect(board[0]?.ci95).not.toBeNull();
    expect(board.at(-1)?.rung).toBe(0);
    expect(board.at(-1)?.ci95).toBeNull();
    for (let i = 1; i < board.length; i++) {
      const [a, b] = [board[i - 1]!, board[i]!];
      expect(a.rung > b.rung || (a.rung === b.rung && a.reward >= b.reward)).toBe(true);
    }
    expect(board[0]?.vsBaseline?.n).toBe(2);
    const v = verdicts(cfg, store.candidates(), evals);
    expect(v.map((x) => x.hash)).toEqual(board.filter((e) => e.rung >= 2).map((e) => e.candidate.hash));
    expect(v[0]?.transfer?.task).toBe('rosenbrock');
    expect(v[0]?.proxy?.n).toBe(4);
    expect(summary.verdicts).toEqual(v);
    // The report shows the rungs, the leaderboard by rung and the verdicts.
    const html = renderReport({
      config: cfg,
      candidates: store.candidates(),
      checkpoints: store.checkpoints(),
      evaluations: evals,
    });
    expect(html).toContain('<table id="rungs">');
    expect(html).toContain('transfer to rosenbrock, 2 seeds');
    expect(html.match(/<tr><td><code/g)?.length).toBe(v.length);
    expect(
      renderReport({ config: cfg, candidates: store.candidates(), checkpoints: store.checkpoints() }),
    ).not.toContain('id="funnel"');
    store.close();
  });

  it('resumes inside a rung and between rungs: nothing is recomputed, and the result equals an uninterrupted run', async () => {
    const straight = await searchAndFunnel(root(), 's', new RungEvaluator());
    const want = straight.store.evaluations();
    straight.store.close();
    for (const n of [3, 12, 20]) {
      const dir = root();
      // The search itself needs about 30 evaluations: stop the funnel n evaluations into it.
      const flag = { stop: false };
      const counting = new RungEvaluator();
      const store = SqliteStore.create(config('r'), dir);
      await runSearch(store, new RandomSearch({ seed: 5, groups: 2 }), counting);
      const first = new RungEvaluator({ n, flag });
      const stopped = await runFunnel(store, first, { shouldStop: () => flag.stop });
      expect(stopped.stopped).toBe(true);
      const partial = store.evaluations().length;
      store.close();
      const again = openStore('r', dir);
      const second = new RungEvaluator();
      const done = await runFunnel(again, second);
      expect(done.stopped).toBe(false);
      // No (rule, task, seed, steps) evaluated by both processes.
      for (const k of second.calls.keys()) expect(first.calls.has(k), k).toBe(false);
      expect(again.evaluations().length).toBeGreaterThan(partial);
      expect(again.evaluations()).toEqual(want);
      again.close();
    }
  });

  it("seeds near 2^53: each rung's seeds wrap to 0 (safe, distinct integers) and the funnel completes (it crashed)", async () => {
    const max = Number.MAX_SAFE_INTEGER;
    expect(rungSeed(5, 3)).toBe(8);
    expect([0, 1, 2, 3].map((i) => rungSeed(max - 1, i))).toEqual([max - 1, max, 0, 1]);
    for (const seed of [0, 7, max - 99, max - 3, max])
      for (const n of [1, 5, 100]) {
        const seeds = Array.from({ length: n }, (_, i) => rungSeed(seed, i));
        expect(seeds.every(Number.isSafeInteger)).toBe(true);
        expect(new Set(seeds).size).toBe(n);
      }
    const ev = new RungEvaluator();
    const store = SqliteStore.create({ ...config('big-seed', funnel, 12), seed: max }, root());
    await runSearch(store, new RandomSearch({ seed: max, groups: 2 }), ev);
    const summary = await runFunnel(store, ev);
    expect(rungsOf(store.config).map((r) => r.seeds)).toEqual([[max], [max, 0, 1], [max, 0, 1, 2], [max, 0]]);
    expect(summary.stopped).toBe(false);
    expect(planFunnel(store.config, store.candidates(), store.evaluations()).complete).toBe(3);
    expect(store.evaluations().every((e) => Number.isSafeInteger(e.seed))).toBe(true);
    store.close();
  });

  it('without a funnel the leaderboard is the proxy ranking: rung 0, one seed, no interval', async () => {
    const store = SqliteStore.create(config('n', null), root());
    await runSearch(store, new RandomSearch({ seed: 5, groups: 2 }), new RungEvaluator());
    const s = await runFunnel(store, new RungEvaluator());
    expect(s.evaluated).toBe(0);
    const board = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 5);
    const ok = store
      .candidates()
      .filter((c) => c.status === 'ok')
      .sort((a, b) => b.reward - a.reward || a.index - b.index);
    expect(board.map((e) => [e.rule, e.reward, e.rung, e.seeds, e.ci95])).toEqual(
      ok.slice(0, 5).map((c) => [c.rule, c.reward, 0, 1, null]),
    );
    store.close();
  });

  it('checks its settings and names the flag', () => {
    const task = findTask('mlp-mnist')!;
    expect(funnelConfig(undefined, task)).toEqual({ ...FUNNEL_DEFAULTS, minPromoted: 5, transfer: 'convnet-fashion' });
    expect(funnelConfig(undefined, findTask('quadratic')!)?.transfer).toBeNull();
    expect(funnelConfig(false, task)).toBeNull();
    const bad: [Parameters<typeof funnelConfig>[0], string][] = [
      [{ promote: 0 }, 'promote'],
      [{ promote: 1.5 }, 'promote'],
      [{ seeds: [1, 2] }, 'rung-seeds'],
      [{ seeds: [1, 0, 2] }, 'rung-seeds'],
      [{ longTop: 0 }, 'long-top'],
      [{ finalists: 6 }, 'finalists'],
      [{ transfer: 'convnet-fashon' }, 'transfer'],
      [{ baseline: 'adamm' }, 'baseline'],
    ];
    for (const [req, field] of bad) {
      let err: unknown;
      try {
        funnelConfig(req, task);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(req)).toBeInstanceOf(RunConfigError);
      expect((err as RunConfigError).field).toBe(field);
    }
    expect(() => funnelConfig({ transfer: 'convnet-fashon' }, task)).toThrow(/did you mean 'convnet-fashion'/);
    expect(planRun({ task: 'quadratic', funnel: { transfer: 'none' } }).funnel?.transfer).toBeNull();
  });

  it('a sampled rule equal to the baseline stands where its own promotions took it, not on every rung the baseline ran', () => {
    const adam = lookupRule('adam');
    const other = lookupRule('momentum');
    if (!adam.ok || !other.ok) throw new Error('built-ins');
    const cfg = config('b', { ...funnel, minPromoted: 1, promote: 0.01, longTop: 1, finalists: 1, seeds: [2, 2, 2] });
    const cand = (index: number, rule: string, hash: string, reward: number) => ({
      index,
      batch: 0,
      rule,
      hash,
      fingerprint: null,
      status: 'ok' as const,
      reward,
      bestLr: 0.1,
      valAcc: reward,
      testAcc: null,
      finalLoss: 0,
      detail: '{}',
      seconds: 1,
      strategy: 'random',
      parent: null,
    });
    const cs = [cand(0, adam.rule.canonical, adam.rule.hash, 0.5), cand(1, other.rule.canonical, other.rule.hash, 0.9)];
    const row = (hash: string, rule: string, rung: number, seed: number, reward: number) => ({
      hash,
      rung,
      seed,
      rule,
      task: rung === 3 ? 'rosenbrock' : 'quadratic',
      status: 'ok' as const,
      reward,
      bestLr: 0.1,
      valAcc: reward,
      testAcc: reward,
      seconds: 1,
    });
    const evals = [1, 2, 3].flatMap((rung) =>
      [5, 6].flatMap((seed) => [
        row(adam.rule.hash, adam.rule.canonical, rung, seed, 0.6 + seed / 100),
        row(other.rule.hash, other.rule.canonical, rung, seed, 0.7 + seed / 100),
      ]),
    );
    const board = rankedLeaderboard(cfg, cs, evals, 5);
    expect(board.map((e) => [e.rule, e.rung])).toEqual([
      [other.rule.canonical, 3],
      [adam.rule.canonical, 0],
    ]);
    expect(verdicts(cfg, cs, evals).map((v) => v.hash)).toEqual([other.rule.hash]);
  });

  it("places outside rules in a run's rung-0 pool as the funnel would: the rank and rung 1's cut of planFunnel", () => {
    const cfg = config('pool');
    const statuses = [
      'ok',
      'ok',
      'diverged',
      'ok',
      'ok',
      'rejected',
      'ok',
      'ok',
      'ok',
      'cached',
      'ok',
      'ok',
      'ok',
      'ok',
      'ok',
    ];
    const cs = statuses.map((status, i) => ({
      index: i,
      batch: 0,
      rule: `g * ${i + 1}e-3`,
      hash: status === 'rejected' ? '' : status === 'cached' ? 'h0' : `h${i}`,
      fingerprint: null,
      status: status as 'ok',
      // Two rules share a reward (ties go to the earlier sample).
      reward: status === 'ok' ? ([0.5, 0.9, 0, 0.7, 0.3, 0, 0.8, 0.7, 0.1, 0, 0.95, 0.2, 0.6, 0.4, 0.05][i] ?? 0) : 0,
      bestLr: null,
      valAcc: null,
      testAcc: null,
      finalLoss: null,
      detail: '{}',
      seconds: 1,
      strategy: 'random',
      parent: null,
    }));
    const plan = planFunnel(cfg, cs, []);
    const ranked = plan.members[0] as string[];
    const cut = plan.members[1] as string[];
    // 13 trained (one diverged), 12 that trained ok: rung 1 takes max(4, ceil(0.2 * 13)) = 4.
    expect(cut).toHaveLength(4);
    // A rule in the pool stands where the funnel put it.
    const inside = poolPlacement(
      cfg,
      cs,
      ranked.map((h) => ({ label: h, hash: h, reward: cs.find((c) => c.hash === h)?.reward ?? -1, ok: true })),
    );
    inside.forEach((p, i) => {
      expect(p.rank).toBe(i + 1);
      expect(p.of).toBe(ranked.length);
      expect(p.promoted).toBe(cut.includes(p.label));
    });
    // An outside rule: ties go to the rules already there; the pool grows by one (rung 1 by
    // ceil(0.2 * 14) = 3, still 4); a rule that did not train is never promoted.
    const [tie, best, worst, failed] = poolPlacement(cfg, cs, [
      { label: 'tie', reward: 0.7, ok: true },
      { label: 'best', reward: 2, ok: true },
      { label: 'worst', reward: -1, ok: true },
      { label: 'failed', reward: 2, ok: false },
    ]);
    expect(tie).toMatchObject({ rank: 6, of: 13, promotedCount: 4, promoted: false });
    expect(best).toMatchObject({ rank: 1, promoted: true });
    expect(worst).toMatchObject({ rank: 13, promoted: false });
    expect(failed).toMatchObject({ rank: 13, promoted: false });
  });
});
