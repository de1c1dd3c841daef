/**
 * How well the search's cheap reward predicts a rule's real quality.
 *
 * A fixed panel of rules (built-ins, the sign family, the rules in search-results/found/, and
 * seeded random NOS rules, good and bad) is scored twice: by a proxy protocol (what the search's
 * cheap rung runs: one seed) and by a high-fidelity evaluation (5 seeds, 4x the steps, a finer and
 * longer learning-rate grid, test accuracy). Reported: Spearman's rho between the two, the
 * seed-to-seed standard deviation of the proxy reward for the top rules, the overlap of the two
 * top-5 lists, and the cost per rule. Several proxy protocols are measured side by side in one
 * run, so the choice of the default is a measurement (bench/results/fidelity.{txt,json}).
 *
 *   node dist/bench/fidelity.js [--cache FILE] [--out DIR] [--workers K]
 *
 * High-fidelity results are cached in FILE (keyed by rule, seed and protocol), since they cost
 * far more than the proxies being compared.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { randomChoices, ruleText } from '../controller/sample.js';
import { library, lookupRule } from '../dsl/index.js';
import { spearman } from '../evaluator/paired.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import type { EvalRequest } from '../evaluator/protocol.js';
import { screenRule } from '../evaluator/screen.js';
import { findTask, type TaskSpec } from '../evaluator/tasks.js';
import type { EvalResult, LrSelect } from '../evaluator/train.js';

/** A way to score a rule cheaply: the grid, its runs' length, how it picks a rate, the run's length. */
export interface ProxyProtocol {
  readonly name: string;
  readonly description: string;
  readonly lrGrid?: readonly number[];
  readonly gridSteps?: number;
  readonly lrSelect?: LrSelect;
  readonly steps?: number;
  readonly valSize?: number;
}

export const DECADES = [1e-4, 1e-3, 1e-2, 1e-1, 1] as const;
export const HALF_DECADES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1] as const;
/** The high-fidelity grid: half decades from 1e-5 to 1. */
export const HF_GRID = [1e-5, 3e-5, ...HALF_DECADES] as const;

/** The number of steps a protocol trains (grid runs and the full run), for cost comparisons. */
export function protocolSteps(task: TaskSpec, p: Pick<ProxyProtocol, 'lrGrid' | 'gridSteps' | 'steps'>): number {
  const steps = p.steps ?? task.steps;
  const grid = p.lrGrid ?? task.lrGrid;
  const gridSteps = p.gridSteps ?? Math.max(1, Math.round((steps * task.gridSteps) / task.steps));
  return (grid.length > 1 ? grid.length * gridSteps : 0) + steps;
}

export interface PanelRule {
  readonly label: string;
  readonly rule: string;
  readonly kind: 'builtin' | 'found' | 'random';
}

/** Built-ins in the panel (the sign family included). */
const PANEL_BUILTINS = [
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
  'powersign-ld',
  'addsign-ld',
];

/** Rules in search-results/found/<task>.json: untrusted input, so only texts that check are kept. */
export function foundRules(file: string, limit = 6): PanelRule[] {
  if (!existsSync(file)) return [];
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
  if (!Array.isArray(doc)) return [];
  const out: PanelRule[] = [];
  const seen = new Set<string>();
  for (const entry of doc) {
    const text = (entry as { rule?: unknown }).rule;
    if (typeof text !== 'string') continue;
    const found = lookupRule(text);
    if (!found.ok || seen.has(found.rule.hash)) continue;
    seen.add(found.rule.hash);
    out.push({ label: `found${out.length + 1}`, rule: found.rule.canonical, kind: 'found' });
    if (out.length >= limit) break;
  }
  return out;
}

/** Valid random NOS rules (checked, pre-screened, distinct in behaviour), seeded. */
export function randomRules(count: number, seed = 7): PanelRule[] {
  const rng = seedrandom.alea(`fidelity:${seed}`);
  const seen = new Set<string>();
  const out: PanelRule[] = [];
  for (let i = 0; i < 10_000 && out.length < count; i++) {
    const found = lookupRule(ruleText(randomChoices(rng, 1 + Math.floor(rng() * 2))));
    if (!found.ok) continue;
    const s = screenRule(found.rule);
    if (!s.ok || seen.has(s.fingerprint)) continue;
    seen.add(s.fingerprint);
    out.push({ label: `random${out.length + 1}`, rule: found.rule.canonical, kind: 'random' });
  }
  return out;
}

