/**
 * The primitives registry: the one place that says what the update-rule language can
 * express. The lexer's vocabulary, the checker, the lowering (dsl/lower.ts), the reference
 * interpreter, the controller's search space and the docs all read from here. The name
 * unions below are derived from the entries, and every back end's template table is
 * declared `satisfies Record<TensorPrim, ...>` (or the state / scalar / noise union), so a
 * new primitive is one entry here plus one template per back end, and `tsc` names every
 * back end that lacks one.
 *
 * Semantics are given per element, on JS numbers (float64); the interpreter rounds state to
 * the run's dtype when it stores it.
 */

/** Whether an argument may vary per element (`tensor`) or must be the same for all (`scalar`). */
export type ArgKind = 'tensor' | 'scalar';

export type Category = 'arith' | 'elementwise' | 'state' | 'schedule' | 'stochastic';

/** Values a primitive may read besides its arguments. */
export interface StepContext {
  /** 1-based number of the update being computed. */
  readonly t: number;
}

export interface ArgRange {
  readonly arg: number;
  readonly min: number;
  readonly max: number;
  readonly minOpen?: boolean;
  readonly maxOpen?: boolean;
}

export function inRange(v: number, r: ArgRange): boolean {
  return (r.minOpen ? v > r.min : v >= r.min) && (r.maxOpen ? v < r.max : v <= r.max);
}

export function formatRange(r: ArgRange): string {
  const hi = r.max === Number.POSITIVE_INFINITY ? 'inf' : String(r.max);
  return `${r.minOpen ? '(' : '['}${r.min}, ${hi}${r.maxOpen || r.max === Number.POSITIVE_INFINITY ? ')' : ']'}`;
}

export interface StateSpec {
  /** Value of the state before the first update. */
  readonly init: number;
  /** New state from the old state and the argument values. The primitive's value is the new state. */
  readonly update: (state: number, args: readonly number[]) => number;
}

export interface StochasticSpec {
  /** The distribution of the per-element, per-step draw passed to `ref` as `draw`. */
  readonly draw: 'normal' | 'uniform';
  /**
   * For scaled noise (no arguments): the value is `draw * scale(t)`. Back ends that run in
   * the process compute the scale on the host from this function; source emitters spell it.
   */
  readonly scale?: (ctx: StepContext) => number;
}

export interface Primitive {
  readonly name: string;
  readonly category: Category;
  readonly arity: number;
  /** One entry per argument. */
  readonly argKinds: readonly ArgKind[];
  /** Argument names, for docs and messages. */
  readonly argNames: readonly string[];
  /** Infix or prefix operator spelling, for the printer. */
  readonly operator?: { readonly symbol: '+' | '-' | '*' | '/' | '^'; readonly prefix?: boolean };
  /** Whether f(x, y) == f(y, x) exactly in IEEE arithmetic (lets the canonical form sort them). */
  readonly commutative?: boolean;
  /** Stateless value: arguments -> result. Stateful primitives return the new state. */
  readonly ref: (args: readonly number[], ctx: StepContext, draw: number) => number;
  readonly state?: StateSpec;
  readonly stochastic?: StochasticSpec;
  /** Result is the same for every element (a function of scalars and t only). */
  readonly scalarResult?: boolean;
  /** Allowed values of scalar arguments, checked when the value is known at check time. */
  readonly ranges?: readonly ArgRange[];
  /**
   * An argument whose complement `1 - x` the primitive needs (ema's beta, drop's p). The lowering
   * passes the complement as one more argument, after the primitive's own (before a draw), as
   * its own step: where x is a scalar that step is computed once per step in float64 on the
   * host, like every scalar, so no back end computes `1 - beta` in float32 (1 - 0.999f is
   * 0.00099998713, torch's 0.001f). `ref` and `update` receive it too.
   */
  readonly complementOf?: number;
  readonly doc: string;
}

