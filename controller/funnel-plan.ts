/**
 * The funnel's promotion policy, as pure functions of a run's config and stored rows (the loop in
 * controller/funnel.ts climbs it): its defaults, the rungs, which rules each rung holds, a rule's
 * score at the highest rung it reached (mean and 95% CI over seeds), its paired comparison with
 * the baseline, the verdicts, and the one ranked leaderboard the CLI, the library and the report
 * show. search-results/ stores the rows and renders what this computes.
 */
import { lookupRule } from '../dsl/index.js';
import { meanCi, type PairedComparison, pairedTest } from '../evaluator/paired.js';
import { findTask, type TaskSpec } from '../evaluator/tasks.js';
import { isTrained } from '../search-results/samples.js';
import type { Candidate, Evaluation } from '../search-results/store.js';
import type { FunnelConfig, RunConfig } from './config.js';

/** What the funnel's policy reads of a run's config. */
export type FunnelSettings = Pick<RunConfig, 'task' | 'seed' | 'steps' | 'funnel'>;

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
  readonly task: string;
  /** Steps of the run (null: the task's own). */
  readonly steps: number | null;
  readonly seeds: readonly number[];
  readonly label: string;
}

/** The rungs of a run: rung 0 (the search's proxy) and the funnel's rungs above it. */
export function rungsOf(config: FunnelSettings): Rung[] {
  const task = findTask(config.task);
  const proxySteps = config.steps ?? task?.steps ?? null;
  const seedsFrom = (n: number) => Array.from({ length: n }, (_, i) => config.seed + i);
  const rungs: Rung[] = [
    { rung: 0, task: config.task, steps: config.steps, seeds: [config.seed], label: 'proxy, 1 seed' },
  ];
  const f = config.funnel;
  if (!f) return rungs;
  rungs.push({
    rung: 1,
    task: config.task,
    steps: config.steps,
    seeds: seedsFrom(f.seeds[0]),
    label: `proxy, ${f.seeds[0]} seeds`,
  });
  rungs.push({
    rung: 2,
    task: config.task,
    steps: proxySteps === null ? null : proxySteps * f.longFactor,
    seeds: seedsFrom(f.seeds[1]),
    label: `${f.longFactor}x steps, ${f.seeds[1]} seeds`,
  });
  if (f.transfer !== null)
    rungs.push({
      rung: 3,
      task: f.transfer,
      steps: null,
      seeds: seedsFrom(f.seeds[2]),
      label: `transfer to ${f.transfer}, ${f.seeds[2]} seeds`,
    });
  return rungs;
}

/** A rule's results at one rung. */
export interface RungScore {
  readonly rung: number;
  readonly task: string;
  readonly seeds: number;
  readonly mean: number;
  readonly ci95: readonly [number, number] | null;
  /** Rewards by seed. */
  readonly bySeed: ReadonlyMap<number, number>;
}

export type Rows = Map<string, Map<number, Map<number, Evaluation>>>;

export function indexEvaluations(evals: readonly Evaluation[]): Rows {
  const rows: Rows = new Map();
  for (const e of evals) {
    const byRung = rows.get(e.hash) ?? new Map<number, Map<number, Evaluation>>();
    rows.set(e.hash, byRung);
    const bySeed = byRung.get(e.rung) ?? new Map<number, Evaluation>();
    byRung.set(e.rung, bySeed);
    bySeed.set(e.seed, e);
  }
  return rows;
}

export function score(rows: Rows, hash: string, rung: Rung): RungScore | undefined {
  const bySeed = rows.get(hash)?.get(rung.rung);
  if (!bySeed || bySeed.size === 0) return undefined;
  const rewards = new Map<number, number>();
  for (const s of rung.seeds) {
    const e = bySeed.get(s);
    if (e) rewards.set(s, e.reward);
  }
  if (rewards.size === 0) return undefined;
  const ci = meanCi([...rewards.values()]);
  return { rung: rung.rung, task: rung.task, seeds: rewards.size, mean: ci.mean, ci95: ci.ci95, bySeed: rewards };
}

/** The baseline rule's hash and canonical text. */
export function baselineRule(name: string): { hash: string; rule: string } {
  const found = lookupRule(name);
  if (!found.ok) throw new Error(`the funnel's baseline '${name}' is not a rule: ${found.message}`);
  return { hash: found.rule.hash, rule: found.rule.canonical };
}

