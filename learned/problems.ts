/**
 * The problems a learned optimizer is meta-trained on, each a family drawn by a seeded RNG:
 *   - `quadratic`: the paper's random quadratics f(θ) = ||Wθ - y||², W (10x10) and y (10) with
 *     entries ~ N(0, 1), θ0 ~ N(0, 0.01²); a batch of QUADRATIC_BATCH of them is one problem
 *     (one vector of QUADRATIC_BATCH x 10 coordinates), the loss their mean.
 *   - `mlp-mnist`: a smaller MLP than the evaluation task's: 196-20-10, ReLU, Glorot-uniform
 *     init, on MNIST pooled to 14x14 (2x2 means), minibatches of 64 drawn with replacement.
 *     Meta-training backpropagates through every step of every coordinate: 4,150 coordinates
 *     instead of 50,890 keep it to about 1 s and 0.8 GB per 20-step meta-step on one CPU core
 *     with tfjs-wasm (the 784-20-10 MLP took 9 s and 2.4 GB on a busy machine). See README.
 *
 * `evaluate` gives the loss at θ as a tensor that is differentiable in θ (the meta-loss), and
 * the gradient at θ's current values as plain numbers: the optimizer's input, a constant, so no
 * second derivatives flow (as in the paper).
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';

export const QUADRATIC_DIM = 10;
export const QUADRATIC_BATCH = 128;
export const MLP_HIDDEN = 20;
export const MLP_BATCH = 64;
/** The meta-training MLP reads 14x14 images (2x2 mean pooling of the 28x28 ones). */
const SIDE = 14;
const PIXELS = SIDE * SIDE;
const CLASSES = 10;

/** Training images as plain data: the CLI adapts the evaluator's datasets to this. */
export interface ImageSource {
  readonly n: number;
  /** Pixels in [0, 1] of examples idx, rows of 784, and their labels 0..9. */
  batch(idx: ArrayLike<number>): { x: Float32Array; y: Int32Array };
}

export interface Problem {
  /** Coordinates of θ. */
  readonly size: number;
  /** θ0 (a fresh copy per call). */
  initial(): Float32Array;
  /** Loss at θ on step t's data (a scalar tensor, differentiable in θ) and the gradient's values at `values` (= θ). */
  evaluate(theta: tf.Tensor1D, values: Float32Array, t: number): { loss: tf.Scalar; grad: Float32Array };
  dispose(): void;
}

export type MetaTaskId = 'quadratic' | 'mlp-mnist';
export const META_TASKS: readonly MetaTaskId[] = ['quadratic', 'mlp-mnist'];

/** N(0, 1) by Box-Muller from a uniform RNG. */
export function normal(rng: () => number): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** A batch of `count` random quadratics drawn by `rng` (count x 10 coordinates). */
export function quadraticProblem(rng: () => number, count = QUADRATIC_BATCH): Problem {
  const d = QUADRATIC_DIM;
  const W = Float32Array.from({ length: count * d * d }, () => normal(rng));
  const y = Float32Array.from({ length: count * d }, () => normal(rng));
  const theta0 = Float32Array.from({ length: count * d }, () => 0.01 * normal(rng));
  const Wt = tf.tensor3d(W, [count, d, d]);
  const yt = tf.tensor3d(y, [count, d, 1]);
  return {
    size: count * d,
    initial: () => theta0.slice(),
    evaluate(theta, values) {
      const r = tf.sub(tf.matMul(Wt, tf.reshape(theta, [count, d, 1])), yt);
      const loss = tf.div(tf.sum(tf.square(r)), count) as tf.Scalar;
      return { loss, grad: quadraticGradient(W, y, values, count) };
    },
    dispose: () => tf.dispose([Wt, yt]),
  };
}

/** Each problem's own gradient 2 Wᵀ(Wθ - y) (not the batch mean's, which is 1/count of it). */
export function quadraticGradient(W: Float32Array, y: Float32Array, theta: Float32Array, count: number): Float32Array {
  const d = QUADRATIC_DIM;
  const g = new Float32Array(count * d);
  const r = new Float64Array(d);
  for (let b = 0; b < count; b++) {
    const wb = b * d * d;
    for (let i = 0; i < d; i++) {
      let s = -(y[b * d + i] as number);
      for (let k = 0; k < d; k++) s += (W[wb + i * d + k] as number) * (theta[b * d + k] as number);
      r[i] = s;
    }
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += (W[wb + i * d + k] as number) * (r[i] as number);
      g[b * d + k] = 2 * s;
    }
  }
  return g;
}

/** The loss ||Wθ - y||² averaged over the batch, in float64 (for evaluation). */
export function quadraticLoss(W: Float32Array, y: Float32Array, theta: Float32Array, count: number): number {
  const d = QUADRATIC_DIM;
  let total = 0;
  for (let b = 0; b < count; b++) {
    for (let i = 0; i < d; i++) {
      let s = -(y[b * d + i] as number);
      for (let k = 0; k < d; k++) s += (W[b * d * d + i * d + k] as number) * (theta[b * d + k] as number);
      total += s * s;
    }
  }
  return total / count;
}

