/**
 * The reference interpreter: applies a rule to weight vectors step by step, one element at
 * a time, straight from the registry's scalar semantics. Slow and obviously correct; every
 * compiled back end is tested against it.
 *
 * Semantics of one step (t = 1, 2, ...), per element i:
 *  - the direction d_t is the rule's expression, read with g[i], w[i] (before the update), t;
 *  - each distinct stateful subexpression (same canonical text = same slot) is updated once:
 *    its value is the new state, `prev(...)` reads the state from before this step;
 *    state whose value is not needed is still updated;
 *  - each occurrence of a stochastic primitive takes its own draw;
 *  - w[i] <- w[i] - lr * d_t.
 * State is stored in the run's dtype (float32 by default); intermediates are JS numbers.
 */

import type { Primitive } from '../primitives/registry.js';
import type { CheckedRule } from './check.js';
import { DrawSource } from './draws.js';
import { lowerRule, type Program, paramValues, primOfStep, type Step, scalarValues } from './lower.js';

export type Dtype = 'float32' | 'float64';
export type Vec = Float32Array | Float64Array;

export interface InterpreterOptions {
  readonly size: number;
  readonly params?: Readonly<Record<string, number>>;
  readonly seed?: number;
  readonly dtype?: Dtype;
  /**
   * Round every intermediate to float32 as well, as float32 hardware (and the tf back end)
   * computes. Default false: intermediates are float64, as the fused kernels compute.
   */
  readonly float32Intermediates?: boolean;
}

export class Interpreter {
  readonly program: Program;
  readonly dtype: Dtype;
  readonly state: Vec[];
  /** Number of updates applied so far. */
  t = 0;
  private readonly params: Float64Array;
  private readonly drawSource: DrawSource;
  protected readonly drawBuffers: Float64Array[];

  /** `program`: the rule lowered already (lowerRule(rule)), to run it several times without lowering it again. */
  constructor(
    rule: Pick<CheckedRule, 'params' | 'expr'>,
    readonly options: InterpreterOptions,
    program: Program = lowerRule(rule),
  ) {
    this.program = program;
    this.params = paramValues(rule, options.params ?? {});
    this.dtype = options.dtype ?? 'float32';
    const make = (n: number): Vec => (this.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    this.state = this.program.slots.map((s) => make(options.size).fill(s.init));
    this.drawSource = new DrawSource(options.seed ?? 0);
    this.drawBuffers = this.program.draws.map(() => new Float64Array(options.size));
  }

  /**
   * A step's start, for every way of running it: the vectors' size checked, t advanced, this
   * step's draws made, and the scalar steps' values (once per step, as every back end computes
   * them, in float64; rounded to float32 with float32Intermediates).
   */
  protected begin(w: Vec, g: Vec): { readonly t: number; readonly vals: Float64Array } {
    const n = this.options.size;
    if (w.length !== n || g.length !== n)
      throw new Error(`expected vectors of length ${n}, got w ${w.length} and g ${g.length}`);
    const t = ++this.t;
    this.program.draws.forEach((kind, j) => {
      this.drawSource.fill(kind, this.drawBuffers[j] as Float64Array);
    });
    const { steps } = this.program;
    const vals = scalarValues(this.program, this.params, t);
    if (this.options.float32Intermediates)
      for (let k = 0; k < steps.length; k++)
        if ((steps[k] as Step).kind === 'scalar') vals[k] = Math.fround(vals[k] as number);
    return { t, vals };
  }

  /** Advance one step and return d_t (does not touch w). */
  direction(w: Vec, g: Vec, out: Float64Array = new Float64Array(this.options.size)): Float64Array {
    const n = this.options.size;
    const { t, vals } = this.begin(w, g);
    const round = this.dtype === 'float32' ? Math.fround : (x: number) => x;
    const mid = this.options.float32Intermediates ? Math.fround : (x: number) => x;
    const { steps, slots, slotSteps, result } = this.program;
    const state = this.state;
    const drawBuffers = this.drawBuffers;
    const ctx = { t };
    const args: number[] = [];
    const gather = (s: { readonly args: readonly number[] }, count = s.args.length): number[] => {
      args.length = 0;
      for (let a = 0; a < count; a++) args.push(vals[s.args[a] as number] as number);
      return args;
    };
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < steps.length; k++) {
        const s = steps[k] as Step;
        switch (s.op) {
          case 'leaf':
            if (s.leaf !== 't') vals[k] = s.leaf === 'g' ? (g[i] as number) : (w[i] as number);
            break;
          case 'prev':
            vals[k] = (state[s.slot] as Vec)[i] as number;
            break;
          case 'state': {
            const spec = primOfStep(s).state;
            if (spec === undefined) throw new Error(`'${s.prim}' has no state`);
            vals[k] = round(spec.update((state[s.slot] as Vec)[i] as number, gather(s)));
            break;
          }
          case 'draw':
            vals[k] = mid((drawBuffers[s.draw] as Float64Array)[i] as number);
            break;
          case 'tensor': {
            const p = primOfStep(s);
            // A stochastic primitive's draw is its last argument.
            const value = p.stochastic
              ? p.ref(gather(s, s.args.length - 1), ctx, vals[s.args[s.args.length - 1] as number] as number)
              : p.ref(gather(s), ctx, 0);
            vals[k] = mid(value);
            break;
          }
          default:
            break; // scalar: computed above
        }
      }
      out[i] = vals[result] as number;
      for (let k = 0; k < slots.length; k++) (state[k] as Vec)[i] = vals[slotSteps[k] as number] as number;
    }
    return out;
  }

  /** One update in place: w <- w - lr * d_t. */
  step(w: Vec, g: Vec, lr: number): void {
    const d = this.direction(w, g);
    for (let i = 0; i < w.length; i++) w[i] = (w[i] as number) - lr * (d[i] as number);
  }
}

