/**
 * The dashboard's pages as HTML, from runs read read-only: the list of runs, one run (its
 * progress, controller, leaderboard, funnel and verdicts, learning curves), one rule of a run,
 * and two runs side by side. A page is a list of sections; a live page gets its sections again,
 * re-rendered, whenever a run it shows changes (server.ts). Every value from a run.db is placed
 * as escaped text (html.ts); charts are search-results/plot.ts's SVG, which escapes its labels.
 */
import {
  baselineScores,
  type LeaderboardEntry,
  leaderboard,
  rankedLeaderboard,
  rungsOf,
  verdicts,
} from '../controller/funnel-plan.js';
import { readableRule } from '../dsl/readable.js';
import { lineChart, type Series } from '../search-results/plot.js';
import { sampleCounts } from '../search-results/samples.js';
import type { Candidate } from '../search-results/store.js';
import { fixed, type Html, html, trusted } from './html.js';
import type { RunRead, RunSnapshot, RunState } from './runs.js';

export interface Section {
  readonly id: string;
  readonly html: Html;
}

export interface Page {
  readonly title: string;
  readonly sections: readonly Section[];
  /** HTTP status of the page (200, or 404/403 for a page that says what is missing). */
  readonly status?: number;
}

/** A run's per-workload results as the leaderboard of a multi-workload rung gives them (when present). */
interface WorkloadResult {
  readonly mean: number;
  readonly ci95: readonly [number, number] | null;
  readonly seeds: number;
  readonly verdict?: string;
}

function workloadsOf(x: object): [string, WorkloadResult][] {
  const w = (x as { workloads?: unknown }).workloads;
  if (w === null || typeof w !== 'object') return [];
  return Object.entries(w as Record<string, unknown>).filter(
    (e): e is [string, WorkloadResult] => e[1] !== null && typeof e[1] === 'object',
  );
}

const points = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;
const ci = (c: readonly [number, number] | null | undefined) => (c ? `[${fixed(c[0])}, ${fixed(c[1])}]` : '-');

function readable(rule: string): string {
  try {
    return readableRule(rule);
  } catch {
    return rule;
  }
}

export const runHref = (name: string) => `/run/${encodeURIComponent(name)}`;
const ruleHref = (name: string, index: number) => `${runHref(name)}/rule/${index}`;
export const exportHref = (name: string, index: number, ext: 'ts' | 'py') => `${runHref(name)}/export/${index}.${ext}`;

const badge = (state: RunState | 'error') => html`<span class="state state-${state}">${state}</span>`;

/** Details of a candidate's stored evaluation (learning curve, grid), read defensively. */
export interface CandidateDetail {
  readonly curve: readonly number[];
  readonly curveEvery: number;
  readonly grid: readonly { lr: number; status: string; valAcc: number | null; tailLoss: number | null }[];
  readonly reason: string | null;
}

export function detailOf(c: Candidate): CandidateDetail {
  let d: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(c.detail);
    if (parsed !== null && typeof parsed === 'object') d = parsed as Record<string, unknown>;
  } catch {
    // no detail
  }
  const nums = (x: unknown) => (Array.isArray(x) ? x.map((v) => (typeof v === 'number' ? v : Number.NaN)) : []);
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const grid = Array.isArray(d.grid)
    ? d.grid
        .filter((g): g is Record<string, unknown> => g !== null && typeof g === 'object')
        .map((g) => ({
          lr: num(g.lr) ?? Number.NaN,
          status: String(g.status),
          valAcc: num(g.valAcc),
          tailLoss: num(g.tailLoss),
        }))
    : [];
  const every = num(d.curveEvery);
  return {
    curve: nums(d.curve),
    curveEvery: every !== null && every > 0 ? every : 1,
    grid,
    reason: typeof d.reason === 'string' ? d.reason : null,
  };
}

interface Counts {
  readonly trained: number;
  readonly cached: number;
  readonly rejected: number;
  readonly best: Candidate | undefined;
}

function counts(cs: readonly Candidate[]): Counts {
  const { trained, cached, rejected } = sampleCounts(cs);
  return { trained, cached, rejected, best: leaderboard(cs, 1)[0] };
}

