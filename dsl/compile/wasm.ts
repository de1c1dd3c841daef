/**
 * The WebAssembly SIMD back end: each rule becomes one wasm module whose exported `step`
 * runs a 128-bit SIMD loop (f32x4, four parameters at a time) over the weights, the
 * gradient, the rule's state and its draws, all in the module's linear memory.
 *
 * Generated from the shared lowering (`lowerRule`), like every back end:
 *  - tensor steps become SIMD instructions from the template tables below, which are checked
 *    complete against the registry (`satisfies Record<TensorPrim, ...>` and `StatePrim`);
 *  - scalar steps (constants, hyperparameters, t, bias corrections, schedules, noise scales)
 *    are computed on the host each step by `scalarValues`, written as float32 into the
 *    scalar block of linear memory, and splatted into v128 locals before the loop. A
 *    division by a scalar multiplies by its reciprocal (computed on the host in float64,
 *    rounded once); `ema`'s and `drop`'s `1 - x` are scalar steps of the lowering themselves.
 * So the module's bytes hold the program's shape (which operations, how many slots) and the
 * fixed constants of the templates (1, 0.5, the exp/log polynomial coefficients), never a
 * number or a name from rule text. `encodeModule` emits the binary itself (./wasm-encode.ts).
 *
 * Semantics: float32 throughout, as float32 hardware (and the tf back end) computes; state
 * is stored as float32. Compare with the interpreter's `float32Intermediates: true`.
 *  - `exp` and `log` are SIMD polynomials (Cephes expf/logf: range reduction to a power of
 *    two, then a polynomial; within 1 ulp of the correctly rounded float32 result on the tests' sweep,
 *    with the interpreter's inf/0/NaN at the edges and subnormal inputs and outputs).
 *  - `cos` and the guarded `pow` have no SIMD form: they are computed lane by lane in the
 *    same loop by calling imported JS functions (`Math.cos`, the registry's `guardedPow`)
 *    on float64, exactly as the interpreter does. `pow` with a scalar exponent that equals
 *    2 at run time (g^2, the common case) takes a SIMD x*x branch instead. `laneOps` lists
 *    the lane-by-lane primitives of a module: it is empty for every built-in rule.
 *  - `sign`, `min`/`max` (NaN-propagating like Math.min/max), `clip`, `drop` (its uniform
 *    draw is the third argument) are built from SIMD comparisons and bit selects.
 *
 * Memory: one module per compiled rule, one instance (and linear memory) per kernel size.
 * `WasmKernel.step(w, g, lr)` copies w and g in and w out (the `VectorKernel` contract); to
 * avoid the copies keep the weights resident: write gradients into `kernel.grads`, call
 * `kernel.stepResident(lr)`, read `kernel.weights` (views of the module's memory, which never
 * grows, so the views stay valid for the kernel's life).
 */
import { guardedPow, type StatePrim, type TensorPrim } from '../../primitives/registry.js';
import { DrawSource } from '../draws.js';
import type { Vec } from '../interp.js';
import { liveSteps, type Program, scalarValues, type Step } from '../lower.js';
import { UnsupportedError } from './js.js';
import { Body, encodeModule, F32, F64, type FuncImport, I32, type ValType, V128 } from './wasm-encode.js';

// ---------------------------------------------------------------------------------------
// The host's WebAssembly API (typed here: the project's `lib` has no DOM types).

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}
type Imports = Readonly<Record<string, Readonly<Record<string, unknown>>>>;
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => WasmModule;
  readonly Instance: new (module: WasmModule, imports: Imports) => WasmInstance;
  readonly Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}

function wasmApi(): WasmApi | undefined {
  const api = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  return api === undefined || typeof api.Module !== 'function' ? undefined : api;
}

// ---------------------------------------------------------------------------------------
// Host scalars and lane-by-lane imports.

