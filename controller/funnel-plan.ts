/**
 * The funnel's promotion policy, as pure functions of a run's config and stored rows (the loop in
 * controller/funnel.ts climbs it): its defaults, the rungs, which rules each rung holds, a rule's
 * score at the highest rung it reached (mean and 95% CI over seeds), its paired comparison with
 * the baseline, the verdicts, and the one ranked leaderboard the CLI, the library and the report
 * show. search-results/ stores the rows and renders what this computes.
 */
import { lookupRule } from '../dsl/index.js';
import { meanCi, type PairedComparison, pairedTest } from '../evaluator/paired.js';
import { type Aggregate, normalise, profileScore, scoreFloor } from '../evaluator/suite.js';
import { findTask, SCREEN_LR_TOP, type TaskSpec } from '../evaluator/tasks.js';
import { isTrained } from '../search-results/samples.js';
import type { Candidate, Evaluation } from '../search-results/store.js';
import type { FunnelConfig, RunConfig } from './config.js';

/** What the funnel's policy reads of a run's config. */
export type FunnelSettings = Pick<RunConfig, 'task' | 'seed' | 'steps' | 'funnel' | 'suite'>;

export const FUNNEL_DEFAULTS: FunnelConfig = {
  promote: 0.05,
  minPromoted: 4,
  longTop: 5,
  finalists: 2,
  seeds: [3, 5, 3],
  longFactor: 4,
  transfer: 'convnet-fashion',
  baseline: 'adam',
};

/** The default transfer task for a proxy task: image tasks transfer to the ConvNet on Fashion-MNIST. */
export function defaultTransfer(task: TaskSpec): string | null {
  if (task.dataset === null) return null;
  return task.id === 'convnet-fashion' ? 'mlp-mnist' : 'convnet-fashion';
}

export interface Rung {
  readonly rung: number;
  /** The task, or the suite's name ('search suite', 'held-out suite') for a rung of several workloads. */
  readonly task: string;
  /** The workloads the rung trains on (one for a single-task run). */
  readonly tasks: readonly string[];
  /** Steps of the run (null: the task's own). */
  readonly steps: number | null;
  /** For a suite rung: each workload's own steps times this (null: its own steps). */
  readonly stepsFactor?: number | null;
  /** Full runs at the best this-many grid rates (absent: the task's own; the screening rungs 0 and 1 run one). */
  readonly lrTop?: number;
  readonly seeds: readonly number[];
  readonly label: string;
}

/**
 * The i-th seed of a rung: the run's seed, then the next ones, wrapping from 2^53 - 1 to 0, so
 * every seed is a safe integer and a rung's seeds are distinct for any run seed from 0 to
 * 2^53 - 1 (`seed + i` past 2^53 - 1 is not exact: seeds repeated, and the funnel broke).
 * Below 2^53 - i this is plain `seed + i`: the seeds of every earlier run are unchanged.
 */
export function rungSeed(seed: number, i: number): number {
  const room = Number.MAX_SAFE_INTEGER - seed;
  return i <= room ? seed + i : i - room - 1;
}

/** The steps an evaluation at a rung asks for on one of its workloads (undefined: the task's own). */
export function rungSteps(rung: Rung, task: string): number | undefined {
  if (rung.steps !== null) return rung.steps;
  if (rung.stepsFactor === null || rung.stepsFactor === undefined) return undefined;
  const t = findTask(task);
  return t === undefined ? undefined : t.steps * rung.stepsFactor;
}

export const SEARCH_SUITE = 'search suite';
export const HELD_OUT_SUITE = 'held-out suite';