export function defaultPanel(foundFile: string, randomCount = 8): PanelRule[] {
  const builtins = PANEL_BUILTINS.filter((n) => library().has(n)).map(
    (n): PanelRule => ({ label: n, rule: n, kind: 'builtin' }),
  );
  return [...builtins, ...foundRules(foundFile), ...randomRules(randomCount)];
}

/** The proxies measured side by side; the first is the protocol before this study. */
/** The protocol before the fidelity study (decade grid, ranked by validation accuracy), per task. */
export function protocolV1(task: TaskSpec): { steps: number; gridSteps: number; valSize: number } {
  const before: Record<string, { steps: number; gridSteps: number; valSize: number }> = {
    'mlp-mnist': { steps: 300, gridSteps: 60, valSize: 2000 },
    'convnet-fashion': { steps: 200, gridSteps: 40, valSize: 1000 },
    'softmax-mnist': { steps: 200, gridSteps: 50, valSize: 2000 },
  };
  return before[task.id] ?? { steps: task.steps, gridSteps: task.gridSteps, valSize: task.valSize };
}

export function proxyProtocols(task: TaskSpec): ProxyProtocol[] {
  const v1 = protocolV1(task);
  const hd = Math.round(v1.gridSteps / 1.5);
  const val = (n: number) => Math.min(10_000, n);
  return [
    {
      name: 'v1',
      description: `decade grid (5 rates x ${v1.gridSteps} steps), rate by validation accuracy, ${v1.steps}-step run, ${v1.valSize} validation images (before)`,
      lrGrid: DECADES,
      gridSteps: v1.gridSteps,
      lrSelect: 'val-acc',
      valSize: v1.valSize,
      steps: v1.steps,
    },
    {
      name: 'half-decade',
      description: `half-decade grid (9 rates x ${hd} steps), rate by the grid runs' training loss over their last quarter`,
      lrGrid: HALF_DECADES,
      gridSteps: hd,
      lrSelect: 'train-loss',
      valSize: v1.valSize,
      steps: v1.steps,
    },
    {
      name: 'v1-val10k',
      description: 'v1, measured on 10,000 validation images',
      lrGrid: DECADES,
      gridSteps: v1.gridSteps,
      lrSelect: 'val-acc',
      valSize: val(10_000),
      steps: v1.steps,
    },
    {
      name: 'half-decade-val10k',
      description: 'half-decade, rate by training loss, 10,000 validation images',
      lrGrid: HALF_DECADES,
      gridSteps: hd,
      lrSelect: 'train-loss',
      valSize: val(10_000),
      steps: v1.steps,
    },
    {
      name: 'hd-val-acc-val10k',
      description: 'half-decade, rate by validation accuracy, 10,000 validation images',
      lrGrid: HALF_DECADES,
      gridSteps: hd,
      lrSelect: 'val-acc',
      valSize: val(10_000),
      steps: v1.steps,
    },
    {
      name: 'hd-2x-val10k',
      description: `half-decade, rate by training loss, ${2 * v1.steps}-step run, 10,000 validation images`,
      lrGrid: HALF_DECADES,
      gridSteps: hd,
      lrSelect: 'train-loss',
      steps: 2 * v1.steps,
      valSize: val(10_000),
    },
  ];
}

export interface HighFidelity {
  readonly seeds: number;
  readonly steps: number;
  readonly gridSteps: number;
  readonly lrGrid: readonly number[];
}

/** 5 seeds at 4x the steps of the protocol before the study (its grid runs 4x longer too). */
export function highFidelity(task: TaskSpec, seeds = 5, factor = 4): HighFidelity {
  const v1 = protocolV1(task);
  return { seeds, steps: v1.steps * factor, gridSteps: v1.gridSteps * factor, lrGrid: HF_GRID };
}

