/**
 * The GPU worker thread (evaluator/gpu-pool.ts starts it): evaluations on tfjs-webgpu and the
 * WGSL kernels, one at a time, on datasets shared by the main thread without copying. Messages:
 * `{id, req}` in, `{id, result}` or `{id, error}` out; `{close: true}` releases tfjs-webgpu and
 * the device, in that order, before the thread ends (webgpu.ts: Dawn must not be torn down
 * under a live device).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Dataset, viewDataset } from './data.js';
import { closeGpuTraining, evaluateRuleGpu } from './gpu-train.js';
import { type EvalRequest, evalOptions, type WorkerInit } from './protocol.js';
import { findTask } from './tasks.js';
import type { EvalResult } from './train.js';

export type GpuWorkerMessage = { readonly id: number; readonly req: EvalRequest } | { readonly close: true };
export type GpuWorkerReply =
  | { readonly id: number; readonly result: EvalResult }
  | { readonly id: number; readonly error: string };

const port = parentPort;
if (port === null) throw new Error('evaluator/gpu-worker.js runs as a worker thread');
const init = workerData as WorkerInit;
const datasets = new Map<string, Dataset>(init.datasets.map((d) => [d.name, viewDataset(d)]));
let queue: Promise<unknown> = Promise.resolve();

async function evaluate(id: number, req: EvalRequest): Promise<GpuWorkerReply> {
  try {
    const task = findTask(req.task);
    if (task === undefined) throw new Error(`unknown task ${req.task}`);
    const data = task.dataset === null ? undefined : datasets.get(task.dataset);
    if (task.dataset !== null && data === undefined)
      throw new Error(`the ${task.dataset} dataset was not shared with the GPU worker`);
    return { id, result: await evaluateRuleGpu(req.rule, task, data, evalOptions(req)) };
  } catch (e) {
    return { id, error: e instanceof Error ? e.message : String(e) };
  }
}

port.on('message', (m: GpuWorkerMessage) => {
  if ('close' in m) {
    queue = queue.then(async () => {
      await closeGpuTraining();
      port.close();
    });
    return;
  }
  queue = queue.then(async () => port.postMessage(await evaluate(m.id, m.req)));
});
