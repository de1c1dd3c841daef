/** Seeded generators of random syntax trees and rule text, for property tests and fuzzing. */
import seedrandom from 'seedrandom';
import type { Arg, Binding, Expr, Param, RuleDef, SourceFile } from '../../dsl/ast.js';
import { NOS_SPACE, fill } from '../../primitives/nos-space.js';

export type Rng = () => number;
export const rng = (seed: number): Rng => seedrandom.alea(`test:${seed}`);
export const pick = <T>(r: Rng, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;

const R = { start: 0, end: 0 };
const NAMES = ['g', 'w', 't', 'm', 'v', 'beta', 'x1', 'adam', 'powersign-ld', 'eps'];
const FUNCS = ['exp', 'ema', 'clip', 'min', 'lerp', 'foo', 'adam', 'addsign-cd'];
const NUMS = [0, 1, 2, 0.5, 1e-8, 2.5e10, 123, 0.999, 3.25];

export function genExpr(r: Rng, depth: number): Expr {
  const leafOnly = depth <= 0;
  const k = leafOnly ? Math.floor(r() * 2) : Math.floor(r() * 6);
  switch (k) {
    case 0:
      return { type: 'num', value: pick(r, NUMS), range: R };
    case 1:
      return { type: 'name', name: pick(r, NAMES), range: R };
    case 2: {
      const args: Arg[] = [];
      const n = Math.floor(r() * 4);
      for (let i = 0; i < n; i++) {
        const value = genExpr(r, depth - 1);
        args.push(r() < 0.2 ? { name: pick(r, ['beta1', 'eps', 'T']), nameRange: R, value } : { value });
      }
      return { type: 'call', callee: pick(r, FUNCS), calleeRange: R, args, range: R };
    }
    case 3:
      return { type: 'neg', arg: genExpr(r, depth - 1), range: R };
    default:
      return {
        type: 'binary',
        op: pick(r, ['+', '-', '*', '/', '^'] as const),
        left: genExpr(r, depth - 1),
        right: genExpr(r, depth - 1),
        range: R,
      };
  }
}

export function genFile(r: Rng): SourceFile {
  const bindings = (): Binding[] =>
    Array.from({ length: Math.floor(r() * 3) }, (_, i) => ({ name: `b${i}`, value: genExpr(r, 3), range: R }));
  if (r() < 0.4) return { rules: [{ nameRange: R, params: [], bindings: bindings(), body: genExpr(r, 4), range: R }] };
  const rules: RuleDef[] = [];
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const params: Param[] = Array.from({ length: Math.floor(r() * 3) }, (_, j) => ({
      name: `p${j}`,
      value: pick(r, [...NUMS, -0.5, -2]),
      range: R,
    }));
    rules.push({
      name: pick(r, [`r${i}`, `my-rule${i}`]),
      nameRange: R,
      params,
      bindings: bindings(),
      body: genExpr(r, 4),
      range: R,
    });
  }
  return { rules };
}

/** A random rule from the NOS search space: nested groups of operand/unary/binary choices. */
export function genNosRule(r: Rng, groups = 2): string {
  const results: string[] = [];
  for (let i = 0; i < groups; i++) {
    const operand = (): string =>
      results.length > 0 && r() < 0.4 ? pick(r, results) : pick(r, NOS_SPACE.operands).text;
    const u1 = fill(pick(r, NOS_SPACE.unary).text, [operand()]);
    const u2 = fill(pick(r, NOS_SPACE.unary).text, [operand()]);
    results.push(fill(pick(r, NOS_SPACE.binary).text, [u1, u2]));
  }
  return results[results.length - 1] as string;
}
