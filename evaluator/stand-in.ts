/**
 * The loop benchmark's stand-in evaluations: each one sleeps a fixed time and returns a made-up
 * result (a reward drawn from a hash of the request), so the search loop can be driven at the
 * pace of many workers without training anything, and sleeping costs no CPU. Two forms: the
 * `SleepingEvaluator` (an Evaluator with W slots, in this process, beside the pool and the
 * queue) and `nos worker --stand-in` (evaluator/queue-worker.ts), which sleeps for the stand-in
 * jobs of the queue's stand-in queue. A stand-in run (`nos search --stand-in MS`) asks for them:
 * its requests carry `standInMs`. Results are marked `standIn: true`, and the queue's coordinator
 * accepts them only for stand-in jobs.
 */
import { sha256Hex } from '../dsl/sha256.js';
import { abortError } from '../util/abort.js';
import { canonicalJson } from '../util/canonical-json.js';
import { Turns } from '../util/turns.js';
import type { EvalRequest, EvaluateOptions, Evaluator } from './protocol.js';
import type { EvalResult } from './train.js';

/** A stand-in result, as an EvalResult with the mark. */
export type StandInResult = EvalResult & { readonly standIn: true };

/** Whether a result is a stand-in's (a made-up result, never a measurement). */
export function isStandIn(result: unknown): boolean {
  return typeof result === 'object' && result !== null && (result as { standIn?: unknown }).standIn === true;
}

/**
 * The made-up result of a request, deterministic (a hash of the request), shaped like the
 * default task's rewards so that the RL controller learns from it as it does from real ones:
 * one rule in five diverges (reward 0), the others score uniformly in [0.90, 0.97).
 */
export function standInResult(req: EvalRequest, ms = req.standInMs ?? 0): StandInResult {
  const h = sha256Hex(canonicalJson({ rule: req.rule, task: req.task, seed: req.seed, steps: req.steps ?? null }));
  const u = Number.parseInt(h.slice(0, 8), 16) / 2 ** 32;
  const diverged = u < 0.2;
  const reward = diverged ? 0 : 0.9 + (0.07 * (u - 0.2)) / 0.8;
  return {
    rule: req.rule,
    hash: '',
    task: req.task,
    seed: req.seed,
    status: diverged ? 'diverged' : 'ok',
    reason: `stand-in: slept ${ms} ms, trained nothing`,
    reward,
    bestLr: diverged ? null : 0.001,
    valAcc: reward,
    testAcc: req.test ? reward : null,
    finalLoss: diverged ? Number.POSITIVE_INFINITY : 1 - reward,
    grid: [],
    curve: [],
    curveEvery: 1,
    seconds: ms / 1000,
    standIn: true,
  };
}

/** Sleep `ms`, or reject with an AbortError when the signal aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError(signal, 'the sleep'));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal, 'the sleep'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * W workers whose evaluations sleep, first come first served, as the pool runs them: a request
 * waits for a free worker, then holds it for its `standInMs` (or this evaluator's `ms`). It
 * counts what it did, so a benchmark can compute the workers' utilisation (busy time over W x
 * wall time).
 */
export class SleepingEvaluator implements Evaluator {
  private readonly turns: Turns;
  /** Evaluations finished. */
  evaluations = 0;
  /** Workers' busy time: `ms` per evaluation started (a worker sleeps whether or not the reply is read in time). */
  busyMs = 0;
  /** The most evaluations running at once. */
  peak = 0;

  constructor(
    readonly workers: number,
    readonly ms: number,
  ) {
    if (!Number.isInteger(workers) || workers < 1)
      throw new RangeError(`workers must be a positive integer, got ${workers}`);
    if (!(Number.isFinite(ms) && ms >= 0)) throw new RangeError(`ms must be a non-negative number, got ${ms}`);
    this.turns = new Turns(workers);
  }

  async evaluate(req: EvalRequest, options: EvaluateOptions = {}): Promise<{ result: StandInResult }> {
    await this.turns.take(options.signal);
    this.peak = Math.max(this.peak, this.turns.held);
    try {
      const ms = req.standInMs ?? this.ms;
      this.busyMs += ms;
      // Once started, an evaluation finishes (as in the pool).
      await sleep(ms);
      this.evaluations++;
      return { result: standInResult(req, ms) };
    } finally {
      this.turns.release();
    }
  }
}
