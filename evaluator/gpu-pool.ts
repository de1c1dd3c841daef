/**
 * Evaluations on the GPU (`--device webgpu`): one worker thread (evaluator/gpu-worker.ts) that
 * owns the WebGPU device and trains children on it one at a time; evaluator/gpu-train.ts says
 * why one thread, and why not the main one. Same interface and failure statuses as the CPU pool.
 */
import { Worker } from 'node:worker_threads';
import { type DatasetName, sharedDataset } from './data.js';
import type { GpuWorkerMessage, GpuWorkerReply } from './gpu-worker.js';
import { defaultWorkerFile } from './pool.js';
import { abortError } from '../util/abort.js';
import type { EvalRequest, EvaluateOptions, Evaluator, WorkerInit } from './protocol.js';
import { type EvalResult, failedResult } from './train.js';

export class GpuEvaluator implements Evaluator {
  /** Evaluations run one at a time, on one device. */
  readonly workers = 1;
  private readonly worker: Worker;
  private readonly waiting = new Map<
    number,
    { req: EvalRequest; t0: number; resolve: (r: { result: EvalResult }) => void }
  >();
  private nextId = 0;
  private readonly exited: Promise<void>;
  /** Why the worker ended, once it has: later evaluations fail at once with this reason. */
  private ended: string | undefined;

  constructor(options: { datasets?: readonly DatasetName[]; workerFile?: string } = {}) {
    const init: WorkerInit = { datasets: (options.datasets ?? []).map((d) => sharedDataset(d)) };
    this.worker = new Worker(options.workerFile ?? defaultWorkerFile('gpu-worker.js'), { workerData: init });
    this.worker.on('message', (m: GpuWorkerReply) => {
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      w.resolve({
        result: 'result' in m ? m.result : this.failed(w.req, w.t0, `the GPU evaluation failed: ${m.error}`),
      });
    });
    this.exited = new Promise((resolve) => {
      const end = (why: string) => {
        this.ended ??= why;
        for (const [id, w] of this.waiting) {
          this.waiting.delete(id);
          w.resolve({ result: this.failed(w.req, w.t0, why) });
        }
        resolve();
      };
      this.worker.on('error', (e) => end(`the GPU worker failed: ${e.message}`));
      this.worker.on('exit', (code) => end(`the GPU worker exited (${code})`));
    });
  }

  private failed(req: EvalRequest, t0: number, reason: string): EvalResult {
    return failedResult(req.rule, req.task, req.seed, 'invalid', reason, (performance.now() - t0) / 1000);
  }

  /**
   * Evaluate one rule. Never rejects for the rule: failures come back as statuses. When
   * `signal` or `interrupt` aborts it rejects with an AbortError at once, and the worker drops
   * the evaluation if it has not started; one that runs finishes (`close` waits for it): the
   * thread that holds the device is never stopped mid-evaluation.
   */
  evaluate(req: EvalRequest, options: EvaluateOptions = {}): Promise<{ result: EvalResult }> {
    const given = [options.signal, options.interrupt].filter((s): s is AbortSignal => s !== undefined);
    const signal = given.length > 1 ? AbortSignal.any(given) : given[0];
    if (signal?.aborted) return Promise.reject(abortError(signal, 'the evaluation'));
    const id = this.nextId++;
    if (this.ended !== undefined) return Promise.resolve({ result: this.failed(req, performance.now(), this.ended) });
    return new Promise((resolve, reject) => {
      const drop = () => {
        if (!this.waiting.delete(id)) return;
        this.worker.postMessage({ cancel: id } satisfies GpuWorkerMessage);
        reject(abortError(signal, 'the evaluation'));
      };
      signal?.addEventListener('abort', drop, { once: true });
      this.waiting.set(id, {
        req,
        t0: performance.now(),
        resolve: (r) => {
          signal?.removeEventListener('abort', drop);
          resolve(r);
        },
      });
      this.worker.postMessage({ id, req } satisfies GpuWorkerMessage);
    });
  }

  /** Let the worker finish what it was given, release the device, and end. */
  async close(): Promise<void> {
    this.worker.postMessage({ close: true } satisfies GpuWorkerMessage);
    await this.exited;
  }
}