export interface TraceInput {
  readonly w0: readonly number[];
  readonly grads: readonly (readonly number[])[];
}

/** Weights after each step, applying the given gradients in order. */
export function traceInterp(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  input: TraceInput,
  lr: number,
  options: {
    params?: Readonly<Record<string, number>>;
    seed?: number;
    dtype?: Dtype;
    float32Intermediates?: boolean;
  } = {},
): number[][] {
  const dtype = options.dtype ?? 'float32';
  const n = input.w0.length;
  const interp = new Interpreter(rule, { size: n, ...options, dtype });
  const w = dtype === 'float32' ? Float32Array.from(input.w0) : Float64Array.from(input.w0);
  const out: number[][] = [];
  for (const grow of input.grads) {
    const g = dtype === 'float32' ? Float32Array.from(grow) : Float64Array.from(grow);
    interp.step(w, g, lr);
    out.push(Array.from(w));
  }
  return out;
}

/**
 * The reference interpreter's semantics, a column at a time: each step of the program over all
 * elements, then the next, calling the same registry functions with the same arguments, so its
 * results are the reference's bit for bit (tests/dsl/interp.test.ts checks it on random rules).
 * Elements are independent within a step (state is read before and written after), so the order
 * changes nothing but speed: no code is generated, and the loops are the same for every rule,
 * hot after a few rules. For many short runs of new rules (the screen: a few steps over a dozen
 * elements), where compiling each rule costs more than running it.
 */
export class ColumnInterpreter extends Interpreter {
  /** Each tensor step's column (a leaf's or prev's points at its source). */
  private readonly columns: (Float64Array | Vec | undefined)[];
  private readonly prims: (Primitive | undefined)[];

  constructor(
    rule: Pick<CheckedRule, 'params' | 'expr'>,
    options: InterpreterOptions,
    program: Program = lowerRule(rule),
  ) {
    super(rule, options, program);
    const n = options.size;
    this.columns = this.program.steps.map((s) =>
      s.kind === 'tensor' && s.op !== 'leaf' && s.op !== 'prev' ? new Float64Array(n) : undefined,
    );
    this.prims = this.program.steps.map((s) => (s.op === 'state' || s.op === 'tensor' ? primOfStep(s) : undefined));
  }

  /** Advance one step and return d_t (does not touch w). */
  override direction(w: Vec, g: Vec, out: Float64Array = new Float64Array(this.options.size)): Float64Array {
    const n = this.options.size;
    const { t, vals } = this.begin(w, g);
    const f32 = this.dtype === 'float32';
    const mid = this.options.float32Intermediates === true;
    const { steps, slots, slotSteps, result } = this.program;
    const columns = this.columns;
    const ctx = { t };
    // An argument: its column, or its scalar value for every element.
    const argAt = (a: number, i: number): number => {
      const c = columns[a];
      return c === undefined ? (vals[a] as number) : (c[i] as number);
    };
    for (let k = 0; k < steps.length; k++) {
      const s = steps[k] as Step;
      if (s.kind !== 'tensor') continue;
      switch (s.op) {
        case 'leaf':
          columns[k] = s.leaf === 'g' ? g : w;
          break;
        case 'prev':
          columns[k] = this.state[s.slot] as Vec;
          break;
        case 'state': {
          const update = (this.prims[k] as Primitive).state?.update;
          if (update === undefined) throw new Error(`'${s.prim}' has no state`);
          const col = columns[k] as Float64Array;
          const old = this.state[s.slot] as Vec;
          const args: number[] = new Array(s.args.length);
          for (let i = 0; i < n; i++) {
            for (let a = 0; a < s.args.length; a++) args[a] = argAt(s.args[a] as number, i);
            const v = update(old[i] as number, args);
            col[i] = f32 ? Math.fround(v) : v;
          }
          break;
        }
        case 'draw': {
          const col = columns[k] as Float64Array;
          const d = this.drawBuffers[s.draw] as Float64Array;
          for (let i = 0; i < n; i++) col[i] = mid ? Math.fround(d[i] as number) : (d[i] as number);
          break;
        }
        case 'tensor': {
          const p = this.prims[k] as Primitive;
          const col = columns[k] as Float64Array;
          // A stochastic primitive's draw is its last argument.
          const count = p.stochastic ? s.args.length - 1 : s.args.length;
          const args: number[] = new Array(count);
          for (let i = 0; i < n; i++) {
            for (let a = 0; a < count; a++) args[a] = argAt(s.args[a] as number, i);
            const v = p.ref(args, ctx, p.stochastic ? argAt(s.args[count] as number, i) : 0);
            col[i] = mid ? Math.fround(v) : v;
          }
          break;
        }
        default:
          break;
      }
    }
    for (let i = 0; i < n; i++) out[i] = argAt(result, i);
    // State after every element's direction: each slot takes its state step's column.
    for (let k = 0; k < slots.length; k++) {
      const col = columns[slotSteps[k] as number] as Float64Array;
      (this.state[k] as Vec).set(col);
    }
    return out;
  }
}
