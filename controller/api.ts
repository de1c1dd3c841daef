/**
 * nos from code: evaluate a rule and run a search without the command line. The CLI's
 * `nos eval` and `nos search` do the same through the same library functions.
 *
 *   import { evaluate, search } from 'nos';
 *   const adam = await evaluate('adam', { task: 'mlp-mnist', seeds: 3 });
 *   const run = await search({ task: 'quadratic', budget: 50, strategy: 'random', onProgress: (p) => console.log(p.evaluated) });
 */
import { initTf } from '../dsl/compile/tf-backend.js';
import { loadDataset } from '../evaluator/data.js';
import { labelNoiseProblem } from '../evaluator/generalization.js';
import { pairedTest, type PairedComparison } from '../evaluator/paired.js';
import { type RuleSummary, summarize } from '../evaluator/stats.js';
import type { EvalOptions, EvalResult } from '../evaluator/train.js';
import { evaluateRule } from '../evaluator/train.js';
import type { Candidate } from '../search-results/store.js';
import { type LeaderboardEntry, rankedLeaderboard } from './funnel-plan.js';
import { createRun, resolveTask, type RunRequest, searchRun } from './run.js';
import type { SearchProgress, SearchSummary } from './search.js';
import type { UpdateStats } from './strategy.js';

export interface EvaluateOptions extends Omit<EvalOptions, 'seed'> {
  /** A task id (`nos tasks`); default mlp-mnist. */
  readonly task?: string;
  /** Seeds 0..seeds-1 (default 1); each trains from its own initialisation and data order. */
  readonly seeds?: number;
  /** Compare with this rule on the same seeds (a paired t-test on accuracy). */
  readonly baseline?: string;
}

export interface Evaluation {
  readonly task: string;
  /** Mean and spread over seeds, the learning rate most seeds chose, and every seed's result. */
  readonly summary: RuleSummary;
  readonly results: readonly EvalResult[];
  /** With `baseline`: rule minus baseline, paired by seed (test accuracy). */
  readonly vsBaseline?: PairedComparison & { readonly baseline: string };
}

/** Train the task's child model with a rule over its learning-rate grid, once per seed, in this thread. */
export async function evaluate(rule: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  const task = resolveTask(options.task);
  const noiseProblem = options.labelNoise === undefined ? undefined : labelNoiseProblem(options.labelNoise, task);
  if (noiseProblem !== undefined) throw new RangeError(noiseProblem);
  await initTf();
  const data = task.dataset ? loadDataset(task.dataset) : undefined;
  const seeds = options.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) throw new RangeError(`seeds must be a positive integer, got ${seeds}`);
  const { task: _t, seeds: _s, baseline, ...rest } = options;
  const run = (text: string): EvalResult[] =>
    Array.from({ length: seeds }, (_x, seed) => evaluateRule(text, task, data, { test: true, ...rest, seed }));
  const results = run(rule);
  const out: Evaluation = { task: task.id, summary: summarize(rule, results), results };
  if (baseline === undefined) return out;
  const base = run(baseline);
  const acc = (r: EvalResult): number => r.testAcc ?? r.valAcc;
  return { ...out, vsBaseline: { baseline, ...pairedTest(results.map(acc), base.map(acc)) } };
}

export interface SearchOptions extends RunRequest {
  /** Worker threads (default: one per core). */
  readonly workers?: number;
  /** Where run folders go (default: $NOS_RUNS, else search-results/runs). */
  readonly root?: string;
  /** After each sampled rule. */
  onProgress?(progress: SearchProgress, candidate: Candidate): void;
  /** After each strategy update (mean reward, baseline, entropy). */
  onUpdate?(batch: number, stats: UpdateStats, progress: SearchProgress): void;
  /** Polled between evaluations: true stops after what is in flight (the run can be resumed). */
  shouldStop?(): boolean;
}

export interface SearchResult extends SearchSummary {
  /**
   * The run's leaderboard (the top 10), as `nos search` and `nos leaderboard` show it: ranked by
   * the highest funnel rung reached, then the mean reward there.
   */
  readonly leaderboard: readonly LeaderboardEntry[];
}

/** Create a run and search it until its budget is spent: the library form of `nos search`. */
export async function search(options: SearchOptions = {}): Promise<SearchResult> {
  const { workers, root, onProgress, onUpdate, shouldStop, ...request } = options;
  const store = createRun(request, root === undefined ? {} : { root });
  try {
    const summary = await searchRun(store, {
      ...(workers === undefined ? {} : { workers }),
      ...(onProgress ? { onCandidate: (c: Candidate, p: SearchProgress) => onProgress(p, c) } : {}),
      ...(onUpdate ? { onUpdate } : {}),
      ...(shouldStop ? { shouldStop } : {}),
    });
    return { ...summary, leaderboard: rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 10) };
  } finally {
    store.close();
  }
}
