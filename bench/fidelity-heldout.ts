/**
 * Fidelity against the truth that matters: how well the score that decides promotion (the
 * search suite's aggregate, each workload normalised against Adam) ranks rules as the held-out
 * suite does (workloads the reward never sees). The panel is FRESH: built-ins plus NOS rules drawn
 * with a new seed (HELD_OUT_PANEL_SEED), not the panel the protocol was tuned on (seed 7).
 *
 * Side by side from the same runs: the suite's 'mean' and 'profile' aggregates, and each search
 * workload alone (mlp-mnist alone is the old proxy). Every evaluation is cached (a rerun or a
 * resumed run trains only what is missing).
 *
 *   node dist/bench/fidelity-heldout.js [--seeds 3] [--truth-seeds 5] [--rules 24] [--workers K] [--out DIR]
 *     [--search A,B --name NAME]
 *
 * --search scores another set of search workloads against the same truth (default: the search
 * suite; held-out workloads are refused), written to DIR/fidelity-heldout-NAME.{json,txt}.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { library } from '../dsl/index.js';
import { spearman } from '../evaluator/paired.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { normalise, profileScore, scoreFloor, suiteTasks } from '../evaluator/suite.js';
import { findTask, SCREEN_LR_TOP } from '../evaluator/tasks.js';
import { type PanelRule, randomRules } from './fidelity.js';

/** The panel's seed: new for this study (the protocol's own panel used seed 7). */
export const HELD_OUT_PANEL_SEED = 2026;

const BUILTINS = [
  'sgd',
  'momentum',
  'nesterov',
  'adam',
  'amsgrad',
  'adamw',
  'rmsprop',
  'adagrad',
  'lion',
  'signum',
  'powersign',
  'addsign',
];

export function heldOutPanel(size = 24, seed = HELD_OUT_PANEL_SEED): PanelRule[] {
  const builtins = BUILTINS.filter((n) => library().has(n))
    .slice(0, Math.ceil(size / 2))
    .map((n): PanelRule => ({ label: n, rule: n, kind: 'builtin' }));
  return [...builtins, ...randomRules(size - builtins.length, seed)];
}

export interface HeldOutFidelity {
  readonly spearman: number;
  readonly rules: number;
  readonly panelSeed: number;
  /** Spearman vs the held-out truth of each way of scoring from the search workloads. */
  readonly scorers: Readonly<Record<string, number>>;
  readonly chosen: string;
  readonly seeds: number;
  readonly truthSeeds: number;
  readonly search: readonly string[];
  readonly heldOut: readonly string[];
  readonly panel: readonly { label: string; rule: string; truth: number; scores: Record<string, number> }[];
  readonly note: string;
}

type Cache = Record<string, { reward: number; status: string; seconds: number }>;

function readCache(file: string): Cache {
  if (!existsSync(file)) return {};
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return {};
    const out: Cache = {};
    for (const [k, v] of Object.entries(doc)) {
      const e = v as { reward?: unknown; status?: unknown; seconds?: unknown };
      if (typeof e.reward === 'number' && typeof e.status === 'string' && typeof e.seconds === 'number')
        out[k] = { reward: e.reward, status: e.status, seconds: e.seconds };
    }
    return out;
  } catch {
    return {};
  }
}

