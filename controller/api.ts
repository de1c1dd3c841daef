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
import type { PairedComparison } from '../evaluator/paired.js';
import type { Evaluator } from '../evaluator/protocol.js';
import type { RuleSummary } from '../evaluator/stats.js';
import type { EvalOptions, EvalResult } from '../evaluator/train.js';
import { evaluateRule } from '../evaluator/train.js';
import type { Candidate } from '../search-results/store.js';
import { type ComparedAccuracy, evaluateRules } from './evaluate.js';
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
  /**
   * With `baseline`: rule minus baseline, paired by seed, on test accuracy when every seed of
   * both measured it, else validation accuracy (`accuracy` says which), as `nos eval` compares.
   */
  readonly vsBaseline?: PairedComparison & { readonly baseline: string; readonly accuracy: ComparedAccuracy };
}

/** Train the task's child model with a rule over its learning-rate grid, once per seed, in this thread. */
export async function evaluate(rule: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  const task = resolveTask(options.task);
  const noiseProblem = options.labelNoise === undefined ? undefined : labelNoiseProblem(options.labelNoise, task);
  if (noiseProblem !== undefined) throw new RangeError(noiseProblem);
  const seeds = options.seeds ?? 1;
  if (!Number.isInteger(seeds) || seeds < 1) throw new RangeError(`seeds must be a positive integer, got ${seeds}`);
  await initTf();
  const data = task.dataset ? loadDataset(task.dataset) : undefined;
  const { task: _t, seeds: _s, baseline, ...rest } = options;
  // In this thread, one evaluation after another.
  const here: Evaluator = {
    evaluate: async ({ rule: text, task: _id, ...request }) => ({
      result: evaluateRule(text, task, data, { ...rest, ...request }),
    }),
  };
  const e = await evaluateRules(
    {
      rules: [{ label: rule, rule }, ...(baseline === undefined ? [] : [{ label: baseline, rule: baseline }])],
      task: task.id,
      seeds,
      ...(baseline === undefined ? {} : { baseline: 1 }),
      options: { test: rest.test ?? true },
    },
    here,
  );
  const out: Evaluation = { task: task.id, summary: e.summaries[0] as RuleSummary, results: e.results[0] ?? [] };
  const vs = e.vsBaseline;
  const c = vs?.comparisons[0];
  if (baseline === undefined || vs === undefined || c === undefined) return out;
  return { ...out, vsBaseline: { baseline, accuracy: vs.accuracy, ...c } };
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
