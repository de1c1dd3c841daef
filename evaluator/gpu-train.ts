/**
 * Children on the GPU (`nos eval|search --device webgpu`): the child's forward and backward
 * passes on tfjs-webgpu, and the rule's update as its WGSL kernel (dsl/compile/webgpu.ts) on the
 * same GPUDevice, writing the weights' tfjs buffers in place. Weights, gradients and the rule's
 * state never leave the GPU. Nothing is read back per step: tfjs-webgpu's synchronous reads
 * need OffscreenCanvas, which Node lacks, and a read per step would stall the GPU anyway. Each
 * step leaves its loss and two flags (weights finite, weights changed) as a tensor; every
 * `READ_EVERY` steps one asynchronous read fetches them and the same bookkeeping as the CPU
 * loop (`RunLedger`) replays them, so a run stops with the CPU's status at the same step (the
 * GPU has then run up to READ_EVERY - 1 steps past it, which change nothing reported).
 *
 * Where it runs: in one GPU worker thread (evaluator/gpu-worker.ts, driven by `GpuEvaluator` in
 * gpu-pool.ts), one evaluation at a time. Not the main thread: tfjs has one backend per thread,
 * and the main thread's is the wasm one the RL controller's network runs on (tfjs-webgpu cannot
 * read synchronously, and switching backends under the controller would move its tensors). Not
 * several workers: a GPU is one device, evaluations on it do not run faster side by side, the
 * thread only records commands and waits, and each worker would need its own Dawn instance and
 * device (webgpu.ts: one instance, alive until its device is destroyed).
 *
 * Classifier tasks only (MLP, softmax regression, ConvNet): the analytic tasks are a few
 * numbers, and learned optimizers and `--analyze` run on the CPU.
 */
import * as tf from '@tensorflow/tfjs';
import { closeWebGpu, type Gpu, initWebGpu, WgslKernel } from '../dsl/compile/webgpu.js';
import { lowerRule, paramValues } from '../dsl/lower.js';
import { isLearnedRule } from '../learned/kernel.js';
import { importOptional } from '../util/optional-deps.js';
import { batchPixels, type Dataset, IMAGE, type Split } from './data.js';
import {
  BatchOrder,
  denseGradients,
  forward,
  initialWeights,
  labelsOf,
  type ModelKind,
  type SplitName,
  type TaskSpec,
} from './tasks.js';
import {
  type EvalOptions,
  type EvalResult,
  evaluateRuleAsync,
  RunLedger,
  StepPlan,
  type TrainCall,
  type TrainResult,
} from './train.js';

/** The devices a child can train on: `cpu` is the wasm path. */
export const DEVICES = ['cpu', 'webgpu'] as const;
export type Device = (typeof DEVICES)[number];

/** Models with a GPU path. */
export const GPU_MODELS: readonly ModelKind[] = ['mlp', 'softmax', 'convnet'];

/** Steps between reads of the losses and flags. */
export const READ_EVERY = 16;

/** What a GPU evaluation cannot do: the caller's error (a CLI flag, a task), said plainly. */
export class GpuUnsupportedError extends Error {
  override readonly name = 'GpuUnsupportedError';
}

/** Why a task (with a learned optimizer, or analysis) cannot train on the GPU; undefined when it can. */
export function gpuProblem(
  task: Pick<TaskSpec, 'id' | 'model'>,
  what: { readonly learned?: boolean; readonly analyze?: boolean } = {},
): string | undefined {
  if (!GPU_MODELS.includes(task.model))
    return `task ${task.id} (${task.model}) has no GPU path: --device webgpu trains ${GPU_MODELS.join(', ')} models`;
  if (what.learned) return 'a learned optimizer trains on the CPU only (--device cpu)';
  if (what.analyze) return '--analyze runs on the CPU only (--device cpu)';
  return undefined;
}

/** The parts of tfjs-webgpu's backend we drive: its device, its tensors' buffers, its queue. */
interface WebGpuBackend {
  readonly device: GPUDevice;
  readonly tensorMap: { get(dataId: object): { resource?: unknown } };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

interface Session {
  readonly gpu: Gpu;
  readonly backend: WebGpuBackend;
}

let session: Promise<Session> | undefined;

/**
 * tfjs-webgpu on the process's WebGPU device (the WGSL kernels' own), made the tfjs backend of
 * this thread. The package registers a factory of its own (its own device) when it loads with
 * `navigator.gpu` set; ours replaces it, so there is one device.
 */
export function initGpuTraining(): Promise<Session> {
  session ??= (async () => {
    const gpu = await initWebGpu();
    const mod = await importOptional<{
      WebGPUBackend: new (device: GPUDevice, info?: GPUAdapterInfo) => tf.KernelBackend;
    }>('@tensorflow/tfjs-backend-webgpu');
    if (tf.findBackendFactory('webgpu') !== null) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new mod.WebGPUBackend(gpu.device, gpu.info), 0);
    // Small ops stay on the GPU too (tfjs would run them on the CPU when their inputs are there).
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not start its WebGPU backend');
    await tf.ready();
    return { gpu, backend: tf.backend() as unknown as WebGpuBackend };
  })();
  return session;
}

