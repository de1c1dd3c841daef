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
  /** Requests not yet given to the device, in order, and the one it has. */
  private readonly queued: { id: number; req: EvalRequest }[] = [];
  private onDevice: number | undefined;
  private readonly exited: Promise<void>;
  /** Why the worker ended, once it has: later evaluations fail at once with this reason. */
  private ended: string | undefined;

  constructor(options: { datasets?: readonly DatasetName[]; workerFile?: string } = {}) {
    const init: WorkerInit = { datasets: (options.datasets ?? []).map((d) => sharedDataset(d)) };
    this.worker = new Worker(options.workerFile ?? defaultWorkerFile('gpu-worker.js'), { workerData: init });
    this.worker.on('message', (m: GpuWorkerReply) => {
      if (m.id === this.onDevice) this.onDevice = undefined;
      this.next();
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
        this.queued.length = 0;
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
   * Evaluate one rule. Never rejects for the rule: failures come back as statuses. The device
   * takes one at a time: the rest wait here, in order, and an abort of `signal` drops them
   * (AbortError); the one on the device finishes. `interrupt` also lets go of the one on the
   * device: it rejects at once, and the evaluation finishes there unread (`close` waits for it):
   * the thread that holds the device is never stopped mid-evaluation.
   */
  evaluate(req: EvalRequest, options: EvaluateOptions = {}): Promise<{ result: EvalResult }> {
    const { interrupt } = options;
    // `interrupt` aborts no earlier than `signal` (protocol.ts): alone, it drops a waiting one too.
    const signal = options.signal ?? interrupt;
    if (signal?.aborted) return Promise.reject(abortError(signal, 'the evaluation'));
    const id = this.nextId++;
    if (this.ended !== undefined) return Promise.resolve({ result: this.failed(req, performance.now(), this.ended) });
    return new Promise((resolve, reject) => {
      const listened = [...new Set([signal, interrupt])].filter((s): s is AbortSignal => s !== undefined);
      const unlisten = () => {
        for (const s of listened) s.removeEventListener('abort', dropped);
      };
      const dropped = () => {
        if (!this.waiting.has(id)) return;
        const at = this.queued.findIndex((q) => q.id === id);
        if (at >= 0) this.queued.splice(at, 1);
        else if (interrupt?.aborted !== true) return; // on the device: it finishes
        this.waiting.delete(id);
        unlisten();
        reject(abortError(interrupt?.aborted ? interrupt : signal, 'the evaluation'));
      };
      for (const s of listened) s.addEventListener('abort', dropped, { once: true });
      this.waiting.set(id, {
        req,
        t0: performance.now(),
        resolve: (r) => {
          unlisten();
          resolve(r);
        },
      });
      this.queued.push({ id, req });
      this.next();
    });
  }

  /** Hand the device the next request once it has none. */
  private next(): void {
    if (this.onDevice !== undefined || this.ended !== undefined) return;
    const q = this.queued.shift();
    if (q === undefined) return;
    this.onDevice = q.id;
    this.worker.postMessage({ id: q.id, req: q.req } satisfies GpuWorkerMessage);
  }

  /** Let the worker finish what it was given, release the device, and end. */
  async close(): Promise<void> {
    this.worker.postMessage({ close: true } satisfies GpuWorkerMessage);
    await this.exited;
  }
}
