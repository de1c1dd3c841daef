/**
 * `nos report`: a self-contained HTML page for a run (inline SVG, no scripts, no network):
 * best-so-far and mean reward against rules sampled, the controller's entropy, and the top
 * rules with their formulas and learning curves next to Adam's under the same protocol.
 *
 * Rendering only: the rankings, the funnel's rungs and verdicts arrive computed (controller/
 * report.ts computes them with the funnel's policy and calls this).
 */
import { readableRule } from '../dsl/readable.js';
import type { PairedComparison } from '../evaluator/paired.js';
import { curveBand, type RuleSummary } from '../evaluator/stats.js';
import { type Html, html, trustedHtml } from './html.js';
import { lineChart, type Series } from './plot.js';
import { type Candidate, type StrategyCheckpoint, sampleCounts, sampleKind } from './store.js';

type Ci = readonly [number, number] | null;

/** The funnel as the page shows it (controller/funnel-plan.ts computes it). */
/** One workload's result for a rule at a rung of several workloads, paired with the baseline. */
export interface ReportWorkload {
  readonly mean: number;
  readonly ci95: Ci;
  readonly seeds: number;
  readonly verdict: PairedComparison['verdict'] | null;
  readonly diff: PairedComparison | null;
}

export interface ReportFunnel {
  /** The baseline rule's name. */
  readonly baseline: string;
  /** A suite run (the rungs aggregate workloads; rung 3 is the held-out suite). */
  readonly suite?: boolean;
  readonly rungs: readonly {
    readonly rung: number;
    readonly label: string;
    readonly task: string;
    readonly steps: number | null;
    readonly stepsFactor?: number | null;
  }[];
  /** The baseline's score at each rung it ran. */
  readonly baselineScores: readonly { readonly rung: number; readonly mean: number; readonly ci95: Ci }[];
  /** The ranked leaderboard (by the highest rung reached), best first. */
  readonly leaderboard: readonly {
    readonly rank: number;
    readonly rung: number;
    readonly reward: number;
    readonly ci95: Ci;
    readonly seeds: number;
    readonly vsBaseline: PairedComparison | null;
    readonly rule: string;
    readonly workloads?: Readonly<Record<string, ReportWorkload>>;
  }[];
  readonly verdicts: readonly {
    readonly rule: string;
    readonly proxy: PairedComparison | null;
    readonly transfer: PairedComparison | null;
  }[];
}

export interface ReportView {
  readonly run: {
    readonly run: string;
    readonly strategy: string;
    readonly task: string;
    readonly seed: number;
    readonly budget: number;
  };
  readonly candidates: readonly Candidate[];
  readonly checkpoints: readonly StrategyCheckpoint[];
  /** The search's best rules (rung 0, the proxy reward), best first. */
  readonly top: readonly Candidate[];
  /** The funnel, when the run has one and it has rows. */
  readonly funnel?: ReportFunnel;
  /** Adam's learning curve and reward on the same task and seed, if measured. */
  readonly adam?: { readonly reward: number; readonly curve: readonly number[]; readonly curveEvery: number };
}

/** A stored candidate's learning curve (its detail JSON), or none when the JSON is not one. */
function curveOf(c: Candidate): { curve: number[]; every: number } {
  try {
    const d = JSON.parse(c.detail) as { curve?: unknown; curveEvery?: unknown };
    const curve = Array.isArray(d.curve) ? d.curve.filter((v): v is number => typeof v === 'number') : [];
    const every =
      typeof d.curveEvery === 'number' && d.curveEvery > 0 && Number.isFinite(d.curveEvery) ? d.curveEvery : 1;
    return { curve, every };
  } catch {
    return { curve: [], every: 1 };
  }
}

/** A number for a table cell (a damaged value shows as it is, escaped, never as markup). */
const fixed = (x: unknown, digits: number): string =>
  typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : String(x);

const points = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;

/** A rule as a table cell: its readable form, the exact text in the tooltip. */
const ruleCell = (rule: string): Html => html`<code title="${rule}">${readableRule(rule)}</code>`;

