/**
 * Seconds one evaluation of each task costs (Adam, one seed, one thread, the task's full protocol:
 * the rate grid, then full runs at the best 2 rates with the cosine schedule), measured by
 * bench/task-costs.ts on the project's 2-core machine at a load average of 3-4 (other work
 * running beside it) and committed here (bench/results/task-costs.txt): `nos tasks` shows them,
 * nothing is timed at run time.
 */
export const TASK_SECONDS: Readonly<Record<string, number>> = {
  'mlp-mnist': 2.8,
  'convnet-fashion': 26.2,
  'ae-mnist': 16.2,
  'char-brown': 26.8,
  'convnet-fashion-2ep': 52.7,
  'softmax-mnist': 1.3,
  quadratic: 0.02,
  rosenbrock: 0.004,
  'reddi-amsgrad': 0.006,
};

/** The committed cost of one evaluation of a task, or null when it was not measured. */
export function secondsPerEvaluation(task: string): number | null {
  return TASK_SECONDS[task] ?? null;
}
