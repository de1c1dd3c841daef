/**
 * An evaluation worker of the in-browser search: trains a child with a rule over the task's
 * learning-rate grid (the same protocol as `nos search`'s workers), on tfjs's WebGPU back end
 * where the browser has one, else wasm, else cpu. The rule's own update runs in nos's
 * WebAssembly SIMD kernel, compiled here from the rule text.
 */
import * as tf from '@tensorflow/tfjs';
import { type Dataset, evaluateRule, findTask, viewDataset } from '../../browser.js';
import { type ChildBackend, errorText, type FromEval, type ToEval } from './messages.js';

const post = (m: FromEval) => (self as unknown as Worker).postMessage(m);

async function tryBackend(name: ChildBackend, wasmBase: string, notes: string[]): Promise<boolean> {
  try {
    if (name === 'webgpu') {
      if (!('gpu' in navigator) || !navigator.gpu) {
        notes.push('webgpu: this browser has no WebGPU (navigator.gpu)');
        return false;
      }
      // Ask first: a browser may expose navigator.gpu with no adapter behind it (no GPU, or it is off).
      if ((await navigator.gpu.requestAdapter()) === null) {
        notes.push('webgpu: the browser has no WebGPU adapter');
        return false;
      }
      await import('@tensorflow/tfjs-backend-webgpu');
    }
    if (name === 'wasm') {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(wasmBase);
    }
    if (!(await tf.setBackend(name))) {
      notes.push(`${name}: tfjs refused it`);
      return false;
    }
    await tf.ready();
    return true;
  } catch (e) {
    notes.push(`${name}: ${errorText(e)}`);
    return false;
  }
}

let data: Dataset | undefined;

async function init(m: Extract<ToEval, { type: 'init' }>): Promise<void> {
  data = m.dataset === null ? undefined : viewDataset(m.dataset);
  const notes: string[] = [];
  const order: ChildBackend[] = m.backend === 'auto' ? ['webgpu', 'wasm', 'cpu'] : [m.backend];
  for (const name of order) {
    if (await tryBackend(name, m.wasmBase, notes)) {
      post({ type: 'ready', backend: name, notes });
      return;
    }
  }
  post({ type: 'error', id: null, message: `no tfjs back end could start: ${notes.join('; ')}` });
}

function evaluate(m: Extract<ToEval, { type: 'evaluate' }>): void {
  const { request } = m;
  try {
    const task = findTask(request.task);
    if (task === undefined) throw new Error(`unknown task '${request.task}'`);
    const result = evaluateRule(request.rule, task, data, {
      seed: request.seed,
      ...(request.steps === undefined ? {} : { steps: request.steps }),
    });
    post({ type: 'result', id: m.id, result });
  } catch (e) {
    post({ type: 'error', id: m.id, message: errorText(e) });
  }
}

self.onmessage = (e: MessageEvent<ToEval>) => {
  const m = e.data;
  if (m.type === 'init') void init(m);
  else evaluate(m);
};