const unitOf = (r: RunSnapshot) => {
  const u = (r.config as { budgetUnit?: unknown }).budgetUnit;
  return u === 'trained' ? 'trained' : 'sampled';
};

// ---------------------------------------------------------------------------------------------
// Charts

function progressChart(r: RunSnapshot, width = 720): Html {
  const cs = r.candidates;
  if (cs.length === 0) return html`<p>No rule sampled yet.</p>`;
  const xs = cs.map((c) => c.index + 1);
  let best = 0;
  const bestSoFar = cs.map((c) => {
    if (c.status === 'ok' && c.reward > best) best = c.reward;
    return best;
  });
  const window = Math.max(5, Math.floor(cs.length / 20));
  const mean = cs.map((_c, i) => {
    const slice = cs.slice(Math.max(0, i - window + 1), i + 1);
    return slice.reduce((a, x) => a + x.reward, 0) / slice.length;
  });
  return trusted(
    lineChart(
      [
        { name: 'best so far', x: xs, y: bestSoFar },
        { name: `mean (last ${window})`, x: xs, y: mean },
      ],
      { title: 'Reward of the sampled rules', xLabel: 'rules sampled', yLabel: 'reward', width, height: 340 },
    ),
  );
}

function entropyChart(r: RunSnapshot, width = 720): Html {
  const stats = r.checkpoints.map((c) => {
    try {
      const s = JSON.parse(c.stats) as { entropy?: unknown; meanReward?: unknown };
      return {
        entropy: typeof s.entropy === 'number' ? s.entropy : Number.NaN,
        mean: typeof s.meanReward === 'number' ? s.meanReward : Number.NaN,
      };
    } catch {
      return { entropy: Number.NaN, mean: Number.NaN };
    }
  });
  if (!stats.some((s) => Number.isFinite(s.entropy)))
    return html`<p>${r.checkpoints.length === 0 ? 'No strategy update yet.' : `The ${r.config.strategy} strategy has no policy entropy.`}</p>`;
  const x = stats.map((_s, i) => i + 1);
  return trusted(
    lineChart([{ name: 'entropy', x, y: stats.map((s) => s.entropy) }], {
      title: 'Controller entropy per update',
      xLabel: 'update',
      yLabel: 'mean entropy per choice (nats)',
      width,
      height: 300,
    }),
  );
}

function curvesChart(series: readonly { name: string; c: Candidate }[], title: string): Html {
  const lines: Series[] = series
    .map(({ name, c }) => {
      const d = detailOf(c);
      // A loss of exactly 0 (an analytic minimum reached) has no place on a log scale: left out.
      return {
        name,
        x: d.curve.map((_v, k) => (k + 1) * d.curveEvery),
        y: d.curve.map((v) => (v > 0 ? v : Number.NaN)),
      };
    })
    .filter((s) => s.x.length > 0);
  if (lines.length === 0) return html`<p>No learning curves stored.</p>`;
  return trusted(lineChart(lines, { title, xLabel: 'step', yLabel: 'training loss', logY: true, height: 360 }));
}

// ---------------------------------------------------------------------------------------------
// Tables

function configTable(r: RunSnapshot): Html {
  const rows = Object.entries(r.config).map(
    ([k, v]) => html`<tr><th>${k}</th><td><code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></td></tr>`,
  );
  return html`<details><summary>Config (stored with the run, enforced on resume)</summary><table class="config">${rows}</table></details>`;
}

function summary(r: RunSnapshot): Html {
  const c = r.config;
  const n = counts(r.candidates);
  const lock =
    r.lock.state === 'held' ? html`<span>nos pid ${r.lock.pid} on ${r.lock.host}, since ${r.lock.since}</span>` : '';
  return html`<p class="facts">${badge(r.state)}${lock}
<span>task <b>${c.task}</b></span><span>strategy <b>${c.strategy}</b></span><span>seed ${c.seed}</span>
<span><b class="sampled">${r.candidates.length}</b> sampled</span><span><b>${n.trained}</b>${unitOf(r) === 'trained' ? ` of ${c.budget}` : ''} trained</span><span>${n.cached} cached</span><span>${n.rejected} rejected</span>
<span>best proxy reward <b>${n.best ? fixed(n.best.reward) : '-'}</b></span>
<span>updated ${r.updatedMs > 0 ? new Date(r.updatedMs).toISOString() : '-'}</span></p>`;
}