/** The rungs of a run: rung 0 (the search's proxy) and the funnel's rungs above it. */
export function rungsOf(config: FunnelSettings): Rung[] {
  const seedsFrom = (n: number) => Array.from({ length: n }, (_, i) => rungSeed(config.seed, i));
  const f = config.funnel;
  const suite = config.suite;
  if (suite) {
    const search = [...suite.search];
    const rungs: Rung[] = [
      {
        rung: 0,
        task: SEARCH_SUITE,
        tasks: search,
        steps: null,
        lrTop: SCREEN_LR_TOP,
        seeds: [config.seed],
        label: 'search suite, 1 seed',
      },
    ];
    if (!f) return rungs;
    rungs.push({
      rung: 1,
      task: SEARCH_SUITE,
      tasks: search,
      steps: null,
      lrTop: SCREEN_LR_TOP,
      seeds: seedsFrom(f.seeds[0]),
      label: `search suite, ${f.seeds[0]} seeds`,
    });
    rungs.push({
      rung: 2,
      task: SEARCH_SUITE,
      tasks: search,
      steps: null,
      stepsFactor: f.longFactor === 1 ? null : f.longFactor,
      seeds: seedsFrom(f.seeds[1]),
      label: `search suite${f.longFactor === 1 ? '' : `, ${f.longFactor}x steps`}, verdict protocol, ${f.seeds[1]} seeds`,
    });
    if (suite.heldOut.length > 0)
      rungs.push({
        rung: 3,
        task: HELD_OUT_SUITE,
        tasks: [...suite.heldOut],
        steps: null,
        seeds: seedsFrom(f.seeds[2]),
        label: `held-out suite (${suite.heldOut.join(', ')}), ${f.seeds[2]} seeds`,
      });
    return rungs;
  }
  const task = findTask(config.task);
  const proxySteps = config.steps ?? task?.steps ?? null;
  const rungs: Rung[] = [
    {
      rung: 0,
      task: config.task,
      tasks: [config.task],
      steps: config.steps,
      seeds: [config.seed],
      label: 'proxy, 1 seed',
    },
  ];
  if (!f) return rungs;
  rungs.push({
    rung: 1,
    task: config.task,
    tasks: [config.task],
    steps: config.steps,
    lrTop: SCREEN_LR_TOP,
    seeds: seedsFrom(f.seeds[0]),
    label: `proxy, ${f.seeds[0]} seeds`,
  });
  rungs.push({
    rung: 2,
    task: config.task,
    tasks: [config.task],
    steps: proxySteps === null ? null : proxySteps * f.longFactor,
    seeds: seedsFrom(f.seeds[1]),
    label: `${f.longFactor}x steps, ${f.seeds[1]} seeds`,
  });
  if (f.transfer !== null)
    rungs.push({
      rung: 3,
      task: f.transfer,
      tasks: [f.transfer],
      steps: null,
      seeds: seedsFrom(f.seeds[2]),
      label: `transfer to ${f.transfer}, ${f.seeds[2]} seeds`,
    });
  return rungs;
}

/** One workload's results for a rule at a rung, paired with the baseline's (the leaderboard's `workloads`). */
export interface WorkloadScore {
  readonly mean: number;
  readonly ci95: readonly [number, number] | null;
  readonly seeds: number;
  /** Against the baseline on the same workload and seeds (null for the baseline itself, or without its rows). */
  readonly verdict: PairedComparison['verdict'] | null;
  readonly diff: PairedComparison | null;
}

/** A rule's results at one rung. */
export interface RungScore {
  readonly rung: number;
  readonly task: string;
  readonly seeds: number;
  /** The mean over seeds: the reward, or for a rung of several workloads the aggregate of normalised scores. */
  readonly mean: number;
  readonly ci95: readonly [number, number] | null;
  /** Rewards (or aggregates) by seed. */
  readonly bySeed: ReadonlyMap<number, number>;
  /** Each workload's own result, for a rung of several workloads. */
  readonly workloads?: Readonly<Record<string, WorkloadScore>>;
}

/** Rows by rule hash, rung, workload and seed. */
export type Rows = Map<string, Map<number, Map<string, Map<number, Evaluation>>>>;