/**
 * x^y with a defined result for a negative base and a non-integer exponent: the odd
 * extension -(|x|^y), so the sign of the base is kept instead of producing NaN. An exponent
 * is an integer when floor(y) == y (the infinities are, NaN is not). Otherwise IEEE 754 pow,
 * as C, torch, TensorFlow and WGSL compute it (JavaScript's ** differs at 1^NaN and (-1)^inf).
 */
export function guardedPow(x: number, y: number): number {
  if (y === 2) return x * x; // the common case, exact, and what every back end computes for it
  if (x < 0 && Math.floor(y) !== y) return -ieeePow(-x, y);
  return ieeePow(x, y);
}

/** IEEE 754 pow: JavaScript's ** with 1^y = 1 (y NaN too) and (-1)^(+-inf) = 1. */
function ieeePow(x: number, y: number): number {
  if (x === 1 || (x === -1 && (y === Number.POSITIVE_INFINITY || y === Number.NEGATIVE_INFINITY))) return 1;
  return x ** y;
}

/** sign with sign(0) = 0 (and sign(NaN) = NaN). */
export function sign(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;
}

/** TF sign_decay.py: linear decay evaluated at s = t - 1 updates already applied. */
export function linearDecay(t: number, steps: number): number {
  const s = Math.min(t - 1, steps);
  return Math.max(0, (steps - s) / steps);
}

/** TF sign_decay.py get_cosine_decay_fn. */
export function cosineDecay(t: number, steps: number, periods: number): number {
  const s = Math.min(t - 1, steps);
  return 0.5 * (1 + Math.cos(Math.PI * 2 * periods * (s / steps)));
}

/** TF sign_decay.py get_restart_decay_fn (jumps back to 1 once s >= steps, as TF does). */
export function restartDecay(t: number, steps: number, periods: number): number {
  const s = Math.min(t - 1, steps);
  const num = (periods * s) % steps;
  return 0.5 * (1 + Math.cos((Math.PI * num) / steps));
}

/** Standard deviation of `noise`: 0.1 (variance 0.01). */
function noiseStd(_c: StepContext): number {
  return 0.1;
}

/** Standard deviation of `anoise` at step t: sqrt(1 / (1 + s)^0.55), s = t - 1. */
export function anoiseStd(c: StepContext): number {
  return Math.sqrt(1 / (1 + (c.t - 1)) ** 0.55);
}

const a0 = (a: readonly number[]): number => a[0] as number;
const a1 = (a: readonly number[]): number => a[1] as number;
const a2 = (a: readonly number[]): number => a[2] as number;

type PrimInput = Omit<Primitive, 'argKinds' | 'argNames'> & { args?: readonly (readonly [string, ArgKind])[] };

/** An entry; the literal name, category and specs are kept in its type for the unions below. */
function prim<const P extends PrimInput>(p: P): Primitive & Omit<P, 'args'> {
  const args = p.args ?? [];
  const { args: _ignored, ...rest } = p;
  return { ...rest, argNames: args.map((x) => x[0]), argKinds: args.map((x) => x[1]) };
}

const X = ['x', 'tensor'] as const;
const Y = ['y', 'tensor'] as const;