function verdictCell(
  v: { verdict?: string; mean: number; p: number | null; ci95?: readonly [number, number] | null; n?: number } | null,
): Html | string {
  if (v === null || v.p === null) return '-';
  return html`<b class="verdict-${v.verdict ?? ''}">${v.verdict ?? ''}</b> ${points(v.mean)} pts${v.ci95 ? `, 95% CI [${points(v.ci95[0])}, ${points(v.ci95[1])}]` : ''}, p=${v.p.toPrecision(2)}${v.n === undefined ? '' : `, ${v.n} seeds`}`;
}

function workloadCells(x: object): Html | string {
  const w = workloadsOf(x);
  if (w.length === 0) return '-';
  return html`<table class="workloads">${w.map(
    ([task, r]) =>
      html`<tr><td>${task}</td><td>${fixed(r.mean)}</td><td>${ci(r.ci95)}</td><td>${fixed(r.seeds, 0)} seeds</td><td>${r.verdict ?? ''}</td></tr>`,
  )}</table>`;
}

function downloads(name: string, index: number): Html {
  return html`<a class="dl" href="${exportHref(name, index, 'ts')}" download>TypeScript</a> <a class="dl" href="${exportHref(name, index, 'py')}" download>PyTorch</a>`;
}

function ruleCell(name: string, c: Candidate): Html {
  return html`<a href="${ruleHref(name, c.index)}" title="${c.rule}"><code>${readable(c.rule)}</code></a>`;
}

function leaderboardTable(r: RunSnapshot, top: number, compact = false): Html {
  const board = rankedLeaderboard(r.config, r.candidates, r.evaluations, top);
  if (board.length === 0) return html`<p>No rule has trained successfully yet.</p>`;
  const baseline = r.config.funnel?.baseline;
  const anyWorkloads = board.some((e) => workloadsOf(e).length > 0);
  const row = (e: LeaderboardEntry) =>
    html`<tr data-index="${e.candidate.index}"><td>${e.rank}</td><td>${e.rung}</td><td>${fixed(e.reward)}</td><td>${ci(e.ci95)}</td><td>${e.seeds}</td>${
      baseline === undefined ? '' : html`<td>${verdictCell(e.vsBaseline)}</td>`
    }${anyWorkloads ? html`<td>${workloadCells(e)}</td>` : ''}<td>${ruleCell(r.name, e.candidate)}</td><td>#${e.candidate.index}</td>${
      compact ? '' : html`<td>${downloads(r.name, e.candidate.index)}</td>`
    }</tr>`;
  return html`<table class="leaderboard"><thead><tr><th>rank</th><th>rung</th><th>mean reward</th><th>95% CI</th><th>seeds</th>${
    baseline === undefined ? '' : html`<th>vs ${baseline}</th>`
  }${anyWorkloads ? html`<th>per workload</th>` : ''}<th>rule: d_t</th><th>sample</th>${compact ? '' : html`<th>export</th>`}</tr></thead>
<tbody>${board.map(row)}</tbody></table>`;
}

function recentTable(r: RunSnapshot, n = 12): Html {
  const recent = [...r.candidates].sort((a, b) => b.index - a.index).slice(0, n);
  if (recent.length === 0) return html`<p>No rule sampled yet.</p>`;
  return html`<table class="recent"><thead><tr><th>sample</th><th>status</th><th>reward</th><th>lr</th><th>seconds</th><th>rule: d_t</th></tr></thead><tbody>${recent.map(
    (c) =>
      html`<tr data-index="${c.index}"><td>#${c.index}</td><td class="status-${c.status}">${c.status}</td><td>${fixed(c.reward)}</td><td>${c.bestLr ?? '-'}</td><td>${fixed(c.seconds, 2)}</td><td>${ruleCell(r.name, c)}</td></tr>`,
  )}</tbody></table>`;
}

function funnelTables(r: RunSnapshot): Html {
  const f = r.config.funnel;
  if (!f) return html`<p>This run has no funnel: its leaderboard ranks the proxy reward (one seed).</p>`;
  const rungs = rungsOf(r.config);
  const base = baselineScores(r.config, r.evaluations);
  const board = rankedLeaderboard(r.config, r.candidates, r.evaluations, Number.MAX_SAFE_INTEGER);
  const ok = r.candidates.filter((c) => c.status === 'ok').length;
  const rows = rungs.map((g) => {
    const b = base.find((x) => x.rung === g.rung);
    const n = g.rung === 0 ? ok : board.filter((e) => e.rung >= g.rung).length;
    return html`<tr><td>${g.rung}</td><td>${g.label}</td><td>${g.task}</td><td>${g.steps ?? 'task default'}</td><td>${n}</td><td>${b ? `${fixed(b.mean)} ${ci(b.ci95)}` : '-'}</td></tr>`;
  });
  return html`<p>The best rules climb rungs of rising fidelity; ${f.baseline} runs on every rung with the same seeds, so each comparison is paired by seed.</p>
