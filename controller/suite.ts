/**
 * The search's reward over a workload suite: a candidate is evaluated on every search workload
 * (one request each, in parallel on the evaluator), and the pure `suiteReward` turns the
 * per-workload results into the controller's reward, each normalised against the baseline's
 * score on the same workload and seed. The baseline's scores are evaluated once per run and
 * stored as rung-0 rows, so a resume never recomputes them. Held-out workloads are never
 * evaluated here.
 */
import type { EvalRequest, EvaluateOptions, Evaluator } from '../evaluator/protocol.js';
import { type Aggregate, HeldOutLeakError, suiteReward, type WorkloadResult } from '../evaluator/suite.js';
import { findTask, SCREEN_LR_TOP } from '../evaluator/tasks.js';
import type { EvalResult } from '../evaluator/train.js';
import type { Evaluation, FunnelStore, ResultsStore } from '../search-results/store.js';
import type { RunConfig } from './config.js';
import { baselineRule, type StoredWorkload } from './funnel-plan.js';

function isFunnelStore(store: ResultsStore): store is ResultsStore & FunnelStore {
  return typeof (store as Partial<FunnelStore>).addEvaluation === 'function';
}

/** The search workloads of a run, checked: none may be held out (a test checks this refuses). */
export function searchWorkloads(config: RunConfig): readonly string[] {
  const suite = config.suite;
  if (!suite) return [config.task];
  for (const id of suite.search) {
    if (findTask(id)?.suite === 'held-out' || suite.heldOut.includes(id))
      throw new HeldOutLeakError(`the held-out workload ${id} is among run '${config.run}''s search workloads`);
  }
  return suite.search;
}

function request(rule: string, task: string, config: RunConfig): EvalRequest {
  return {
    rule,
    task,
    seed: config.seed,
    lrTop: SCREEN_LR_TOP,
    ...(config.steps && !config.suite ? { steps: config.steps } : {}),
    ...(config.standIn === undefined ? {} : { standInMs: config.standIn }),
  };
}

function row(hash: string, rule: string, task: string, seed: number, r: EvalResult): Evaluation {
  return {
    hash,
    rung: 0,
    seed,
    rule,
    task,
    status: r.status,
    reward: r.reward,
    bestLr: r.bestLr,
    valAcc: Number.isFinite(r.valAcc) ? r.valAcc : null,
    testAcc: r.testAcc,
    seconds: r.seconds,
  };
}

/**
 * The baseline's score on each search workload at the run's seed (rung 0): from the store when
 * it holds them, else evaluated now and stored.
 */
export async function suiteBaselines(
  store: ResultsStore,
  evaluator: Evaluator,
  config: RunConfig,
  options: EvaluateOptions = {},
): Promise<Record<string, number>> {
  const suite = config.suite;
  if (!suite) return {};
  const base = baselineRule(suite.baseline);
  const stored = isFunnelStore(store) ? store.evaluations() : [];
  const out: Record<string, number> = {};
  await Promise.all(
    searchWorkloads(config).map(async (task) => {
      const hit = stored.find((e) => e.hash === base.hash && e.rung === 0 && e.task === task && e.seed === config.seed);
      if (hit) {
        out[task] = hit.reward;
        return;
      }
      const { result } = await evaluator.evaluate(request(base.rule, task, config), options);
      if (result.status !== 'ok')
        throw new Error(
          `the suite's baseline ${suite.baseline} did not train on ${task} (${result.status}: ${result.reason ?? ''})`,
        );
      if (isFunnelStore(store)) store.addEvaluation(row(base.hash, base.rule, task, config.seed, result));
      out[task] = result.reward;
    }),
  );
  return out;
}

/** One candidate's results on the search workloads and the reward they make. */
export interface SuiteOutcome {
  readonly reward: number;
  /** ok when every workload trained; else the first failure's. */
  readonly status: EvalResult['status'];
  readonly reason: string | null;
  readonly seconds: number;
  readonly workloads: Readonly<Record<string, StoredWorkload>>;
  /** Each workload's grid and curve, for the candidate's detail. */
  readonly results: readonly EvalResult[];
}

/** Evaluate a rule on every search workload and aggregate the reward (`suiteReward`). */
export async function evaluateSuite(
  evaluator: Evaluator,
  rule: string,
  config: RunConfig,
  baselines: Readonly<Record<string, number>>,
  options: EvaluateOptions = {},
): Promise<SuiteOutcome> {
  const suite = config.suite;
  if (!suite) throw new Error(`run '${config.run}' has no suite`);
  const tasks = searchWorkloads(config);
  const results = await Promise.all(
    tasks.map(async (task) => (await evaluator.evaluate(request(rule, task, config), options)).result),
  );
  const perWorkload: WorkloadResult[] = results.map((r, i) => ({
    task: tasks[i] as string,
    reward: r.reward,
    status: r.status,
  }));
  const reward = suiteReward(perWorkload, baselines, suite.aggregate as Aggregate, tasks);
  const failed = results.find((r) => r.status !== 'ok');
  const workloads: Record<string, StoredWorkload> = {};
  results.forEach((r, i) => {
    workloads[tasks[i] as string] = {
      status: r.status,
      reward: r.reward,
      bestLr: r.bestLr,
      valAcc: Number.isFinite(r.valAcc) ? r.valAcc : null,
      testAcc: r.testAcc,
      seconds: r.seconds,
    };
  });
  return {
    reward,
    status: failed?.status ?? 'ok',
    reason: failed ? `${failed.task}: ${failed.reason ?? failed.status}` : null,
    seconds: results.reduce((a, r) => a + r.seconds, 0),
    workloads,
    results,
  };
}
