/**
 * Aggregating evaluations over seeds: mean and sample standard deviation of each metric, the
 * learning rate most seeds chose, and the worst status any seed ended with. Non-finite values
 * (a diverged seed's accuracy) are left out of means; JSON gets null where a figure is missing.
 */
import { relianceSummary } from './generalization.js';
import type { EvalResult } from './train.js';

export interface Stat {
  readonly mean: number;
  readonly std: number;
}

/** Mean and sample std (n - 1) of the finite values; NaN for none; std 0 for one. */
export function stat(xs: readonly number[]): Stat {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

/** Statuses from best to worst: a rule's summary status is its worst seed's. */
const SEVERITY: Readonly<Record<string, number>> = { ok: 0, diverged: 1, timeout: 2, invalid: 3 };

export interface RuleSummary {
  /** The rule's canonical text (or the label when no seed came back). */
  readonly rule: string;
  /** What the user called it (a built-in name, or the text as given). */
  readonly label: string;
  /** The learning rate most seeds chose (ties: the smaller). */
  readonly bestLr: number | null;
  readonly valAcc: Stat;
  readonly testAcc: Stat;
  readonly finalLoss: Stat;
  readonly status: string;
  /** Training time summed over seeds. */
  readonly seconds: number;
  readonly seeds: readonly EvalResult[];
}

export function summarize(label: string, results: readonly EvalResult[]): RuleSummary {
  const lrs = results.map((r) => r.bestLr).filter((x): x is number => x !== null);
  const counts = new Map<number, number>();
  for (const lr of lrs) counts.set(lr, (counts.get(lr) ?? 0) + 1);
  const bestLr = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? null;
  const status =
    results.map((r) => r.status as string).sort((a, b) => (SEVERITY[b] ?? 0) - (SEVERITY[a] ?? 0))[0] ?? 'invalid';
  return {
    rule: results[0]?.rule ?? label,
    label,
    bestLr,
    valAcc: stat(results.map((r) => r.valAcc)),
    testAcc: stat(results.map((r) => r.testAcc ?? Number.NaN)),
    finalLoss: stat(results.map((r) => r.finalLoss)),
    status,
    seconds: results.reduce((a, r) => a + r.seconds, 0),
    seeds: results,
  };
}

export const jsonNumber = (x: number): number | null => (Number.isFinite(x) ? x : null);

export interface JsonStat {
  readonly mean: number | null;
  readonly std: number | null;
}

export const jsonStat = (s: Stat): JsonStat => ({ mean: jsonNumber(s.mean), std: jsonNumber(s.std) });

/** Mean and std over seeds of the analysis figures (sharpness, gap, snapshot ensemble). */
export function analysisSummary(seeds: readonly EvalResult[]) {
  const pick = (f: (a: NonNullable<EvalResult['analysis']>) => number | null | undefined): JsonStat =>
    jsonStat(stat(seeds.map((s) => (s.analysis ? (f(s.analysis) ?? Number.NaN) : Number.NaN))));
  const snaps = seeds.map((s) => s.analysis?.ensemble?.snapshots).find((x) => x !== undefined);
  return {
    trainAcc: pick((a) => a.trainAcc),
    testAcc: pick((a) => a.testAcc),
    gapAcc: pick((a) => a.gapAcc),
    gapLoss: pick((a) => a.gapLoss),
    sharpness: pick((a) => a.sharpness),
    sharpnessRescaled: pick((a) => a.sharpnessRescaled),
    reliance: relianceSummary(seeds.map((s) => s.analysis?.reliance)),
    ensembleValAcc: pick((a) => a.ensemble?.valAcc),
    ensembleTestAcc: pick((a) => a.ensemble?.testAcc),
    snapshots: snaps ?? null,
  };
}

/** Mean and band (mean +- std) over seeds of the successful seeds' training-loss curves. */
export function curveBand(seeds: readonly EvalResult[]): { x: number[]; mean: number[]; lo: number[]; hi: number[] } {
  const curves = seeds.filter((s) => s.status === 'ok').map((s) => s.curve);
  const every = seeds[0]?.curveEvery ?? 1;
  const n = curves.length === 0 ? 0 : Math.min(...curves.map((c) => c.length));
  const x = Array.from({ length: n }, (_, i) => (i + 1) * every);
  const at = x.map((_, i) => stat(curves.map((c) => c[i] as number)));
  return { x, mean: at.map((s) => s.mean), lo: at.map((s) => s.mean - s.std), hi: at.map((s) => s.mean + s.std) };
}