export function indexEvaluations(evals: readonly Evaluation[]): Rows {
  const rows: Rows = new Map();
  for (const e of evals) {
    const byRung = rows.get(e.hash) ?? new Map<number, Map<string, Map<number, Evaluation>>>();
    rows.set(e.hash, byRung);
    const byTask = byRung.get(e.rung) ?? new Map<string, Map<number, Evaluation>>();
    byRung.set(e.rung, byTask);
    const bySeed = byTask.get(e.task) ?? new Map<number, Evaluation>();
    byTask.set(e.task, bySeed);
    bySeed.set(e.seed, e);
  }
  return rows;
}

/** The row of a rule at a rung, workload and seed. */
export function rowAt(rows: Rows, hash: string, rung: number, task: string, seed: number): Evaluation | undefined {
  return rows.get(hash)?.get(rung)?.get(task)?.get(seed);
}

/** How a rung of several workloads is scored: against which baseline, aggregated how. */
export interface SuiteScoring {
  readonly baseHash: string;
  readonly aggregate: Aggregate;
}

/** A run's suite scoring (undefined for a single-task run). */
export function suiteScoring(config: Pick<RunConfig, 'suite'>): SuiteScoring | undefined {
  if (!config.suite) return undefined;
  return { baseHash: baselineRule(config.suite.baseline).hash, aggregate: config.suite.aggregate };
}

function rewardsOf(rows: Rows, hash: string, rung: Rung, task: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of rung.seeds) {
    const e = rowAt(rows, hash, rung.rung, task, s);
    if (e) out.set(s, e.reward);
  }
  return out;
}

/**
 * A rule's score at a rung. One workload: the mean reward over seeds. Several: per seed, each
 * workload's reward normalised against the baseline's mean on that workload at this rung, then
 * aggregated (mean or profile); the score is the mean of those over the seeds where every
 * workload has a row.
 */
export function score(rows: Rows, hash: string, rung: Rung, suite?: SuiteScoring): RungScore | undefined {
  if (rung.tasks.length <= 1) {
    const rewards = rewardsOf(rows, hash, rung, rung.tasks[0] ?? rung.task);
    if (rewards.size === 0) return undefined;
    const ci = meanCi([...rewards.values()]);
    return { rung: rung.rung, task: rung.task, seeds: rewards.size, mean: ci.mean, ci95: ci.ci95, bySeed: rewards };
  }
  if (suite === undefined) throw new Error(`rung ${rung.rung} has several workloads: it needs a suite scoring`);
  const baseMean = new Map<string, number>();
  for (const t of rung.tasks) {
    const b = [...rewardsOf(rows, suite.baseHash, rung, t).values()];
    if (b.length === 0) return undefined;
    baseMean.set(t, b.reduce((a, x) => a + x, 0) / b.length);
  }
  const per = new Map(rung.tasks.map((t) => [t, rewardsOf(rows, hash, rung, t)]));
  const bySeed = new Map<number, number>();
  for (const s of rung.seeds) {
    const normalised: number[] = [];
    for (const t of rung.tasks) {
      const r = per.get(t)?.get(s);
      const e = rowAt(rows, hash, rung.rung, t, s);
      const task = findTask(t);
      if (r === undefined || e === undefined || task === undefined) break;
      normalised.push(e.status === 'ok' ? normalise(r, baseMean.get(t) as number, scoreFloor(task)) : 0);
    }
    if (normalised.length !== rung.tasks.length) continue;
    bySeed.set(
      s,
      suite.aggregate === 'mean' ? normalised.reduce((a, x) => a + x, 0) / normalised.length : profileScore(normalised),
    );
  }
  if (bySeed.size === 0) return undefined;
  const ci = meanCi([...bySeed.values()]);
  const workloads: Record<string, WorkloadScore> = {};
  for (const t of rung.tasks) {
    const mine = per.get(t) as Map<number, number>;
    const m = meanCi([...mine.values()]);
    const base = hash === suite.baseHash ? undefined : rewardsOf(rows, suite.baseHash, rung, t);
    const paired = base ? rung.seeds.filter((s) => mine.has(s) && base.has(s)) : [];
    const diff =
      base && paired.length > 0
        ? pairedTest(
            paired.map((s) => mine.get(s) as number),
            paired.map((s) => base.get(s) as number),
          )
        : null;
    workloads[t] = { mean: m.mean, ci95: m.ci95, seeds: mine.size, verdict: diff?.verdict ?? null, diff };
  }
  return {
    rung: rung.rung,
    task: rung.task,
    seeds: bySeed.size,
    mean: ci.mean,
    ci95: ci.ci95,
    bySeed,
    workloads,
  };
}

