/**
 * The evaluator pool: Piscina worker threads (one per core by default, and at most that many)
 * that evaluate rules in parallel on datasets shared through SharedArrayBuffers. Threads start
 * when there is work for them, not all up front. A worker that throws, hangs past its limit or
 * dies is replaced; its evaluation comes back as a status and the pool goes on.
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { requireOptional } from '../util/optional-deps.js';
import { type DatasetName, sharedDataset } from './data.js';
import { abortError } from '../util/abort.js';
import { Turns } from '../util/turns.js';
import type { EvalRequest, EvaluateOptions, Evaluator, WorkerInit, WorkerReply } from './protocol.js';
import { findTask } from './tasks.js';
import { defaultTimeLimitMs, type EvalResult, failedResult } from './train.js';

/** The most worker threads a pool starts: the number of cores (training is CPU-bound). */
export function workerLimit(): number {
  return Math.max(1, availableParallelism());
}

/**
 * The worker count for a request: the default is one per core; a request above the limit is
 * capped, with a note that says so.
 */
export function resolveWorkers(requested: number | undefined): { workers: number; note: string | undefined } {
  const limit = workerLimit();
  if (requested === undefined) return { workers: limit, note: undefined };
  if (requested > limit) {
    return {
      workers: limit,
      note: `--workers ${requested}: using ${limit}, the number of cores here (more threads than cores only adds memory, about 60 MB each)`,
    };
  }
  return { workers: Math.max(1, requested), note: undefined };
}

export interface PoolOptions {
  /** Worker threads (default: the number of cores; capped at it). */
  readonly workers?: number;
  /** Datasets to share with the workers (loaded once, in this thread). */
  readonly datasets?: readonly DatasetName[];
  /** The worker module (tests substitute misbehaving workers). */
  readonly workerFile?: string;
  /** Extra time beyond a task's own limit before a worker is stopped, ms. */
  readonly graceMs?: number;
}

export interface PoolReply {
  readonly result: EvalResult;
  readonly memoryMb: number | null;
}

/** A compiled worker (default dist/evaluator/worker.js), also when this module runs from source. */
export function defaultWorkerFile(name = 'worker.js'): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.split(/[\\/]/).includes('dist') ? join(here, name) : join(here, '..', 'dist', 'evaluator', name);
}

export class EvaluatorPool implements Evaluator {
  private readonly piscina: Piscina;
  readonly workers: number;
  private readonly graceMs: number;
  /** Workers that crashed or were stopped, and replaced. */
  replaced = 0;
  /** Evaluations running now, and those waiting for a free worker (the time limit starts when one runs). */
  private readonly turns: Turns;

  constructor(options: PoolOptions = {}) {
    this.workers = resolveWorkers(options.workers).workers;
    this.turns = new Turns(this.workers);
    this.graceMs = options.graceMs ?? 10_000;
    const init: WorkerInit = { datasets: (options.datasets ?? []).map((d) => sharedDataset(d)) };
    const { Piscina: PiscinaPool } = requireOptional<typeof import('piscina')>('piscina');
    this.piscina = new PiscinaPool({
      filename: options.workerFile ?? defaultWorkerFile(),
      // Threads start as work arrives (each holds a tfjs runtime): a pool of 8 asked to
      // evaluate 2 rules starts 2.
      minThreads: 0,
      maxThreads: this.workers,
      idleTimeout: 60_000,
      workerData: init,
      concurrentTasksPerWorker: 1,
    });
    this.piscina.on('error', () => {
      this.replaced++;
    });
  }

  /**
   * Evaluate one rule. Never rejects for the rule: failures come back as statuses. Aborted
   * while it waits for a worker, it rejects with an AbortError; once running, it finishes,
   * unless `interrupt` aborts: then its worker thread is stopped (and replaced) at once.
   */
  async evaluate(req: EvalRequest, options: EvaluateOptions = {}): Promise<PoolReply> {
    const { interrupt } = options;
    // `interrupt` aborts no earlier than `signal` (protocol.ts): alone, it drops a waiting one too.
    const signal = options.signal ?? interrupt;
    // Wait for a free worker here rather than in Piscina's queue, so that the time limit counts
    // the evaluation's own time, not the time it waited behind others.
    await this.turns.take(signal);
    try {
      return await this.run(req, interrupt);
    } finally {
      this.turns.release();
    }
  }

  private async run(req: EvalRequest, interrupt: AbortSignal | undefined): Promise<PoolReply> {
    if (interrupt?.aborted) throw abortError(interrupt, 'the evaluation');
    const task = findTask(req.task);
    const limit =
      (req.timeLimitMs ??
        (task ? defaultTimeLimitMs(task, req.learned !== undefined, req.steps ?? task.steps) : 60_000)) + this.graceMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('time limit')), limit);
    // Piscina stops the worker of a task whose signal aborts (and starts another when needed).
    const stop = () => controller.abort(interrupt?.reason);
    interrupt?.addEventListener('abort', stop, { once: true });
    const t0 = performance.now();
    try {
      const reply = (await this.piscina.run(req, { signal: controller.signal })) as WorkerReply;
      return { result: reply.result, memoryMb: reply.memoryMb };
    } catch (e) {
      const seconds = (performance.now() - t0) / 1000;
      if (interrupt?.aborted) {
        this.replaced++;
        throw abortError(interrupt, 'the evaluation');
      }
      if (controller.signal.aborted) {
        this.replaced++;
        return {
          result: failedResult(
            req.rule,
            req.task,
            req.seed,
            'timeout',
            `stopped after ${(limit / 1000).toFixed(0)} s: the worker was replaced`,
            seconds,
          ),
          memoryMb: null,
        };
      }
      const message = e instanceof Error ? e.message : String(e);
      return {
        result: failedResult(req.rule, req.task, req.seed, 'invalid', `the worker failed: ${message}`, seconds),
        memoryMb: null,
      };
    } finally {
      clearTimeout(timer);
      interrupt?.removeEventListener('abort', stop);
    }
  }

  /** Worker threads running now (they start as work arrives, up to `workers`). */
  get threadsStarted(): number {
    return this.piscina.threads.length;
  }

  get utilization(): number {
    return this.piscina.utilization;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
