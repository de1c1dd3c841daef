/**
 * The one lowering: a checked rule as a straight-line program that every back end consumes
 * (the reference interpreter, fused JS, tf ops, WGSL, and the TypeScript and PyTorch source
 * emitters).
 *
 * - Steps are in evaluation order; a step's arguments are indices of earlier steps.
 * - Each step is `scalar` (the same for every element: numbers, hyperparameters, t,
 *   schedules; computed once per step) or `tensor` (per element).
 * - Hyperparameters stay symbolic (`param` steps), so one program serves every setting and
 *   an exported optimizer keeps them as options. `paramValues` binds them.
 * - Each distinct stateful subexpression (same canonical text) is one slot, updated once per
 *   step; its `state` step gives the new value, `prev` steps read the value from before the
 *   step. A state read only through `prev` still advances: its step comes after the result.
 * - Each occurrence of a stochastic primitive takes its own draw (`draw` steps, in order).
 *   Scaled noise (`noise`, `anoise`) lowers to `draw * scale`, with `scale` a scalar step
 *   whose value is the registry's `stochastic.scale(t)`; `drop(x, p)` takes its uniform draw
 *   as a third argument.
 * - A primitive with a `complementOf` argument (ema's beta, drop's p) gets `1 - x` as one more
 *   argument, its own step (scalar when x is: computed on the host in float64), after its
 *   own arguments and before a draw.
 * - Pure subexpressions that do not contain a draw are computed once (by canonical text).
 */
import {
  PRIMITIVE_BY_NAME,
  type LeafName,
  type NoisePrim,
  type Primitive,
  type StatePrim,
  type TensorPrim,
  type ScalarPrim,
} from '../primitives/registry.js';
import { bindParams, type CheckedRule, isScalar, type RuleParam } from './check.js';
import { type Node, printNode } from './ir.js';

export type Kind = 'scalar' | 'tensor';
export type Dist = 'normal' | 'uniform';

export type Step =
  | { readonly op: 'const'; readonly kind: 'scalar'; readonly value: number }
  | { readonly op: 'param'; readonly kind: 'scalar'; readonly param: number }
  | { readonly op: 'leaf'; readonly kind: Kind; readonly leaf: LeafName }
  /** The slot's value before this step's update. */
  | { readonly op: 'prev'; readonly kind: 'tensor'; readonly slot: number }
  /** The slot's new value; `args` are the primitive's arguments. */
  | {
      readonly op: 'state';
      readonly kind: 'tensor';
      readonly prim: StatePrim;
      readonly slot: number;
      readonly args: readonly number[];
    }
  /** One fresh draw per element from the program's draw `draw`. */
  | { readonly op: 'draw'; readonly kind: 'tensor'; readonly dist: Dist; readonly draw: number }
  /** The per-step scale of a scaled-noise primitive (its standard deviation). */
  | { readonly op: 'scale'; readonly kind: 'scalar'; readonly prim: NoisePrim }
  /** A scalar primitive of scalar arguments (computed once per step). */
  | { readonly op: 'scalar'; readonly kind: 'scalar'; readonly prim: ScalarPrim; readonly args: readonly number[] }
  /** A per-element primitive; `drop` has its draw as the last argument. */
  | { readonly op: 'tensor'; readonly kind: 'tensor'; readonly prim: TensorPrim; readonly args: readonly number[] };

export interface Slot {
  /** A name for the slot: the primitive and the slot index (`ema0`). */
  readonly name: string;
  readonly prim: StatePrim;
  readonly init: number;
  /** Canonical text of the stateful subexpression (the slot's identity). */
  readonly key: string;
}

export interface Program {
  /** Hyperparameters, in the rule's order; `param` steps index this list. */
  readonly params: readonly RuleParam[];
  readonly slots: readonly Slot[];
  /** Distribution of each draw, by draw index. */
  readonly draws: readonly Dist[];
  readonly steps: readonly Step[];
  /** Index of the step that holds d_t. */
  readonly result: number;
  /** Index of the `state` step of each slot. */
  readonly slotSteps: readonly number[];
}

