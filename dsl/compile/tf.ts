/**
 * The tf-ops back end: a rule as tfjs ops, so it runs on any tfjs backend (wasm here;
 * `tensorflow`/CUDA with tfjs-node(-gpu); webgl/webgpu in a browser).
 *
 * Scalar subexpressions (hyperparameters, t, schedules) are computed once per step in
 * float64 on the CPU, like the interpreter does, and enter the graph as scalars.
 */
import * as tf from '@tensorflow/tfjs';
import { type ExecNode, type Program, scalarValue } from '../interp.js';
import { UnsupportedError } from './js.js';

type T = tf.Tensor;

const full = (x: T, like: T): T => (x.shape.length === like.shape.length && x.size === like.size ? x : tf.broadcastTo(x, like.shape));

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

const OPS: Readonly<Record<string, OpImpl>> = {
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
};

const STATE: Readonly<Record<string, (s: T, a: readonly T[], like: T) => T>> = {
  ema: (s, a) => tf.add(tf.mul(at(a, 1), s), tf.mul(tf.sub(1, at(a, 1)), at(a, 0))),
  accum: (s, a) => tf.add(tf.mul(at(a, 1), s), at(a, 0)),
  sum: (s, a) => tf.add(s, at(a, 0)),
  runmax: (s, a, like) => minMax('max', s, at(a, 0), like),
};

const DRAW: Readonly<Record<string, (d: T, a: readonly T[], t: number, like: T) => T>> = {
  noise: (d) => tf.mul(0.1, d),
  anoise: (d, _a, t) => tf.mul(d, Math.sqrt(1 / (1 + (t - 1)) ** 0.55)),
  drop: (d, a, _t, like) => tf.where(tf.less(d, at(a, 1)), tf.zerosLike(like), full(tf.div(at(a, 0), tf.sub(1, at(a, 1))), like)),
};

export const TF_PRIMITIVES: readonly string[] = [
  ...Object.keys(OPS),
  ...Object.keys(STATE),
  ...Object.keys(DRAW),
  // Schedules are scalar: computed on the CPU.
  'lindecay',
  'cosdecay',
  'restartdecay',
];

/** Throws UnsupportedError if some node has no tf implementation. */
export function assertTfSupported(program: Program): void {
  const visit = (x: ExecNode): void => {
    if (x.k === 'op' || x.k === 'state' || x.k === 'draw') {
      if (!TF_PRIMITIVES.includes(x.prim.name)) throw new UnsupportedError('tf', `primitive '${x.prim.name}'`);
      x.args.forEach(visit);
    }
  };
  visit(program.root);
}

export interface TfStepInput {
  readonly w: T;
  readonly g: T;
  /** 1-based step number. */
  readonly t: number;
  readonly state: readonly T[];
  /** One tensor per draw of the program, shaped like w. */
  readonly draws: readonly T[];
}

/**
 * The direction and the new state, as tensors. Call inside `tf.tidy` and keep what it
 * returns; nothing else escapes.
 */
export function tfDirection(program: Program, input: TfStepInput): { d: T; state: T[] } {
  const { w, g, t } = input;
  const memo = new Map<ExecNode, T>();
  const fresh: (T | undefined)[] = program.slots.map(() => undefined);
  const ev = (x: ExecNode): T => {
    const hit = memo.get(x);
    if (hit) return hit;
    let r: T;
    const sv = scalarValue(x, t);
    if (sv !== undefined) r = tf.scalar(sv);
    else {
      switch (x.k) {
        case 'const':
          r = tf.scalar(x.v);
          break;
        case 'leaf':
          r = x.name === 'g' ? g : x.name === 'w' ? w : tf.scalar(t);
          break;
        case 'prev':
          r = input.state[x.slot] as T;
          break;
        case 'state': {
          const impl = STATE[x.prim.name];
          if (impl === undefined) throw new UnsupportedError('tf', `state primitive '${x.prim.name}'`);
          r = full(impl(input.state[x.slot] as T, x.args.map(ev), w), w);
          fresh[x.slot] = r;
          break;
        }
        case 'draw': {
          const impl = DRAW[x.prim.name];
          if (impl === undefined) throw new UnsupportedError('tf', `stochastic primitive '${x.prim.name}'`);
          r = impl(input.draws[x.draw] as T, x.args.map(ev), t, w);
          break;
        }
        case 'op': {
          const exponent = x.prim.name === 'pow' && x.args[1]?.k === 'const' ? x.args[1].v : undefined;
          if (exponent === 2) {
            const base = ev(x.args[0] as ExecNode);
            r = tf.mul(base, base);
            break;
          }
          if (exponent !== undefined && Number.isInteger(exponent)) {
            r = tf.pow(ev(x.args[0] as ExecNode), exponent);
            break;
          }
          const impl = OPS[x.prim.name];
          if (impl === undefined) throw new UnsupportedError('tf', `primitive '${x.prim.name}'`);
          r = impl(x.args.map(ev), w);
          break;
        }
      }
    }
    memo.set(x, r);
    return r;
  };
  const d = full(ev(program.root), w);
  for (const s of program.slots) ev(s.node);
  return { d, state: fresh.map((s) => s as T) };
}