/** How a host scalar is derived from a scalar step's value (in float64, then rounded to float32). */
export type Derive = 'value' | 'recip';
const DERIVE = {
  value: (x: number) => x,
  recip: (x: number) => 1 / x,
} as const satisfies Record<Derive, (x: number) => number>;

/** Functions a module may import for the lanes of a primitive with no SIMD form (float64 in and out). */
const LANE_IMPORTS = {
  pow: { fn: guardedPow, arity: 2 },
  cos: { fn: Math.cos, arity: 1 },
} as const;
type LaneImport = keyof typeof LANE_IMPORTS;

// ---------------------------------------------------------------------------------------
// Templates: each pushes one v128 (the step's four values) onto the wasm stack.

/** A step's value as an operand: the v128 local that holds it, and its step when it is a per-step scalar. */
export interface Arg {
  readonly local: number;
  readonly scalarStep?: number;
}

interface Emitter {
  /** Code of the loop body. */
  readonly b: Body;
  /** A v128 local holding a derived host scalar of `a`, when `a` is a per-step scalar. */
  derived(a: Arg, how: Derive): number | undefined;
  /** An i32 local that is 1 when the scalar `a` equals 2 this step (undefined for a tensor). */
  isTwo(a: Arg): number | undefined;
  /** A v128 local holding a fixed float32 constant in every lane (set before the loop). */
  f(x: number): number;
  /** A v128 local holding a fixed int32 constant in every lane. */
  i(n: number): number;
  /** A fresh v128 local. */
  temp(): number;
  /** Compute `name` lane by lane through its JS import (float64), leaving the v128 on the stack. */
  lanes(name: LaneImport, a: readonly Arg[], when?: LaneOp['when']): void;
}

type Tpl = (e: Emitter, a: readonly Arg[]) => void;
type StateTpl = (e: Emitter, old: number, a: readonly Arg[]) => void;

const at = (a: readonly Arg[], i: number): number => {
  const x = a[i];
  if (x === undefined) throw new Error(`template argument ${i} missing`);
  return x.local;
};
const argAt = (a: readonly Arg[], i: number): Arg => {
  const x = a[i];
  if (x === undefined) throw new Error(`template argument ${i} missing`);
  return x;
};

const binary =
  (op: 'f32x4.add' | 'f32x4.sub' | 'f32x4.mul' | 'f32x4.div' | 'f32x4.min' | 'f32x4.max'): Tpl =>
  (e, a) => {
    e.b.get(at(a, 0)).get(at(a, 1)).simd(op);
  };
const unary =
  (op: 'f32x4.neg' | 'f32x4.abs' | 'f32x4.floor'): Tpl =>
  (e, a) => {
    e.b.get(at(a, 0)).simd(op);
  };

/**
 * Push p(x) for coefficients from the highest power down, by Estrin's scheme (pairs
 * a + b*x, then pairs of those with x^2, x^4, ...): a shorter dependency chain than Horner's,
 * so more loop iterations overlap. `x2` holds x*x.
 */
function polynomial(e: Emitter, x: number, x2: number, highFirst: readonly number[]): void {
  const b = e.b;
  const asc = [...highFirst].reverse();
  let terms: number[] = [];
  for (let k = 0; k < asc.length; k += 2) {
    const lo = asc[k] as number;
    const hi = asc[k + 1];
    if (hi === undefined) terms.push(e.f(lo));
    else {
      const t = e.temp();
      b.get(e.f(hi)).get(x).simd('f32x4.mul').get(e.f(lo)).simd('f32x4.add').set(t);
      terms.push(t);
    }
  }
  let power = x2;
  while (terms.length > 1) {
    const next: number[] = [];
    for (let k = 0; k < terms.length; k += 2) {
      const lo = terms[k] as number;
      const hi = terms[k + 1];
      if (hi === undefined) next.push(lo);
      else {
        const t = e.temp();
        b.get(hi).get(power).simd('f32x4.mul').get(lo).simd('f32x4.add').set(t);
        next.push(t);
      }
    }
    terms = next;
    if (terms.length > 1) {
      const p2 = e.temp();
      b.get(power).get(power).simd('f32x4.mul').set(p2);
      power = p2;
    }
  }
  b.get(terms[0] as number);
}