<table class="rungs"><thead><tr><th>rung</th><th>what</th><th>task</th><th>steps</th><th>rules</th><th>${f.baseline}: mean [95% CI]</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function verdictsTable(r: RunSnapshot): Html {
  const f = r.config.funnel;
  if (!f) return html`<p>Verdicts need a funnel (a baseline on the same rungs and seeds).</p>`;
  const vs = verdicts(r.config, r.candidates, r.evaluations);
  if (vs.length === 0) return html`<p>No rule has reached rung 2 yet.</p>`;
  const byHash = new Map(r.candidates.map((c) => [c.hash, c]));
  const anyWorkloads = vs.some((v) => workloadsOf(v).length > 0);
  return html`<table class="verdicts"><thead><tr><th>rule</th><th>proxy task (rung 2)</th><th>transfer task (rung 3)</th>${anyWorkloads ? html`<th>per workload</th>` : ''}<th>export</th></tr></thead><tbody>${vs.map(
    (v) => {
      const c = byHash.get(v.hash);
      return html`<tr><td>${c ? ruleCell(r.name, c) : html`<code>${readable(v.rule)}</code>`}</td><td>${verdictCell(v.proxy)}</td><td>${verdictCell(v.transfer)}</td>${
        anyWorkloads ? html`<td>${workloadCells(v)}</td>` : ''
      }<td>${c ? downloads(r.name, c.index) : '-'}</td></tr>`;
    },
  )}</tbody></table>`;
}

// ---------------------------------------------------------------------------------------------
// Pages

const errorSection = (id: string, message: string) =>
  ({ id, html: html`<p class="error">${badge('error')} ${message}</p>` }) satisfies Section;

/** The list of runs. */
export function indexPage(dir: string, reads: readonly RunRead[]): Page {
  const rows = reads.map((read) => {
    if (!read.ok)
      return html`<tr class="error"><td><a href="${runHref(read.name)}">${read.name}</a></td><td>${badge('error')}</td><td colspan="8">${read.error}</td></tr>`;
    const r = read.run;
    const n = counts(r.candidates);
    return html`<tr data-run="${r.name}"><td><a href="${runHref(r.name)}">${r.name}</a></td><td>${badge(r.state)}</td><td>${r.config.task}</td><td>${r.config.strategy}</td><td>${r.config.budget} ${unitOf(r)}</td><td>${r.candidates.length}</td><td>${n.trained}</td><td>${n.best ? fixed(n.best.reward) : '-'}</td><td>${r.config.seed}</td><td>${r.config.createdAt}</td></tr>`;
  });
  const names = reads.map((r) => r.name);
  const options = (selected: number) =>
    names.map((n, i) => html`<option value="${n}"${i === selected ? trusted(' selected') : ''}>${n}</option>`);
  const compare =
    names.length >= 2
      ? html`<form class="compare" method="get" action="/compare"><label>compare <select name="a">${options(0)}</select></label> <label>with <select name="b">${options(1)}</select></label> <button type="submit">side by side</button></form>`
      : '';
  return {
    title: 'nos dashboard',
    sections: [
      {
        id: 'runs',
        html:
          reads.length === 0
            ? html`<p>No runs in <code>${dir}</code> yet: <code>nos search</code> writes them there.</p>`
            : html`<table class="runs"><thead><tr><th>run</th><th>state</th><th>task</th><th>strategy</th><th>budget</th><th>sampled</th><th>trained</th><th>best</th><th>seed</th><th>created</th></tr></thead><tbody>${rows}</tbody></table>${compare}`,
      },
    ],
  };
}

