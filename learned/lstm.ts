/**
 * The learned optimizer of Andrychowicz et al. 2016 ("Learning to learn by gradient descent by
 * gradient descent"): a two-layer LSTM with 20 units per layer, applied to every coordinate of
 * the optimizee separately with the same weights (coordinatewise), each coordinate carrying its
 * own hidden state.
 *
 * Per coordinate and step, with the gradient g:
 *   x    = preprocess(g)                         (the paper's log-magnitude and sign, p = 10)
 *   h1,c1 = LSTM1(x, h1, c1); h2,c2 = LSTM2(h1, h2, c2)
 *   Δ    = OUTPUT_SCALE * (h2 · wOut + bOut)      (OUTPUT_SCALE = 0.1)
 *   θ   <- θ + Δ
 * An LSTM layer: z = [x, h] W + b, split in four blocks of HIDDEN columns (i, f, j, o):
 *   c' = σ(f) c + σ(i) tanh(j);  h' = σ(o) tanh(c').
 *
 * Two forward passes: `JsLstm` (Float32Array state, loops; fastest on small vectors) and
 * `TfLstm` (batched tfjs ops over all coordinates: matMul on the backend; fastest on large ones),
 * plus `lstmCellTf`, the differentiable step meta-training backpropagates through.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';

export const HIDDEN = 20;
export const INPUTS = 2;
export const GATES = 4 * HIDDEN;
/** The preprocessing's p: gradients below e^-p in magnitude are passed on linearly. */
export const PREPROCESS_P = 10;
/** The update is this times the output layer's value (the paper's 0.1). */
export const OUTPUT_SCALE = 0.1;

/** The learned optimizer's parameters, row-major. */
export interface LstmWeights {
  /** [(INPUTS + HIDDEN) x GATES]: rows for x, then rows for h1. */
  readonly w1: Float32Array;
  readonly b1: Float32Array;
  /** [(HIDDEN + HIDDEN) x GATES]: rows for h1 (the layer's input), then rows for h2. */
  readonly w2: Float32Array;
  readonly b2: Float32Array;
  /** [HIDDEN]. */
  readonly wOut: Float32Array;
  /** [1]. */
  readonly bOut: Float32Array;
}

export const WEIGHT_NAMES = ['w1', 'b1', 'w2', 'b2', 'wOut', 'bOut'] as const;
export type WeightName = (typeof WEIGHT_NAMES)[number];

export const WEIGHT_SHAPES: Readonly<Record<WeightName, readonly number[]>> = {
  w1: [INPUTS + HIDDEN, GATES],
  b1: [GATES],
  w2: [2 * HIDDEN, GATES],
  b2: [GATES],
  wOut: [HIDDEN, 1],
  bOut: [1],
};

export function weightSize(name: WeightName): number {
  return WEIGHT_SHAPES[name].reduce((a, b) => a * b, 1);
}

/** Total parameter count (5,141). */
export const PARAMETER_COUNT = WEIGHT_NAMES.reduce((s, n) => s + weightSize(n), 0);

/**
 * Seeded initial weights: uniform in ±1/sqrt(fan-in) (fan-in = rows), forget-gate biases 1 (as
 * Sonnet's LSTM), and a small output layer (uniform in ±0.1/sqrt(20)), so the untrained
 * optimizer takes small steps and gradients reach the LSTM from the first meta-step.
 */
export function initialWeights(seed: number): LstmWeights {
  const rng = seedrandom.alea(`learned-init:${seed}`);
  const uniform = (n: number, limit: number) => Float32Array.from({ length: n }, () => (2 * rng() - 1) * limit);
  const b = () => {
    const out = new Float32Array(GATES);
    out.fill(1, HIDDEN, 2 * HIDDEN);
    return out;
  };
  return {
    w1: uniform(weightSize('w1'), 1 / Math.sqrt(INPUTS + HIDDEN)),
    b1: b(),
    w2: uniform(weightSize('w2'), 1 / Math.sqrt(2 * HIDDEN)),
    b2: b(),
    wOut: uniform(HIDDEN, 0.1 / Math.sqrt(HIDDEN)),
    bOut: new Float32Array(1),
  };
}

