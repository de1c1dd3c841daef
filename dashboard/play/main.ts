/**
 * The in-browser search page: reads the settings (from the form, or the page's query string:
 * `?task=quadratic&budget=20&autostart=1`), loads the MNIST subset when the task needs it (the
 * file `nos dashboard` serves beside the page, or one the user picks), starts the search worker
 * and shows its results as they arrive: progress, a leaderboard, and the best rule exported as a
 * TypeScript optimizer. Every value from the search is put in the page as text, never as markup.
 */
import './style.css';
import {
  type Candidate,
  type DatasetBuffers,
  emitTypeScript,
  findTask,
  leaderboard,
  lineChart,
  lookupRule,
  parseDatasetFile,
  readableRule,
  type SearchProgress,
  TASKS,
} from '../../browser.js';
import { errorText, type FromSearch, type PlaySettings, type ToSearch } from './messages.js';

/** The tasks a page can train: the analytic ones, and MNIST's (on a subset). */
const PLAY_TASKS = TASKS.filter((t) => t.dataset === null || t.dataset === 'mnist');
const DATA_URL = 'data/mnist-subset.bin';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el as T;
};

const form = $<HTMLFormElement>('settings');
const taskSelect = $<HTMLSelectElement>('task');
const status = $('status');
const startButton = $<HTMLButtonElement>('start');
const stopButton = $<HTMLButtonElement>('stop');
const dataRow = $('data-row');
const dataFile = $<HTMLInputElement>('data-file');
const board = $<HTMLTableElement>('leaderboard');
const exported = $('export');
const download = $<HTMLButtonElement>('download');
let exportText = '';
const progressFigure = $('progress');

for (const t of PLAY_TASKS) {
  const o = document.createElement('option');
  o.value = t.id;
  o.textContent = `${t.id}: ${t.description.length > 70 ? `${t.description.slice(0, 69)}…` : t.description}`;
  taskSelect.append(o);
}
taskSelect.value = 'quadratic';

/** Form fields from the query string (unknown keys and values the form does not offer are ignored). */
const params = new URLSearchParams(location.search);
for (const [key, value] of params) {
  const field = form.elements.namedItem(key);
  if (field instanceof HTMLInputElement && field.type === 'number') field.value = value;
  if (field instanceof HTMLSelectElement && [...field.options].some((o) => o.value === value)) field.value = value;
}
const showDataRow = () => {
  dataRow.hidden = findTask(taskSelect.value)?.dataset === null;
};
taskSelect.addEventListener('change', showDataRow);
showDataRow();

const setState = (state: 'idle' | 'loading' | 'running' | 'done' | 'stopped' | 'error', text: string) => {
  document.body.dataset.state = state;
  status.textContent = text;
};

function intField(name: string, min: number, max: number): number | null {
  const field = form.elements.namedItem(name) as HTMLInputElement;
  if (field.value.trim() === '') return null;
  const v = Number(field.value);
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new RangeError(`${name} must be an integer in [${min}, ${max}]`);
  return v;
}

function settings(): PlaySettings {
  const select = (name: string) => (form.elements.namedItem(name) as HTMLSelectElement).value;
  const required = (name: string, min: number, max: number, fallback: number) => intField(name, min, max) ?? fallback;
  const cores = Math.max(1, (navigator.hardwareConcurrency || 2) - 1);
  return {
    task: select('task'),
    strategy: select('strategy') as PlaySettings['strategy'],
    budget: required('budget', 1, 2000, 20),
    seed: required('seed', 0, 2 ** 31 - 1, 1),
    workers: required('workers', 1, 16, Math.min(4, cores)),
    batchSize: required('batch', 1, 200, 10),
    groups: required('groups', 1, 4, 2),
    steps: intField('steps', 1, 100_000),
    backend: select('backend') as PlaySettings['backend'],
  };
}

async function dataset(task: string): Promise<DatasetBuffers | null> {
  const spec = findTask(task);
  if (spec === undefined || spec.dataset === null) return null;
  const picked = dataFile.files?.[0];
  if (picked !== undefined) {
    try {
      return parseDatasetFile(new Uint8Array(await picked.arrayBuffer()), 'mnist');
    } catch (e) {
      throw new Error(`${picked.name}: ${errorText(e)}`);
    }
  }
  const url = new URL(DATA_URL, document.baseURI);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(
      `cannot load the MNIST subset from ${url} (${errorText(e)}): pick a file, or open this page from nos dashboard`,
    );
  }
  if (!response.ok)
    throw new Error(
      `the MNIST subset at ${url} answered ${response.status}: pick a file, or open this page from nos dashboard`,
    );
  return parseDatasetFile(new Uint8Array(await response.arrayBuffer()), 'mnist');
}

// ---------------------------------------------------------------------------------------------
// Results

let candidates: Candidate[] = [];
let bestShown: number | null = null;
let runSettings: PlaySettings | undefined;

const cell = (text: string, title?: string) => {
  const td = document.createElement('td');
  td.textContent = text;
  if (title !== undefined) td.title = title;
  return td;
};

function readable(rule: string): string {
  try {
    return readableRule(rule);
  } catch {
    return rule;
  }
}

