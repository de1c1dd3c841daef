/**
 * Every primitive on special values, as one set of cases every back end runs (see
 * tests/dsl/special-values.test.ts). A case is a rule and two steps: step 1 feeds y (held by
 * `prev(runmax(g))`: runmax starts at -inf, so it holds y exactly, -0 and NaN included), step 2
 * feeds x; the direction of step 2 is read exactly by resetting w to -0 before it and
 * stepping with lr = -1 (w = -0 + d, every d unchanged, -0 included; the PyTorch export,
 * which refuses a negative lr, steps with lr = 1 and reports -w).
 */

/** float32 values: NaN, +-Inf, +-0, subnormals, the smallest normal, tiny, huge, ordinary. */
export const SPECIALS: readonly number[] = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  1e-40,
  -1e-40,
  1.1754943508222875e-38,
  1e-30,
  -1e-30,
  0.5,
  1,
  -1,
  2,
  -2.5,
  3,
  1e30,
  3e38,
  -3e38,
].map(Math.fround);

export interface SpecialCase {
  readonly id: string;
  /** Rule text (a bare expression or a `rule` with hyperparameters). */
  readonly text: string;
  readonly params: Readonly<Record<string, number>>;
  /** What the case draws: exact comparisons need the interpreter's draws (in-process back ends only). */
  readonly draws: 'none' | 'noise' | 'dropout';
}

/** y: the first element of each (x, y) pair; x: the second. Every pair of SPECIALS. */
export function specialInputs(): { y: number[]; x: number[] } {
  const y: number[] = [];
  const x: number[] = [];
  for (const a of SPECIALS)
    for (const b of SPECIALS) {
      x.push(a);
      y.push(b);
    }
  return { y, x };
}

const Y = 'prev(runmax(g))';

/** The cases: every tensor primitive, the scalar-argument forms, state, schedules, draws. */
export function specialCases(): SpecialCase[] {
  const c = (id: string, text: string, params: Record<string, number> = {}, draws: SpecialCase['draws'] = 'none') => ({
    id,
    text,
    params,
    draws,
  });
  return [
    // Arithmetic on two tensors (x = g, y = the carried value), and with a scalar on either side.
    c('add', `g + ${Y}`),
    c('sub', `g - ${Y}`),
    c('mul', `g * ${Y}`),
    c('div', `g / ${Y}`),
    c('pow', `g ^ ${Y}`),
    c('neg', '-g'),
    c('div-scalar', 'g / 3'),
    c('div-zero', 'g / 0'),
    c('scalar-div', '2 / g'),
    c('scalar-sub', '2 - g'),
    c('pow-2', 'g ^ 2'),
    c('pow-3', 'g ^ 3'),
    c('pow-half', 'g ^ 0.5'),
    c('pow-minus-1', 'g ^ -1'),
    c('pow-param', 'rule p(k = 1.5) = g ^ k', { k: 1.5 }),
    c('scalar-pow', '(-2) ^ g'),
    c('scalar-pow-half', '0.5 ^ g'),
    // Elementwise functions.
    c('exp', 'exp(g)'),
    c('log', 'log(g)'),
    c('sqrt', 'sqrt(g)'),
    c('abs', 'abs(g)'),
    c('cos', 'cos(g)'),
    c('floor', 'floor(g)'),
    c('square', 'square(g)'),
    c('sign', 'sign(g)'),
    c('clip', 'clip(g, 0.5)'),
    c('clip-tiny', 'clip(g, 1e-30)'),
    c('min', `min(g, ${Y})`),
    c('max', `max(g, ${Y})`),
    c('min-scalar', 'min(g, 0.5)'),
    c('max-scalar', 'max(g, -1)'),
    c('lerp', `lerp(g, ${Y}, 0.3)`),
    c('lerp-weight', `lerp(2, g, ${Y})`),
    c('keep', `keep(${Y}, g)`),
    // Known non-negative arguments (no |.| in the PyTorch export).
    c('log-square', 'log(g * g)'),
    c('sqrt-ema', 'sqrt(ema(g^2, 0.999))'),
    // State: step 1 fed y, step 2 x.
    c('ema', 'ema(g, 0.9)'),
    c('ema-0', 'ema(g, 0)'),
    c('ema-1', 'ema(g, 1)'),
    c('ema-square', 'ema(g^2, 0.999)'),
    c('accum', 'accum(g, 0.9)'),
    c('accum-negative', 'accum(g, -2)'),
    c('sum', 'sum(g)'),
    c('sum-square', 'sum(g * g)'),
    c('runmax', 'runmax(g)'),
    c('prev-ema', 'g + prev(ema(g, 0.9))'),
    // Schedules (scalars of t = 2 and T) times the gradient.
    c('lindecay', 'rule s(T = 3) = lindecay(T) * g', { T: 3 }),
    c('lindecay-short', 'rule s(T = 0.5) = lindecay(T) * g', { T: 0.5 }),
    c('cosdecay', 'rule s(T = 3) = cosdecay(T, 0.5) * g', { T: 3 }),
    c('restartdecay', 'rule s(T = 0.7) = restartdecay(T, 2.5) * g', { T: 0.7 }),
    // Draws: exact where the interpreter's draws are used, by their law in the exports.
    c('noise', 'g + noise', {}, 'noise'),
    c('anoise', 'g * anoise', {}, 'noise'),
    c('drop', 'drop(g, 0.3)', {}, 'dropout'),
    c('drop-none', 'drop(g, 0)'),
  ];
}

