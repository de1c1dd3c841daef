/**
 * The workload suite (DeepOBS, MLCommons AlgoPerf): the search's reward aggregates a rule's
 * results over the `search` workloads, each normalised against the tuned baseline on that
 * workload; the finalists' verdicts come from the `held-out` workloads, which never reach the
 * reward. Pure functions of plain data: the evaluator produces one result per workload, and
 * `suiteReward` turns them into the controller's reward.
 */
import { findTask, type SuiteName, TASKS, type TaskSpec } from './tasks.js';

/** How per-workload results become one number. */
export type Aggregate = 'mean' | 'profile';

export const AGGREGATES: readonly Aggregate[] = ['mean', 'profile'];

/** The workloads of a suite, in the order of TASKS. */
export function suiteTasks(suite: SuiteName): string[] {
  return TASKS.filter((t) => t.suite === suite).map((t) => t.id);
}

/** The score of an untrained model (chance for a classifier of 10 classes; 0 for the other scores). */
export function scoreFloor(task: Pick<TaskSpec, 'kind'>): number {
  return task.kind === 'classifier' ? 0.1 : 0;
}

/** One workload's result for a rule: its score (the reward of that workload alone) and status. */
export interface WorkloadResult {
  readonly task: string;
  readonly reward: number;
  readonly status: string;
}

/**
 * A score normalised against the baseline's on the same workload: (s - floor) / (b - floor):
 * 1 = as good as the baseline, 0 = no better than an untrained model. A failed run scores 0.
 */
export function normalise(score: number, baseline: number, floor: number): number {
  if (!Number.isFinite(score)) return 0;
  const span = baseline - floor;
  if (!(span > 1e-9)) return score > floor ? 1 : 0;
  return Math.max(0, (score - floor) / span);
}

/** AlgoPerf's profile horizon: ratios to the best up to this count (past it, a workload counts 0). */
export const PROFILE_TAU_MAX = 1.5;

/**
 * AlgoPerf's performance-profile score over normalised scores n_w: on each workload the ratio of
 * the best of {rule, baseline} to the rule, r_w = max(n_w, 1) / n_w >= 1; rho(tau) = the
 * fraction of workloads with r_w <= tau; the score is the area under rho over [1, TAU_MAX],
 * divided by its width (1: at least as good as the baseline everywhere).
 */
export function profileScore(normalised: readonly number[], tauMax = PROFILE_TAU_MAX): number {
  if (normalised.length === 0) return 0;
  let area = 0;
  for (const n of normalised) {
    const ratio = n > 0 ? Math.max(n, 1) / n : Number.POSITIVE_INFINITY;
    area += ratio >= tauMax ? 0 : (tauMax - ratio) / (tauMax - 1);
  }
  return area / normalised.length;
}

export class HeldOutLeakError extends Error {
  override readonly name = 'HeldOutLeakError';
}

/**
 * The controller's reward from one rule's results on the search workloads: each normalised
 * against the baseline's score there, then aggregated ('mean': the mean of normalised scores;
 * 'profile': AlgoPerf's performance profile). Throws if a held-out workload's result is passed
 * in, or a search workload is missing: the reward must never see held-out data.
 */
export function suiteReward(
  results: readonly WorkloadResult[],
  baselines: Readonly<Record<string, number>>,
  aggregate: Aggregate = 'mean',
  workloads: readonly string[] = suiteTasks('search'),
): number {
  for (const r of results) {
    const task = findTask(r.task);
    if (task?.suite === 'held-out')
      throw new HeldOutLeakError(`the held-out workload ${r.task} reached the search's reward`);
    if (!workloads.includes(r.task)) throw new Error(`${r.task} is not one of the search workloads`);
  }
  const normalised = workloads.map((id) => {
    const r = results.find((x) => x.task === id);
    const task = findTask(id);
    const b = baselines[id];
    if (r === undefined || task === undefined) throw new Error(`no result for the search workload ${id}`);
    if (b === undefined) throw new Error(`no baseline score for the search workload ${id}`);
    return r.status === 'ok' ? normalise(r.reward, b, scoreFloor(task)) : 0;
  });
  return aggregate === 'mean'
    ? normalised.reduce((a, x) => a + x, 0) / Math.max(1, normalised.length)
    : profileScore(normalised);
}