export async function benchHeldOutFidelity(
  options: {
    seeds?: number;
    truthSeeds?: number;
    rules?: number;
    workers?: number;
    cacheFile?: string;
    /** The search workloads to score (default: the search suite). */
    search?: readonly string[];
    log?: (s: string) => void;
  } = {},
): Promise<HeldOutFidelity> {
  const seeds = options.seeds ?? 3;
  const truthSeeds = options.truthSeeds ?? 5;
  const log = options.log ?? (() => {});
  const panel = heldOutPanel(options.rules ?? 24);
  const search = options.search ?? suiteTasks('search');
  const heldOut = suiteTasks('held-out');
  for (const t of search)
    if (findTask(t) === undefined || heldOut.includes(t))
      throw new Error(`search workload '${t}': ${findTask(t) === undefined ? 'unknown task' : 'held out'}`);
  const datasets = [...new Set([...search, ...heldOut].map((id) => findTask(id)?.dataset))].filter(
    (d): d is NonNullable<typeof d> => d !== null && d !== undefined,
  );
  const pool = new EvaluatorPool({ ...(options.workers === undefined ? {} : { workers: options.workers }), datasets });
  const cacheFile = options.cacheFile;
  const cache = cacheFile ? readCache(cacheFile) : {};
  const save = () => {
    if (!cacheFile) return;
    writeFileSync(`${cacheFile}.tmp`, `${JSON.stringify(cache)}\n`);
    renameSync(`${cacheFile}.tmp`, cacheFile);
  };
  // The promotion score at the screening protocol (one full run at the grid's best rate, as rungs
  // 0-1 run it); the truth at the verdict protocol (full runs at the best two rates, the task's
  // default, as the held-out verdicts run it), keyed apart in the cache.
  const run = async (rule: string, task: string, seed: number, truth: boolean) => {
    const key = JSON.stringify(truth ? [task, rule, seed, 'verdict'] : [task, rule, seed]);
    const hit = cache[key];
    if (hit) return hit;
    const { result } = await pool.evaluate({ rule, task, seed, ...(truth ? {} : { lrTop: SCREEN_LR_TOP }) });
    const row = { reward: result.reward, status: result.status, seconds: result.seconds };
    cache[key] = row;
    save();
    return row;
  };
  const rules = [...panel.map((p) => p.rule)];
  if (!rules.includes('adam')) rules.push('adam');
  try {
    // The cheap half first (the search workloads), then the truth; each rule's seeds in parallel.
    const grid = async (tasks: readonly string[], n: number, truth: boolean) => {
      const out = new Map<string, Map<string, number[]>>();
      let done = 0;
      await Promise.all(
        rules.map(async (rule) => {
          const byTask = new Map<string, number[]>();
          for (const task of tasks)
            byTask.set(
              task,
              (await Promise.all(Array.from({ length: n }, (_, s) => run(rule, task, s, truth)))).map((r) =>
                r.status === 'ok' ? r.reward : Number.NaN,
              ),
            );
          out.set(rule, byTask);
          log(`fidelity (held out): ${tasks.join('+')} ${++done}/${rules.length} ${rule}`);
        }),
      );
      return out;
    };
    const searchScores = await grid(search, seeds, false);
    const truthScores = await grid(heldOut, truthSeeds, true);
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) / xs.length;
    const baseMean = (scores: Map<string, Map<string, number[]>>, task: string) =>
      mean(scores.get('adam')?.get(task) ?? [Number.NaN]);
    const normalised = (scores: Map<string, Map<string, number[]>>, rule: string, task: string) => {
      const t = findTask(task);
      const per = scores.get(rule)?.get(task) ?? [];
      return per.map((x) => normalise(x, baseMean(scores, task), scoreFloor(t ?? { kind: 'classifier' })));
    };
    // Per rule: each scorer's value, and the truth (the held-out suite's mean normalised score).
    const rows = panel.map((p) => {
      const perSeed = (agg: (ns: number[]) => number) =>
        mean(
          Array.from({ length: seeds }, (_, s) => agg(search.map((t) => normalised(searchScores, p.rule, t)[s] ?? 0))),
        );
      const scores: Record<string, number> = {
        'suite-mean': perSeed((ns) => mean(ns)),
        'suite-profile': perSeed((ns) => profileScore(ns)),
      };
      for (const t of search) scores[`${t} alone`] = mean(searchScores.get(p.rule)?.get(t) ?? []);
      const truth = mean(heldOut.map((t) => mean(normalised(truthScores, p.rule, t))));
      return { label: p.label, rule: p.rule, truth, scores };
    });
    const truth = rows.map((r) => r.truth);
    const scorers: Record<string, number> = {};
    for (const name of Object.keys(rows[0]?.scores ?? {}))
      scorers[name] = spearman(
        rows.map((r) => r.scores[name] as number),
        truth,
      );
    return {
      spearman: scorers['suite-mean'] as number,
      rules: panel.length,
      panelSeed: HELD_OUT_PANEL_SEED,
      scorers,
      chosen: 'suite-mean',
      seeds,
      truthSeeds,
      search,
      heldOut,
      panel: rows,
      note: `fresh panel: ${panel.filter((p) => p.kind === 'builtin').length} built-ins and ${panel.filter((p) => p.kind === 'random').length} NOS rules drawn with seed ${HELD_OUT_PANEL_SEED} (the protocol's panel used seed 7); promotion score: the search suite (${search.join(', ')}) over ${seeds} seeds; truth: the held-out suite (${heldOut.join(', ')}) over ${truthSeeds} seeds at each workload's own horizon under the verdict protocol (full runs at the best 2 grid rates), mean of scores normalised against Adam`,
    };
  } finally {
    await pool.close();
  }
}