interface Scored {
  readonly rewards: number[];
  readonly lrs: (number | null)[];
  readonly seconds: number;
}

export interface VariantFigures {
  readonly name: string;
  readonly description: string;
  /** Steps trained per rule and seed, and that as a multiple of v1's. */
  readonly stepsPerRule: number;
  readonly costVsV1: number;
  readonly secondsPerRule: number;
  /** Spearman's rho vs high fidelity: the one-seed reward (seed 0), and the mean of k seeds. */
  readonly spearman: number;
  readonly spearmanMean: Readonly<Record<string, number>>;
  /** Seed-to-seed std of the one-seed reward, mean over the top 5 rules (by high fidelity). */
  readonly rewardStdTop: number;
  readonly top5Overlap: number;
  /** Grid runs' chosen learning rates disagreeing across seeds, over all rules. */
  readonly lrDisagreement: number;
}

export interface FidelityFigures {
  readonly task: string;
  readonly rules: number;
  /** The default protocol's figures, in the contract's keys. */
  readonly spearman: number;
  readonly rewardStdTop: number;
  readonly top5Overlap: number;
  readonly secondsPerRule: { readonly proxy: number; readonly highFidelity: number };
  readonly protocol: string;
  readonly highFidelity: HighFidelity;
  readonly variants: readonly VariantFigures[];
  readonly panel: readonly {
    label: string;
    rule: string;
    kind: string;
    highFidelity: number;
    proxies: Record<string, readonly number[]>;
  }[];
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const std = (xs: readonly number[]) => {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

function topK(scores: readonly number[], k: number): Set<number> {
  return new Set(
    scores
      .map((s, i) => [s, i] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, k)
      .map(([, i]) => i),
  );
}

export interface FidelityOptions {
  readonly task?: string;
  readonly panel?: readonly PanelRule[];
  /** Seeds per proxy (seed 0 is the one-seed reward; all of them give its spread). */
  readonly proxySeeds?: number;
  readonly hf?: HighFidelity;
  readonly protocols?: readonly ProxyProtocol[];
  /** Which protocol's figures fill the contract's keys (default: the task's own protocol). */
  readonly chosen?: string;
  readonly workers?: number;
  /** A JSON file of high-fidelity results to reuse and extend. */
  readonly cacheFile?: string;
  readonly foundFile?: string;
  readonly log?: (s: string) => void;
}

type Cache = Record<string, { reward: number; lr: number | null; seconds: number }>;

function readCache(file: string | undefined): Cache {
  if (file === undefined || !existsSync(file)) return {};
  try {
    const doc = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return {};
    const out: Cache = {};
    for (const [k, v] of Object.entries(doc)) {
      const e = v as { reward?: unknown; lr?: unknown; seconds?: unknown };
      if (typeof e.reward === 'number' && typeof e.seconds === 'number' && (e.lr === null || typeof e.lr === 'number'))
        out[k] = { reward: e.reward, lr: e.lr, seconds: e.seconds };
    }
    return out;
  } catch {
    return {};
  }
}

function writeCache(file: string | undefined, cache: Cache): void {
  if (file === undefined) return;
  writeFileSync(`${file}.tmp`, `${JSON.stringify(cache)}\n`);
  renameSync(`${file}.tmp`, file);
}

export async function benchFidelity(options: FidelityOptions = {}): Promise<FidelityFigures> {
  const log = options.log ?? (() => {});
  const task = findTask(options.task ?? 'mlp-mnist');
  if (task === undefined) throw new Error(`no task ${options.task}`);
  const panel = options.panel ?? defaultPanel(options.foundFile ?? join('search-results', 'found', `${task.id}.json`));
  const hf = options.hf ?? highFidelity(task);
  const protocols = options.protocols ?? proxyProtocols(task);
  const proxySeeds = options.proxySeeds ?? 5;
  const pool = new EvaluatorPool({
    ...(options.workers === undefined ? {} : { workers: options.workers }),
    ...(task.dataset ? { datasets: [task.dataset] } : {}),
  });
  const cache = readCache(options.cacheFile);
  const run = async (req: EvalRequest): Promise<EvalResult> => (await pool.evaluate(req)).result;
  try {
    // High fidelity: test accuracy after 4x the steps, the finer, longer grid; cached.
    const hfKey = (rule: string, seed: number) =>
      JSON.stringify([task.id, rule, seed, hf.steps, hf.gridSteps, hf.lrGrid]);
    const hfScores: Scored[] = [];
    let hfDone = 0;
    await Promise.all(
      panel.map(async (r, i) => {
        const rows = await Promise.all(
          Array.from({ length: hf.seeds }, async (_, seed) => {
            const key = hfKey(r.rule, seed);
            const hit = cache[key];
            if (hit) return hit;
            const res = await run({
              rule: r.rule,
              task: task.id,
              seed,
              steps: hf.steps,
              gridSteps: hf.gridSteps,
              lrGrid: hf.lrGrid,
              test: true,
              timeLimitMs: task.timeLimitMs * 8,
            });
            const row = { reward: res.status === 'ok' ? (res.testAcc ?? 0) : 0, lr: res.bestLr, seconds: res.seconds };
            cache[key] = row;
            writeCache(options.cacheFile, cache);
            return row;
          }),
        );
        hfScores[i] = {
          rewards: rows.map((x) => x.reward),
          lrs: rows.map((x) => x.lr),
          seconds: rows.reduce((a, x) => a + x.seconds, 0),
        };
        log(
          `fidelity: high fidelity ${++hfDone}/${panel.length} ${r.label}: ${mean(hfScores[i]?.rewards ?? []).toFixed(4)}`,
        );
      }),
    );
    const truth = hfScores.map((s) => mean(s.rewards));
    const truthTop5 = topK(truth, 5);
    const variants: VariantFigures[] = [];
    const perProxy: Record<string, number[][]> = {};
    const v1Steps = protocolSteps(task, protocols[0] ?? {});
    for (const p of protocols) {
      const t0 = performance.now();
      const scored: Scored[] = await Promise.all(
        panel.map(async (r) => {
          const rows = await Promise.all(
            Array.from({ length: proxySeeds }, (_, seed) =>
              run({
                rule: r.rule,
                task: task.id,
                seed,
                ...(p.lrGrid ? { lrGrid: p.lrGrid } : {}),
                ...(p.gridSteps ? { gridSteps: p.gridSteps } : {}),
                ...(p.lrSelect ? { lrSelect: p.lrSelect } : {}),
                ...(p.steps ? { steps: p.steps } : {}),
                ...(p.valSize ? { valSize: p.valSize } : {}),
              }),
            ),
          );
          return {
            rewards: rows.map((x) => x.reward),
            lrs: rows.map((x) => x.bestLr),
            seconds: rows.reduce((a, x) => a + x.seconds, 0),
          };
        }),
      );
      const wall = (performance.now() - t0) / 1000;
      perProxy[p.name] = scored.map((s) => s.rewards);
      const one = scored.map((s) => s.rewards[0] ?? 0);
      const spearmanMean: Record<string, number> = {};
      for (let k = 2; k <= proxySeeds; k++)
        spearmanMean[String(k)] = spearman(
          scored.map((s) => mean(s.rewards.slice(0, k))),
          truth,
        );
      const steps = protocolSteps(task, p);
      const figures: VariantFigures = {
        name: p.name,
        description: p.description,
        stepsPerRule: steps,
        costVsV1: steps / v1Steps,
        secondsPerRule: scored.reduce((a, s) => a + s.seconds, 0) / (scored.length * proxySeeds),
        spearman: spearman(one, truth),
        spearmanMean,
        rewardStdTop: mean([...truthTop5].map((i) => std(scored[i]?.rewards ?? []))),
        top5Overlap: [...topK(one, 5)].filter((i) => truthTop5.has(i)).length,
        lrDisagreement: scored.filter((s) => new Set(s.lrs).size > 1).length / scored.length,
      };
      variants.push(figures);
      log(
        `fidelity: ${p.name}: rho ${figures.spearman.toFixed(3)} (mean of ${proxySeeds}: ${(spearmanMean[String(proxySeeds)] ?? Number.NaN).toFixed(3)}), std top ${(100 * figures.rewardStdTop).toFixed(2)} points, top-5 overlap ${figures.top5Overlap}, ${figures.secondsPerRule.toFixed(2)} s/rule (${wall.toFixed(0)} s wall)`,
      );
    }
    // The search's own proxy: the protocol whose settings are the task's defaults.
    const own = protocols.find(
      (p) =>
        (p.steps ?? task.steps) === task.steps &&
        (p.gridSteps ?? task.gridSteps) === task.gridSteps &&
        (p.lrSelect ?? 'val-acc') === (task.lrSelect ?? 'val-acc') &&
        (p.valSize ?? task.valSize) === task.valSize &&
        JSON.stringify(p.lrGrid ?? task.lrGrid) === JSON.stringify(task.lrGrid),
    );
    const chosenName = options.chosen ?? own?.name ?? protocols[0]?.name ?? '';
    const chosen = variants.find((v) => v.name === chosenName) ?? (variants[0] as VariantFigures);
    return {
      task: task.id,
      rules: panel.length,
      spearman: chosen.spearman,
      rewardStdTop: chosen.rewardStdTop,
      top5Overlap: chosen.top5Overlap,
      secondsPerRule: {
        proxy: chosen.secondsPerRule,
        highFidelity: hfScores.reduce((a, s) => a + s.seconds, 0) / (hfScores.length * hf.seeds),
      },
      protocol: chosen.name,
      highFidelity: hf,
      variants,
      panel: panel.map((r, i) => ({
        ...r,
        highFidelity: truth[i] as number,
        proxies: Object.fromEntries(Object.entries(perProxy).map(([k, v]) => [k, v[i] as number[]])),
      })),
    };
  } finally {
    await pool.close();
  }
}

export function fidelityTable(f: FidelityFigures): string {
  const lines = [
    `fidelity on ${f.task}: ${f.rules} rules; high fidelity = ${f.highFidelity.seeds} seeds x ${f.highFidelity.steps} steps, ${f.highFidelity.lrGrid.length}-rate grid x ${f.highFidelity.gridSteps} steps, test accuracy (${f.secondsPerRule.highFidelity.toFixed(1)} s per rule and seed)`,
    `${'proxy'.padEnd(18)}${'cost'.padStart(6)}${'s/rule'.padStart(8)}${'rho'.padStart(7)}${'rho(3)'.padStart(8)}${'rho(5)'.padStart(8)}${'std top'.padStart(9)}${'top5'.padStart(6)}${'lr flips'.padStart(10)}`,
    ...f.variants.map(
      (v) =>
        `${v.name.padEnd(18)}${`${v.costVsV1.toFixed(2)}x`.padStart(6)}${v.secondsPerRule.toFixed(2).padStart(8)}${v.spearman.toFixed(3).padStart(7)}${(v.spearmanMean['3'] ?? Number.NaN).toFixed(3).padStart(8)}${(v.spearmanMean['5'] ?? Number.NaN).toFixed(3).padStart(8)}${`${(100 * v.rewardStdTop).toFixed(2)}pt`.padStart(9)}${String(v.top5Overlap).padStart(6)}${`${(100 * v.lrDisagreement).toFixed(0)}%`.padStart(10)}`,
    ),
    'rho: Spearman vs high fidelity of the one-seed reward; rho(k): of the mean of k seeds; std top: seed-to-seed std of the reward, top 5 rules; lr flips: rules whose chosen rate differs across seeds',
    `the search's proxy: ${f.protocol}`,
  ];
  return lines.join('\n');
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1]?.endsWith('fidelity.js')) {
  const out = arg('out') ?? join('bench', 'results');
  const workers = arg('workers');
  const f = await benchFidelity({
    cacheFile: arg('cache') ?? join(out, 'fidelity-hf-cache.json'),
    ...(workers ? { workers: Number(workers) } : {}),
    ...(arg('task') ? { task: arg('task') as string } : {}),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'fidelity.json'), `${JSON.stringify(f, null, 1)}\n`);
  writeFileSync(join(out, 'fidelity.txt'), `${fidelityTable(f)}\n`);
  process.stdout.write(`${fidelityTable(f)}\n`);
}