/** Release tfjs-webgpu's buffers, then the device (webgpu.ts: in that order, before exit). */
export async function closeGpuTraining(): Promise<void> {
  const pending = session;
  session = undefined;
  if (pending !== undefined) {
    try {
      await pending;
      tf.removeBackend('webgpu');
    } catch {
      // it never started: nothing to release
    }
  }
  await closeWebGpu();
}

/** The GPU buffer behind a tensor (uploading it first if its values are on the host). */
function bufferOf(backend: WebGpuBackend, t: tf.Tensor): GPUBuffer {
  backend.uploadToGPU(t.dataId);
  const r = backend.tensorMap.get(t.dataId).resource;
  if (!(r instanceof GPUBuffer)) throw new Error('a tfjs-webgpu tensor without a GPU buffer');
  return r;
}

/** A classifier on tfjs-webgpu: the same weights, batches and losses as tasks.ts's CPU run. */
class GpuClassifier {
  readonly vars: tf.Variable[];
  private readonly order: BatchOrder;

  constructor(
    private readonly spec: TaskSpec,
    seed: number,
    private readonly data: Dataset,
    backend: WebGpuBackend,
  ) {
    const { shapes, weights } = initialWeights(spec, seed);
    this.vars = shapes.map((shape, i) =>
      tf.tidy(() => tf.variable(tf.tensor(weights[i] as Float32Array, shape), true)),
    );
    for (const v of this.vars) bufferOf(backend, v);
    // A fixed subset (convnet-fashion-2ep): batches from its first examples only, as on the CPU.
    this.order = new BatchOrder(Math.min(spec.trainSubset ?? data.train.n, data.train.n), seed);
  }

  private static lossOf(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
    return tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), logits) as tf.Scalar;
  }

  private inputs(split: Split, idx: ArrayLike<number>): { x: tf.Tensor2D; labels: tf.Tensor1D } {
    return {
      x: tf.tensor2d(batchPixels(split, idx), [idx.length, IMAGE]),
      labels: tf.tensor1d(labelsOf(split, idx), 'int32'),
    };
  }

  /** Loss and gradients on the next training batch, as tensors (the caller disposes them). */
  gradients(batchSize: number): { loss: tf.Scalar; grads: tf.Tensor[] } {
    const idx = this.order.next(batchSize);
    return tf.tidy(() => {
      const { x, labels } = this.inputs(this.data.train, idx);
      const model = this.spec.model;
      if (model === 'mlp' || model === 'softmax')
        return denseGradients(model, this.vars, x, tf.oneHot(labels, 10) as tf.Tensor2D);
      const { value, grads } = tf.variableGrads(
        () => GpuClassifier.lossOf(forward(model, this.vars, x), labels),
        this.vars,
      );
      return { loss: value, grads: this.vars.map((v) => grads[v.name] as tf.Tensor) };
    });
  }

  /** Accuracy and mean loss on a split (the same examples as the CPU run), in one read. */
  async evaluate(which: SplitName): Promise<{ acc: number; loss: number }> {
    const split = which === 'val' ? this.data.val : which === 'test' ? this.data.test : this.data.train;
    const n = which === 'test' ? split.n : Math.min(this.spec.valSize, split.n);
    // Chunks of 2,000 examples (a few MB of pixels): fewer, larger dispatches than the CPU's 500.
    const chunk = 2000;
    const sums: tf.Tensor[] = [];
    for (let start = 0; start < n; start += chunk) {
      const idx = Int32Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
      sums.push(
        tf.tidy(() => {
          const { x, labels } = this.inputs(split, idx);
          const logits = forward(this.spec.model, this.vars, x);
          const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
          return tf.stack([correct, tf.mul(GpuClassifier.lossOf(logits, labels), idx.length)]);
        }),
      );
    }
    const total = tf.tidy(() => tf.sum(tf.stack(sums), 0));
    const [correct, lossSum] = (await total.data()) as Float32Array;
    tf.dispose([total, ...sums]);
    return { acc: (correct as number) / n, loss: (lossSum as number) / n };
  }

  dispose(): void {
    tf.dispose(this.vars);
  }
}