export const PRIMITIVES = [
  // Arithmetic (written as operators).
  prim({
    name: 'add',
    category: 'arith',
    arity: 2,
    args: [X, Y],
    operator: { symbol: '+' },
    commutative: true,
    ref: (a) => a0(a) + a1(a),
    doc: 'x + y',
  }),
  prim({
    name: 'sub',
    category: 'arith',
    arity: 2,
    args: [X, Y],
    operator: { symbol: '-' },
    ref: (a) => a0(a) - a1(a),
    doc: 'x - y',
  }),
  prim({
    name: 'mul',
    category: 'arith',
    arity: 2,
    args: [X, Y],
    operator: { symbol: '*' },
    commutative: true,
    ref: (a) => a0(a) * a1(a),
    doc: 'x * y',
  }),
  prim({
    name: 'div',
    category: 'arith',
    arity: 2,
    args: [X, Y],
    operator: { symbol: '/' },
    ref: (a) => a0(a) / a1(a),
    doc: "x / y (IEEE division; NOS's guarded x/(y+1e-8) is written out)",
  }),
  prim({
    name: 'pow',
    category: 'arith',
    arity: 2,
    args: [X, Y],
    operator: { symbol: '^' },
    ref: (a) => guardedPow(a0(a), a1(a)),
    doc: 'x ^ y (IEEE pow); a negative base with a non-integer exponent gives -(|x|^y) instead of NaN',
  }),
  prim({
    name: 'neg',
    category: 'arith',
    arity: 1,
    args: [X],
    operator: { symbol: '-', prefix: true },
    ref: (a) => -a0(a),
    doc: '-x',
  }),
  // Elementwise functions.
  prim({ name: 'exp', category: 'elementwise', arity: 1, args: [X], ref: (a) => Math.exp(a0(a)), doc: 'e^x' }),
  prim({
    name: 'log',
    category: 'elementwise',
    arity: 1,
    args: [X],
    ref: (a) => Math.log(Math.abs(a0(a))),
    doc: 'ln|x| (log(0) = -inf)',
  }),
  prim({
    name: 'sqrt',
    category: 'elementwise',
    arity: 1,
    args: [X],
    ref: (a) => Math.sqrt(Math.abs(a0(a))),
    doc: 'sqrt(|x|)',
  }),
  prim({ name: 'abs', category: 'elementwise', arity: 1, args: [X], ref: (a) => Math.abs(a0(a)), doc: '|x|' }),
  prim({
    name: 'cos',
    category: 'elementwise',
    arity: 1,
    args: [X],
    ref: (a) => Math.cos(a0(a)),
    doc: 'cos(x) (schedules)',
  }),
  prim({
    name: 'floor',
    category: 'elementwise',
    arity: 1,
    args: [X],
    ref: (a) => Math.floor(a0(a)),
    doc: 'the largest integer <= x (schedules)',
  }),
  prim({ name: 'square', category: 'elementwise', arity: 1, args: [X], ref: (a) => a0(a) * a0(a), doc: 'x * x' }),
  prim({
    name: 'sign',
    category: 'elementwise',
    arity: 1,
    args: [X],
    ref: (a) => sign(a0(a)),
    doc: 'sign(x), with sign(0) = 0',
  }),
  prim({
    name: 'clip',
    category: 'elementwise',
    arity: 2,
    args: [X, ['c', 'scalar']],
    ranges: [{ arg: 1, min: 0, max: Number.POSITIVE_INFINITY, minOpen: true }],
    ref: (a) => Math.min(Math.max(a0(a), -a1(a)), a1(a)),
    doc: 'clip(x, c): x limited to [-c, c]',
  }),
  prim({
    name: 'min',
    category: 'elementwise',
    arity: 2,
    args: [X, Y],
    commutative: true,
    ref: (a) => Math.min(a0(a), a1(a)),
    doc: 'elementwise minimum',
  }),
  prim({
    name: 'max',
    category: 'elementwise',
    arity: 2,
    args: [X, Y],
    commutative: true,
    ref: (a) => Math.max(a0(a), a1(a)),
    doc: 'elementwise maximum',
  }),
  prim({
    name: 'lerp',
    category: 'elementwise',
    arity: 3,
    args: [
      ['a', 'tensor'],
      ['b', 'tensor'],
      ['w', 'tensor'],
    ],
    ref: (a) => a0(a) + a2(a) * (a1(a) - a0(a)),
    doc: 'lerp(a, b, w) = a + w * (b - a)',
  }),
  prim({
    name: 'keep',
    category: 'elementwise',
    arity: 2,
    args: [X, Y],
    ref: (a) => a0(a),
    doc: 'keep(x, y) = x (NOS "keep left")',
  }),
  // State: one slot per distinct call; the value is the state after this step's update.
  prim({
    name: 'ema',
    category: 'state',
    arity: 2,
    args: [X, ['beta', 'scalar']],
    ranges: [{ arg: 1, min: 0, max: 1 }],
    complementOf: 1,
    state: { init: 0, update: (s, a) => a1(a) * s + a2(a) * a0(a) },
    ref: () => Number.NaN,
    doc: 'moving average s = beta*s + (1-beta)*x, from s = 0, no bias correction',
  }),
  prim({
    name: 'accum',
    category: 'state',
    arity: 2,
    args: [X, ['mu', 'scalar']],
    state: { init: 0, update: (s, a) => a1(a) * s + a0(a) },
    ref: () => Number.NaN,
    doc: 'decaying sum s = mu*s + x, from s = 0 (the momentum buffer)',
  }),
  prim({
    name: 'sum',
    category: 'state',
    arity: 1,
    args: [X],
    state: { init: 0, update: (s, a) => s + a0(a) },
    ref: () => Number.NaN,
    doc: 'running sum s = s + x, from s = 0 (Adagrad)',
  }),
  prim({
    name: 'runmax',
    category: 'state',
    arity: 1,
    args: [X],
    state: { init: Number.NEGATIVE_INFINITY, update: (s, a) => Math.max(s, a0(a)) },
    ref: () => Number.NaN,
    doc: 'running maximum s = max(s, x), from s = -inf (AMSGrad)',
  }),
  // Schedules: scalar functions of the step.
  prim({
    name: 'lindecay',
    category: 'schedule',
    arity: 1,
    args: [['steps', 'scalar']],
    scalarResult: true,
    ranges: [{ arg: 0, min: 0, max: Number.POSITIVE_INFINITY, minOpen: true }],
    ref: (a, c) => linearDecay(c.t, a0(a)),
    doc: 'linear decay max(0, (T - min(s,T))/T) at s = t - 1 (TF sign_decay)',
  }),
  prim({
    name: 'cosdecay',
    category: 'schedule',
    arity: 2,
    args: [
      ['steps', 'scalar'],
      ['periods', 'scalar'],
    ],
    scalarResult: true,
    ranges: [{ arg: 0, min: 0, max: Number.POSITIVE_INFINITY, minOpen: true }],
    ref: (a, c) => cosineDecay(c.t, a0(a), a1(a)),
    doc: 'cosine decay 0.5*(1+cos(2*pi*n*min(s,T)/T)) at s = t - 1',
  }),
  prim({
    name: 'restartdecay',
    category: 'schedule',
    arity: 2,
    args: [
      ['steps', 'scalar'],
      ['periods', 'scalar'],
    ],
    scalarResult: true,
    ranges: [{ arg: 0, min: 0, max: Number.POSITIVE_INFINITY, minOpen: true }],
    ref: (a, c) => restartDecay(c.t, a0(a), a1(a)),
    doc: 'restart decay 0.5*(1+cos(pi*((n*min(s,T)) mod T)/T)) at s = t - 1',
  }),
  // Stochastic: one independent draw per element, per step, per occurrence.
  prim({
    name: 'noise',
    category: 'stochastic',
    arity: 0,
    stochastic: { draw: 'normal', scale: noiseStd },
    ref: (_a, c, z) => z * noiseStd(c),
    doc: 'Gaussian noise N(0, 0.01) (variance 0.01, std 0.1)',
  }),
  prim({
    name: 'anoise',
    category: 'stochastic',
    arity: 0,
    stochastic: { draw: 'normal', scale: anoiseStd },
    ref: (_a, c, z) => z * anoiseStd(c),
    doc: 'annealed noise N(0, 1/(1+s)^0.55) at s = t - 1 (Neelakantan et al.)',
  }),
  prim({
    name: 'drop',
    category: 'stochastic',
    arity: 2,
    args: [X, ['p', 'scalar']],
    stochastic: { draw: 'uniform' },
    ranges: [{ arg: 1, min: 0, max: 1, maxOpen: true }],
    complementOf: 1,
    ref: (a, _c, u) => (u < a1(a) ? 0 : a0(a) / a2(a)),
    doc: 'dropout: 0 with probability p, else x/(1-p)',
  }),
] as const;