/** The baseline rule's hash and canonical text. */
export function baselineRule(name: string): { hash: string; rule: string } {
  const found = lookupRule(name);
  if (!found.ok) throw new Error(`the funnel's baseline '${name}' is not a rule: ${found.message}`);
  return { hash: found.rule.hash, rule: found.rule.canonical };
}

/** A suite candidate's per-workload results, as the search loop stores them in its detail. */
export interface StoredWorkload {
  readonly status: Evaluation['status'];
  readonly reward: number;
  readonly bestLr: number | null;
  readonly valAcc: number | null;
  readonly testAcc: number | null;
  readonly seconds: number;
}

/** The per-workload results in a candidate's detail (empty when it has none, or they are malformed). */
export function storedWorkloads(detail: string): Record<string, StoredWorkload> {
  let doc: unknown;
  try {
    doc = JSON.parse(detail);
  } catch {
    return {};
  }
  const w = (doc as { workloads?: unknown } | null)?.workloads;
  if (typeof w !== 'object' || w === null) return {};
  const out: Record<string, StoredWorkload> = {};
  for (const [task, v] of Object.entries(w)) {
    const x = v as Partial<Record<keyof StoredWorkload, unknown>>;
    const num = (u: unknown) => (typeof u === 'number' && Number.isFinite(u) ? u : null);
    if (typeof x.status !== 'string' || !isTrained(x.status as Candidate['status']) || num(x.reward) === null) continue;
    out[task] = {
      status: x.status as Evaluation['status'],
      reward: num(x.reward) as number,
      bestLr: num(x.bestLr),
      valAcc: num(x.valAcc),
      testAcc: num(x.testAcc),
      seconds: num(x.seconds) ?? 0,
    };
  }
  return out;
}

/**
 * Rung 0 as evaluation rows: the search's trained candidates, first sample of each rule; in a
 * suite run, one row per search workload (from the candidate's stored per-workload results).
 */
export function rungZero(config: FunnelSettings, cs: readonly Candidate[]): Evaluation[] {
  const seen = new Set<string>();
  const out: Evaluation[] = [];
  for (const c of cs) {
    const status = c.status;
    if (!isTrained(status) || seen.has(c.hash) || c.hash === '') continue;
    seen.add(c.hash);
    if (config.suite) {
      const workloads = storedWorkloads(c.detail);
      for (const task of config.suite.search) {
        const w = workloads[task];
        if (w) out.push({ hash: c.hash, rung: 0, seed: config.seed, rule: c.rule, task, ...w });
      }
      continue;
    }
    out.push({
      hash: c.hash,
      rung: 0,
      seed: config.seed,
      rule: c.rule,
      task: config.task,
      status,
      reward: c.reward,
      bestLr: c.bestLr,
      valAcc: c.valAcc,
      testAcc: c.testAcc,
      seconds: c.seconds,
    });
  }
  return out;
}

/** Order rules by a rung's mean (best first); ties by their rung-0 order. */
function rank(
  hashes: readonly string[],
  rows: Rows,
  rung: Rung,
  order: ReadonlyMap<string, number>,
  suite: SuiteScoring | undefined,
): string[] {
  return [...hashes].sort(
    (a, b) =>
      (score(rows, b, rung, suite)?.mean ?? -1) - (score(rows, a, rung, suite)?.mean ?? -1) ||
      (order.get(a) ?? 0) - (order.get(b) ?? 0),
  );
}

export interface FunnelPlan {
  readonly rungs: readonly Rung[];
  /** Rules (hashes) at each rung, rung 0 included (its rules that trained successfully). */
  readonly members: readonly (readonly string[])[];
}

