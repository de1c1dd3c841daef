/**
 * A rule lowered to straight-line steps for source emitters (TypeScript/tfjs, PyTorch).
 * Hyperparameters stay symbolic, so an exported optimizer keeps them as options.
 * Every name in a plan is generated or a validated identifier; every number is finite.
 */
import type { CheckedRule, RuleParam } from '../check.js';
import { isScalar } from '../check.js';
import { type Node, printNode } from '../ir.js';
import { PRIMITIVE_BY_NAME } from '../../primitives/registry.js';

export type Kind = 'scalar' | 'tensor';

export type Step =
  | { readonly op: 'const'; readonly name: string; readonly kind: 'scalar'; readonly value: number }
  | { readonly op: 'param'; readonly name: string; readonly kind: 'scalar'; readonly param: number }
  | { readonly op: 'leaf'; readonly name: string; readonly kind: Kind; readonly leaf: 'g' | 'w' | 't' }
  | { readonly op: 'prev'; readonly name: string; readonly kind: 'tensor'; readonly slot: number }
  | { readonly op: 'state'; readonly name: string; readonly kind: 'tensor'; readonly prim: string; readonly slot: number; readonly args: readonly string[]; readonly argKinds: readonly Kind[] }
  | { readonly op: 'draw'; readonly name: string; readonly kind: 'tensor'; readonly prim: string; readonly draw: number; readonly args: readonly string[]; readonly argKinds: readonly Kind[] }
  | { readonly op: 'prim'; readonly name: string; readonly kind: Kind; readonly prim: string; readonly args: readonly string[]; readonly argKinds: readonly Kind[] };

export interface Slot {
  /** e.g. `ema0`: the primitive and the slot index. */
  readonly name: string;
  readonly prim: string;
  readonly init: number;
  /** Canonical text of the stateful subexpression. */
  readonly key: string;
}

export interface Plan {
  readonly params: readonly RuleParam[];
  readonly slots: readonly Slot[];
  readonly draws: readonly ('normal' | 'uniform')[];
  readonly steps: readonly Step[];
  /** Name of the step holding d_t. */
  readonly result: string;
  readonly resultKind: Kind;
}

const IDENT = /^[A-Za-z][A-Za-z0-9]*$/;

function containsDraw(n: Node): boolean {
  if (n.k === 'op') return PRIMITIVE_BY_NAME.get(n.prim)?.stochastic !== undefined || n.args.some(containsDraw);
  if (n.k === 'prev') return containsDraw(n.arg);
  return false;
}

