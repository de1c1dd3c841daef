/** What crosses between the main thread and evaluator workers: plain data only. */
import type { SharedDataset } from './data.js';
import type { LearnedData } from '../learned/file.js';
import type { EvalOptions, EvalResult } from './train.js';

export interface EvalRequest {
  /** Rule text (or a built-in name): workers parse and compile it themselves. */
  readonly rule: string;
  readonly task: string;
  readonly seed: number;
  readonly steps?: number;
  readonly lrGrid?: readonly number[];
  /** Steps of each grid run, and how the grid picks its rate (defaults: the task's). */
  readonly gridSteps?: number;
  readonly lrSelect?: 'val-acc' | 'val-loss' | 'train-loss';
  /** Full runs at the best this-many grid rates (default: the task's). */
  readonly lrTop?: number;
  /** Validation examples for the grid and the reward (default: the task's). */
  readonly valSize?: number;
  readonly params?: Readonly<Record<string, number>>;
  readonly test?: boolean;
  readonly timeLimitMs?: number;
  readonly schedule?: string;
  readonly weightDecay?: number;
  readonly batchGrowth?: boolean;
  readonly analyze?: boolean;
  /** Fraction of training labels replaced by random ones, seeded by `seed` (image tasks). */
  readonly labelNoise?: number;
  /** A learned optimizer's weights (`rule` is then its `learned:FILE` label): plain data, validated by the worker. */
  readonly learned?: LearnedData;
  /**
   * Benchmarks only (`nos search --stand-in`): sleep this many ms and return a made-up result
   * instead of training (evaluator/stand-in.ts). Part of the job id: never shares a real job.
   */
  readonly standInMs?: number;
}

/** How one evaluation may be called off. */
export interface EvaluateOptions {
  /**
   * Aborted: an evaluation that no worker has started yet is dropped (the promise rejects with
   * an AbortError); one that runs may finish (it resolves) or be dropped too (the queue leaves
   * it to its worker, and a resumed run collects its result).
   */
  readonly signal?: AbortSignal;
  /**
   * Aborted: the evaluation is dropped even while it runs (the pool stops its worker thread,
   * which is replaced; the GPU evaluator stops waiting for the device), and the promise rejects
   * with an AbortError at once: what the library's `evaluate` and `search` do with their
   * caller's signal. It aborts no earlier than `signal` (pass both, or the same signal; given
   * alone it also drops a waiting evaluation); evaluators that cannot stop a running
   * evaluation (the queue, the stand-ins) act on `signal` only.
   */
  readonly interrupt?: AbortSignal;
}

/**
 * An evaluation back end: the local Piscina pool (evaluator/pool.ts) implements it, and so can
 * a queue of remote workers. Only plain data crosses: a request in, a result out. Never
 * rejects for a bad rule: failures come back as statuses. Requests are started in the order
 * they are made, as workers come free.
 */
export interface Evaluator {
  evaluate(req: EvalRequest, options?: EvaluateOptions): Promise<{ readonly result: EvalResult }>;
}

export interface WorkerInit {
  readonly datasets: readonly SharedDataset[];
}

export interface WorkerReply {
  readonly result: EvalResult;
  /** This worker's memory after the evaluation: JS heap plus the wasm backend's heap, MB. */
  readonly memoryMb: number;
  readonly threadId: number;
}

/** An evaluation request's options for the protocol (`evaluateRule`): plain data in, its options out. */
export function evalOptions(req: EvalRequest): EvalOptions {
  return {
    seed: req.seed,
    ...(req.steps === undefined ? {} : { steps: req.steps }),
    ...(req.lrGrid === undefined ? {} : { lrGrid: req.lrGrid }),
    ...(req.gridSteps === undefined ? {} : { gridSteps: req.gridSteps }),
    ...(req.lrSelect === undefined ? {} : { lrSelect: req.lrSelect }),
    ...(req.lrTop === undefined ? {} : { lrTop: req.lrTop }),
    ...(req.valSize === undefined ? {} : { valSize: req.valSize }),
    ...(req.params === undefined ? {} : { params: req.params }),
    ...(req.test === undefined ? {} : { test: req.test }),
    ...(req.timeLimitMs === undefined ? {} : { timeLimitMs: req.timeLimitMs }),
    ...(req.schedule === undefined ? {} : { schedule: req.schedule }),
    ...(req.weightDecay === undefined ? {} : { weightDecay: req.weightDecay }),
    ...(req.batchGrowth ? { batchGrowth: true } : {}),
    ...(req.analyze ? { analyze: true } : {}),
    ...(req.labelNoise === undefined ? {} : { labelNoise: req.labelNoise }),
    ...(req.learned === undefined ? {} : { learned: req.learned }),
  };
}
