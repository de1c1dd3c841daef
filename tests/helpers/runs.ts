/** Small real runs for the dashboard's tests: searches on the analytic quadratic, trained in this thread. */
import { runFunnel } from '../../controller/funnel.js';
import { runSearch } from '../../controller/search.js';
import { RlController } from '../../controller/rl.js';
import { RandomSearch } from '../../controller/strategy.js';
import type { Evaluator } from '../../evaluator/protocol.js';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { FUNNEL_DEFAULTS } from '../../controller/funnel-plan.js';
import { SqliteStore } from '../../search-results/store.js';
import type { RunConfig } from '../../controller/config.js';

/** Evaluations in this thread (the analytic tasks need no dataset). */
export const inThread: Evaluator = {
  evaluate: async (req) => {
    const task = findTask(req.task);
    if (task === undefined) throw new Error(`no task ${req.task}`);
    return {
      result: evaluateRule(req.rule, task, undefined, {
        seed: req.seed,
        ...(req.steps === undefined ? {} : { steps: req.steps }),
        ...(req.test ? { test: true } : {}),
      }),
    };
  },
};

export function quadraticConfig(
  run: string,
  budget: number,
  funnel: boolean,
  strategy: 'random' | 'rl' = 'random',
): RunConfig & { budgetUnit: 'trained' } {
  return {
    run,
    task: 'quadratic',
    strategy,
    budget,
    budgetUnit: 'trained',
    seed: 3,
    workers: 1,
    batchSize: 8,
    steps: null,
    groups: 2,
    warmStart: false,
    funnel: funnel
      ? {
          ...FUNNEL_DEFAULTS,
          transfer: null,
          minPromoted: 3,
          longTop: 3,
          finalists: 2,
          seeds: [2, 3, 2],
          longFactor: 2,
        }
      : null,
    createdAt: '2026-01-01T00:00:00.000Z',
    nosVersion: 'test',
  };
}

/**
 * A random (or RL) search on the quadratic under `root` (the runs folder is root/search-results/runs),
 * with the funnel when asked; `stopAfter` stops it after that many samples (a stopped run).
 * Returns the store, closed unless `keepOpen` (then this process holds the run's lock).
 */
export async function quadraticRun(
  root: string,
  run: string,
  options: { budget: number; funnel?: boolean; stopAfter?: number; keepOpen?: boolean; strategy?: 'random' | 'rl' },
): Promise<SqliteStore> {
  const strategy = options.strategy ?? 'random';
  const store = SqliteStore.create(quadraticConfig(run, options.budget, options.funnel === true, strategy), root);
  let sampled = 0;
  // The RL controller's LSTM runs on whatever tfjs backend this process has (cpu in a test thread).
  const controller =
    strategy === 'rl' ? new RlController({ seed: 3, groups: 2 }) : new RandomSearch({ seed: 3, groups: 2 });
  await runSearch(store, controller, inThread, {
    onCandidate: () => {
      sampled++;
    },
    ...(options.stopAfter === undefined ? {} : { shouldStop: () => sampled >= (options.stopAfter as number) }),
  });
  if (controller instanceof RlController) controller.dispose();
  if (options.funnel && options.stopAfter === undefined) await runFunnel(store, inThread);
  if (!options.keepOpen) store.close();
  return store;
}
