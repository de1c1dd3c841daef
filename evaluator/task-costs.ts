/**
 * Seconds one evaluation of each task costs (Adam, one seed, one thread), measured by
 * bench/task-costs.ts on the project's 2-core machine and committed here
 * (bench/results/task-costs.txt): `nos tasks` shows them, nothing is timed at run time. The
 * machine was shared with other work at a load average of 12-17 when they were measured, so they
 * are 5-10x what an idle machine takes: read them as relative costs. mlp-mnist, ae-mnist,
 * char-brown and convnet-fashion were measured under the verdict protocol (full runs at the 2
 * best rates); convnet-fashion-2ep and the rest under the protocol before (1 full run).
 */
export const TASK_SECONDS: Readonly<Record<string, number>> = {
  'mlp-mnist': 58.8,
  'convnet-fashion': 406.8,
  'ae-mnist': 160.9,
  'char-brown': 355.6,
  'convnet-fashion-2ep': 339.3,
  'softmax-mnist': 6.1,
  quadratic: 0.1,
  rosenbrock: 0.02,
  'reddi-amsgrad': 0.02,
};

/** The committed cost of one evaluation of a task, or null when it was not measured. */
export function secondsPerEvaluation(task: string): number | null {
  return TASK_SECONDS[task] ?? null;
}
