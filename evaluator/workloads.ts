/**
 * The suite's models beyond the classifiers (evaluator/tasks.ts): a deep autoencoder on MNIST
 * and a character-level transformer language model on the Brown corpus. Both keep their
 * weights in Float32Arrays owned by the trainer (the rule updates them in place) and compute
 * gradients with tfjs on the wasm backend, through `matMul`/`batchMatMul` whose gradients avoid
 * tfjs-wasm's slow transposed products (evaluator/wasm-kernels.ts).
 *
 * Each reports a score in [0, 1] where the classifiers report an accuracy (higher is better: the
 * search's reward), and its own metric as the loss:
 *   - autoencoder: loss = reconstruction mean squared error per pixel; score = 1 - mse / mse0,
 *     the fraction of the pixels' variance explained (mse0: predicting the training set's mean
 *     image);
 *   - language model: loss = cross-entropy in bits per character; score = 1 - bpc / log2(V),
 *     the fraction of a uniform guess's bits saved.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { BatchOrder } from './batch-order.js';
import { batchPixels, type Dataset, IMAGE, type Split, TEXT_VOCAB } from './images.js';
import type { SplitName, TaskRun } from './task-run.js';

/** What the models here read of their task (a TaskSpec; not imported from tasks.ts, which imports this module). */
interface TaskSpec {
  readonly id: string;
  readonly batchSize: number;
  readonly valSize: number;
  readonly trainSubset?: number;
}
import { matMul } from './wasm-kernels.js';

/** One parameter tensor: its shape and how it starts. */
interface Param {
  readonly shape: readonly number[];
  /** Glorot-uniform with these fans, a constant, or normal with this std. */
  readonly init: { glorot: [number, number] } | { constant: number } | { normal: number };
}

function initWeights(params: readonly Param[], rng: seedrandom.PRNG): Float32Array[] {
  return params.map((p) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(size);
    const init = p.init;
    if ('glorot' in init) {
      const limit = Math.sqrt(6 / (init.glorot[0] + init.glorot[1]));
      for (let i = 0; i < size; i++) w[i] = (2 * rng() - 1) * limit;
    } else if ('constant' in init) w.fill(init.constant);
    else {
      for (let i = 0; i < size; i += 2) {
        // Box-Muller, seeded.
        const u = Math.max(rng(), 1e-12);
        const v = rng();
        const r = Math.sqrt(-2 * Math.log(u)) * init.normal;
        w[i] = r * Math.cos(2 * Math.PI * v);
        if (i + 1 < size) w[i + 1] = r * Math.sin(2 * Math.PI * v);
      }
    }
    return w;
  });
}

/** tf variables mirroring the weights, refreshed from them before each use. */
function mirror(params: readonly Param[], weights: readonly Float32Array[]) {
  const vars = params.map((p, i) =>
    tf.tidy(() => tf.variable(tf.tensor(weights[i] as Float32Array, [...p.shape]), true)),
  );
  const sync = () => {
    vars.forEach((v, i) => {
      tf.tidy(() => v.assign(tf.tensor(weights[i] as Float32Array, v.shape)));
    });
  };
  /** Loss and gradients of `loss` (built from the variables) as host arrays. */
  const grads = (loss: () => tf.Scalar): { loss: number; grads: Float32Array[] } => {
    sync();
    let out: { loss: number; grads: Float32Array[] } | undefined;
    // Results leave the tidy through a closure (returning typed arrays from tf.tidy walks them).
    tf.tidy(() => {
      const { value, grads: g } = tf.variableGrads(loss, vars);
      out = {
        loss: value.dataSync()[0] as number,
        grads: vars.map((v) => (g[v.name] as tf.Tensor).dataSync() as Float32Array),
      };
    });
    return out as { loss: number; grads: Float32Array[] };
  };
  return { vars, sync, grads, dispose: () => tf.dispose(vars) };
}

// ---------------------------------------------------------------------------------------
// Deep autoencoder (Hinton & Salakhutdinov 2006, scaled down).

