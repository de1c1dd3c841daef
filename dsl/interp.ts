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
import { PRIMITIVE_BY_NAME, type Primitive } from '../primitives/registry.js';
import { bindParams, type CheckedRule } from './check.js';
import { DrawSource } from './draws.js';
import { type Node, printNode } from './ir.js';

export type Dtype = 'float32' | 'float64';
export type Vec = Float32Array | Float64Array;

/** A node of the executable tree: slots and draw indices resolved. */
export type ExecNode =
  | { readonly k: 'const'; readonly v: number }
  | { readonly k: 'leaf'; readonly name: 'g' | 'w' | 't' }
  | { readonly k: 'prev'; readonly slot: number }
  | { readonly k: 'state'; readonly prim: Primitive; readonly slot: number; readonly args: readonly ExecNode[] }
  | { readonly k: 'draw'; readonly prim: Primitive; readonly draw: number; readonly args: readonly ExecNode[] }
  | { readonly k: 'op'; readonly prim: Primitive; readonly args: readonly ExecNode[] };

export interface StateSlot {
  /** Canonical text of the stateful subexpression (the slot's key). */
  readonly key: string;
  readonly init: number;
  readonly node: ExecNode & { k: 'state' };
}

export interface Program {
  readonly root: ExecNode;
  readonly slots: readonly StateSlot[];
  /** Distribution of each draw, by draw index. */
  readonly draws: readonly ('normal' | 'uniform')[];
}

/** Resolve a bound expression (no params left) into slots and draws. */
export function buildProgram(expr: Node): Program {
  const slots: StateSlot[] = [];
  const slotByKey = new Map<string, number>();
  const draws: ('normal' | 'uniform')[] = [];
  const build = (n: Node): ExecNode => {
    switch (n.k) {
      case 'const':
        return n;
      case 'param':
        throw new Error(`hyperparameter '${n.name}' is not bound`);
      case 'leaf':
        return n;
      case 'prev': {
        const inner = build(n.arg);
        if (inner.k !== 'state') throw new Error('prev() of a stateless expression');
        return { k: 'prev', slot: inner.slot };
      }
      case 'op': {
        const prim = PRIMITIVE_BY_NAME.get(n.prim);
        if (prim === undefined) throw new Error(`unknown primitive ${n.prim}`);
        if (prim.stochastic) {
          const draw = draws.length;
          draws.push(prim.stochastic.draw);
          return { k: 'draw', prim, draw, args: n.args.map(build) };
        }
        if (prim.state) {
          const key = printNode(n);
          const existing = slotByKey.get(key);
          if (existing !== undefined) {
            // Build the args anyway so draw indices do not depend on which copy came first.
            n.args.forEach(build);
            return (slots[existing] as StateSlot).node;
          }
          const args = n.args.map(build);
          const slot = slots.length;
          const node = { k: 'state' as const, prim, slot, args };
          slotByKey.set(key, slot);
          slots.push({ key, init: prim.state.init, node });
          return node;
        }
        return { k: 'op', prim, args: n.args.map(build) };
      }
    }
  };
  const root = build(expr);
  return { root, slots, draws };
}

/** Whether a node's value is the same for every element (a function of numbers and t only). */
export function isScalarNode(x: ExecNode): boolean {
  switch (x.k) {
    case 'const':
      return true;
    case 'leaf':
      return x.name === 't';
    case 'op':
      return x.args.every(isScalarNode);
    default:
      return false;
  }
}

/** Scalar value of a node whose value is the same for every element, or undefined. */
export function scalarValue(x: ExecNode, t: number): number | undefined {
  switch (x.k) {
    case 'const':
      return x.v;
    case 'leaf':
      return x.name === 't' ? t : undefined;
    case 'prev':
    case 'state':
    case 'draw':
      return undefined;
    case 'op': {
      const args: number[] = [];
      for (const a of x.args) {
        const v = scalarValue(a, t);
        if (v === undefined) return undefined;
        args.push(v);
      }
      return x.prim.ref(args, { t }, 0);
    }
  }
}

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
  private readonly drawSource: DrawSource;
  private readonly drawBuffers: Float64Array[];

  constructor(rule: Pick<CheckedRule, 'params' | 'expr'>, readonly options: InterpreterOptions) {
    this.program = buildProgram(bindParams(rule, options.params ?? {}));
    this.dtype = options.dtype ?? 'float32';
    const make = (n: number): Vec => (this.dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    this.state = this.program.slots.map((s) => make(options.size).fill(s.init));
    this.drawSource = new DrawSource(options.seed ?? 0);
    this.drawBuffers = this.program.draws.map(() => new Float64Array(options.size));
  }

  /** Advance one step and return d_t (does not touch w). */
  direction(w: Vec, g: Vec, out: Float64Array = new Float64Array(this.options.size)): Float64Array {
    const n = this.options.size;
    if (w.length !== n || g.length !== n) throw new Error(`expected vectors of length ${n}, got w ${w.length} and g ${g.length}`);
    const t = ++this.t;
    this.program.draws.forEach((kind, j) => {
      this.drawSource.fill(kind, this.drawBuffers[j] as Float64Array);
    });
    const round = this.dtype === 'float32' ? Math.fround : (x: number) => x;
    const mid = this.options.float32Intermediates ? Math.fround : (x: number) => x;
    const nslots = this.program.slots.length;
    const fresh = new Float64Array(nslots);
    const done = new Uint8Array(nslots);
    const state = this.state;
    const drawBuffers = this.drawBuffers;
    const ctx = { t };
    let i = 0;
    const ev = (x: ExecNode): number => {
      switch (x.k) {
        case 'const':
          return mid(x.v);
        case 'leaf':
          return x.name === 'g' ? (g[i] as number) : x.name === 'w' ? (w[i] as number) : t;
        case 'prev':
          return (state[x.slot] as Vec)[i] as number;
        case 'state': {
          if (done[x.slot]) return fresh[x.slot] as number;
          const args = x.args.map(ev);
          const spec = x.prim.state;
          if (spec === undefined) throw new Error('state node without state spec');
          const v = round(spec.update((state[x.slot] as Vec)[i] as number, args));
          fresh[x.slot] = v;
          done[x.slot] = 1;
          return v;
        }
        case 'draw':
          return mid(x.prim.ref(x.args.map(ev), ctx, mid((drawBuffers[x.draw] as Float64Array)[i] as number)));
        case 'op':
          return mid(x.prim.ref(x.args.map(ev), ctx, 0));
      }
    };
    for (i = 0; i < n; i++) {
      done.fill(0);
      out[i] = ev(this.program.root);
      for (const s of this.program.slots) if (!done[s.node.slot]) ev(s.node);
      for (let k = 0; k < nslots; k++) (state[k] as Vec)[i] = fresh[k] as number;
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
  options: { params?: Readonly<Record<string, number>>; seed?: number; dtype?: Dtype; float32Intermediates?: boolean } = {},
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