function renderBoard(): void {
  const top = leaderboard(candidates, 15);
  const body = board.tBodies[0] as HTMLTableSectionElement;
  body.replaceChildren(
    ...top.map((c, i) => {
      const tr = document.createElement('tr');
      tr.dataset.index = String(c.index);
      const code = document.createElement('code');
      code.textContent = readable(c.rule);
      const ruleCell = cell('', c.rule);
      ruleCell.append(code);
      tr.append(
        cell(String(i + 1)),
        cell(c.reward.toFixed(4)),
        cell(c.bestLr === null ? '-' : String(c.bestLr)),
        ruleCell,
        cell(`#${c.index}`),
        cell(c.seconds.toFixed(2)),
      );
      return tr;
    }),
  );
  const best = top[0];
  if (best !== undefined && best.index !== bestShown) {
    bestShown = best.index;
    showExport(best);
  }
}

function showExport(best: Candidate): void {
  const found = lookupRule(best.rule);
  if (!found.ok) {
    exported.textContent = `the best rule does not check: ${found.message}`;
    return;
  }
  const s = runSettings;
  const text = emitTypeScript(found.rule, {
    className: 'FoundOptimizer',
    provenance: {
      source: 'nos in-browser search',
      detail: `sample #${best.index}, ${s?.strategy ?? '?'} on ${s?.task ?? '?'}, seed ${s?.seed ?? '?'}, reward ${best.reward.toFixed(4)} at lr ${best.bestLr}`,
    },
  });
  exported.textContent = text;
  exportText = text;
  download.disabled = false;
}

download.addEventListener('click', () => {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([exportText], { type: 'text/typescript' }));
  a.download = 'optimizer.ts';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
});

function renderProgress(): void {
  const xs = candidates.map((c) => c.index + 1);
  let best = 0;
  const bestSoFar = candidates.map((c) => {
    if (c.status === 'ok' && c.reward > best) best = c.reward;
    return best;
  });
  // The SVG is built by nos's chart code, which escapes every text it places; the series are numbers.
  progressFigure.innerHTML = lineChart(
    [
      { name: 'best so far', x: xs, y: bestSoFar },
      { name: 'reward', x: xs, y: candidates.map((c) => c.reward) },
    ],
    { title: 'Reward of the sampled rules', xLabel: 'rules sampled', yLabel: 'reward', height: 320 },
  );
}

const describe = (p: SearchProgress) =>
  `${p.evaluated} of ${p.budget} rules trained, ${p.cached} cached, ${p.rejected} rejected; best ${p.best.toFixed(4)}; ${(p.elapsedMs / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// The search

let worker: Worker | undefined;
let backendLine = '';

function finish(state: 'done' | 'stopped' | 'error', text: string): void {
  worker?.terminate();
  worker = undefined;
  startButton.disabled = false;
  stopButton.disabled = true;
  setState(state, text);
}

async function start(): Promise<void> {
  let s: PlaySettings;
  try {
    s = settings();
  } catch (e) {
    setState('error', errorText(e));
    return;
  }
  runSettings = s;
  candidates = [];
  bestShown = null;
  renderBoard();
  progressFigure.replaceChildren();
  exported.textContent = 'No rule yet.';
  download.disabled = true;
  startButton.disabled = true;
  setState('loading', 'loading…');
  let data: DatasetBuffers | null;
  try {
    data = await dataset(s.task);
  } catch (e) {
    finish('error', errorText(e));
    return;
  }
  const w = new Worker(new URL('./search-worker.ts', import.meta.url), { type: 'module', name: 'nos-search' });
  worker = w;
  stopButton.disabled = false;
  w.onerror = (e) => finish('error', `the search worker failed: ${e.message}`);
  w.onmessage = (e: MessageEvent<FromSearch>) => {
    const m = e.data;
    switch (m.type) {
      case 'ready':
        backendLine = `children on tfjs ${m.backend}, ${m.workers} worker(s)`;
        setState('running', `${backendLine}; searching…`);
        break;
      case 'candidate':
        // Results arrive as evaluations finish (out of order with several workers): keep sample order.
        candidates.push(m.candidate);
        candidates.sort((a, b) => a.index - b.index);
        renderBoard();
        renderProgress();
        setState('running', `${backendLine}; ${describe(m.progress)}`);
        break;
      case 'update':
        break;
      case 'done':
        finish(
          m.summary.stopped ? 'stopped' : 'done',
          `${m.summary.stopped ? 'stopped' : 'done'}: ${m.summary.evaluated} rules trained, ${m.summary.cached} cached, ${m.summary.rejected} rejected (${backendLine})`,
        );
        break;
      case 'error':
        finish('error', m.message);
        break;
    }
  };
  const wasmBase = new URL('tfjs/', document.baseURI).href;
  w.postMessage({ type: 'start', settings: s, dataset: data, wasmBase } satisfies ToSearch);
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  void start();
});
stopButton.addEventListener('click', () => {
  worker?.postMessage({ type: 'stop' } satisfies ToSearch);
  stopButton.disabled = true;
  setState('running', 'stopping after the evaluations in flight…');
});
if (params.get('autostart') === '1') void start();