/** Encoder widths from the input to the code; the decoder mirrors them. */
export const AE_LAYERS = [IMAGE, 128, 64, 16] as const;

function aeParams(): Param[] {
  const widths = [...AE_LAYERS, ...[...AE_LAYERS].reverse().slice(1)];
  const out: Param[] = [];
  for (let i = 0; i + 1 < widths.length; i++) {
    const [a, b] = [widths[i] as number, widths[i + 1] as number];
    out.push({ shape: [a, b], init: { glorot: [a, b] } }, { shape: [b], init: { constant: 0 } });
  }
  return out;
}

export function autoencoderParameterCount(): number {
  return aeParams().reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
}

/**
 * Logits of the reconstruction: tanh hidden layers, a linear code layer (as Hinton &
 * Salakhutdinov's), a sigmoid output (applied by the loss).
 */
function aeLogits(vars: readonly tf.Tensor[], x: tf.Tensor2D): tf.Tensor2D {
  const layers = vars.length / 2;
  const code = AE_LAYERS.length - 2; // index of the code layer
  let h: tf.Tensor2D = x;
  for (let l = 0; l < layers; l++) {
    const z = tf.add(matMul(h, vars[2 * l] as tf.Tensor2D), vars[2 * l + 1] as tf.Tensor) as tf.Tensor2D;
    h = l === layers - 1 || l === code ? z : (tf.tanh(z) as tf.Tensor2D);
  }
  return h;
}

/**
 * The reconstruction's sigmoid cross-entropy, summed over pixels and averaged over images
 * (softplus(z) - x z, stable), with its gradient written out: (sigmoid(z) - x) / images.
 */
export const sigmoidXent = tf.customGrad((...inputs: unknown[]) => {
  const [z, x, save] = inputs as [tf.Tensor2D, tf.Tensor2D, (ts: tf.Tensor[]) => void];
  save([z, x]);
  const n = z.shape[0];
  const value = tf.div(tf.sum(tf.sub(tf.softplus(z), tf.mul(x, z))), n) as tf.Scalar;
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sz, sx] = saved as [tf.Tensor2D, tf.Tensor2D];
    return [tf.mul(tf.div(tf.sub(tf.sigmoid(sz), sx), n), dy), tf.zerosLike(sx)];
  };
  return { value, gradFunc };
}) as (z: tf.Tensor2D, x: tf.Tensor2D) => tf.Scalar;

/** Mean squared error per pixel of predicting the training split's mean image, per dataset (cached). */
const meanImageMse = new WeakMap<Split, { mean: Float32Array; mse: Map<Split, number> }>();

function trivialMse(train: Split, split: Split, n: number): number {
  let entry = meanImageMse.get(train);
  if (entry === undefined) {
    const mean = new Float64Array(IMAGE);
    const m = Math.min(train.n, 10_000);
    for (let i = 0; i < m; i++)
      for (let p = 0; p < IMAGE; p++) mean[p] = (mean[p] as number) + (train.x[i * IMAGE + p] as number) / 255;
    entry = { mean: Float32Array.from(mean, (v) => v / m), mse: new Map() };
    meanImageMse.set(train, entry);
  }
  const hit = entry.mse.get(split);
  if (hit !== undefined) return hit;
  let s = 0;
  for (let i = 0; i < n; i++)
    for (let p = 0; p < IMAGE; p++) s += ((split.x[i * IMAGE + p] as number) / 255 - (entry.mean[p] as number)) ** 2;
  const mse = s / (n * IMAGE);
  entry.mse.set(split, mse);
  return mse;
}

/**
 * The autoencoder on MNIST: the training loss is the sigmoid cross-entropy of the reconstruction,
 * summed over pixels and averaged over images; evaluation reports the mean squared error per
 * pixel and the fraction of variance explained.
 */
