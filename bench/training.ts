/** ms per training step of the child models (gradients + Adam update), next to PyTorch. */
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileRule } from '../dsl/compile/index.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { hasVulkanDriver } from '../dsl/compile/webgpu.js';
import { library } from '../dsl/index.js';
import { loadDataset } from '../evaluator/data.js';
import { closeGpuTraining, initGpuTraining, trainOnceGpu } from '../evaluator/gpu-train.js';
import { createRun, findTask } from '../evaluator/tasks.js';

export interface TrainingFigures {
  /** gpuMsPerStep: children on a GPU; null (with a note) without a hardware GPU adapter. */
  mlp: { msPerStep: number; torchMsPerStep: number | null; gpuMsPerStep: number | null };
  convnet: { msPerStep: number; torchMsPerStep: number | null; gpuMsPerStep: number | null };
  torchVersion: string | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function stepMs(taskId: string, steps: number): number {
  const task = findTask(taskId);
  if (task === undefined || task.dataset === null) throw new Error(`no task ${taskId}`);
  const run = createRun(task, 0, loadDataset(task.dataset));
  const compiled = compileRule(library().get('adam') as NonNullable<ReturnType<ReturnType<typeof library>['get']>>, {
    backend: 'wasm',
  });
  const kernels = run.weights.map((w) => compiled.create(w.length));
  const times: number[] = [];
  try {
    for (let s = 1; s <= steps + 3; s++) {
      const t0 = performance.now();
      const { grads } = run.gradients(s);
      run.weights.forEach((w, i) => {
        kernels[i]?.step(w, grads[i] as Float32Array, 1e-3);
      });
      if (s > 3) times.push(performance.now() - t0);
    }
  } finally {
    run.dispose();
  }
  return median(times);
}

export function torchPeer(notes: string[]): { mlp: number; convnet: number; torch: string } | null {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'torch_step.py');
  const alt = join(dirname(fileURLToPath(import.meta.url)), 'torch_step.py');
  const path = existsSync(script) ? script : alt;
  try {
    // NOS_PYTHON: a Python with torch elsewhere than Debian's (the GPU machine's, bench/gpu-machine.sh).
    const out = execFileSync(process.env.NOS_PYTHON ?? '/usr/bin/python3', [path], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    return JSON.parse(out) as { mlp: number; convnet: number; torch: string };
  } catch (e) {
    notes.push(
      `training: PyTorch peer not measured (Debian python3-torch at /usr/bin/python3, or NOS_PYTHON, is needed): ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
    );
    return null;
  }
}

/**
 * ms per child training step on the GPU path (tfjs-webgpu and the WGSL Adam, with its per-16-step
 * reads of the losses): two runs of `trainOnceGpu`, `long` and `short` steps, their time
 * difference per step, so the fixed costs (kernels, validation on 100 images) cancel.
 */
export async function gpuStepMs(taskId: string, short: number, long: number): Promise<number> {
  const task = findTask(taskId);
  if (task === undefined || task.dataset === null) throw new Error(`no task ${taskId}`);
  const spec = { ...task, valSize: 100 };
  const data = loadDataset(task.dataset);
  const rule = library().get('adam') as NonNullable<ReturnType<ReturnType<typeof library>['get']>>;
  const time = async (steps: number) => {
    const t0 = performance.now();
    await trainOnceGpu({
      rule,
      task: spec,
      data,
      lr: 1e-3,
      steps,
      options: { seed: 0, deadline: Number.POSITIVE_INFINITY },
    });
    return performance.now() - t0;
  };
  await time(short); // compiles every pipeline
  const a = await time(short);
  const b = await time(long);
  return (b - a) / (long - short);
}

export async function benchTraining(notes: string[], log: (s: string) => void = () => {}): Promise<TrainingFigures> {
  const cpu = await initTf();
  const mlp = stepMs('mlp-mnist', 60);
  log(`training: mlp ${mlp.toFixed(2)} ms/step`);
  const convnet = stepMs('convnet-fashion', 12);
  log(`training: convnet ${convnet.toFixed(1)} ms/step`);
  const peer = torchPeer(notes);
  let gpu: { mlp: number; convnet: number } | null = null;
  if (!hasVulkanDriver())
    notes.push('training: gpuMsPerStep not measured: no Vulkan driver, so no hardware WebGPU adapter');
  else {
    try {
      const { gpu: device } = await initGpuTraining();
      if (device.software) throw new Error(`the only WebGPU adapter is a software one (${device.adapter})`);
      const mlpGpu = await gpuStepMs('mlp-mnist', 20, 120);
      log(`training: mlp on ${device.adapter}: ${mlpGpu.toFixed(2)} ms/step`);
      const convGpu = await gpuStepMs('convnet-fashion', 10, 60);
      log(`training: convnet on the GPU: ${convGpu.toFixed(2)} ms/step`);
      gpu = { mlp: mlpGpu, convnet: convGpu };
    } catch (e) {
      notes.push(`training: gpuMsPerStep not measured: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      await closeGpuTraining();
      await tf.setBackend(cpu.name);
    }
  }
  return {
    mlp: { msPerStep: mlp, torchMsPerStep: peer?.mlp ?? null, gpuMsPerStep: gpu?.mlp ?? null },
    convnet: { msPerStep: convnet, torchMsPerStep: peer?.convnet ?? null, gpuMsPerStep: gpu?.convnet ?? null },
    torchVersion: peer?.torch ?? null,
  };
}
