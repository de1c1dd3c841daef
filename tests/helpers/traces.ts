/** Shared pieces of the differential tests: rule text to a checked rule, gradient streams, trajectory comparison. */
import { type CheckedRule, compileRules } from '../../dsl/index.js';
import { rng } from './gen.js';

/** A checked rule from text (the test fails loudly if it does not check). */
export function rule(text: string): CheckedRule {
  const r = compileRules(text);
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.rules[0] as CheckedRule;
}

/** A stream with big, tiny, zero and sign-flipping gradients. */
export function stream(seed: number, n: number, steps: number): { w0: number[]; grads: number[][] } {
  const r = rng(seed);
  const w0 = Array.from({ length: n }, () => (r() - 0.5) * 4);
  const grads = Array.from({ length: steps }, (_, s) =>
    Array.from({ length: n }, (_, i) => (i % 7 === 3 && s % 2 === 0 ? 0 : (r() - 0.5) * 10 ** Math.floor(r() * 4 - 2))),
  );
  return { w0, grads };
}

/**
 * Same values, NaN where NaN, same infinities; finite values within rel * (1 + |x|), plus,
 * where given, slack[i][j]: how far the rule itself moves when its intermediates are
 * rounded to float32 (an ill-conditioned rule earns a wider band, and only there).
 * Returns the first difference, or undefined.
 */
export function close(a: number[][], b: number[][], rel: number, slack?: number[][]): string | undefined {
  for (let i = 0; i < a.length; i++) {
    for (let j = 0; j < (a[i] as number[]).length; j++) {
      const x = a[i]![j]!;
      const y = b[i]![j]!;
      if (Number.isNaN(x) || Number.isNaN(y)) {
        if (Number.isNaN(x) !== Number.isNaN(y)) return `step ${i} [${j}]: ${x} vs ${y}`;
      } else if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (x !== y) return `step ${i} [${j}]: ${x} vs ${y}`;
      } else if (Math.abs(x - y) > rel * (1 + Math.abs(x)) + 4 * (slack?.[i]?.[j] ?? 0))
        return `step ${i} [${j}]: ${x} vs ${y}`;
    }
  }
  return undefined;
}