/** The smallest float32 subnormal (2^-149). */
const SUBNORMAL_ULP = 2 ** -149;
const isSubnormal = (v: number) => v !== 0 && Math.abs(v) < 2 ** -126;

/**
 * Same result: both NaN, or equal (zeros of either sign), or within `rel` of each other, or
 * within 4 ulps where the values are subnormal (float32 ops there keep few digits).
 */
export function sameValue(a: number, b: number, rel: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= Math.max(rel * Math.max(Math.abs(a), Math.abs(b)), 4 * SUBNORMAL_ULP);
}

const f = Math.fround;

/**
 * The composite primitives' formulas op by op in float32, as float32 back ends compute them:
 * the interpreter computes each primitive in float64 and rounds its result, so near the
 * float32 maximum an intermediate of `a + w * (b - a)` or `mu * s + x` overflows in float32
 * where the interpreter's does not. (Step 1 feeds y, step 2 x; state starts at 0.)
 */
export const FLOAT32_FORMULAS: Readonly<Record<string, (x: number, y: number) => number>> = {
  lerp: (x, y) => f(x + f(f(0.3) * f(y - x))),
  accum: (x, y) => f(f(f(0.9) * y) + x),
  'accum-negative': (x, y) => f(f(-2 * y) + x),
};

/** Why a back end may differ from the interpreter on this element (a documented allowance), or undefined. */
export function allowance(backend: string, id: string, x: number, y: number, got: number): string | undefined {
  const formula = FLOAT32_FORMULAS[id];
  if (formula !== undefined && sameValue(formula(x, y), got, 2e-6)) return 'float32 intermediates';
  // tfjs's cos (tf, and the ts export's tfjs ops) and WGSL's do not reduce huge arguments exactly.
  if ((backend === 'tf' || backend === 'ts' || backend === 'wgsl') && id === 'cos' && Math.abs(x) > 1e4)
    return 'cos of a huge argument';
  // WGSL may flush subnormal inputs and results to zero (WGSL spec, floating-point evaluation).
  if (backend === 'wgsl' && (isSubnormal(x) || isSubnormal(y))) return 'subnormal input flushed';
  if (backend === 'wgsl' && got === 0) return 'subnormal result flushed';
  return undefined;
}