/**
 * Cephes expf: e^x = 2^n * e^r, |r| <= ln2/2, a degree-5 polynomial for e^r - 1 - r. n is
 * rounded to nearest by adding 1.5 * 2^23 (its bits then hold n), which saves a floor and
 * a float-to-int conversion (both multi-instruction sequences on x64 SSE).
 */
const EXP = {
  lo: -104,
  hi: 89,
  log2e: Math.LOG2E,
  magic: 12582912,
  magicBits: 0x4b400000,
  c1: 0.693359375,
  c2: -2.1219444e-4,
  p: [1.98756915e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1],
};

function expOf(e: Emitter, x: number): void {
  const b = e.b;
  const xc = e.temp();
  const t = e.temp();
  const fx = e.temp();
  const r = e.temp();
  const n = e.temp();
  const n1 = e.temp();
  // Clamped so 2^n stays representable in two factors: exp(-104) rounds to 0, exp(89) to inf.
  // pmax(x, lo) = x < lo ? lo : x and pmin(v, hi) = hi < v ? hi : v keep a NaN x (one instruction each).
  b.get(x).get(e.f(EXP.lo)).simd('f32x4.pmax').get(e.f(EXP.hi)).simd('f32x4.pmin').set(xc);
  b.get(xc).get(e.f(EXP.log2e)).simd('f32x4.mul').get(e.f(EXP.magic)).simd('f32x4.add').set(t);
  b.get(t).get(e.f(EXP.magic)).simd('f32x4.sub').set(fx);
  b.get(t).get(e.i(EXP.magicBits)).simd('i32x4.sub').set(n);
  b.get(xc)
    .get(fx)
    .get(e.f(EXP.c1))
    .simd('f32x4.mul')
    .simd('f32x4.sub')
    .get(fx)
    .get(e.f(EXP.c2))
    .simd('f32x4.mul')
    .simd('f32x4.sub')
    .set(r);
  b.get(n).i32(1).simd('i32x4.shr_s').set(n1);
  // y = p(r) * r^2 + r + 1
  const z = e.temp();
  b.get(r).get(r).simd('f32x4.mul').set(z);
  polynomial(e, r, z, EXP.p);
  b.get(z).simd('f32x4.mul').get(r).simd('f32x4.add').get(e.f(1)).simd('f32x4.add');
  // * 2^n1 * 2^(n - n1): each factor a normal float32, the product rounds once (subnormal results too).
  b.get(n1).get(e.i(127)).simd('i32x4.add').i32(23).simd('i32x4.shl').simd('f32x4.mul');
  b.get(n).get(n1).simd('i32x4.sub').get(e.i(127)).simd('i32x4.add').i32(23).simd('i32x4.shl').simd('f32x4.mul');
}

/** Cephes logf on |x|: x = 2^e * m, m in [sqrt(1/2), sqrt(2)), a degree-8 polynomial for log(m). */
const LOG = {
  minNormal: 2 ** -126,
  subnormalScale: 2 ** 25,
  sqrtHalf: Math.SQRT1_2,
  c1: 0.693359375,
  c2: -2.1219444e-4,
  p: [
    7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
    2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
  ],
};