type Entry = (typeof PRIMITIVES)[number];
/** Every primitive's name. */
export type PrimName = Entry['name'];
/** Stateful primitives: one slot per distinct call. */
export type StatePrim = Extract<Entry, { readonly category: 'state' }>['name'];
/** Scalar functions of the step (always computed once per step). */
export type SchedulePrim = Extract<Entry, { readonly category: 'schedule' }>['name'];
/** Scaled noise: `draw * scale(t)`, lowered to a multiplication by a per-step scalar. */
export type NoisePrim = Extract<Entry, { readonly stochastic: { readonly scale: unknown } }>['name'];
/** Primitives computed per element, with their draw (if any) as the last argument. */
export type TensorPrim = Exclude<PrimName, StatePrim | SchedulePrim | NoisePrim>;
/** Primitives a per-step scalar expression can contain. */
export type ScalarPrim = Exclude<PrimName, StatePrim | NoisePrim | 'drop'>;

export const PRIMITIVE_BY_NAME: ReadonlyMap<string, Primitive> = new Map(
  PRIMITIVES.map((p): [string, Primitive] => [p.name, p]),
);

/** Primitives that are written as function calls in the language (everything but the operators). */
export const FUNCTION_NAMES: readonly string[] = PRIMITIVES.filter((p) => !p.operator).map((p) => p.name);

