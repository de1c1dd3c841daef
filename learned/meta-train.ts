/**
 * Meta-training (Andrychowicz et al. 2016, Section 2): the LSTM's weights φ minimise
 * L(φ) = E_f [ Σ_t f(θ_t) ] over a distribution of problems f, where θ_{t+1} = θ_t + Δ_t(φ)
 * and Δ_t comes from the LSTM on ∇f(θ_t). The gradient of L is taken by truncated
 * backpropagation through time: each problem is optimised for `horizon` steps, in unrolls of
 * `unroll` steps; every unroll is one meta-step (one Adam update of φ), and θ and the LSTM state
 * carry over, detached, to the next unroll of the same problem. ∇f(θ_t) enters as a constant:
 * second derivatives are dropped, as in the paper.
 *
 * Deterministic for its settings: problem k is drawn from the stream `<task>:<seed>:problem:<k>`,
 * and the outer Adam runs in float64 in JS. A checkpoint is taken at every problem boundary,
 * where the whole state is φ, Adam's moments and the step count, so a resumed run gives the
 * same weights as an uninterrupted one.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import {
  HIDDEN,
  initialWeights,
  type LstmWeights,
  lstmCellTf,
  preprocess,
  type TfState,
  type TfWeights,
  WEIGHT_NAMES,
  WEIGHT_SHAPES,
  type WeightName,
  weightSize,
} from './lstm.js';
import { type ImageSource, type MetaTaskId, mlpProblem, type Problem, quadraticProblem } from './problems.js';

export interface MetaSettings {
  readonly task: MetaTaskId;
  readonly seed: number;
  /** Outer Adam updates, one per unroll. */
  readonly metaSteps: number;
  /** Optimizee steps per truncated unroll. */
  readonly unroll: number;
  /** Optimizee steps per problem before a fresh one is drawn. */
  readonly horizon: number;
  /** The outer Adam's learning rate. */
  readonly metaLr: number;
}

export const META_DEFAULTS: Readonly<Record<MetaTaskId, Omit<MetaSettings, 'task' | 'seed'>>> = {
  quadratic: { metaSteps: 1000, unroll: 20, horizon: 100, metaLr: 0.003 },
  'mlp-mnist': { metaSteps: 200, unroll: 20, horizon: 100, metaLr: 0.003 },
};

/** Everything a resumed run needs (at a problem boundary). */
export interface MetaState {
  /** Meta-steps done. */
  readonly step: number;
  readonly weights: LstmWeights;
  readonly adamM: Float64Array;
  readonly adamV: Float64Array;
  /** Meta-loss (mean f over the unroll) of every meta-step so far. */
  readonly losses: readonly number[];
}

export interface MetaHooks {
  /** Training images, for the MLP task. */
  readonly data?: ImageSource;
  /** A checkpoint to continue from (same settings). */
  readonly resume?: MetaState;
  /** After every meta-step. */
  onStep?(step: number, loss: number): void;
  /** At every problem boundary (and at the end): persist it to resume from. */
  onCheckpoint?(state: MetaState): void;
}

/** Makes variable names unique within the process (tfjs requires it). */
let variableCount = 0;
const BETA1 = 0.9;
const BETA2 = 0.999;
const EPS = 1e-8;
/** Global-norm clip of the meta-gradient: one exploding unroll does not wreck φ. */
const CLIP_NORM = 10;

function flatten(w: LstmWeights): Float64Array {
  const out = new Float64Array(WEIGHT_NAMES.reduce((s, n) => s + weightSize(n), 0));
  let at = 0;
  for (const n of WEIGHT_NAMES) {
    out.set(w[n], at);
    at += w[n].length;
  }
  return out;
}

export function makeProblem(
  task: MetaTaskId,
  seed: number,
  index: number,
  data: ImageSource | undefined,
  stream = 'problem',
): Problem {
  const rng = seedrandom.alea(`${task}:${seed}:${stream}:${index}`);
  if (task === 'quadratic') return quadraticProblem(rng);
  if (data === undefined) throw new Error('the mlp-mnist meta-task needs training images');
  return mlpProblem(rng, data);
}