function logAbsOf(e: Emitter, x: number): void {
  const b = e.b;
  const a = e.temp();
  const small = e.temp();
  const s = e.temp();
  const ef = e.temp();
  const m = e.temp();
  const lt = e.temp();
  const z = e.temp();
  const r = e.temp();
  b.get(x).simd('f32x4.abs').set(a);
  // Subnormal inputs: scale into the normal range first.
  b.get(a).get(e.f(LOG.minNormal)).simd('f32x4.lt').set(small);
  b.get(a).get(e.f(LOG.subnormalScale)).simd('f32x4.mul').get(a).get(small).simd('v128.bitselect').set(s);
  // Exponent (as float) and mantissa in [0.5, 1).
  b.get(s)
    .i32(23)
    .simd('i32x4.shr_u')
    .get(e.i(126))
    .simd('i32x4.sub')
    .get(small)
    .get(e.i(25))
    .simd('v128.and')
    .simd('i32x4.sub')
    .simd('f32x4.convert_i32x4_s')
    .set(ef);
  b.get(s).get(e.i(0x007fffff)).simd('v128.and').get(e.i(0x3f000000)).simd('v128.or').set(m);
  // m < sqrt(1/2): e -= 1, m = 2m - 1; else m = m - 1 (both exact).
  b.get(m).get(e.f(LOG.sqrtHalf)).simd('f32x4.lt').set(lt);
  b.get(ef).get(lt).get(e.f(1)).simd('v128.and').simd('f32x4.sub').set(ef);
  b.get(m).get(e.f(1)).simd('f32x4.sub').get(lt).get(m).simd('v128.and').simd('f32x4.add').set(m);
  b.get(m).get(m).simd('f32x4.mul').set(z);
  polynomial(e, m, z, LOG.p);
  b.get(m).simd('f32x4.mul').get(z).simd('f32x4.mul');
  b.get(ef).get(e.f(LOG.c2)).simd('f32x4.mul').simd('f32x4.add');
  b.get(e.f(0.5)).get(z).simd('f32x4.mul').simd('f32x4.sub');
  b.get(m).simd('f32x4.add').get(ef).get(e.f(LOG.c1)).simd('f32x4.mul').simd('f32x4.add').set(r);
  // log 0 = -inf, log inf = inf, NaN stays NaN.
  b.get(e.f(Number.NEGATIVE_INFINITY)).get(r).get(a).get(e.f(0)).simd('f32x4.eq').simd('v128.bitselect').set(r);
  b.get(e.f(Number.POSITIVE_INFINITY))
    .get(r)
    .get(a)
    .get(e.f(Number.POSITIVE_INFINITY))
    .simd('f32x4.eq')
    .simd('v128.bitselect')
    .set(r);
  b.get(a).get(r).get(a).get(a).simd('f32x4.ne').simd('v128.bitselect');
}

/** sign(x): 1, -1, 0 for 0 (either sign), NaN for NaN. */
function signOf(e: Emitter, x: number): void {
  const b = e.b;
  b.get(x).get(e.f(0)).simd('f32x4.gt').get(e.f(1)).simd('v128.and');
  b.get(x).get(e.f(0)).simd('f32x4.lt').get(e.f(-1)).simd('v128.and').simd('v128.or');
  b.get(x).get(x).simd('f32x4.ne').get(x).simd('v128.and').simd('v128.or');
}

