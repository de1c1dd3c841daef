import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { meanCi, pairedTest, ranks, spearman, tQuantile } from '../../evaluator/paired.js';
import { repoRoot } from '../helpers/reference.js';

interface Golden {
  paired: { rule: number[]; baseline: number[]; mean: number; p: number; ci95: [number, number] }[];
  tQuantile: { df: number; q975: number }[];
  spearman: { x: number[]; y: number[]; rho: number }[];
}
/** SciPy's values, made by tests/fixtures/make-stats-golden.py. */
const golden = JSON.parse(readFileSync(join(repoRoot, 'tests', 'fixtures', 'stats-golden.json'), 'utf8')) as Golden;

describe('statistics against SciPy', () => {
  it('t quantiles match scipy.stats.t.ppf', () => {
    for (const g of golden.tQuantile) expect(tQuantile(0.975, g.df)).toBeCloseTo(g.q975, 8);
  });

  it('the paired t-test matches scipy.stats.ttest_rel: mean difference, p-value, 95% CI', () => {
    expect(golden.paired.length).toBeGreaterThan(20);
    for (const g of golden.paired) {
      const r = pairedTest(g.rule, g.baseline);
      expect(r.mean).toBeCloseTo(g.mean, 12);
      expect(r.p).not.toBeNull();
      expect(Math.abs((r.p as number) - g.p)).toBeLessThan(1e-9 * Math.max(1, g.p));
      expect(r.ci95?.[0]).toBeCloseTo(g.ci95[0], 10);
      expect(r.ci95?.[1]).toBeCloseTo(g.ci95[1], 10);
      expect(r.verdict).toBe(g.p < 0.05 ? (g.mean > 0 ? 'better' : 'worse') : 'tied');
    }
  });

  it("Spearman's rho matches scipy.stats.spearmanr, ties included", () => {
    for (const g of golden.spearman) expect(spearman(g.x, g.y)).toBeCloseTo(g.rho, 12);
    expect(ranks([3, 1, 3, 2])).toEqual([3.5, 1, 3.5, 2]);
  });

  it('handles the edges: one pair, identical differences, diverged seeds', () => {
    expect(pairedTest([0.9], [0.8])).toMatchObject({ n: 1, ci95: null, p: null, verdict: 'tied' });
    expect(pairedTest([1.5, 2.5, 3.5], [1, 2, 3])).toMatchObject({ p: 0, verdict: 'better' });
    expect(pairedTest([0.5, 0.5], [0.5, 0.5])).toMatchObject({ p: 1, verdict: 'tied' });
    expect(pairedTest([Number.NaN, 0.9, 0.92, 0.91], [0.9, 0.8, 0.81, 0.8]).n).toBe(3);
    expect(() => pairedTest([1, 2], [1])).toThrow(/length/);
    expect(meanCi([0.9]).ci95).toBeNull();
    const m = meanCi([0.9, 0.92, 0.91]);
    expect(m.mean).toBeCloseTo(0.91, 12);
    expect(m.ci95?.[1]).toBeCloseTo(0.91 + (tQuantile(0.975, 2) * 0.01) / Math.sqrt(3), 12);
  });
});