/** Steps of one problem's optimisation, as unroll lengths. */
function unrollsOf(s: Pick<MetaSettings, 'unroll' | 'horizon'>): number[] {
  const out: number[] = [];
  for (let done = 0; done < s.horizon; done += s.unroll) out.push(Math.min(s.unroll, s.horizon - done));
  return out;
}

/**
 * Run `unroll` optimizee steps from θ and the LSTM state (both plain arrays, updated in place),
 * returning the mean loss over θ_1..θ_U as a tensor differentiable in the weights.
 */
function unrollLoss(
  weights: TfWeights,
  problem: Problem,
  theta: Float32Array,
  state: Record<'h1' | 'c1' | 'h2' | 'c2', Float32Array>,
  t0: number,
  unroll: number,
): tf.Scalar {
  const n = problem.size;
  let th = tf.tensor1d(theta);
  let s: TfState = {
    h1: tf.tensor2d(state.h1, [n, HIDDEN]),
    c1: tf.tensor2d(state.c1, [n, HIDDEN]),
    h2: tf.tensor2d(state.h2, [n, HIDDEN]),
    c2: tf.tensor2d(state.c2, [n, HIDDEN]),
  };
  let total: tf.Scalar = tf.scalar(0);
  let values: Float32Array = theta.slice();
  const x = new Float32Array(2 * n);
  for (let k = 0; k <= unroll; k++) {
    const { loss, grad } = problem.evaluate(th, values, t0 + k);
    if (k >= 1) total = tf.add(total, loss);
    if (k === unroll) break;
    for (let j = 0; j < n; j++) preprocess(grad[j] as number, x, 2 * j);
    const r = lstmCellTf(weights, tf.tensor2d(x, [n, 2]), s);
    th = tf.add(th, r.delta);
    s = r.state;
    values = th.dataSync() as Float32Array;
  }
  theta.set(values);
  state.h1.set(s.h1.dataSync());
  state.c1.set(s.c1.dataSync());
  state.h2.set(s.h2.dataSync());
  state.c2.set(s.c2.dataSync());
  return tf.div(total, unroll) as tf.Scalar;
}