export function autoencoderRun(spec: TaskSpec, seed: number, data: Dataset): TaskRun {
  const params = aeParams();
  const weights = initWeights(params, seedrandom.alea(`init:${spec.id}:${seed}`));
  const m = mirror(params, weights);
  const ntrain = Math.min(spec.trainSubset ?? data.train.n, data.train.n);
  const order = new BatchOrder(ntrain, seed);
  const bce = (x: tf.Tensor2D) => sigmoidXent(aeLogits(m.vars, x), x);
  const gradsOn = (split: Split, idx: ArrayLike<number>) =>
    m.grads(() => bce(tf.tensor2d(batchPixels(split, idx), [idx.length, IMAGE])));
  const fixed = Int32Array.from({ length: Math.min(spec.valSize, ntrain) }, (_, i) => i);
  const splitOf = (which: SplitName): { split: Split; n: number } => {
    if (which === 'train') return { split: data.train, n: Math.min(spec.valSize, ntrain) };
    if (which === 'val') return { split: data.val, n: Math.min(spec.valSize, data.val.n) };
    return { split: data.test, n: Math.min(spec.valSize, data.test.n) };
  };
  return {
    weights,
    gradients: (_step, batchSize = spec.batchSize) => gradsOn(data.train, order.next(batchSize)),
    fixedGradients: () => gradsOn(data.train, fixed),
    evaluate: (which) => {
      m.sync();
      const { split, n } = splitOf(which);
      let sse = 0;
      const chunk = 500;
      for (let start = 0; start < n; start += chunk) {
        const idx = Int32Array.from({ length: Math.min(chunk, n - start) }, (_, i) => start + i);
        tf.tidy(() => {
          const x = tf.tensor2d(batchPixels(split, idx), [idx.length, IMAGE]);
          sse += tf.sum(tf.squaredDifference(tf.sigmoid(aeLogits(m.vars, x)), x)).dataSync()[0] as number;
        });
      }
      const mse = sse / (n * IMAGE);
      const score = Number.isFinite(mse) ? Math.max(0, 1 - mse / trivialMse(data.train, split, n)) : 0;
      return { acc: score, loss: mse };
    },
    dispose: m.dispose,
  };
}

// ---------------------------------------------------------------------------------------
// Character-level transformer language model.

/** The transformer's shape: context, width (one attention head of this width), MLP width, blocks. */
export const CHAR_LM = { context: 32, width: 64, mlp: 128, blocks: 1 } as const;

/** Parameters per block: LN gain, bias; Wq, Wk, Wv, Wo; LN gain, bias; MLP in, bias, out, bias. */
const BLOCK_PARAMS = 12;

function lmParams(): Param[] {
  const { context: t, width: d, mlp, blocks } = CHAR_LM;
  const v = TEXT_VOCAB;
  const out: Param[] = [
    { shape: [v, d], init: { normal: 0.02 } },
    { shape: [t, d], init: { normal: 0.02 } },
  ];
  for (let b = 0; b < blocks; b++) {
    out.push(
      { shape: [d], init: { constant: 1 } },
      { shape: [d], init: { constant: 0 } },
      { shape: [d, d], init: { glorot: [d, d] } },
      { shape: [d, d], init: { glorot: [d, d] } },
      { shape: [d, d], init: { glorot: [d, d] } },
      { shape: [d, d], init: { glorot: [d, d] } },
      { shape: [d], init: { constant: 1 } },
      { shape: [d], init: { constant: 0 } },
      { shape: [d, mlp], init: { glorot: [d, mlp] } },
      { shape: [mlp], init: { constant: 0 } },
      { shape: [mlp, d], init: { glorot: [mlp, d] } },
      { shape: [d], init: { constant: 0 } },
    );
  }
  out.push(
    { shape: [d], init: { constant: 1 } },
    { shape: [d], init: { constant: 0 } },
    { shape: [d, v], init: { glorot: [d, v] } },
    { shape: [v], init: { constant: 0 } },
  );
  return out;
}

export function charLmParameterCount(): number {
  return lmParams().reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
}

/**
 * Batched a b^T (attention scores) and a b (attention-weighted values) for 3-D tensors, with
 * gradients written out as products with transpose flags: tfjs-wasm's Transpose kernel is slow
 * on 3-D tensors, and its batched product takes the flags without copying.
 */