export function cloneWeights(w: LstmWeights): LstmWeights {
  return {
    w1: w.w1.slice(),
    b1: w.b1.slice(),
    w2: w.w2.slice(),
    b2: w.b2.slice(),
    wOut: w.wOut.slice(),
    bOut: w.bOut.slice(),
  };
}

const EXP_P = Math.exp(PREPROCESS_P);
const EXP_MINUS_P = Math.exp(-PREPROCESS_P);

/**
 * The paper's gradient preprocessing (Appendix A), p = 10:
 *   (log|g| / p, sign g)  if |g| >= e^-p,
 *   (-1, e^p g)           otherwise.
 * Writes the pair into out[at], out[at + 1].
 */
export function preprocess(g: number, out: Float32Array | Float64Array | number[], at = 0): void {
  const a = Math.abs(g);
  if (a >= EXP_MINUS_P) {
    out[at] = Math.log(a) / PREPROCESS_P;
    out[at + 1] = g > 0 ? 1 : -1;
  } else {
    out[at] = -1;
    out[at + 1] = EXP_P * g;
  }
}

/** The preprocessing as tf ops: [n] -> [n, 2]. */
export function preprocessTf(g: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(() => {
    const a = tf.abs(g);
    const big = tf.greaterEqual(a, EXP_MINUS_P);
    // log of a clamped magnitude, so the branch not taken stays finite.
    const logPart = tf.div(tf.log(tf.maximum(a, EXP_MINUS_P)), PREPROCESS_P);
    const first = tf.where(big, logPart, tf.fill(g.shape, -1));
    const second = tf.where(big, tf.sign(g), tf.mul(g, EXP_P));
    return tf.stack([first, second], 1) as tf.Tensor2D;
  });
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * The forward pass in plain JS over Float32Arrays: each coordinate's hidden state is
 * HIDDEN floats per h and c per layer. `step` returns the updates Δ (not yet scaled by a
 * learning rate) in `out`.
 */
export class JsLstm {
  readonly h1: Float32Array;
  readonly c1: Float32Array;
  readonly h2: Float32Array;
  readonly c2: Float32Array;
  private readonly z = new Float64Array(GATES);
  private readonly x = new Float64Array(INPUTS);
  private readonly hNew = new Float64Array(HIDDEN);

  constructor(
    private readonly weights: LstmWeights,
    readonly size: number,
  ) {
    this.h1 = new Float32Array(size * HIDDEN);
    this.c1 = new Float32Array(size * HIDDEN);
    this.h2 = new Float32Array(size * HIDDEN);
    this.c2 = new Float32Array(size * HIDDEN);
  }

  /** One LSTM layer for coordinate j: input `inp` (length rows - HIDDEN), state h, c at offset. */
  private cell(
    inp: Float64Array | Float32Array,
    inOff: number,
    inLen: number,
    W: Float32Array,
    b: Float32Array,
    h: Float32Array,
    c: Float32Array,
    off: number,
  ): void {
    const z = this.z;
    for (let k = 0; k < GATES; k++) z[k] = b[k] as number;
    for (let r = 0; r < inLen; r++) {
      const v = inp[inOff + r] as number;
      if (v === 0) continue;
      const row = r * GATES;
      for (let k = 0; k < GATES; k++) z[k] = (z[k] as number) + v * (W[row + k] as number);
    }
    for (let r = 0; r < HIDDEN; r++) {
      const v = h[off + r] as number;
      if (v === 0) continue;
      const row = (inLen + r) * GATES;
      for (let k = 0; k < GATES; k++) z[k] = (z[k] as number) + v * (W[row + k] as number);
    }
    const hNew = this.hNew;
    for (let u = 0; u < HIDDEN; u++) {
      const i = sigmoid(z[u] as number);
      const f = sigmoid(z[HIDDEN + u] as number);
      const j = Math.tanh(z[2 * HIDDEN + u] as number);
      const o = sigmoid(z[3 * HIDDEN + u] as number);
      const cNew = f * (c[off + u] as number) + i * j;
      c[off + u] = cNew;
      hNew[u] = o * Math.tanh(cNew);
    }
    for (let u = 0; u < HIDDEN; u++) h[off + u] = hNew[u] as number;
  }

  /** Δ for every coordinate from the gradients g; advances the hidden state. */
  step(g: ArrayLike<number>, out: Float32Array): void {
    const { w1, b1, w2, b2, wOut, bOut } = this.weights;
    const x = this.x;
    for (let j = 0; j < this.size; j++) {
      const off = j * HIDDEN;
      preprocess(g[j] as number, x, 0);
      this.cell(x, 0, INPUTS, w1, b1, this.h1, this.c1, off);
      this.cell(this.h1, off, HIDDEN, w2, b2, this.h2, this.c2, off);
      let y = bOut[0] as number;
      for (let u = 0; u < HIDDEN; u++) y += (this.h2[off + u] as number) * (wOut[u] as number);
      out[j] = OUTPUT_SCALE * y;
    }
  }
}

/** LSTM state for n coordinates as tensors [n, HIDDEN]. */
export interface TfState {
  readonly h1: tf.Tensor2D;
  readonly c1: tf.Tensor2D;
  readonly h2: tf.Tensor2D;
  readonly c2: tf.Tensor2D;
}

/** The weights as tensors (differentiable when they are variables). */
export type TfWeights = Readonly<Record<WeightName, tf.Tensor>>;

export function weightsToTensors(w: LstmWeights): TfWeights {
  const out = {} as Record<WeightName, tf.Tensor>;
  for (const n of WEIGHT_NAMES) out[n] = tf.tensor(w[n], [...WEIGHT_SHAPES[n]]);
  return out;
}

export function zeroState(n: number): TfState {
  return { h1: tf.zeros([n, HIDDEN]), c1: tf.zeros([n, HIDDEN]), h2: tf.zeros([n, HIDDEN]), c2: tf.zeros([n, HIDDEN]) };
}

function cellTf(
  x: tf.Tensor2D,
  h: tf.Tensor2D,
  c: tf.Tensor2D,
  W: tf.Tensor,
  b: tf.Tensor,
): { h: tf.Tensor2D; c: tf.Tensor2D } {
  const z = tf.add(tf.matMul(tf.concat([x, h], 1), W as tf.Tensor2D), b) as tf.Tensor2D;
  const [i, f, j, o] = tf.split(z, 4, 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  const cNew = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(j))) as tf.Tensor2D;
  const hNew = tf.mul(tf.sigmoid(o), tf.tanh(cNew)) as tf.Tensor2D;
  return { h: hNew, c: cNew };
}