export class LoweringError extends Error {
  override readonly name = 'LoweringError';
}

function prim(name: string): Primitive {
  const p = PRIMITIVE_BY_NAME.get(name);
  if (p === undefined) throw new LoweringError(`unknown primitive '${name}'`);
  return p;
}

function containsDraw(n: Node): boolean {
  if (n.k === 'op') return prim(n.prim).stochastic !== undefined || n.args.some(containsDraw);
  if (n.k === 'prev') return containsDraw(n.arg);
  return false;
}

/** Lower a checked rule (hyperparameters symbolic). */
export function lowerRule(rule: Pick<CheckedRule, 'params' | 'expr'>): Program {
  const paramIndex = new Map(rule.params.map((p, i) => [p.name, i]));
  const steps: Step[] = [];
  const slots: Slot[] = [];
  const slotByKey = new Map<string, number>();
  const slotStep = new Map<number, number>();
  const draws: Dist[] = [];
  const memo = new Map<string, number>();
  const push = (s: Step): number => steps.push(s) - 1;
  const memoised = (text: string, make: () => Step): number => {
    const hit = memo.get(text);
    if (hit !== undefined) return hit;
    const i = push(make());
    memo.set(text, i);
    return i;
  };

  /** The step computing 1 - x for step k (scalar when k is), shared by every user. */
  const complement = (k: number): number => {
    const one = memoised(printNode({ k: 'const', v: 1 }), () => ({ op: 'const', kind: 'scalar', value: 1 }));
    return memoised(`complement#${k}`, () =>
      (steps[k] as Step).kind === 'scalar'
        ? { op: 'scalar', kind: 'scalar', prim: 'sub', args: [one, k] }
        : { op: 'tensor', kind: 'tensor', prim: 'sub', args: [one, k] },
    );
  };
  const withComplement = (p: Primitive, args: number[]): number[] =>
    p.complementOf === undefined ? args : [...args, complement(args[p.complementOf] as number)];

  const slotOf = (n: Node): number => {
    if (n.k !== 'op') throw new LoweringError('prev() of a stateless expression');
    const p = prim(n.prim);
    if (p.state === undefined) throw new LoweringError('prev() of a stateless expression');
    const key = printNode(n);
    let slot = slotByKey.get(key);
    if (slot === undefined) {
      slot = slots.length;
      slots.push({ name: `${p.name}${slot}`, prim: p.name as StatePrim, init: p.state.init, key });
      slotByKey.set(key, slot);
    }
    return slot;
  };

  const lower = (n: Node): number => {
    switch (n.k) {
      case 'const':
        if (!Number.isFinite(n.v)) throw new LoweringError(`non-finite constant ${n.v}`);
        return memoised(printNode(n), () => ({ op: 'const', kind: 'scalar', value: n.v }));
      case 'param': {
        const param = paramIndex.get(n.name);
        if (param === undefined) throw new LoweringError(`unknown hyperparameter '${n.name}'`);
        return memoised(printNode(n), () => ({ op: 'param', kind: 'scalar', param }));
      }
      case 'leaf':
        return memoised(n.name, () => ({ op: 'leaf', kind: n.name === 't' ? 'scalar' : 'tensor', leaf: n.name }));
      case 'prev': {
        const slot = slotOf(n.arg);
        return memoised(`prev#${slot}`, () => ({ op: 'prev', kind: 'tensor', slot }));
      }
      case 'op': {
        const p = prim(n.prim);
        if (p.state) {
          const slot = slotOf(n);
          const done = slotStep.get(slot);
          if (done !== undefined) return done;
          const args = withComplement(p, n.args.map(lower));
          const i = push({ op: 'state', kind: 'tensor', prim: p.name as StatePrim, slot, args });
          slotStep.set(slot, i);
          return i;
        }
        if (p.stochastic) {
          const args = withComplement(p, n.args.map(lower));
          const draw = draws.push(p.stochastic.draw) - 1;
          const d = push({ op: 'draw', kind: 'tensor', dist: p.stochastic.draw, draw });
          if (p.stochastic.scale) {
            const scale = memoised(`scale#${p.name}`, () => ({
              op: 'scale',
              kind: 'scalar',
              prim: p.name as NoisePrim,
            }));
            return push({ op: 'tensor', kind: 'tensor', prim: 'mul', args: [d, scale] });
          }
          return push({ op: 'tensor', kind: 'tensor', prim: p.name as TensorPrim, args: [...args, d] });
        }
        const pure = !containsDraw(n);
        const text = printNode(n);
        const hit = pure ? memo.get(text) : undefined;
        if (hit !== undefined) return hit;
        const args = n.args.map(lower);
        const i = isScalar(n)
          ? push({ op: 'scalar', kind: 'scalar', prim: p.name as ScalarPrim, args })
          : push({ op: 'tensor', kind: 'tensor', prim: p.name as TensorPrim, args });
        if (pure) memo.set(text, i);
        return i;
      }
    }
  };

  const result = lower(rule.expr);
  // State read only through prev() still advances: lower every stateful subexpression.
  const visit = (n: Node): void => {
    if (n.k === 'op') {
      if (prim(n.prim).state) lower(n);
      n.args.forEach(visit);
    } else if (n.k === 'prev') visit(n.arg);
  };
  visit(rule.expr);
  const slotSteps = slots.map((_s, k) => slotStep.get(k) as number);
  return { params: rule.params, slots, draws, steps, result, slotSteps };
}