/** 28x28 images (rows of 784) to 14x14 by 2x2 means. */
export function pool2x2(x: Float32Array, count: number): Float32Array {
  const out = new Float32Array(count * PIXELS);
  for (let b = 0; b < count; b++) {
    for (let r = 0; r < SIDE; r++) {
      for (let c = 0; c < SIDE; c++) {
        const i = b * 784 + 2 * r * 28 + 2 * c;
        out[b * PIXELS + r * SIDE + c] =
          0.25 * ((x[i] as number) + (x[i + 1] as number) + (x[i + 28] as number) + (x[i + 29] as number));
      }
    }
  }
  return out;
}

/** Sizes of the meta-training MLP's parameters, flattened in this order: W1, b1, W2, b2. */
export const MLP_SHAPES: readonly (readonly number[])[] = [
  [PIXELS, MLP_HIDDEN],
  [MLP_HIDDEN],
  [MLP_HIDDEN, CLASSES],
  [CLASSES],
];

/** A fresh 784-20-10 ReLU MLP on `data`, init and batches drawn by `rng`. */
export function mlpProblem(rng: () => number, data: ImageSource): Problem {
  const sizes = MLP_SHAPES.map((s) => s.reduce((a, b) => a * b, 1));
  const size = sizes.reduce((a, b) => a + b, 0);
  const theta0 = new Float32Array(size);
  const l1 = Math.sqrt(6 / (PIXELS + MLP_HIDDEN));
  const l2 = Math.sqrt(6 / (MLP_HIDDEN + CLASSES));
  const [s0, s1, s2] = sizes as [number, number, number, number];
  for (let i = 0; i < s0; i++) theta0[i] = (2 * rng() - 1) * l1;
  for (let i = 0; i < s2; i++) theta0[s0 + s1 + i] = (2 * rng() - 1) * l2;
  // Step t's batch is drawn from its own stream (seeded by the problem's draw and t), so a step's
  // data never depends on the order of calls; batches are kept (tf.keep) across meta-steps.
  const batchSeed = rng();
  const batches = new Map<number, { x: tf.Tensor2D; onehot: tf.Tensor2D }>();
  const batchAt = (t: number) => {
    let b = batches.get(t);
    if (b === undefined) {
      const brng = seedrandom.alea(`${batchSeed}:${t}`);
      const idx = Int32Array.from({ length: MLP_BATCH }, () => Math.floor(brng() * data.n));
      const { x: full, y } = data.batch(idx);
      const x = pool2x2(full, MLP_BATCH);
      b = tf.tidy(() => ({
        x: tf.keep(tf.tensor2d(x, [MLP_BATCH, PIXELS])),
        onehot: tf.keep(tf.oneHot(tf.tensor1d(y, 'int32'), CLASSES) as tf.Tensor2D),
      }));
      for (const [k, v] of batches) {
        if (k < t - 1) {
          tf.dispose([v.x, v.onehot]);
          batches.delete(k);
        }
      }
      batches.set(t, b);
    }
    return b;
  };
  const unpack = (theta: tf.Tensor1D): tf.Tensor[] => {
    let at = 0;
    return MLP_SHAPES.map((shape, i) => {
      const t = tf.reshape(tf.slice(theta, [at], [sizes[i] as number]), [...shape]);
      at += sizes[i] as number;
      return t;
    });
  };
  return {
    size,
    initial: () => theta0.slice(),
    evaluate(theta, values, t) {
      const { x, onehot } = batchAt(t);
      const [W1, b1, W2, b2] = unpack(theta) as [tf.Tensor2D, tf.Tensor, tf.Tensor2D, tf.Tensor];
      const logits = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, W1), b1)) as tf.Tensor2D, W2), b2) as tf.Tensor2D;
      const loss = tf.losses.softmaxCrossEntropy(onehot, logits) as tf.Scalar;
      // The gradient's values, by explicit backpropagation on a detached copy of θ.
      const grad = tf.tidy(() => {
        const [V1, c1, V2, c2] = unpack(tf.tensor1d(values)) as [tf.Tensor2D, tf.Tensor, tf.Tensor2D, tf.Tensor];
        const z1 = tf.add(tf.matMul(x, V1), c1) as tf.Tensor2D;
        const h = tf.relu(z1) as tf.Tensor2D;
        const out = tf.add(tf.matMul(h, V2), c2) as tf.Tensor2D;
        const dlogits = tf.div(tf.sub(tf.softmax(out), onehot), MLP_BATCH) as tf.Tensor2D;
        const dz1 = tf.mul(tf.matMul(dlogits, tf.transpose(V2)), tf.step(z1)) as tf.Tensor2D;
        const parts = [
          tf.matMul(tf.transpose(x), dz1),
          tf.sum(dz1, 0),
          tf.matMul(tf.transpose(h), dlogits),
          tf.sum(dlogits, 0),
        ];
        return tf.concat(parts.map((p) => tf.reshape(p, [-1])));
      });
      const g = grad.dataSync() as Float32Array;
      grad.dispose();
      return { loss, grad: g };
    },
    dispose: () => {
      for (const v of batches.values()) tf.dispose([v.x, v.onehot]);
      batches.clear();
    },
  };
}
