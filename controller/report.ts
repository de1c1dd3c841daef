/**
 * A run's report: the funnel's policy (controller/funnel-plan.ts) computes what the page shows,
 * search-results/report.ts renders it.
 */
import { type ReportView, renderReportPage } from '../search-results/report.js';
import type { Candidate, Evaluation, StrategyCheckpoint } from '../search-results/store.js';
import type { RunConfig } from './config.js';
import { baselineScores, leaderboard, rankedLeaderboard, rungsOf, verdicts } from './funnel-plan.js';

export interface ReportInput {
  readonly config: RunConfig;
  readonly candidates: readonly Candidate[];
  readonly checkpoints: readonly StrategyCheckpoint[];
  /** The funnel's rows (one per rule x rung x seed), if the run has a funnel. */
  readonly evaluations?: readonly Evaluation[];
  /** Adam's learning curve and reward on the same task and seed, if measured. */
  readonly adam?: ReportView['adam'];
}

/** What the report shows of a run: its top rules and, with a funnel that has rows, the funnel's standings. */
export function reportView(input: ReportInput): ReportView {
  const { config, candidates, checkpoints } = input;
  const evals = input.evaluations ?? [];
  return {
    run: config,
    candidates,
    checkpoints,
    top: leaderboard(candidates, 10),
    ...(config.funnel && evals.length > 0
      ? {
          funnel: {
            baseline: config.funnel.baseline,
            ...(config.suite ? { suite: true } : {}),
            rungs: rungsOf(config),
            baselineScores: baselineScores(config, evals),
            leaderboard: rankedLeaderboard(config, candidates, evals, 15),
            verdicts: verdicts(config, candidates, evals),
          },
        }
      : {}),
    ...(input.adam ? { adam: input.adam } : {}),
  };
}

/** The report's HTML page (`nos report`). */
export function renderReport(input: ReportInput): string {
  return renderReportPage(reportView(input));
}