export function planRule(rule: Pick<CheckedRule, 'params' | 'expr'>): Plan {
  for (const p of rule.params) {
    if (!IDENT.test(p.name)) throw new Error(`hyperparameter name '${p.name}' is not a plain identifier`);
    if (!Number.isFinite(p.default)) throw new Error(`hyperparameter '${p.name}' has a non-finite default`);
  }
  const paramIndex = new Map(rule.params.map((p, i) => [p.name, i]));
  const steps: Step[] = [];
  const slots: Slot[] = [];
  const slotByKey = new Map<string, number>();
  const draws: ('normal' | 'uniform')[] = [];
  const memo = new Map<string, string>(); // pure subexpression text -> step name
  const stateStep = new Map<number, string>(); // slot -> step computing its new value
  let counter = 0;
  const fresh = (): string => `v${counter++}`;

  const lower = (n: Node): { name: string; kind: Kind } => {
    const text = printNode(n);
    const kind: Kind = isScalar(n) ? 'scalar' : 'tensor';
    switch (n.k) {
      case 'const': {
        if (!Number.isFinite(n.v)) throw new Error(`non-finite constant ${n.v}`);
        const hit = memo.get(text);
        if (hit) return { name: hit, kind };
        const name = fresh();
        steps.push({ op: 'const', name, kind: 'scalar', value: n.v });
        memo.set(text, name);
        return { name, kind };
      }
      case 'param': {
        const idx = paramIndex.get(n.name);
        if (idx === undefined) throw new Error(`unknown hyperparameter ${n.name}`);
        const hit = memo.get(text);
        if (hit) return { name: hit, kind };
        const name = fresh();
        steps.push({ op: 'param', name, kind: 'scalar', param: idx });
        memo.set(text, name);
        return { name, kind };
      }
      case 'leaf': {
        const hit = memo.get(text);
        if (hit) return { name: hit, kind };
        const name = fresh();
        steps.push({ op: 'leaf', name, kind, leaf: n.name });
        memo.set(text, name);
        return { name, kind };
      }
      case 'prev': {
        const inner = n.arg;
        const slot = stateSlot(inner);
        const name = fresh();
        steps.push({ op: 'prev', name, kind: 'tensor', slot });
        return { name, kind: 'tensor' };
      }
      case 'op': {
        const prim = PRIMITIVE_BY_NAME.get(n.prim);
        if (prim === undefined) throw new Error(`unknown primitive ${n.prim}`);
        if (prim.stochastic) {
          const args = n.args.map(lower);
          const name = fresh();
          const draw = draws.length;
          draws.push(prim.stochastic.draw);
          steps.push({ op: 'draw', name, kind: 'tensor', prim: prim.name, draw, args: args.map((a) => a.name), argKinds: args.map((a) => a.kind) });
          return { name, kind: 'tensor' };
        }
        if (prim.state) {
          // One step per slot: equal stateful subexpressions share their state (and its first update).
          const slot = stateSlot(n);
          const done = stateStep.get(slot);
          if (done) return { name: done, kind: 'tensor' };
          const args = n.args.map(lower);
          const name = fresh();
          steps.push({ op: 'state', name, kind: 'tensor', prim: prim.name, slot, args: args.map((a) => a.name), argKinds: args.map((a) => a.kind) });
          stateStep.set(slot, name);
          return { name, kind: 'tensor' };
        }
        // Subexpressions with draws are never shared: each occurrence draws anew.
        const pure = !containsDraw(n);
        const hit = pure ? memo.get(text) : undefined;
        if (hit) return { name: hit, kind };
        const args = n.args.map(lower);
        const name = fresh();
        steps.push({ op: 'prim', name, kind, prim: prim.name, args: args.map((a) => a.name), argKinds: args.map((a) => a.kind) });
        if (pure) memo.set(text, name);
        return { name, kind };
      }
    }
  };

  const stateSlot = (n: Node): number => {
    if (n.k !== 'op') throw new Error('prev() of a non-state expression');
    const key = printNode(n);
    let slot = slotByKey.get(key);
    if (slot === undefined) {
      const prim = PRIMITIVE_BY_NAME.get(n.prim);
      if (!prim?.state) throw new Error('prev() of a non-state expression');
      slot = slots.length;
      slots.push({ name: `${prim.name}${slot}`, prim: prim.name, init: prim.state.init, key });
      slotByKey.set(key, slot);
    }
    return slot;
  };

  // Collect stateful nodes first (so a state read only through prev() still advances).
  const stateNodes: Node[] = [];
  const collect = (n: Node): void => {
    if (n.k === 'op') {
      if (PRIMITIVE_BY_NAME.get(n.prim)?.state) {
        stateSlot(n);
        stateNodes.push(n);
      }
      n.args.forEach(collect);
    } else if (n.k === 'prev') collect(n.arg);
  };
  collect(rule.expr);
  const result = lower(rule.expr);
  for (const n of stateNodes) lower(n);
  return { params: rule.params, slots, draws, steps, result: result.name, resultKind: result.kind };
}

/** A class-name stem from a rule name: `powersign-ld` -> `PowersignLd` (no underscores). */
export function classStem(name: string | undefined): string {
  const parts = (name ?? 'found rule').split(/[^A-Za-z0-9]+/).filter((p) => p !== '');
  const stem = parts.map((p) => p[0]?.toUpperCase() + p.slice(1)).join('');
  return /^[A-Za-z]/.test(stem) ? stem : `Rule${stem}`;
}

/** Numbers as source literals: validated finite, shortest round-trip form. */
export function numberLiteral(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`cannot emit non-finite number ${v}`);
  return Object.is(v, -0) ? '-0.0' : String(v);
}
