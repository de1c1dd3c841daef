/**
 * Claims with statistics: a rule against a baseline, paired by seed (same data order, same
 * initial weights), and rank agreement between two scorings. Pure functions of numbers;
 * tested against SciPy's values (tests/fixtures/make-stats-golden.py).
 *
 * - `pairedTest`: Student's paired t-test (scipy.stats.ttest_rel), two-sided, with the 95%
 *   confidence interval of the mean difference (mean +- t_{0.975, n-1} * sd / sqrt(n)).
 * - `spearman`: Spearman's rank correlation with average ranks for ties (scipy.stats.spearmanr).
 */

/** ln Gamma(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits). */
export function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction for the incomplete beta function (modified Lentz). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 10_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2)
    ? (front * betaContinuedFraction(a, b, x)) / a
    : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** P(|T| >= |t|) for Student's t with df degrees of freedom. */
export function tTwoSided(t: number, df: number): number {
  if (Number.isNaN(t)) return Number.NaN;
  if (!Number.isFinite(t)) return 0;
  return incompleteBeta(df / (df + t * t), df / 2, 0.5);
}

/** The q-quantile (q in (0.5, 1)) of Student's t with df degrees of freedom. */
export function tQuantile(q: number, df: number): number {
  const tail = 2 * (1 - q); // two-sided tail mass beyond the quantile
  let lo = 0;
  let hi = 1;
  while (tTwoSided(hi, df) > tail) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-14 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (tTwoSided(mid, df) > tail) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export type Verdict = 'better' | 'worse' | 'tied';

export interface PairedComparison {
  /** Pairs (seeds) compared. */
  readonly n: number;
  /** Mean of (rule - baseline). */
  readonly mean: number;
  /** 95% confidence interval of the mean difference; null with fewer than 2 pairs. */
  readonly ci95: readonly [number, number] | null;
  /** Two-sided p-value; null with fewer than 2 pairs. */
  readonly p: number | null;
  readonly test: 'paired t-test (two-sided)';
  /** better / worse at p < alpha, else tied. */
  readonly verdict: Verdict;
}

/**
 * Paired t-test of x (the rule) against y (the baseline), element i of each from the same
 * seed. Non-finite pairs are dropped (a diverged run has no accuracy to compare).
 */
export function pairedTest(x: readonly number[], y: readonly number[], alpha = 0.05): PairedComparison {
  if (x.length !== y.length) throw new Error(`paired samples differ in length: ${x.length} vs ${y.length}`);
  const d: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const v = (x[i] as number) - (y[i] as number);
    if (Number.isFinite(v)) d.push(v);
  }
  const n = d.length;
  const test = 'paired t-test (two-sided)' as const;
  if (n === 0) return { n, mean: Number.NaN, ci95: null, p: null, test, verdict: 'tied' };
  const mean = d.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, ci95: null, p: null, test, verdict: 'tied' };
  const sd = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const se = sd / Math.sqrt(n);
  const q = tQuantile(0.975, n - 1);
  let p: number;
  if (se === 0) p = mean === 0 ? 1 : 0;
  else p = tTwoSided(mean / se, n - 1);
  const verdict: Verdict = p < alpha ? (mean > 0 ? 'better' : 'worse') : 'tied';
  return { n, mean, ci95: [mean - q * se, mean + q * se], p, test, verdict };
}

/** Mean and 95% t-interval of one sample (null interval with fewer than 2 values). */
export function meanCi(xs: readonly number[]): { mean: number; ci95: readonly [number, number] | null; n: number } {
  const v = xs.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: Number.NaN, ci95: null, n };
  const mean = v.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, ci95: null, n };
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const h = (tQuantile(0.975, n - 1) * sd) / Math.sqrt(n);
  return { mean, ci95: [mean - h, mean + h], n };
}

/** Ranks 1..n, ties sharing their average rank. */
export function ranks(xs: readonly number[]): number[] {
  const order = xs.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(xs.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (
      j + 1 < order.length &&
      (order[j + 1] as readonly [number, number])[0] === (order[i] as readonly [number, number])[0]
    )
      j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[(order[k] as readonly [number, number])[1]] = avg;
    i = j + 1;
  }
  return r;
}

/** Spearman's rho: Pearson's correlation of the ranks. */
export function spearman(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length) throw new Error(`samples differ in length: ${x.length} vs ${y.length}`);
  const rx = ranks(x);
  const ry = ranks(y);
  const n = x.length;
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = (rx[i] as number) - mx;
    const b = (ry[i] as number) - my;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  return sxy / Math.sqrt(sxx * syy);
}