/** The funnel: its rungs, the leaderboard by highest rung, and the verdicts against the baseline. */
function funnelSection(view: ReportView): Html {
  const { funnel, candidates } = view;
  if (!funnel) return html``;
  const { rungs, baselineScores: base, leaderboard: board, baseline } = funnel;
  const ci = (c: readonly [number, number] | null) => (c ? `[${fixed(c[0], 4)}, ${fixed(c[1], 4)}]` : '-');
  const rungRows = rungs.map((r) => {
    const b = base.find((x) => x.rung === r.rung);
    const n = board.filter((e) => e.rung >= r.rung).length;
    return html`<tr><td>${r.rung}</td><td>${r.label}</td><td>${r.task}</td><td>${r.steps ?? (r.stepsFactor ? `${r.stepsFactor}x each task's` : 'task default')}</td><td>${r.rung === 0 ? candidates.filter((c) => c.status === 'ok').length : n}</td><td>${b ? `${fixed(b.mean, 4)} ${ci(b.ci95)}` : '-'}</td></tr>\n`;
  });
  const boardRows = board.map((e) => {
    const v =
      e.vsBaseline && e.vsBaseline.p !== null
        ? `${e.vsBaseline.verdict} (${points(e.vsBaseline.mean)} pts, p=${e.vsBaseline.p.toPrecision(2)})`
        : '-';
    return html`<tr><td>${e.rank}</td><td>${e.rung}</td><td>${fixed(e.reward, 4)}</td><td>${ci(e.ci95)}</td><td>${e.seeds}</td><td>${v}</td><td>${ruleCell(e.rule)}</td></tr>\n`;
  });
  const vs = funnel.verdicts.map((v) => {
    const cell = (c: typeof v.proxy) =>
      c === null || c.p === null
        ? html`-`
        : html`<b>${c.verdict}</b>: ${points(c.mean)} points${c.ci95 ? `, 95% CI [${points(c.ci95[0])}, ${points(c.ci95[1])}]` : ''}, p=${c.p.toPrecision(2)}, ${c.n} seeds`;
    return html`<tr><td>${ruleCell(v.rule)}</td><td>${cell(v.proxy)}</td><td>${cell(v.transfer)}</td></tr>\n`;
  });
  // A suite run: each workload's result per rule at its highest rung, paired with the baseline.
  const perWorkload = board
    .filter((e) => e.workloads && Object.keys(e.workloads).length > 1)
    .flatMap((e) =>
      Object.entries(e.workloads ?? {}).map(
        ([task, w]) =>
          html`<tr><td>${ruleCell(e.rule)}</td><td>${e.rung}</td><td>${task}</td><td>${fixed(w.mean, 4)}</td><td>${ci(w.ci95)}</td><td>${w.seeds}</td><td>${w.diff && w.diff.p !== null ? html`<b>${w.verdict}</b>: ${points(w.diff.mean)} points${w.diff.ci95 ? `, 95% CI [${points(w.diff.ci95[0])}, ${points(w.diff.ci95[1])}]` : ''}, p=${w.diff.p.toPrecision(2)}` : '-'}</td></tr>\n`,
      ),
    );
  const workloadTable =
    perWorkload.length > 0
      ? html`<h3>Per workload</h3>
<p>Each workload's score (higher is better; nos tasks gives each one's metric), mean over seeds with its 95% CI, and its difference from ${baseline} on the same workload and seeds.</p>
<table id="workloads"><thead><tr><th>rule</th><th>rung</th><th>workload</th><th>mean</th><th>95% CI</th><th>seeds</th><th>vs ${baseline}</th></tr></thead><tbody>
${perWorkload}</tbody></table>
`
      : html``;
  return html`<h2>Funnel</h2>
<p>After the search, the best rules climb rungs of rising fidelity; ${baseline} runs on every rung with the same seeds, so comparisons are paired by seed (paired t-test, two-sided).</p>
<table id="rungs"><thead><tr><th>rung</th><th>what</th><th>task</th><th>steps</th><th>rules</th><th>${baseline}: mean [95% CI]</th></tr></thead><tbody>
${rungRows}</tbody></table>
<h3>Leaderboard by the highest rung reached</h3>
<table id="funnel"><thead><tr><th>rank</th><th>rung</th><th>mean reward</th><th>95% CI</th><th>seeds</th><th>vs ${baseline}</th><th>rule</th></tr></thead><tbody>
${boardRows}</tbody></table>
<h3>Verdicts vs ${baseline}</h3>
<table id="verdicts"><thead><tr><th>rule</th><th>${funnel.suite ? 'search suite' : 'proxy task'} (rung 2)</th><th>${funnel.suite ? 'held-out suite' : 'transfer task'} (rung 3)</th></tr></thead><tbody>
${vs.length > 0 ? vs : html`<tr><td colspan="3">No rule reached rung 2.</td></tr>`}
</tbody></table>
${workloadTable}`;
}

/** A checkpoint's stats line (JSON), or nulls when it is not one. */
function statsOf(c: StrategyCheckpoint): { entropy: number | null } {
  try {
    const s = JSON.parse(c.stats) as { entropy?: unknown } | null;
    return { entropy: typeof s?.entropy === 'number' ? s.entropy : null };
  } catch {
    return { entropy: null };
  }
}

/**
 * The report page. Every value from the run (its config, candidates, checkpoints, the funnel's
 * rows) reaches the page through the `html` tag (html.ts), escaped, whatever its type.
 */