export function heldOutTable(f: HeldOutFidelity): string {
  return [
    `fidelity against the held-out suite: ${f.rules} rules, ${f.note}`,
    ...Object.entries(f.scorers).map(
      ([k, v]) => `  ${k.padEnd(22)} Spearman ${v.toFixed(3)}${k === f.chosen ? '  (decides promotion)' : ''}`,
    ),
  ].join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1]?.endsWith('fidelity-heldout.js')) {
  const out = arg('out') ?? join('bench', 'results');
  const name = arg('name');
  if (arg('search') !== undefined && (name === undefined || !/^[a-z0-9-]{1,40}$/.test(name))) {
    process.stderr.write('--search needs --name NAME (a-z, 0-9, -) for its output files\n');
    process.exit(1);
  }
  mkdirSync(out, { recursive: true });
  const f = await benchHeldOutFidelity({
    ...(arg('seeds') ? { seeds: Number(arg('seeds')) } : {}),
    ...(arg('truth-seeds') ? { truthSeeds: Number(arg('truth-seeds')) } : {}),
    ...(arg('rules') ? { rules: Number(arg('rules')) } : {}),
    ...(arg('workers') ? { workers: Number(arg('workers')) } : {}),
    cacheFile: arg('cache') ?? join(out, 'fidelity-heldout-cache.json'),
    ...(arg('search') ? { search: (arg('search') as string).split(',') } : {}),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  if (arg('search') !== undefined) {
    // Another set of search workloads: its own files; the committed figures stay the suite's.
    writeFileSync(join(out, `fidelity-heldout-${name}.json`), `${JSON.stringify(f, null, 1)}\n`);
    writeFileSync(join(out, `fidelity-heldout-${name}.txt`), `${heldOutTable(f)}\n`);
    process.stdout.write(`${heldOutTable(f)}\n`);
    process.exit(0);
  }
  writeFileSync(join(out, 'fidelity-heldout.json'), `${JSON.stringify(f, null, 1)}\n`);
  // The committed fidelity figures gain the held-out part (contract: fidelity.heldOut).
  const main = join(out, 'fidelity.json');
  if (existsSync(main)) {
    const doc = JSON.parse(readFileSync(main, 'utf8')) as Record<string, unknown>;
    doc.heldOut = { spearman: f.spearman, rules: f.rules, panelSeed: f.panelSeed, scorers: f.scorers, note: f.note };
    writeFileSync(main, `${JSON.stringify(doc, null, 1)}\n`);
  }
  writeFileSync(join(out, 'fidelity-heldout.txt'), `${heldOutTable(f)}\n`);
  process.stdout.write(`${heldOutTable(f)}\n`);
}