/** One run. */
export function runPage(read: RunRead): Page {
  if (!read.ok) return { title: `nos run ${read.name}`, sections: [errorSection('summary', read.error)] };
  const r = read.run;
  const top = leaderboard(r.candidates, 5);
  return {
    title: `nos run ${r.name}`,
    sections: [
      { id: 'summary', html: summary(r) },
      { id: 'config', html: configTable(r) },
      { id: 'progress', html: html`<h2>Reward</h2>${progressChart(r)}` },
      { id: 'controller', html: html`<h2>Controller</h2>${entropyChart(r)}` },
      { id: 'leaderboard', html: html`<h2>Leaderboard</h2>${leaderboardTable(r, 20)}` },
      { id: 'recent', html: html`<h2>Latest results</h2>${recentTable(r)}` },
      { id: 'funnel', html: html`<h2>Funnel</h2>${funnelTables(r)}` },
      { id: 'verdicts', html: html`<h2>Verdicts of the finalists</h2>${verdictsTable(r)}` },
      {
        id: 'curves',
        html: html`<h2>Learning curves</h2>${curvesChart(
          top.map((c, i) => ({ name: `#${i + 1} (sample ${c.index})`, c })),
          'Training loss of the top rules (proxy run)',
        )}`,
      },
    ],
  };
}

/** One rule of a run: its results, learning curve, grid, funnel rows and exports. */
export function rulePage(read: RunRead, index: number): Page {
  if (!read.ok) return { title: `nos run ${read.name}`, sections: [errorSection('rule', read.error)] };
  const r = read.run;
  const c = r.candidates.find((x) => x.index === index);
  if (c === undefined)
    return {
      title: `nos run ${r.name}: no sample ${index}`,
      status: 404,
      sections: [errorSection('rule', `run '${r.name}' has no sample #${index}`)],
    };
  const d = detailOf(c);
  const best = leaderboard(r.candidates, 1)[0];
  const series = [{ name: `sample ${c.index}`, c }];
  if (best !== undefined && best.index !== c.index) series.push({ name: `best (${best.index})`, c: best });
  const rows = r.evaluations
    .filter((e) => e.hash === c.hash)
    .map(
      (e) =>
        html`<tr><td>${e.rung}</td><td>${e.task}</td><td>${e.seed}</td><td>${e.status}</td><td>${fixed(e.reward)}</td><td>${e.bestLr ?? '-'}</td></tr>`,
    );
  const board = rankedLeaderboard(r.config, r.candidates, r.evaluations, Number.MAX_SAFE_INTEGER);
  const entry = board.find((e) => e.candidate.hash === c.hash);
  return {
    title: `nos run ${r.name}: sample ${c.index}`,
    sections: [
      {
        id: 'rule',
        html: html`<p><a href="${runHref(r.name)}">run ${r.name}</a> ${badge(r.state)}</p>
<p class="rule"><code>d_t = ${readable(c.rule)}</code></p>
<p class="facts"><span>status <b class="status-${c.status}">${c.status}</b></span><span>proxy reward <b>${fixed(c.reward)}</b></span><span>lr ${c.bestLr ?? '-'}</span><span>validation ${fixed(c.valAcc)}</span><span>test ${fixed(c.testAcc)}</span><span>${fixed(c.seconds, 2)} s</span>${
          entry
            ? html`<span>rank <b>${entry.rank}</b> at rung ${entry.rung}: ${fixed(entry.reward)} ${ci(entry.ci95)}</span>`
            : ''
        }</p>
${d.reason ? html`<p>why it ended: ${d.reason}</p>` : ''}
${c.status === 'cached' && c.parent !== null ? html`<p>a cache hit: the same rule (or one that acts the same) as <a href="${ruleHref(r.name, c.parent)}">sample ${c.parent}</a>.</p>` : ''}
<p>canonical text: <code>${c.rule}</code></p>
<p>export: ${downloads(r.name, c.index)}</p>`,
      },
      {
        id: 'curve',
        html: html`<h2>Learning curve</h2>${curvesChart(series, 'Training loss at the chosen learning rate')}`,
      },
      {
        id: 'grid',
        html:
          d.grid.length === 0
            ? html`<h2>Learning-rate grid</h2><p>No grid stored.</p>`
            : html`<h2>Learning-rate grid</h2><table class="grid"><thead><tr><th>lr</th><th>status</th><th>validation</th><th>tail training loss</th></tr></thead><tbody>${d.grid.map(
                (g) =>
                  html`<tr${g.lr === c.bestLr ? trusted(' class="chosen"') : ''}><td>${g.lr}</td><td>${g.status}</td><td>${fixed(g.valAcc)}</td><td>${fixed(g.tailLoss)}</td></tr>`,
              )}</tbody></table>`,
      },
      {
        id: 'rungs',
        html:
          rows.length === 0
            ? html`<h2>Funnel</h2><p>No funnel evaluations of this rule.</p>`
            : html`<h2>Funnel</h2><table><thead><tr><th>rung</th><th>task</th><th>seed</th><th>status</th><th>reward</th><th>lr</th></tr></thead><tbody>${rows}</tbody></table>`,
      },
    ],
  };
}