/** One training run on the GPU: `trainOnce`'s contract, asynchronously. */
export async function trainOnceGpu(call: TrainCall): Promise<TrainResult> {
  const { rule, task, data, lr, steps, options } = call;
  if (isLearnedRule(rule)) throw new GpuUnsupportedError('a learned optimizer trains on the CPU only');
  const problem = gpuProblem(task, { analyze: options.analyze === true });
  if (problem !== undefined) throw new GpuUnsupportedError(problem);
  if (data === undefined) throw new Error(`task ${task.id} needs the ${task.dataset} dataset`);
  const { gpu, backend } = await initGpuTraining();
  const t0 = performance.now();
  const plan = new StepPlan(rule, task, lr, steps, options);
  const wd = options.weightDecay ?? 0;
  const program = lowerRule(rule);
  const values = paramValues(rule, plan.params);
  const run = new GpuClassifier(task, options.seed, data, backend);
  const kernels: WgslKernel[] = [];
  const ledger = new RunLedger(steps);
  /** Per step not yet read: [loss, weights finite (1/0), weights changed (1/0, -1 unwatched)], and whether it was late. */
  let pending: { step: number; flags: tf.Tensor; late: boolean }[] = [];
  let stopped = false;
  const read = async () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    const all = tf.stack(batch.map((p) => p.flags));
    const v = (await all.data()) as Float32Array;
    tf.dispose([all, ...batch.map((p) => p.flags)]);
    for (const [k, p] of batch.entries()) {
      if (stopped) break;
      const changed = v[3 * k + 2] as number;
      stopped =
        !ledger.loss(p.step, v[3 * k] as number) ||
        !ledger.updated(p.step, changed < 0 ? undefined : changed === 1, v[3 * k + 1] === 1, p.late);
    }
  };
  try {
    for (const [i, v] of run.vars.entries())
      kernels.push(await WgslKernel.create(gpu, program, values, v.size, options.seed * 1000 + i));
    for (let step = 1; step <= steps && !stopped; step++) {
      const { batch, lr: lrStep } = plan.next(step);
      const { loss, grads } = run.gradients(batch);
      // What the CPU loop checks: did the first updates change a weight (until one did)?
      const watch = step <= 3 ? run.vars.map((v) => tf.mul(v, 1)) : undefined;
      const decay = wd !== 0 ? run.vars.map((v) => tf.mul(v, lrStep * wd)) : undefined;
      // tfjs records commands and submits them later: submit what computes the gradients (and
      // the copies above) first, then the rule's update, on the same queue.
      backend.ensureCommandEncoderReady();
      backend.endComputePassEncoder();
      backend.submitQueue();
      const enc = gpu.device.createCommandEncoder();
      run.vars.forEach((v, i) => {
        (kernels[i] as WgslKernel).record(enc, bufferOf(backend, v), bufferOf(backend, grads[i] as tf.Tensor), lrStep);
      });
      gpu.device.queue.submit([enc.finish()]);
      if (decay) {
        run.vars.forEach((v, i) => {
          tf.tidy(() => v.assign(tf.sub(v, decay[i] as tf.Tensor)));
        });
      }
      const flags = tf.tidy(() => {
        const finite = tf.all(tf.stack(run.vars.map((v) => tf.all(tf.isFinite(v)))));
        const changed = watch
          ? tf.cast(tf.any(tf.stack(run.vars.map((v, i) => tf.any(tf.notEqual(v, watch[i] as tf.Tensor))))), 'float32')
          : tf.scalar(-1);
        return tf.stack([loss, tf.cast(finite, 'float32'), changed]);
      });
      tf.dispose([loss, ...grads, ...(watch ?? []), ...(decay ?? [])]);
      const late = performance.now() > options.deadline;
      pending.push({ step, flags, late });
      if (late || pending.length >= READ_EVERY || step === 3 || step === steps) await read();
      if (plan.spent()) break;
    }
    await read();
    const ok = ledger.status === 'ok';
    const val = ok ? await run.evaluate('val') : { acc: 0, loss: Number.NaN };
    const testAcc = ok && options.test ? (await run.evaluate('test')).acc : null;
    return { ...ledger.result(lr, val, (performance.now() - t0) / 1000, 'wgsl'), testAcc };
  } finally {
    for (const p of pending) p.flags.dispose();
    for (const k of kernels) k.dispose();
    run.dispose();
  }
}

/** The whole protocol (grid, then the full run) with every run on the GPU. */
export function evaluateRuleGpu(
  ruleText: string,
  task: TaskSpec,
  data: Dataset | undefined,
  options: EvalOptions = {},
): Promise<EvalResult> {
  return evaluateRuleAsync(ruleText, task, data, options, trainOnceGpu);
}