/** Each rule's first trained sample (the one rung 0 ranks), by hash, in sample order. */
function firstTrainedByHash(cs: readonly Candidate[]): Map<string, Candidate> {
  const first = new Map<string, Candidate>();
  for (const c of cs) if (isTrained(c.status) && c.hash !== '' && !first.has(c.hash)) first.set(c.hash, c);
  return first;
}

/** How many rules rung 1 takes from a pool of `trained` rules. */
function rungOneSize(f: FunnelConfig, trained: number): number {
  return Math.max(f.minPromoted, Math.ceil(f.promote * trained));
}

/** Where a rule would stand in a run's rung-0 pool: its rank there, and whether rung 1 would take it. */
export interface PoolPlace {
  readonly label: string;
  readonly reward: number;
  /** 1 = best; among the pool's trained rules that trained ('ok'), this rule added. */
  readonly rank: number;
  /** The pool's size with this rule in it. */
  readonly of: number;
  /** Rung 1's size for that pool (the funnel's promote fraction, at least its minimum). */
  readonly promotedCount: number;
  readonly promoted: boolean;
}

/**
 * Where rules evaluated outside a run (known rules, at the run's rung-0 protocol and seed) would
 * stand in its rung-0 pool, one at a time, as the funnel promotes: by reward among the rules
 * that trained, ties going to the rules already there; rung 1 takes the top
 * max(minPromoted, ceil(promote x trained)). A rule that is already in the pool (same hash) is
 * placed where it is.
 */
export function poolPlacement(
  config: FunnelSettings,
  cs: readonly Candidate[],
  rules: readonly { readonly label: string; readonly hash?: string; readonly reward: number; readonly ok: boolean }[],
): PoolPlace[] {
  const firstTrained = firstTrainedByHash(cs);
  const f = config.funnel;
  return rules.map((r) => {
    const inPool = r.hash !== undefined && firstTrained.has(r.hash);
    const others = [...firstTrained.values()].filter((c) => c.status === 'ok' && c.hash !== r.hash);
    const trained = firstTrained.size + (inPool ? 0 : 1);
    const promotedCount = f ? rungOneSize(f, trained) : 0;
    // Ties go to the earlier sample (the funnel's sort is stable); an outside rule comes last.
    const at = inPool ? (firstTrained.get(r.hash as string) as Candidate).index : Number.POSITIVE_INFINITY;
    const ahead = (c: Candidate) => c.reward > r.reward || (c.reward === r.reward && c.index < at);
    const rank = r.ok ? 1 + others.filter(ahead).length : others.length + 1;
    return {
      label: r.label,
      reward: r.reward,
      rank,
      of: others.length + 1,
      promotedCount,
      promoted: r.ok && rank <= promotedCount,
    };
  });
}

/**
 * Which rules each rung holds, given the rows so far. Rung r+1's members are known once rung r
 * is complete; `complete` says up to which rung that holds.
 */
export function planFunnel(
  config: FunnelSettings,
  cs: readonly Candidate[],
  evals: readonly Evaluation[],
): FunnelPlan & { readonly complete: number } {
  const rungs = rungsOf(config);
  const rows = indexEvaluations([...rungZero(config, cs), ...evals]);
  // Rung 0 ranks by the search's reward (a suite run's: the aggregate over its workloads).
  const firstTrained = firstTrainedByHash(cs);
  const zero = [...firstTrained.values()].filter((c) => c.status === 'ok');
  const rung0 = [...zero].sort((a, b) => b.reward - a.reward).map((c) => c.hash);
  const order = new Map(rung0.map((h, i) => [h, i]));
  const members: string[][] = [rung0];
  const f = config.funnel;
  let complete = 0;
  if (!f) return { rungs, members, complete };
  const suite = suiteScoring(config);
  const trainedCount = firstTrained.size;
  const sizes = [rungOneSize(f, trainedCount), f.longTop, f.finalists];
  for (let r = 1; r < rungs.length; r++) {
    const below = members[r - 1] as string[];
    const prev = rungs[r - 1] as Rung;
    const ranked = r === 1 ? below : rank(below, rows, prev, order, suite);
    members.push(ranked.slice(0, sizes[r - 1]));
    const rung = rungs[r] as Rung;
    const base = baselineRule(f.baseline).hash;
    const needed = [...(members[r] as string[]), base];
    const done = needed.every((h) =>
      rung.tasks.every((t) =>
        rung.seeds.every(
          (s) =>
            rowAt(rows, h, r, t, s) !== undefined ||
            (r === 1 && s === config.seed && rowAt(rows, h, 0, t, s) !== undefined),
        ),
      ),
    );
    if (!done) break;
    complete = r;
  }
  return { rungs, members, complete };
}