/** Rung 0 as evaluation rows: the search's trained candidates, first sample of each rule. */
export function rungZero(config: FunnelSettings, cs: readonly Candidate[]): Evaluation[] {
  const seen = new Set<string>();
  const out: Evaluation[] = [];
  for (const c of cs) {
    const status = c.status;
    if (!isTrained(status) || seen.has(c.hash) || c.hash === '') continue;
    seen.add(c.hash);
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
function rank(hashes: readonly string[], rows: Rows, rung: Rung, order: ReadonlyMap<string, number>): string[] {
  return [...hashes].sort(
    (a, b) =>
      (score(rows, b, rung)?.mean ?? -1) - (score(rows, a, rung)?.mean ?? -1) ||
      (order.get(a) ?? 0) - (order.get(b) ?? 0),
  );
}

export interface FunnelPlan {
  readonly rungs: readonly Rung[];
  /** Rules (hashes) at each rung, rung 0 included (its rules that trained successfully). */
  readonly members: readonly (readonly string[])[];
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
  const zero = rungZero(config, cs).filter((e) => e.status === 'ok');
  const rung0 = [...zero].sort((a, b) => b.reward - a.reward).map((e) => e.hash);
  const order = new Map(rung0.map((h, i) => [h, i]));
  const members: string[][] = [rung0];
  const f = config.funnel;
  let complete = 0;
  if (!f) return { rungs, members, complete };
  const trainedCount = rungZero(config, cs).length;
  const sizes = [Math.max(f.minPromoted, Math.ceil(f.promote * trainedCount)), f.longTop, f.finalists];
  for (let r = 1; r < rungs.length; r++) {
    const below = members[r - 1] as string[];
    const prev = rungs[r - 1] as Rung;
    const ranked = r === 1 ? below : rank(below, rows, prev, order);
    members.push(ranked.slice(0, sizes[r - 1]));
    const rung = rungs[r] as Rung;
    const base = baselineRule(f.baseline).hash;
    const needed = [...(members[r] as string[]), base];
    const done = needed.every((h) =>
      rung.seeds.every(
        (s) =>
          rows.get(h)?.get(r)?.has(s) === true ||
          (r === 1 && s === config.seed && rows.get(h)?.get(0)?.has(s) === true),
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

export function compare(rows: Rows, hash: string, baseHash: string, rung: Rung): PairedComparison | null {
  const a = score(rows, hash, rung);
  const b = score(rows, baseHash, rung);
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
  const baseHash = config.funnel ? baselineRule(config.funnel.baseline).hash : undefined;
  // A rule stands at the rungs it was promoted to: the baseline has rows on every rung, but a
  // sampled rule equal to it has only climbed as far as its own results took it.
  const members = config.funnel ? planFunnel(config, cs, evals).members.map((m) => new Set(m)) : [];
  const out: Standing[] = [];
  for (const [hash, c] of first) {
    let top: { score: RungScore; rung: Rung } | undefined;
    for (const rung of rungs) {
      if (rung.rung > 0 && members[rung.rung]?.has(hash) !== true) continue;
      const s = score(rows, hash, rung);
      if (s) top = { score: s, rung };
    }
    if (!top) continue;
    out.push({
      hash,
      rule: c.rule,
      index: c.index,
      score: top.score,
      vsBaseline: baseHash === undefined ? null : compare(rows, hash, baseHash, top.rung),
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
  const out: Verdicts[] = [];
  for (const s of standings(config, cs, evals)) {
    if (s.score.rung < 2) continue;
    const proxyRung = rungs[2] as Rung;
    const proxy = compare(rows, s.hash, base, proxyRung);
    const transferRung = rungs[3];
    const transfer = transferRung ? compare(rows, s.hash, base, transferRung) : null;
    out.push({
      rule: s.rule,
      hash: s.hash,
      proxy: proxy ? { ...proxy, rung: 2 } : null,
      transfer: transfer && transferRung ? { ...transfer, rung: 3, task: transferRung.task } : null,
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
  return rungsOf(config)
    .map((r) => score(rows, base, r))
    .filter((s): s is RungScore => s !== undefined);
}

export interface Verdicts {
  readonly rule: string;
  readonly hash: string;
  /** The highest rung on the proxy task the rule reached (1 or 2), paired with the baseline. */
  readonly proxy: (PairedComparison & { readonly rung: number }) | null;
  /** The transfer rung, paired with the baseline. */
  readonly transfer: (PairedComparison & { readonly rung: number; readonly task: string }) | null;
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