export function renderReportPage(input: ReportView): string {
  const { run: config, candidates } = input;
  const xs = candidates.map((c) => c.index + 1);
  let best = 0;
  const bestSoFar = candidates.map((c) => {
    if (sampleKind(c.status) !== 'cached' && c.reward > best) best = c.reward;
    return best;
  });
  const window = Math.max(5, Math.floor(candidates.length / 20));
  // A running sum over the window (not a slice per candidate: a long run would be quadratic).
  let sum = 0;
  const meanReward = candidates.map((c, i) => {
    sum += c.reward;
    if (i >= window) sum -= (candidates[i - window] as Candidate).reward;
    return sum / Math.min(window, i + 1);
  });
  const progress: Series[] = [
    { name: 'best so far', x: xs, y: bestSoFar },
    { name: `mean (last ${window})`, x: xs, y: meanReward },
  ];
  if (input.adam)
    progress.push({ name: 'Adam', x: [1, Math.max(1, candidates.length)], y: [input.adam.reward, input.adam.reward] });
  const stats = input.checkpoints.map(statsOf);
  const entropy = stats.some((s) => s.entropy !== null)
    ? trustedHtml(
        lineChart([{ name: 'entropy', x: stats.map((_s, i) => i + 1), y: stats.map((s) => s.entropy ?? Number.NaN) }], {
          title: 'Controller entropy per update',
          xLabel: 'update',
          yLabel: 'mean entropy per choice (nats)',
          height: 300,
        }),
      )
    : html`<p>This strategy has no policy entropy.</p>`;
  const top = input.top;
  const curves: Series[] = top.slice(0, 5).map((c, i) => {
    const { curve, every } = curveOf(c);
    return { name: `#${i + 1}`, x: curve.map((_v, k) => (k + 1) * every), y: curve };
  });
  if (input.adam)
    curves.push({
      name: 'Adam',
      x: input.adam.curve.map((_v, k) => (k + 1) * input.adam!.curveEvery),
      y: input.adam.curve,
    });
  const counts = sampleCounts(candidates);
  const rows = top.map(
    (c, i) =>
      html`<tr><td>${i + 1}</td><td>${fixed(c.reward, 4)}</td><td>${c.testAcc === null ? '-' : fixed(c.testAcc, 4)}</td><td>${c.bestLr ?? '-'}</td><td>${ruleCell(c.rule)}</td><td>#${c.index}</td></tr>\n`,
  );
  const progressChart = trustedHtml(
    lineChart(progress, { title: 'Validation accuracy of sampled rules', xLabel: 'rules sampled', yLabel: 'reward' }),
  );
  const curvesChart =
    curves.length > 0
      ? trustedHtml(
          lineChart(curves, {
            title: 'Training loss of the top rules',
            xLabel: 'step',
            yLabel: 'training loss',
            logY: true,
          }),
        )
      : html`<p>No curves.</p>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nos run ${config.run}</title>
<style>
body { font-family: sans-serif; max-width: 980px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
code { font-size: 13px; }
.facts span { display: inline-block; margin-right: 1.5em; }
</style></head>
<body>
<h1>nos search run <code>${config.run}</code></h1>
<p class="facts"><span>strategy <b>${config.strategy}</b></span><span>task <b>${config.task}</b></span><span>seed ${config.seed}</span>
<span>${candidates.length} of ${config.budget} rules sampled</span><span>${counts.trained} trained</span><span>${counts.cached} cached</span><span>${counts.rejected} rejected</span>
${input.adam ? html`<span>Adam, same protocol: <b>${fixed(input.adam.reward, 4)}</b></span>` : ''}</p>
<h2>Reward</h2>
<figure id="progress">${progressChart}</figure>
<h2>Controller</h2>
<figure id="entropy">${entropy}</figure>
<h2>Top rules</h2>
<table id="top"><thead><tr><th>rank</th><th>reward (val)</th><th>test</th><th>lr</th><th>rule: d_t</th><th>candidate</th></tr></thead>
<tbody>
${rows.length > 0 ? rows : html`<tr><td colspan="6">No rule trained successfully.</td></tr>\n`}</tbody></table>
${funnelSection(input)}<h2>Learning curves</h2>
<figure id="curves">${curvesChart}</figure>
<p>Generated by nos. Export a rule: <code>nos export --run ${config.run} --rank 1 --format ts</code></p>
</body></html>
`.text;
}

/** `nos eval --out`: the training loss of each rule, mean +- std over its seeds, on a log scale. */
export function evalCurvesSvg(taskId: string, rows: readonly RuleSummary[]): string {
  const series = rows.map((r) => {
    const band = curveBand(r.seeds);
    return { name: r.label, x: band.x, y: band.mean, lo: band.lo, hi: band.hi };
  });
  return lineChart(series, {
    title: `Training loss on ${taskId} (mean +- std over seeds)`,
    xLabel: 'step',
    yLabel: 'training loss',
    logY: true,
  });
}