/** Per-element templates. */
const EXPR = {
  add: binary('f32x4.add'),
  sub: binary('f32x4.sub'),
  mul: binary('f32x4.mul'),
  div: (e, a) => {
    const recip = e.derived(argAt(a, 1), 'recip');
    if (recip === undefined) e.b.get(at(a, 0)).get(at(a, 1)).simd('f32x4.div');
    else e.b.get(at(a, 0)).get(recip).simd('f32x4.mul');
  },
  pow: (e, a) => {
    const two = e.isTwo(argAt(a, 1));
    if (two === undefined) {
      e.lanes('pow', a);
      return;
    }
    e.b.get(two).begin('if', V128).get(at(a, 0)).get(at(a, 0)).simd('f32x4.mul').else();
    e.lanes('pow', a, 'exponent is not 2');
    e.b.end();
  },
  neg: unary('f32x4.neg'),
  exp: (e, a) => expOf(e, at(a, 0)),
  log: (e, a) => logAbsOf(e, at(a, 0)),
  sqrt: (e, a) => {
    e.b.get(at(a, 0)).simd('f32x4.abs').simd('f32x4.sqrt');
  },
  abs: unary('f32x4.abs'),
  cos: (e, a) => e.lanes('cos', a),
  floor: unary('f32x4.floor'),
  square: (e, a) => {
    e.b.get(at(a, 0)).get(at(a, 0)).simd('f32x4.mul');
  },
  sign: (e, a) => signOf(e, at(a, 0)),
  clip: (e, a) => {
    e.b.get(at(a, 0)).get(at(a, 1)).simd('f32x4.neg').simd('f32x4.max').get(at(a, 1)).simd('f32x4.min');
  },
  min: binary('f32x4.min'),
  max: binary('f32x4.max'),
  lerp: (e, a) => {
    e.b.get(at(a, 0)).get(at(a, 2)).get(at(a, 1)).get(at(a, 0)).simd('f32x4.sub').simd('f32x4.mul').simd('f32x4.add');
  },
  keep: (e, a) => {
    e.b.get(at(a, 0));
  },
  // drop(x, p, 1 - p, u): u < p ? 0 : x / (1 - p); the lowering passes 1 - p (host float64 for a scalar p).
  drop: (e, a) => {
    e.b.get(at(a, 0)).get(at(a, 2)).simd('f32x4.div').get(at(a, 3)).get(at(a, 1)).simd('f32x4.lt').simd('v128.andnot');
  },
} as const satisfies Record<TensorPrim, Tpl>;

/** New-state templates (`old`: the state before this step). */
const STATE = {
  // ema(x, beta, 1 - beta): the lowering passes 1 - beta (host float64 for a scalar beta).
  ema: (e, old, a) => {
    e.b.get(at(a, 1)).get(old).simd('f32x4.mul').get(at(a, 2)).get(at(a, 0)).simd('f32x4.mul').simd('f32x4.add');
  },
  accum: (e, old, a) => {
    e.b.get(at(a, 1)).get(old).simd('f32x4.mul').get(at(a, 0)).simd('f32x4.add');
  },
  sum: (e, old, a) => {
    e.b.get(old).get(at(a, 0)).simd('f32x4.add');
  },
  runmax: (e, old, a) => {
    e.b.get(old).get(at(a, 0)).simd('f32x4.max');
  },
} as const satisfies Record<StatePrim, StateTpl>;

/** Names of every per-element and state primitive this back end compiles. */
export const WASM_PRIMITIVES: readonly string[] = [...Object.keys(EXPR), ...Object.keys(STATE)];
/** Primitives computed lane by lane through an imported JS function (no SIMD form). */
export const WASM_LANE_PRIMITIVES: readonly string[] = Object.keys(LANE_IMPORTS);

// ---------------------------------------------------------------------------------------
// Code generation.

/** The kernel's parameters: pointers into linear memory, the array stride, the loop end (bytes) and lr. */
const PARAMS: readonly ValType[] = [I32, I32, I32, I32, I32, I32, I32, F32];
const P = { k: 0, w: 1, g: 2, s: 3, d: 4, stride: 5, end: 6, lr: 7 } as const;

export interface HostScalar {
  readonly step: number;
  readonly derive: Derive;
}

export interface WasmProgram {
  /** The module's bytes. */
  readonly bytes: Uint8Array;
  readonly module: WasmModule;
  /** The scalar block: what the host writes at each float32 position before each step. */
  readonly scalars: readonly HostScalar[];
  /** JS functions the module imports for lane-by-lane primitives. */
  readonly imports: readonly LaneImport[];
  /**
   * Primitives of this rule computed lane by lane (no SIMD form): `always`, or only while a
   * scalar exponent is not 2 (`pow` takes a SIMD x*x branch when it is). No built-in rule
   * has an `always` entry.
   */
  readonly laneOps: readonly LaneOp[];
}

