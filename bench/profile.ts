/**
 * Where a child's training step goes: `node dist/bench/profile.js [--js] [mlp-mnist|convnet-fashion ...]`
 * (run under `flock /tmp/nos-bench.lock`). For each task, the step's wall time split into the
 * gradient call and the rule's update, and the gradient call's tfjs kernels one by one
 * (tf.profile: each kernel's own time on the synchronous wasm backend), so that what is left
 * (wall time minus kernel time) is tfjs dispatch, tensor allocation and the host-side copies.
 */
import * as tf from '@tensorflow/tfjs';
import { compileRule } from '../dsl/compile/index.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { library } from '../dsl/index.js';
import { loadDataset } from '../evaluator/data.js';
import { createRun, findTask } from '../evaluator/tasks.js';

interface KernelRow {
  name: string;
  calls: number;
  ms: number;
  shapes: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export async function profileTask(taskId: string, steps: number, kernel: 'wasm' | 'js' = 'wasm'): Promise<string> {
  const task = findTask(taskId);
  if (task === undefined || task.dataset === null) throw new Error(`no task ${taskId}`);
  const run = createRun(task, 0, loadDataset(task.dataset));
  const compiled = compileRule(library().get('adam') as NonNullable<ReturnType<ReturnType<typeof library>['get']>>, {
    backend: kernel,
  });
  const kernels = run.weights.map((w) => compiled.create(w.length));
  const grad: number[] = [];
  const update: number[] = [];
  const perKernel = new Map<string, KernelRow>();
  let kernelTotal = 0;
  let profiled = 0;
  try {
    for (let s = 1; s <= steps + 3; s++) {
      const t0 = performance.now();
      const { grads } = run.gradients(s);
      const t1 = performance.now();
      run.weights.forEach((w, i) => {
        kernels[i]?.step(w, grads[i] as Float32Array, 1e-3);
      });
      const t2 = performance.now();
      if (s > 3) {
        grad.push(t1 - t0);
        update.push(t2 - t1);
      }
    }
    // Kernel by kernel, on further steps (profiling itself slows dispatch, so the wall times above come from unprofiled steps).
    const reps = Math.max(3, Math.floor(steps / 4));
    for (let s = 0; s < reps; s++) {
      const info = await tf.profile(() => {
        run.gradients(1000 + s);
      });
      profiled++;
      for (const k of info.kernels) {
        // Leaf kernels only: a customGrad op (forward, softmaxCrossEntropy) is profiled as a whole around its own kernels.
        if (tf.getKernel(k.name, tf.getBackend()) === undefined) continue;
        const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        const shapes = k.inputShapes.map((sh) => `[${(sh ?? []).join('x')}]`).join(' ');
        const key = `${k.name} ${shapes}`;
        const row = perKernel.get(key) ?? { name: k.name, calls: 0, ms: 0, shapes };
        row.calls++;
        row.ms += ms;
        perKernel.set(key, row);
        kernelTotal += ms;
      }
    }
  } finally {
    run.dispose();
  }
  const g = median(grad);
  const u = median(update);
  const kPerStep = kernelTotal / profiled;
  const rows = [...perKernel.values()].sort((a, b) => b.ms - a.ms);
  const lines = [
    `${taskId}: step ${(g + u).toFixed(3)} ms (median of ${steps}) = gradients ${g.toFixed(3)} + rule update (${compiled.backend}, ${run.weights.reduce((n, w) => n + w.length, 0)} params) ${u.toFixed(3)}`,
    `  tfjs kernels inside the gradient call: ${kPerStep.toFixed(3)} ms in ${(rows.reduce((n, r) => n + r.calls, 0) / profiled).toFixed(0)} kernel calls; the rest, ${(g - kPerStep).toFixed(3)} ms, is dispatch, allocation and host copies`,
    '  kernel (input shapes)                                                   calls/step   ms/step   share of step',
    ...rows.map(
      (r) =>
        `  ${`${r.name} ${r.shapes}`.slice(0, 72).padEnd(72)}${(r.calls / profiled).toFixed(0).padStart(6)}${(r.ms / profiled).toFixed(3).padStart(10)}${`${((100 * r.ms) / profiled / (g + u)).toFixed(1)}%`.padStart(10)}`,
    ),
  ];
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const choice = await initTf();
  const args = process.argv.slice(2);
  const kernel = args.includes('--js') ? 'js' : 'wasm';
  const named = args.filter((a) => !a.startsWith('--'));
  const tasks = named.length > 0 ? named : ['mlp-mnist', 'convnet-fashion'];
  console.log(`tfjs backend: ${choice.name}; rule update: ${kernel} (--js: the fused JS kernel)`);
  for (const t of tasks) console.log(await profileTask(t, t.startsWith('conv') ? 12 : 60, kernel));
}