export const bmmABt = tf.customGrad((...inputs: unknown[]) => {
  const [a, b, save] = inputs as [tf.Tensor3D, tf.Tensor3D, (ts: tf.Tensor[]) => void];
  save([a, b]);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
    // s = a b^T: da = ds b, db = ds^T a
    return [tf.matMul(dy as tf.Tensor3D, sb), tf.matMul(dy as tf.Tensor3D, sa, true, false)];
  };
  return { value: tf.matMul(a, b, false, true), gradFunc };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

export const bmmAB = tf.customGrad((...inputs: unknown[]) => {
  const [a, b, save] = inputs as [tf.Tensor3D, tf.Tensor3D, (ts: tf.Tensor[]) => void];
  save([a, b]);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sa, sb] = saved as [tf.Tensor3D, tf.Tensor3D];
    // o = a b: da = do b^T, db = a^T do
    return [tf.matMul(dy as tf.Tensor3D, sb, false, true), tf.matMul(sa, dy as tf.Tensor3D, true, false)];
  };
  return { value: tf.matMul(a, b), gradFunc };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

function layerNorm(x: tf.Tensor2D, gain: tf.Tensor, bias: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, 1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), gain), bias) as tf.Tensor2D;
}

/** Next-character logits [n * context, V] for n windows of `context` characters (ids, as one-hot rows). */
function lmLogits(vars: readonly tf.Tensor[], ids: Int32Array, n: number, mask: tf.Tensor): tf.Tensor2D {
  const { context: t, width: d, blocks } = CHAR_LM;
  const at = (i: number) => vars[i] as tf.Tensor;
  const w = (i: number) => vars[i] as tf.Tensor2D;
  const rows = n * t;
  // Embedding as a one-hot product (its gradient is a plain matMul), plus positions.
  const onehot = tf.oneHot(tf.tensor1d(ids, 'int32'), TEXT_VOCAB).toFloat() as tf.Tensor2D;
  let x = tf.reshape(tf.add(tf.reshape(matMul(onehot, w(0)), [n, t, d]), at(1)), [rows, d]) as tf.Tensor2D;
  const scale = 1 / Math.sqrt(d);
  for (let b = 0; b < blocks; b++) {
    const p = 2 + BLOCK_PARAMS * b;
    const h = layerNorm(x, at(p), at(p + 1));
    const view = (m: tf.Tensor2D) => tf.reshape(m, [n, t, d]) as tf.Tensor3D;
    const q = view(matMul(h, w(p + 2)));
    const k = view(matMul(h, w(p + 3)));
    const v = view(matMul(h, w(p + 4)));
    const scores = tf.add(tf.mul(bmmABt(q, k), scale), mask);
    const att = tf.reshape(bmmAB(tf.softmax(scores) as tf.Tensor3D, v), [rows, d]) as tf.Tensor2D;
    x = tf.add(x, matMul(att, w(p + 5))) as tf.Tensor2D;
    const h2 = layerNorm(x, at(p + 6), at(p + 7));
    const u = tf.relu(tf.add(matMul(h2, w(p + 8)), at(p + 9))) as tf.Tensor2D;
    x = tf.add(x, tf.add(matMul(u, w(p + 10)), at(p + 11))) as tf.Tensor2D;
  }
  const f = 2 + BLOCK_PARAMS * blocks;
  const hf = layerNorm(x, at(f), at(f + 1));
  return tf.add(matMul(hf, w(f + 2)), at(f + 3)) as tf.Tensor2D;
}

/**
 * Mean softmax cross-entropy (nats) of logits [rows, V] against one-hot targets, with its
 * gradient written out ((softmax - onehot) / rows): fewer kernels than tfjs's tape through
 * logSumExp (whose max takes an Equal mask).
 */