export interface LaneOp {
  readonly prim: LaneImport;
  readonly when: 'always' | 'exponent is not 2';
}

function importsFor(names: readonly LaneImport[], memory: WasmMemory): Imports {
  const m: Record<string, unknown> = {};
  for (const n of names) m[n] = LANE_IMPORTS[n].fn;
  return { env: { memory }, m };
}

/** Generate and compile the module of a lowered rule. Throws `UnsupportedError` for what it cannot compile. */
export function generateWasm(program: Program): WasmProgram {
  const api = wasmApi();
  if (api === undefined) throw new UnsupportedError('wasm', 'anything here: this JavaScript engine has no WebAssembly');
  const main = new Body(PARAMS);
  const pre = main.fork(); // before the loop
  const b = main.fork(); // the loop body
  const scalars: HostScalar[] = [];
  const scalarLocals = new Map<string, number>();
  const constLocals = new Map<string, number>();
  const twoFlags = new Map<number, number>();
  const imports: LaneImport[] = [];
  const laneOps = new Map<string, LaneOp>();

  const stepOf = (k: number): Step => {
    const s = program.steps[k];
    if (s === undefined) throw new Error(`no step ${k}`);
    return s;
  };
  const hostScalar = (step: number, derive: Derive): number => {
    const key = `${step}:${derive}`;
    let local = scalarLocals.get(key);
    if (local === undefined) {
      local = main.local(V128);
      pre
        .get(P.k)
        .mem('v128.load32_splat', 4 * scalars.length)
        .set(local);
      scalars.push({ step, derive });
      scalarLocals.set(key, local);
    }
    return local;
  };
  const constant = (key: string, emit: (c: Body) => void): number => {
    let local = constLocals.get(key);
    if (local === undefined) {
      local = main.local(V128);
      emit(pre);
      pre.set(local);
      constLocals.set(key, local);
    }
    return local;
  };
  const emitter: Emitter = {
    b,
    derived: (a, how) => (a.scalarStep === undefined ? undefined : hostScalar(a.scalarStep, how)),
    isTwo: (a) => {
      if (a.scalarStep === undefined) return undefined;
      let flag = twoFlags.get(a.scalarStep);
      if (flag === undefined) {
        flag = main.local(I32);
        pre.get(hostScalar(a.scalarStep, 'value')).lane('f32x4.extract_lane', 0).f32(2).plain('f32.eq').set(flag);
        twoFlags.set(a.scalarStep, flag);
      }
      return flag;
    },
    f: (x) => constant(`f${Object.is(x, -0) ? '-0' : String(x)}`, (c) => c.f32x4(x)),
    i: (n) => constant(`i${n}`, (c) => c.i32x4(n)),
    temp: () => main.local(V128),
    lanes: (name, a, when = 'always') => {
      const spec = LANE_IMPORTS[name];
      if (a.length !== spec.arity) throw new Error(`${name}: expected ${spec.arity} arguments, got ${a.length}`);
      let fn = imports.indexOf(name);
      if (fn < 0) fn = imports.push(name) - 1;
      laneOps.set(`${name}:${when}`, { prim: name, when });
      b.get(at(a, 0));
      for (let lane = 0; lane < 4; lane++) {
        for (const x of a) b.get(x.local).lane('f32x4.extract_lane', lane).plain('f64.promote_f32');
        b.call(fn).plain('f32.demote_f64').lane('f32x4.replace_lane', lane);
      }
    },
  };

  // Per-array base pointers (state slots and draws are `stride` bytes apart).
  const base = (ptr: number, k: number): number => {
    const local = main.local(I32);
    pre.i32(k).get(P.stride).plain('i32.mul').get(ptr).plain('i32.add').set(local);
    return local;
  };
  const slotBase = program.slots.map((_s, k) => base(P.s, k));
  const drawBase = program.draws.map((_d, j) => base(P.d, j));
  const i = main.local(I32);
  const load = (ptr: number): number => {
    const local = main.local(V128);
    b.get(ptr).get(i).plain('i32.add').mem('v128.load').set(local);
    return local;
  };

  // Loop body: read w, g and the old state, then each live step in order.
  const W = load(P.w);
  const G = load(P.g);
  const old = slotBase.map((ptr) => load(ptr));
  const live = liveSteps(program);
  const value = new Map<number, number>(); // step -> v128 local
  const argOf = (k: number): Arg => {
    const s = stepOf(k);
    if (s.kind === 'scalar') return { local: hostScalar(k, 'value'), scalarStep: k };
    const local = value.get(k);
    if (local === undefined) throw new Error(`step ${k} has no value yet`);
    return { local };
  };
  program.steps.forEach((s, k) => {
    if (!live[k] || s.kind === 'scalar') return;
    switch (s.op) {
      case 'leaf':
        value.set(k, s.leaf === 'g' ? G : W);
        break;
      case 'prev':
        value.set(k, old[s.slot] as number);
        break;
      case 'draw':
        value.set(k, load(drawBase[s.draw] as number));
        break;
      case 'tensor': {
        const tpl: Tpl | undefined = EXPR[s.prim];
        if (tpl === undefined) throw new UnsupportedError('wasm', `primitive '${s.prim}'`);
        tpl(emitter, s.args.map(argOf));
        const local = main.local(V128);
        b.set(local);
        value.set(k, local);
        break;
      }
      case 'state': {
        const tpl: StateTpl | undefined = STATE[s.prim];
        if (tpl === undefined) throw new UnsupportedError('wasm', `state primitive '${s.prim}'`);
        tpl(emitter, old[s.slot] as number, s.args.map(argOf));
        const local = main.local(V128);
        b.set(local);
        value.set(k, local);
        break;
      }
      default:
        throw new UnsupportedError('wasm', `step '${(s as Step).op}'`);
    }
  });
  const d = argOf(program.result).local;
  program.slotSteps.forEach((step, k) => {
    b.get(slotBase[k] as number)
      .get(i)
      .plain('i32.add')
      .get(argOf(step).local)
      .mem('v128.store');
  });
  const lr = main.local(V128);
  pre.get(P.lr).simd('f32x4.splat').set(lr);
  b.get(P.w).get(i).plain('i32.add').get(W).get(lr).get(d).simd('f32x4.mul').simd('f32x4.sub').mem('v128.store');

  // for (i = 0; i < end; i += 16), skipped when end = 0.
  main.append(pre);
  main.begin('block').get(P.end).plain('i32.eqz').brIf(0).begin('loop');
  main.append(b);
  main.get(i).i32(16).plain('i32.add').tee(i).get(P.end).plain('i32.lt_u').brIf(0);
  main.end().end();

  const funcImports: FuncImport[] = imports.map((name) => ({
    module: 'm',
    name,
    params: Array(LANE_IMPORTS[name].arity).fill(F64),
    results: [F64],
  }));
  const bytes = encodeModule({ memoryMinPages: 0, imports: funcImports, body: main, results: [], exportName: 'step' });
  let module: WasmModule;
  try {
    module = new api.Module(bytes);
    // Some hosts (a browser's main thread) refuse synchronous compilation or instantiation of larger modules.
    new api.Instance(module, importsFor(imports, new api.Memory({ initial: 1 })));
  } catch (e) {
    if (e instanceof RangeError) throw new UnsupportedError('wasm', `this module here (${e.message})`);
    throw e;
  }
  return { bytes, module, scalars, imports, laneOps: [...laneOps.values()] };
}