/** A rule's standing: the highest rung it reached, its score there, and its comparison with the baseline there. */
export interface Standing {
  readonly hash: string;
  readonly rule: string;
  readonly index: number;
  readonly score: RungScore;
  readonly vsBaseline: PairedComparison | null;
}

export function compare(
  rows: Rows,
  hash: string,
  baseHash: string,
  rung: Rung,
  suite?: SuiteScoring,
): PairedComparison | null {
  const a = score(rows, hash, rung, suite);
  const b = score(rows, baseHash, rung, suite);
  if (!a || !b) return null;
  const seeds = rung.seeds.filter((s) => a.bySeed.has(s) && b.bySeed.has(s));
  if (seeds.length === 0) return null;
  return pairedTest(
    seeds.map((s) => a.bySeed.get(s) as number),
    seeds.map((s) => b.bySeed.get(s) as number),
  );
}

/**
 * The leaderboard of a run with a funnel: rules ranked by the highest rung they reached, then by
 * their mean there (ties: the earlier sample). Only rules whose rung-0 run succeeded.
 */
export function standings(config: FunnelSettings, cs: readonly Candidate[], evals: readonly Evaluation[]): Standing[] {
  const rungs = rungsOf(config);
  const rows = indexEvaluations([...rungZero(config, cs), ...evals]);
  const first = new Map<string, Candidate>();
  for (const c of cs) if (c.status === 'ok' && !first.has(c.hash)) first.set(c.hash, c);
  const suite = suiteScoring(config);
  const baseHash = config.funnel ? baselineRule(config.funnel.baseline).hash : suite?.baseHash;
  // A rule stands at the rungs it was promoted to: the baseline has rows on every rung, but a
  // sampled rule equal to it has only climbed as far as its own results took it.
  const members = config.funnel ? planFunnel(config, cs, evals).members.map((m) => new Set(m)) : [];
  const out: Standing[] = [];
  for (const [hash, c] of first) {
    let top: { score: RungScore; rung: Rung } | undefined;
    for (const rung of rungs) {
      if (rung.rung > 0 && members[rung.rung]?.has(hash) !== true) continue;
      const s = score(rows, hash, rung, suite);
      if (s) top = { score: s, rung };
    }
    if (!top) continue;
    out.push({
      hash,
      rule: c.rule,
      index: c.index,
      score: top.score,
      vsBaseline: baseHash === undefined ? null : compare(rows, hash, baseHash, top.rung, suite),
    });
  }
  return out.sort((a, b) => b.score.rung - a.score.rung || b.score.mean - a.score.mean || a.index - b.index);
}

/** The verdicts against the baseline of the rules that reached rung 2 (on the proxy) and rung 3 (transfer). */
export function verdicts(config: FunnelSettings, cs: readonly Candidate[], evals: readonly Evaluation[]): Verdicts[] {
  const f = config.funnel;
  if (!f) return [];
  const rungs = rungsOf(config);
  const rows = indexEvaluations([...rungZero(config, cs), ...evals]);
  const base = baselineRule(f.baseline).hash;
  const suite = suiteScoring(config);
  const out: Verdicts[] = [];
  for (const s of standings(config, cs, evals)) {
    if (s.score.rung < 2) continue;
    const proxyRung = rungs[2] as Rung;
    const proxy = compare(rows, s.hash, base, proxyRung, suite);
    const transferRung = rungs[3];
    const transfer = transferRung ? compare(rows, s.hash, base, transferRung, suite) : null;
    const held = transferRung && transferRung.tasks.length > 1 ? score(rows, s.hash, transferRung, suite) : undefined;
    out.push({
      rule: s.rule,
      hash: s.hash,
      proxy: proxy ? { ...proxy, rung: 2 } : null,
      transfer: transfer && transferRung ? { ...transfer, rung: 3, task: transferRung.task } : null,
      ...(held?.workloads ? { workloads: held.workloads } : {}),
    });
  }
  return out;
}