/** Meta-train from scratch (or from `hooks.resume`); returns the final state. */
export function metaTrain(settings: MetaSettings, hooks: MetaHooks = {}): MetaState {
  const start = hooks.resume;
  const weights = start?.weights ?? initialWeights(settings.seed);
  const flat = flatten(weights);
  const m = start ? Float64Array.from(start.adamM) : new Float64Array(flat.length);
  const v = start ? Float64Array.from(start.adamV) : new Float64Array(flat.length);
  const losses = [...(start?.losses ?? [])];
  const vars = Object.fromEntries(
    WEIGHT_NAMES.map((n) => [
      n,
      tf.tidy(() => tf.variable(tf.tensor(weights[n], [...WEIGHT_SHAPES[n]]), true, `learned/${n}/${++variableCount}`)),
    ]),
  ) as Record<WeightName, tf.Variable>;
  const unrolls = unrollsOf(settings);
  const current = (): LstmWeights => {
    const out = {} as Record<WeightName, Float32Array>;
    for (const n of WEIGHT_NAMES) out[n] = (vars[n].dataSync() as Float32Array).slice();
    return out;
  };
  let problem: Problem | undefined;
  let theta: Float32Array = new Float32Array(0);
  let state = { h1: new Float32Array(0), c1: new Float32Array(0), h2: new Float32Array(0), c2: new Float32Array(0) };
  try {
    for (let step = start?.step ?? 0; step < settings.metaSteps; step++) {
      const index = Math.floor(step / unrolls.length);
      const within = step % unrolls.length;
      if (within === 0 || problem === undefined) {
        problem?.dispose();
        problem = makeProblem(settings.task, settings.seed, index, hooks.data);
        theta = problem.initial();
        const n = problem.size * HIDDEN;
        state = { h1: new Float32Array(n), c1: new Float32Array(n), h2: new Float32Array(n), c2: new Float32Array(n) };
      }
      const p = problem;
      const t0 = unrolls.slice(0, within).reduce((a, b) => a + b, 0);
      // Everything but the variables is freed when the meta-step ends (tf.tidy).
      const g = new Float64Array(flat.length);
      let loss = Number.NaN;
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => unrollLoss(vars, p, theta, state, t0, unrolls[within] as number),
          Object.values(vars),
        );
        loss = value.dataSync()[0] as number;
        let offset = 0;
        for (const n of WEIGHT_NAMES) {
          g.set((grads[vars[n].name] as tf.Tensor).dataSync(), offset);
          offset += weightSize(n);
        }
      });
      // Adam on the flat vector, in float64, with a global-norm clip.
      let at = 0;
      let norm = 0;
      for (let i = 0; i < g.length; i++) norm += (g[i] as number) ** 2;
      norm = Math.sqrt(norm);
      const scale = Number.isFinite(norm) && norm > CLIP_NORM ? CLIP_NORM / norm : 1;
      const finite = Number.isFinite(norm) && Number.isFinite(loss);
      if (finite) {
        const t = step + 1;
        const c1 = 1 - BETA1 ** t;
        const c2 = 1 - BETA2 ** t;
        for (let i = 0; i < g.length; i++) {
          const gi = (g[i] as number) * scale;
          m[i] = BETA1 * (m[i] as number) + (1 - BETA1) * gi;
          v[i] = BETA2 * (v[i] as number) + (1 - BETA2) * gi * gi;
          // Rounded to float32: the weights are the variables' values, so a checkpoint holds them exactly.
          flat[i] = Math.fround(
            (flat[i] as number) -
              (settings.metaLr * ((m[i] as number) / c1)) / (Math.sqrt((v[i] as number) / c2) + EPS),
          );
        }
        at = 0;
        for (const n of WEIGHT_NAMES) {
          const next = tf.tensor(Float32Array.from(flat.subarray(at, at + weightSize(n))), [...WEIGHT_SHAPES[n]]);
          vars[n].assign(next);
          next.dispose();
          at += weightSize(n);
        }
      }
      // A non-finite unroll leaves φ as it was and draws a fresh problem next.
      if (!finite) problem = undefined;
      losses.push(loss);
      hooks.onStep?.(step + 1, loss);
      const boundary = (step + 1) % unrolls.length === 0 || step + 1 === settings.metaSteps;
      if (boundary && hooks.onCheckpoint)
        hooks.onCheckpoint({ step: step + 1, weights: current(), adamM: m, adamV: v, losses });
    }
    return { step: Math.max(settings.metaSteps, start?.step ?? 0), weights: current(), adamM: m, adamV: v, losses };
  } finally {
    problem?.dispose();
    tf.dispose(Object.values(vars));
  }
}

/**
 * Mean loss over `steps` optimizee steps of the learned optimizer (`lr` times its update) on
 * held-out problems (stream 'heldout'), without gradients: the meta-loss on fixed problems.
 */
export function heldOutLoss(
  weights: LstmWeights,
  task: MetaTaskId,
  seed: number,
  problems: number,
  steps: number,
  data?: ImageSource,
): number {
  let total = 0;
  const tw = Object.fromEntries(
    WEIGHT_NAMES.map((n) => [n, tf.tensor(weights[n], [...WEIGHT_SHAPES[n]])]),
  ) as TfWeights;
  try {
    for (let k = 0; k < problems; k++) {
      const problem = makeProblem(task, seed, k, data, 'heldout');
      try {
        const n = problem.size;
        const theta = problem.initial();
        const state = {
          h1: new Float32Array(n * HIDDEN),
          c1: new Float32Array(n * HIDDEN),
          h2: new Float32Array(n * HIDDEN),
          c2: new Float32Array(n * HIDDEN),
        };
        const loss = tf.tidy(() => unrollLoss(tw, problem, theta, state, 0, steps));
        total += loss.dataSync()[0] as number;
        loss.dispose();
      } finally {
        problem.dispose();
      }
    }
  } finally {
    tf.dispose(Object.values(tw));
  }
  return total / problems;
}
