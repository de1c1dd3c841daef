/** Small, dependency-free SVG charts (learning curves, schedules, search progress). */
import { escapeHtml } from './html.js';

export interface Series {
  readonly name: string;
  readonly x: readonly number[];
  readonly y: readonly number[];
  /** Optional band (e.g. mean +- std over seeds). */
  readonly lo?: readonly number[];
  readonly hi?: readonly number[];
}

export interface ChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly logY?: boolean;
  readonly width?: number;
  readonly height?: number;
}

const COLORS = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

/** Text in SVG content or a quoted attribute (the same escaping as HTML: html.ts). */
const escapeXml = escapeHtml;

/** Most points drawn per line: longer series keep each bucket's lowest and highest point. */
export const MAX_POINTS = 2000;

/**
 * At most about MAX_POINTS points of a line, in order: a 150,000-point curve keeps its shape
 * (each bucket's extremes) without a 150,000-point polyline.
 */
export function thinPoints(pts: readonly (readonly [number, number])[]): (readonly [number, number])[] {
  if (pts.length <= MAX_POINTS) return [...pts];
  const size = Math.ceil(pts.length / (MAX_POINTS / 2));
  const out: (readonly [number, number])[] = [];
  for (let i = 0; i < pts.length; i += size) {
    let lo = i;
    let hi = i;
    const end = Math.min(pts.length, i + size);
    for (let k = i + 1; k < end; k++) {
      if ((pts[k] as readonly [number, number])[1] < (pts[lo] as readonly [number, number])[1]) lo = k;
      if ((pts[k] as readonly [number, number])[1] > (pts[hi] as readonly [number, number])[1]) hi = k;
    }
    out.push(pts[Math.min(lo, hi)] as readonly [number, number]);
    if (hi !== lo) out.push(pts[Math.max(lo, hi)] as readonly [number, number]);
  }
  const last = pts[pts.length - 1] as readonly [number, number];
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

/** Smallest and largest of many numbers (no spread: Math.min(...xs) overflows the stack on long arrays). */
function extent(xs: readonly number[]): [number, number] | undefined {
  if (xs.length === 0) return undefined;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const x of xs) {
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  return [lo, hi];
}

function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = 10 ** Math.floor(Math.log10((hi - lo) / n));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= n) ?? step * 10;
  const out: number[] = [];
  // At most a few dozen ticks, also where `v + nice` rounds back to v (values far beyond 2^53).
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12 && out.length < 50; v += nice)
    out.push(Number(v.toPrecision(12)));
  return out;
}

/** Ticks at 1, 2 and 5 times powers of ten, as log10 values within [lo, hi]. */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k++) {
    for (const m of [1, 2, 5]) {
      const t = k + Math.log10(m);
      if (t >= lo - 1e-9 && t <= hi + 1e-9) out.push(t);
    }
  }
  return out.length > 8 ? out.filter((t) => Number.isInteger(Number(t.toFixed(9)))) : out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(0) : String(Number(v.toPrecision(3)));
}

export function lineChart(series: readonly Series[], options: ChartOptions): string {
  const W = options.width ?? 720;
  const H = options.height ?? 420;
  const m = { l: 70, r: 170, t: 40, b: 50 };
  const tf = (y: number) => (options.logY ? Math.log10(Math.max(y, 1e-30)) : y);
  const finite = (v: number) => Number.isFinite(v);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    for (const x of s.x) if (finite(x)) xs.push(x);
    for (const part of [s.y, s.lo ?? [], s.hi ?? []])
      for (const y of part) {
        const v = finite(y) ? tf(y) : Number.NaN;
        if (finite(v)) ys.push(v);
      }
  }
  const [x0, x1] = extent(xs) ?? [0, 1];
  let [y0, y1] = extent(ys) ?? [0, 1];
  if (y1 === y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((tf(y) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12" role="img" aria-label="${escapeXml(options.title)}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - m.r / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(options.title)}</text>`,
  ];
  for (const t of ticks(x0, x1)) {
    parts.push(`<line x1="${px(t)}" y1="${m.t}" x2="${px(t)}" y2="${H - m.b}" stroke="#eee"/>`);
    parts.push(`<text x="${px(t)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  const yTicks = options.logY ? logTicks(y0, y1) : ticks(y0, y1);
  for (const t of yTicks) {
    const yv = options.logY ? 10 ** t : t;
    const y = H - m.b - ((t - y0) / (y1 - y0)) * (H - m.t - m.b);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${fmt(yv)}</text>`);
  }
  parts.push(
    `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#444"/>`,
  );
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}${options.logY ? ' (log)' : ''}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const pts = thinPoints(
      s.x.map((x, k) => [x, s.y[k] as number] as const).filter(([x, y]) => finite(x) && finite(tf(y))),
    );
    if (s.lo && s.hi) {
      const lo = thinPoints(
        s.x.map((x, k) => [x, s.lo?.[k] as number] as const).filter(([x, y]) => finite(x) && finite(tf(y))),
      );
      const hi = thinPoints(
        s.x.map((x, k) => [x, s.hi?.[k] as number] as const).filter(([x, y]) => finite(x) && finite(tf(y))),
      );
      if (lo.length > 1 && hi.length > 1) {
        const poly = [...hi, ...[...lo].reverse()].map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
        parts.push(`<polygon points="${poly}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
      }
    }
    if (pts.length > 0)
      parts.push(
        `<polyline points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    const ly = m.t + 14 + i * 18;
    parts.push(
      `<line x1="${W - m.r + 12}" y1="${ly - 4}" x2="${W - m.r + 32}" y2="${ly - 4}" stroke="${color}" stroke-width="3"/>`,
    );
    parts.push(
      `<text x="${W - m.r + 38}" y="${ly}">${escapeXml(s.name.length > 20 ? `${s.name.slice(0, 19)}…` : s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