/** Two runs side by side, with their best-so-far curves on one chart. */
export function comparePage(names: readonly string[], a: RunRead | undefined, b: RunRead | undefined): Page {
  const column = (read: RunRead) =>
    read.ok
      ? html`<div class="column"><h2><a href="${runHref(read.name)}">${read.name}</a></h2>${summary(read.run)}${progressChart(read.run, 520)}${leaderboardTable(read.run, 10, true)}</div>`
      : html`<div class="column"><h2>${read.name}</h2><p class="error">${badge('error')} ${read.error}</p></div>`;
  const pick = (which: 'a' | 'b', selected: string | undefined) =>
    html`<select name="${which}">${names.map((n) => html`<option value="${n}"${n === selected ? trusted(' selected') : ''}>${n}</option>`)}</select>`;
  const form = html`<form class="compare" method="get" action="/compare"><label>compare ${pick('a', a?.name)}</label> <label>with ${pick('b', b?.name)}</label> <button type="submit">side by side</button></form>`;
  if (a === undefined || b === undefined) return { title: 'nos: compare runs', sections: [{ id: 'pick', html: form }] };
  const series: Series[] = [a, b].flatMap((read) => {
    if (!read.ok || read.run.candidates.length === 0) return [];
    let best = 0;
    return [
      {
        name: read.name,
        x: read.run.candidates.map((c) => c.index + 1),
        y: read.run.candidates.map((c) => {
          if (c.status === 'ok' && c.reward > best) best = c.reward;
          return best;
        }),
      },
    ];
  });
  return {
    title: `nos: ${a.name} vs ${b.name}`,
    sections: [
      { id: 'pick', html: form },
      {
        id: 'overlay',
        html:
          series.length === 0
            ? html`<p>Neither run has a result yet.</p>`
            : trusted(
                lineChart(series, {
                  title: 'Best reward so far',
                  xLabel: 'rules sampled',
                  yLabel: 'reward',
                  height: 320,
                }),
              ),
      },
      { id: 'columns', html: html`<div class="columns">${column(a)}${column(b)}</div>` },
    ],
  };
}

/** A page that says what is missing or refused. */
export function messagePage(status: number, title: string, message: string): Page {
  return { title, status, sections: [{ id: 'message', html: html`<p class="error">${message}</p>` }] };
}

/** The whole HTML document of a page; `live` names the page for the live updates (server-sent events). */
export function documentOf(page: Page, live: { readonly path: string; readonly version: string } | null): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${page.title}</title><link rel="stylesheet" href="/static/dashboard.css"><script src="/static/live.js" defer></script></head>
<body${live ? html` data-live-path="${live.path}" data-version="${live.version}"` : ''}>
<nav><a href="/">runs</a> <a href="/compare">compare</a> <a href="/play/">search in your browser</a>${live ? html` <span id="live" class="live">live</span>` : ''}</nav>
<h1>${page.title}</h1>
<main>${page.sections.map((s) => html`<section id="${s.id}">${s.html}</section>`)}</main>
<footer>nos dashboard: read-only; it never writes a run.</footer>
</body></html>
`.text;
}
