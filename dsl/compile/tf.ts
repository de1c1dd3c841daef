/**
 * The tf-ops back end: a rule as tfjs ops, so it runs on any tfjs backend (wasm here;
 * `tensorflow`/CUDA with tfjs-node(-gpu); webgl/webgpu in a browser).
 *
 * Scalar subexpressions (hyperparameters, t, schedules) are computed once per step in
 * float64 on the CPU, like the interpreter does, and enter the graph as scalars.
 */
import * as tf from '@tensorflow/tfjs';
import type { StatePrim, TensorPrim } from '../../primitives/registry.js';
import { type Program, scalarValues, type Step } from '../lower.js';

type T = tf.Tensor;

const full = (x: T, like: T): T =>
  x.shape.length === like.shape.length && x.size === like.size ? x : tf.broadcastTo(x, like.shape);

/** x^y with the odd extension for a negative base and a non-integer exponent. */
function guardedPow(x: T, y: T, like: T): T {
  const xf = full(x, like);
  const yf = full(y, like);
  const odd = tf.logicalAnd(tf.less(xf, 0), tf.notEqual(tf.floor(yf), yf));
  return tf.where(odd, tf.neg(tf.pow(tf.abs(xf), yf)), tf.pow(xf, yf));
}

/**
 * sign with sign(0) = 0 and sign(NaN) = NaN, built from comparisons: tfjs-backend-wasm 4.22's
 * Sign kernel returns 0 for |x| below about 1e-7 (seen: sign(1e-8) = 0), which would flip
 * rules like sign(v) early in training.
 */
function signOf(x: T): T {
  const s = tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32'));
  return tf.where(tf.isNaN(x), x, s);
}

/** NaN-propagating min/max (Math.min/Math.max semantics). */
function minMax(op: 'min' | 'max', a: T, b: T, like: T): T {
  const af = full(a, like);
  const bf = full(b, like);
  const r = op === 'min' ? tf.minimum(af, bf) : tf.maximum(af, bf);
  const nan = tf.logicalOr(tf.isNaN(af), tf.isNaN(bf));
  return tf.where(nan, tf.fill(like.shape, Number.NaN), r);
}

type OpImpl = (a: readonly T[], like: T) => T;

const at = (a: readonly T[], i: number): T => a[i] as T;

const OPS = {
  add: (a) => tf.add(at(a, 0), at(a, 1)),
  sub: (a) => tf.sub(at(a, 0), at(a, 1)),
  mul: (a) => tf.mul(at(a, 0), at(a, 1)),
  div: (a) => tf.div(at(a, 0), at(a, 1)),
  pow: (a, like) => guardedPow(at(a, 0), at(a, 1), like),
  neg: (a) => tf.neg(at(a, 0)),
  exp: (a) => tf.exp(at(a, 0)),
  log: (a) => tf.log(tf.abs(at(a, 0))),
  sqrt: (a) => tf.sqrt(tf.abs(at(a, 0))),
  abs: (a) => tf.abs(at(a, 0)),
  cos: (a) => tf.cos(at(a, 0)),
  floor: (a) => tf.floor(at(a, 0)),
  square: (a) => tf.mul(at(a, 0), at(a, 0)),
  sign: (a) => signOf(at(a, 0)),
  clip: (a, like) => minMax('min', minMax('max', at(a, 0), tf.neg(at(a, 1)), like), at(a, 1), like),
  min: (a, like) => minMax('min', at(a, 0), at(a, 1), like),
  max: (a, like) => minMax('max', at(a, 0), at(a, 1), like),
  lerp: (a) => tf.add(at(a, 0), tf.mul(at(a, 2), tf.sub(at(a, 1), at(a, 0)))),
  keep: (a) => at(a, 0),
  // drop(x, p, 1 - p, u): the lowering passes 1 - p (computed on the host for a scalar p) and the draw.
  drop: (a, like) => tf.where(tf.less(at(a, 3), at(a, 1)), tf.zerosLike(like), full(tf.div(at(a, 0), at(a, 2)), like)),
} satisfies Record<TensorPrim, OpImpl>;

const STATE = {
  // ema(x, beta, 1 - beta): 1 - beta comes from the lowering (float64 on the host for a scalar beta).
  ema: (s, a) => tf.add(tf.mul(at(a, 1), s), tf.mul(at(a, 2), at(a, 0))),
  accum: (s, a) => tf.add(tf.mul(at(a, 1), s), at(a, 0)),
  sum: (s, a) => tf.add(s, at(a, 0)),
  runmax: (s, a, like) => minMax('max', s, at(a, 0), like),
} satisfies Record<StatePrim, (s: T, a: readonly T[], like: T) => T>;

/** Names of every per-element and state primitive this back end implements. */
export const TF_PRIMITIVES: readonly string[] = [...Object.keys(OPS), ...Object.keys(STATE)];

export interface TfStepInput {
  readonly w: T;
  readonly g: T;
  /** 1-based step number. */
  readonly t: number;
  /** Hyperparameter values, in the program's order (`paramValues`). */
  readonly params: Float64Array;
  readonly state: readonly T[];
  /** One tensor per draw of the program, shaped like w. */
  readonly draws: readonly T[];
}

/**
 * The direction and the new state, as tensors. Call inside `tf.tidy` and keep what it
 * returns; nothing else escapes. Scalar steps are computed on the host (float64) and enter
 * the graph as scalars.
 */
export function tfDirection(program: Program, input: TfStepInput): { d: T; state: T[] } {
  const { w, g, t } = input;
  const host = scalarValues(program, input.params, t);
  const vals: (T | undefined)[] = program.steps.map(() => undefined);
  const val = (k: number): T => {
    const v = vals[k];
    if (v !== undefined) return v;
    const s = program.steps[k] as Step;
    if (s.kind !== 'scalar') throw new Error(`step ${k} used before it is computed`);
    const x = tf.scalar(host[k] as number);
    vals[k] = x;
    return x;
  };
  program.steps.forEach((s, k) => {
    switch (s.op) {
      case 'leaf':
        if (s.leaf !== 't') vals[k] = s.leaf === 'g' ? g : w;
        break;
      case 'prev':
        vals[k] = input.state[s.slot] as T;
        break;
      case 'state':
        vals[k] = full(STATE[s.prim](input.state[s.slot] as T, s.args.map(val), w), w);
        break;
      case 'draw':
        vals[k] = input.draws[s.draw] as T;
        break;
      case 'tensor': {
        const e = s.prim === 'pow' ? (program.steps[s.args[1] as number] as Step) : undefined;
        const exponent = e?.kind === 'scalar' ? (host[s.args[1] as number] as number) : undefined;
        if (exponent === 2) {
          const base = val(s.args[0] as number);
          vals[k] = tf.mul(base, base);
        } else if (exponent !== undefined && Number.isInteger(exponent))
          vals[k] = tf.pow(val(s.args[0] as number), exponent);
        else vals[k] = OPS[s.prim](s.args.map(val), w);
        break;
      }
      default:
        break; // scalars: made on first use
    }
  });
  return { d: full(val(program.result), w), state: program.slotSteps.map((k) => val(k)) };
}