// ---------------------------------------------------------------------------------------
// The kernel.

type StepFn = (k: number, w: number, g: number, s: number, d: number, stride: number, end: number, lr: number) => void;

const PAGE = 65536;

/** A compiled rule bound to a vector size: one module instance with its own memory, holding the state and draws. */
export class WasmKernel {
  readonly backend = 'wasm' as const;
  /** Updates applied so far. */
  t = 0;
  /** Times the SIMD loop ran (tests check that this path, not a fallback, did the work). */
  calls = 0;
  /** Resident weights: a view of the module's memory (see `stepResident`). */
  readonly weights: Float32Array;
  /** Resident gradient: write it here, then call `stepResident`. */
  readonly grads: Float32Array;
  /** The state slots, in the program's slot order (views of the module's memory). */
  readonly state: readonly Float32Array[];
  private readonly draws: readonly Float32Array[];
  private readonly scalarBlock: Float32Array;
  private readonly values: Float64Array;
  private readonly drawSource: DrawSource;
  private readonly fn: StepFn;
  private readonly ptr: {
    readonly k: number;
    readonly w: number;
    readonly g: number;
    readonly s: number;
    readonly d: number;
    readonly stride: number;
    readonly end: number;
  };

  constructor(
    readonly compiled: WasmProgram,
    readonly program: Program,
    private readonly params: Float64Array,
    readonly size: number,
    seed = 0,
  ) {
    const api = wasmApi();
    if (api === undefined) throw new Error('this JavaScript engine has no WebAssembly');
    if (!Number.isInteger(size) || size < 0) throw new RangeError(`size must be a non-negative integer, got ${size}`);
    const stride = Math.ceil(size / 4) * 16;
    const k = 0;
    const w = Math.ceil((4 * compiled.scalars.length) / 16) * 16;
    const g = w + stride;
    const s = g + stride;
    const d = s + program.slots.length * stride;
    const total = d + program.draws.length * stride;
    const pages = Math.max(1, Math.ceil(total / PAGE));
    if (pages > 65536) throw new RangeError(`${size} parameters need ${total} bytes: more than a wasm32 memory holds`);
    const memory = new api.Memory({ initial: pages, maximum: pages });
    const instance = new api.Instance(compiled.module, importsFor(compiled.imports, memory));
    const fn = instance.exports.step;
    if (typeof fn !== 'function') throw new Error('the wasm module exports no step function');
    this.fn = fn as StepFn;
    this.ptr = { k, w, g, s, d, stride, end: stride };
    const buf = memory.buffer;
    this.scalarBlock = new Float32Array(buf, k, compiled.scalars.length);
    this.weights = new Float32Array(buf, w, size);
    this.grads = new Float32Array(buf, g, size);
    this.state = program.slots.map((slot, j) => new Float32Array(buf, s + j * stride, size).fill(slot.init));
    this.draws = program.draws.map((_kind, j) => new Float32Array(buf, d + j * stride, size));
    this.values = new Float64Array(program.steps.length);
    this.drawSource = new DrawSource(seed);
  }

  /** w <- w - lr * d_t, in place (copies w and g into the module's memory and w back out); advances the state. */
  step(w: Vec, g: Vec, lr: number): void {
    if (w.length !== this.size || g.length !== this.size)
      throw new Error(`expected vectors of length ${this.size}, got w ${w.length} and g ${g.length}`);
    this.weights.set(w);
    this.grads.set(g);
    this.stepResident(lr);
    w.set(this.weights);
  }

  /** One update of the resident `weights` with the resident `grads`: no copies. */
  stepResident(lr: number): void {
    const t = ++this.t;
    this.program.draws.forEach((kind, j) => {
      this.drawSource.fill(kind, this.draws[j] as Float32Array);
    });
    const vals = scalarValues(this.program, this.params, t, this.values);
    const block = this.scalarBlock;
    this.compiled.scalars.forEach((h, j) => {
      block[j] = DERIVE[h.derive](vals[h.step] as number); // rounded to float32 once, on the store
    });
    const p = this.ptr;
    this.fn(p.k, p.w, p.g, p.s, p.d, p.stride, p.end, lr);
    this.calls++;
  }
}