export const softmaxXent = tf.customGrad((...inputs: unknown[]) => {
  const [logits, onehot, save] = inputs as [tf.Tensor2D, tf.Tensor2D, (ts: tf.Tensor[]) => void];
  const rows = logits.shape[0];
  const logp = tf.sub(logits, tf.logSumExp(logits, 1, true));
  save([logp, onehot]);
  const value = tf.neg(tf.div(tf.sum(tf.mul(onehot, logp)), rows)) as tf.Scalar;
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [lp, oh] = saved as [tf.Tensor2D, tf.Tensor2D];
    return [tf.mul(tf.div(tf.sub(tf.exp(lp), oh), rows), dy), tf.zerosLike(oh)];
  };
  return { value, gradFunc };
}) as (logits: tf.Tensor2D, onehot: tf.Tensor2D) => tf.Scalar;

/** Mean cross-entropy (nats) of next-character logits against targets. */
function lmLoss(logits: tf.Tensor2D, targets: Int32Array): tf.Scalar {
  return softmaxXent(logits, tf.oneHot(tf.tensor1d(targets, 'int32'), TEXT_VOCAB).toFloat() as tf.Tensor2D);
}

/**
 * The character-level language model on the Brown corpus: windows of `context` + 1 characters
 * at seeded random offsets of the training text (inputs and next-character targets); validation
 * and test on fixed, evenly spaced windows of their splits (`valSize` windows).
 */
export function charLmRun(spec: TaskSpec, seed: number, data: Dataset): TaskRun {
  const { context: t } = CHAR_LM;
  const params = lmParams();
  const weights = initWeights(params, seedrandom.alea(`init:${spec.id}:${seed}`));
  const m = mirror(params, weights);
  const rng = seedrandom.alea(`data:${seed}`);
  const ntrain = Math.min(spec.trainSubset ?? data.train.n, data.train.n);
  const maskData = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) maskData[i * t + j] = -1e9;
  const mask = tf.tensor2d(maskData, [t, t]);
  const windows = (split: Split, starts: ArrayLike<number>) => {
    const n = starts.length;
    const ids = new Int32Array(n * t);
    const targets = new Int32Array(n * t);
    for (let w = 0; w < n; w++) {
      const s = starts[w] as number;
      for (let k = 0; k < t; k++) {
        ids[w * t + k] = split.x[s + k] as number;
        targets[w * t + k] = split.x[s + k + 1] as number;
      }
    }
    return { ids, targets, n };
  };
  const evenly = (split: Split, n: number) => {
    const count = Math.max(1, Math.min(n, Math.floor((split.n - t - 1) / t)));
    const stride = Math.floor((split.n - t - 1) / count);
    return Int32Array.from({ length: count }, (_, i) => i * stride);
  };
  const gradsOn = (split: Split, starts: ArrayLike<number>) => {
    const w = windows(split, starts);
    return m.grads(() => lmLoss(lmLogits(m.vars, w.ids, w.n, mask), w.targets));
  };
  const fixedStarts = evenly({ ...data.train, n: ntrain }, Math.min(spec.valSize, 256));
  const bitsPerUniform = Math.log2(TEXT_VOCAB);
  return {
    weights,
    gradients: (_step, batchSize = spec.batchSize) =>
      gradsOn(
        data.train,
        Int32Array.from({ length: batchSize }, () => Math.floor(rng() * (ntrain - t - 1))),
      ),
    fixedGradients: () => gradsOn(data.train, fixedStarts),
    evaluate: (which) => {
      m.sync();
      const split = which === 'train' ? { ...data.train, n: ntrain } : which === 'val' ? data.val : data.test;
      const starts = evenly(split, spec.valSize);
      let nats = 0;
      const chunk = 32;
      for (let s = 0; s < starts.length; s += chunk) {
        const w = windows(split, starts.subarray(s, Math.min(starts.length, s + chunk)));
        tf.tidy(() => {
          nats += (lmLoss(lmLogits(m.vars, w.ids, w.n, mask), w.targets).dataSync()[0] as number) * w.n;
        });
      }
      const bpc = nats / starts.length / Math.LN2;
      const score = Number.isFinite(bpc) ? Math.max(0, 1 - bpc / bitsPerUniform) : 0;
      return { acc: score, loss: bpc };
    },
    dispose: () => {
      m.dispose();
      mask.dispose();
    },
  };
}