/**
 * Hyperparameter values for a program: the defaults, then the overrides. Unknown names and
 * non-finite values are refused (a `BindError` from the checker's `bindParams`).
 */
export function paramValues(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  overrides: Readonly<Record<string, number>> = {},
): Float64Array {
  bindParams(rule, overrides); // validates names and values
  return Float64Array.from(
    rule.params.map((p) => (Object.hasOwn(overrides, p.name) ? (overrides[p.name] as number) : p.default)),
  );
}

/**
 * Values of every scalar step at step t (float64, the registry's reference semantics);
 * tensor steps are left NaN. In-process back ends use these instead of generating scalar code.
 */
export function scalarValues(program: Program, params: Float64Array, t: number, out?: Float64Array): Float64Array {
  const vals: Float64Array = out ?? new Float64Array(program.steps.length).fill(Number.NaN);
  const ctx = { t };
  const args: number[] = [];
  program.steps.forEach((s, i) => {
    switch (s.op) {
      case 'const':
        vals[i] = s.value;
        break;
      case 'param':
        vals[i] = params[s.param] as number;
        break;
      case 'leaf':
        if (s.leaf === 't') vals[i] = t;
        break;
      case 'scale': {
        const scale = prim(s.prim).stochastic?.scale;
        if (scale === undefined) throw new LoweringError(`'${s.prim}' has no scale`);
        vals[i] = scale(ctx);
        break;
      }
      case 'scalar':
        args.length = 0;
        for (const a of s.args) args.push(vals[a] as number);
        vals[i] = prim(s.prim).ref(args, ctx, 0);
        break;
      default:
        break;
    }
  });
  return vals;
}

/** The registry entry of a step's primitive. */
export function primOfStep(s: Step & { prim: string }): Primitive {
  return prim(s.prim);
}

/** Steps whose values some later step or the result reads (others need no code). */
export function liveSteps(program: Program): boolean[] {
  const live = program.steps.map(() => false);
  const mark = (i: number): void => {
    if (live[i]) return;
    live[i] = true;
    const s = program.steps[i] as Step;
    if ('args' in s) s.args.forEach(mark);
  };
  mark(program.result);
  program.slotSteps.forEach(mark);
  return live;
}