export type LeafName = 'g' | 'w' | 't';

export interface Leaf {
  readonly name: LeafName;
  readonly kind: ArgKind;
  readonly doc: string;
}

/** Values the rule reads from the training step. */
export const LEAVES: readonly Leaf[] = [
  { name: 'g', kind: 'tensor', doc: 'the gradient' },
  { name: 'w', kind: 'tensor', doc: 'the weights before this update' },
  { name: 't', kind: 'scalar', doc: 'the 1-based number of this update' },
];

/** Named numbers. */
export const CONSTANTS: ReadonlyMap<string, number> = new Map([
  ['e', Math.E],
  ['pi', Math.PI],
]);

/**
 * Context hyperparameters: a rule that reads one gets it as a hyperparameter with this
 * default; a training harness sets it (T = the number of steps it will run).
 */
export const CONTEXT_PARAMS: ReadonlyMap<string, { readonly default: number; readonly doc: string }> = new Map([
  ['T', { default: 1000, doc: 'decay steps: the training harness sets it to its step budget' }],
]);

export interface Alias {
  readonly name: string;
  readonly text: string;
  readonly doc: string;
}

/** Short names from the NOS paper, expanded where they are read. Rules may rebind them. */
export const ALIASES: readonly Alias[] = [
  { name: 'm', text: 'ema(g, 0.9)', doc: 'moving average of g (beta 0.9)' },
  { name: 'v', text: 'ema(g^2, 0.999)', doc: 'moving average of g^2 (beta 0.999)' },
  { name: 'gamma', text: 'ema(g^3, 0.999)', doc: 'moving average of g^3 (beta 0.999)' },
  { name: 'ld', text: 'lindecay(T)', doc: 'linear decay over T steps' },
  { name: 'cd', text: 'cosdecay(T, 0.5)', doc: 'cosine decay over T steps, half a period' },
  { name: 'rd', text: 'restartdecay(T, 1)', doc: 'restart decay over T steps, one period' },
];

export const ALIAS_BY_NAME: ReadonlyMap<string, Alias> = new Map(ALIASES.map((a) => [a.name, a]));

/** Words the language reserves. */
export const KEYWORDS: readonly string[] = ['rule'];
