/**
 * Evaluator worker (Piscina). Initialises tfjs once, wraps the shared datasets without copying,
 * and evaluates one rule per request; compiled rules are cached per worker by their hash.
 */
import { getHeapStatistics } from 'node:v8';
import { threadId, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initTf } from '../dsl/compile/tf-backend.js';
import { type Dataset, viewDataset } from './images.js';
import { type EvalRequest, evalOptions, type WorkerInit, type WorkerReply } from './protocol.js';
import { findTask } from './tasks.js';
import { evaluateRule } from './train.js';

const init = workerData as WorkerInit | undefined;
const datasets = new Map<string, Dataset>((init?.datasets ?? []).map((d) => [d.name, viewDataset(d)]));
const ready = initTf();

function wasmHeapBytes(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.length ?? 0;
}

export default async function evaluate(req: EvalRequest): Promise<WorkerReply> {
  await ready;
  const task = findTask(req.task);
  if (task === undefined) throw new Error(`unknown task ${req.task}`);
  const data = task.dataset === null ? undefined : datasets.get(task.dataset);
  if (task.dataset !== null && data === undefined)
    throw new Error(`the ${task.dataset} dataset was not shared with this worker`);
  const result = evaluateRule(req.rule, task, data, evalOptions(req));
  const memoryMb = (getHeapStatistics().used_heap_size + wasmHeapBytes()) / 2 ** 20;
  return { result, memoryMb, threadId };
}