/**
 * One differentiable step on preprocessed inputs x [n, 2]: the updates Δ [n] and the new state.
 * Not wrapped in tidy (meta-training keeps the intermediates for backpropagation).
 */
export function lstmCellTf(weights: TfWeights, x: tf.Tensor2D, s: TfState): { delta: tf.Tensor1D; state: TfState } {
  const l1 = cellTf(x, s.h1, s.c1, weights.w1, weights.b1);
  const l2 = cellTf(l1.h, s.h2, s.c2, weights.w2, weights.b2);
  const y = tf.add(tf.matMul(l2.h, weights.wOut as tf.Tensor2D), weights.bOut);
  return {
    delta: tf.mul(tf.reshape(y, [-1]), OUTPUT_SCALE) as tf.Tensor1D,
    state: { h1: l1.h, c1: l1.c, h2: l2.h, c2: l2.c },
  };
}

/** The forward pass as batched tfjs ops, state held in tensors. */
export class TfLstm {
  private state: TfState;
  private readonly w: TfWeights;

  constructor(
    weights: LstmWeights,
    readonly size: number,
  ) {
    this.w = weightsToTensors(weights);
    this.state = zeroState(size);
  }

  step(g: Float32Array, out: Float32Array): void {
    const prev = this.state;
    let delta: tf.Tensor1D | undefined;
    this.state = tf.tidy(() => {
      const r = lstmCellTf(this.w, preprocessTf(tf.tensor1d(g)), prev);
      delta = tf.keep(r.delta);
      return { ...r.state };
    }) as unknown as TfState;
    tf.dispose([prev.h1, prev.c1, prev.h2, prev.c2]);
    out.set((delta as tf.Tensor1D).dataSync());
    (delta as tf.Tensor1D).dispose();
  }

  dispose(): void {
    tf.dispose([this.state.h1, this.state.c1, this.state.h2, this.state.c2]);
    tf.dispose(Object.values(this.w));
  }
}