/** The baseline's score at each rung (for reports). */
export function baselineScores(config: FunnelSettings, evals: readonly Evaluation[]): RungScore[] {
  const f = config.funnel;
  if (!f) return [];
  const rows = indexEvaluations(evals);
  const base = baselineRule(f.baseline).hash;
  const suite = suiteScoring(config);
  return rungsOf(config)
    .map((r) => score(rows, base, r, suite))
    .filter((s): s is RungScore => s !== undefined);
}

export interface Verdicts {
  readonly rule: string;
  readonly hash: string;
  /** The highest rung on the proxy task the rule reached (1 or 2), paired with the baseline. */
  readonly proxy: (PairedComparison & { readonly rung: number }) | null;
  /** The transfer rung (a suite run: the held-out suite's aggregate), paired with the baseline. */
  readonly transfer: (PairedComparison & { readonly rung: number; readonly task: string }) | null;
  /** A suite run: each held-out workload's result and verdict against the baseline. */
  readonly workloads?: Readonly<Record<string, WorkloadScore>>;
}

/** A leaderboard row: the rule's candidate, and its standing at the highest rung it reached. */
export interface LeaderboardEntry {
  readonly rank: number;
  readonly candidate: Candidate;
  readonly rule: string;
  /** The mean reward at `rung` (rung 0: the proxy's one-seed reward). */
  readonly reward: number;
  readonly rung: number;
  readonly task: string;
  readonly seeds: number;
  readonly ci95: readonly [number, number] | null;
  /** Paired with the baseline at the same rung and seeds (null without a funnel). */
  readonly vsBaseline: PairedComparison | null;
  /** A rung of several workloads: each workload's result, paired with the baseline. */
  readonly workloads?: Readonly<Record<string, WorkloadScore>>;
}

/**
 * A run's leaderboard, the one the CLI, the library and the report show: by the highest rung
 * reached, then the mean there (ties: the earlier sample). A run without a funnel ranks by the
 * proxy reward, as it always did.
 */
export function rankedLeaderboard(
  config: FunnelSettings,
  cs: readonly Candidate[],
  evals: readonly Evaluation[],
  top = 10,
): LeaderboardEntry[] {
  const first = new Map<number, Candidate>(cs.map((c) => [c.index, c]));
  return standings(config, cs, evals)
    .slice(0, top)
    .map((s, i) => ({
      rank: i + 1,
      candidate: first.get(s.index) as Candidate,
      rule: s.rule,
      reward: s.score.mean,
      rung: s.score.rung,
      task: s.score.task,
      seeds: s.score.seeds,
      ci95: s.score.ci95,
      vsBaseline: s.vsBaseline,
      ...(s.score.workloads ? { workloads: s.score.workloads } : {}),
    }));
}

/** Rung 0 alone: the ranking by the proxy reward, the search's own before any funnel. */
const PROXY_ONLY: FunnelSettings = { task: '', seed: 0, steps: null, funnel: null };

/**
 * The search's own ranking (rung 0): the rules whose proxy run succeeded, by their proxy reward
 * (ties: the earlier sample). `rankedLeaderboard` of a run without a funnel, as its candidates.
 */
export function leaderboard(cs: readonly Candidate[], top = 10): Candidate[] {
  return rankedLeaderboard(PROXY_ONLY, cs, [], top).map((e) => e.candidate);
}
