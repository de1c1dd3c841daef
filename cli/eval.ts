/** `nos tasks` and `nos eval`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nearest } from '../dsl/diagnostics.js';
import { lookupRule } from '../dsl/index.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { DEFAULT_TASK, findTask, parameterCount, TASKS, type TaskSpec } from '../evaluator/tasks.js';
import type { EvalResult } from '../evaluator/train.js';
import { lineChart } from '../search-results/plot.js';
import { parseScheduleSpec, ScheduleError } from '../evaluator/schedules.js';
import { flag, has, intFlag, numberFlag, parseArgs, setFlags, UsageError } from './args.js';
import type { Io } from './io.js';

export function tasksCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { json: { type: 'bool' } });
  const rows = TASKS.map((t) => ({
    id: t.id,
    dataset: t.dataset,
    model: t.model,
    params: parameterCount(t),
    steps: t.steps,
    batchSize: t.batchSize,
    lrGrid: t.lrGrid,
    default: t.id === DEFAULT_TASK,
    description: t.description,
  }));
  if (has(args, 'json')) io.out(JSON.stringify(rows));
  else {
    io.out(`${'id'.padEnd(16)} ${'dataset'.padEnd(8)} ${'params'.padStart(7)} ${'steps'.padStart(6)}  description`);
    for (const r of rows) {
      io.out(`${r.id.padEnd(16)} ${(r.dataset ?? '-').padEnd(8)} ${String(r.params).padStart(7)} ${String(r.steps).padStart(6)}  ${r.description}${r.default ? ' (default)' : ''}`);
    }
  }
  return 0;
}

export function taskFromFlag(id: string | undefined): TaskSpec {
  const name = id ?? DEFAULT_TASK;
  const task = findTask(name);
  if (task === undefined) {
    const hint = nearest(name, TASKS.map((t) => t.id));
    throw new UsageError(`unknown task '${name}'${hint ? `; did you mean '${hint}'?` : ''} (nos tasks lists them)`);
  }
  return task;
}

/** Split a comma-separated list of rules, ignoring commas inside brackets (`ema(g, 0.9)`). */
export function splitRules(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '(' || ch === '{') depth++;
    else if (ch === ')' || ch === '}') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  out.push(cur.trim());
  return out.filter((s) => s !== '');
}

function numberList(text: string, name: string): number[] {
  const xs = text.split(',').map((s) => Number(s.trim()));
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) throw new UsageError(`--${name} expects positive numbers separated by commas, got '${text}'`);
  return xs;
}

interface Stat {
  mean: number;
  std: number;
}

function stat(xs: readonly number[]): Stat {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

const SEVERITY: Record<string, number> = { ok: 0, diverged: 1, timeout: 2, invalid: 3 };

export interface RuleSummary {
  rule: string;
  label: string;
  bestLr: number | null;
  valAcc: Stat;
  testAcc: Stat;
  finalLoss: Stat;
  status: string;
  seconds: number;
  seeds: EvalResult[];
}

function summarize(label: string, results: EvalResult[]): RuleSummary {
  const lrs = results.map((r) => r.bestLr).filter((x): x is number => x !== null);
  const counts = new Map<number, number>();
  for (const lr of lrs) counts.set(lr, (counts.get(lr) ?? 0) + 1);
  const bestLr = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]?.[0] ?? null;
  const status = results.map((r) => r.status).sort((a, b) => (SEVERITY[b] ?? 0) - (SEVERITY[a] ?? 0))[0] ?? 'invalid';
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

const jsonNumber = (x: number): number | null => (Number.isFinite(x) ? x : null);
const jsonStat = (s: Stat) => ({ mean: jsonNumber(s.mean), std: jsonNumber(s.std) });

/** Mean and std over seeds of the analysis figures (sharpness, gap, snapshot ensemble). */
export function analysisSummary(seeds: readonly EvalResult[]) {
  const pick = (f: (a: NonNullable<EvalResult['analysis']>) => number | null | undefined) =>
    jsonStat(stat(seeds.map((s) => (s.analysis ? (f(s.analysis) ?? Number.NaN) : Number.NaN))));
  const snaps = seeds.map((s) => s.analysis?.ensemble?.snapshots).find((x) => x !== undefined);
  return {
    trainAcc: pick((a) => a.trainAcc),
    testAcc: pick((a) => a.testAcc),
    gapAcc: pick((a) => a.gapAcc),
    gapLoss: pick((a) => a.gapLoss),
    sharpness: pick((a) => a.sharpness),
    ensembleValAcc: pick((a) => a.ensemble?.valAcc),
    ensembleTestAcc: pick((a) => a.ensemble?.testAcc),
    snapshots: snaps ?? null,
  };
}

export function curvesSvg(task: TaskSpec, rows: readonly RuleSummary[]): string {
  const series = rows.map((r) => {
    const curves = r.seeds.filter((s) => s.status === 'ok').map((s) => s.curve);
    const every = r.seeds[0]?.curveEvery ?? 1;
    const len = Math.min(...curves.map((c) => c.length), Number.POSITIVE_INFINITY);
    const n = Number.isFinite(len) ? len : 0;
    const x = Array.from({ length: n }, (_, i) => (i + 1) * every);
    const at = (i: number) => stat(curves.map((c) => c[i] as number));
    return {
      name: r.label,
      x,
      y: x.map((_, i) => at(i).mean),
      lo: x.map((_, i) => at(i).mean - at(i).std),
      hi: x.map((_, i) => at(i).mean + at(i).std),
    };
  });
  return lineChart(series, { title: `Training loss on ${task.id} (mean +- std over seeds)`, xLabel: 'step', yLabel: 'training loss', logY: true });
}

export async function evalCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, {
    rules: { type: 'string' },
    task: { type: 'string' },
    seeds: { type: 'string' },
    steps: { type: 'string' },
    lrs: { type: 'string' },
    workers: { type: 'string' },
    set: { type: 'list' },
    out: { type: 'string' },
    json: { type: 'bool' },
    schedule: { type: 'string' },
    'weight-decay': { type: 'string' },
    'batch-growth': { type: 'bool' },
    analyze: { type: 'bool' },
  });
  const scheduleSpec = flag(args, 'schedule');
  if (scheduleSpec !== undefined) {
    try {
      parseScheduleSpec(scheduleSpec);
    } catch (e) {
      if (e instanceof ScheduleError) throw new UsageError(e.message);
      throw e;
    }
  }
  const weightDecay = numberFlag(args, 'weight-decay');
  if (weightDecay !== undefined && weightDecay < 0) throw new UsageError('--weight-decay must be >= 0');
  if (has(args, 'batch-growth') && scheduleSpec === undefined) throw new UsageError('--batch-growth needs a decaying --schedule (e.g. step) to turn into batch growth');
  const analyze = has(args, 'analyze');
  const layers = {
    ...(scheduleSpec === undefined ? {} : { schedule: scheduleSpec }),
    ...(weightDecay === undefined ? {} : { weightDecay }),
    ...(has(args, 'batch-growth') ? { batchGrowth: true } : {}),
    ...(analyze ? { analyze: true } : {}),
  };
  const list = flag(args, 'rules');
  if (list === undefined) throw new UsageError('--rules is required, e.g. --rules adam,momentum,powersign,addsign');
  const labels = splitRules(list);
  if (labels.length === 0) throw new UsageError('--rules is empty');
  const problems: string[] = [];
  const rules = labels.map((label) => {
    const found = lookupRule(label);
    if (!found.ok) problems.push(`rule '${label}':\n${found.message}`);
    return found.ok ? found.rule : undefined;
  });
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  const task = taskFromFlag(flag(args, 'task'));
  const seeds = intFlag(args, 'seeds', 1) ?? 1;
  const steps = intFlag(args, 'steps', 1);
  const lrs = flag(args, 'lrs') === undefined ? undefined : numberList(flag(args, 'lrs') as string, 'lrs');
  const workers = intFlag(args, 'workers', 1);
  const params = setFlags(args);
  const pool = new EvaluatorPool({ ...(workers === undefined ? {} : { workers }), datasets: task.dataset ? [task.dataset] : [] });
  io.err(`nos eval: ${labels.length} rule(s) x ${seeds} seed(s) on ${task.id}, ${pool.workers} worker(s)`);
  const byRule: EvalResult[][] = labels.map(() => []);
  let done = 0;
  const total = labels.length * seeds;
  try {
    await Promise.all(
      labels.flatMap((_label, i) =>
        Array.from({ length: seeds }, async (_s, seed) => {
          const rule = rules[i];
          const { result } = await pool.evaluate({
            rule: rule?.canonical ?? '',
            task: task.id,
            seed,
            test: true,
            ...(steps === undefined ? {} : { steps }),
            ...(lrs === undefined ? {} : { lrGrid: lrs }),
            ...(Object.keys(params).length > 0 ? { params } : {}),
            ...layers,
          });
          (byRule[i] as EvalResult[])[seed] = result;
          done++;
          io.err(`  [${done}/${total}] ${labels[i]} seed ${seed}: ${result.status} val ${result.valAcc.toFixed(4)} (lr ${result.bestLr ?? '-'}, ${result.seconds.toFixed(1)} s)`);
        }),
      ),
    );
  } finally {
    await pool.close();
  }
  const rows = labels.map((label, i) => summarize(label, byRule[i] as EvalResult[]));
  const doc = {
    task: task.id,
    seeds,
    results: rows.map((r) => ({
      rule: r.label,
      canonical: r.rule,
      bestLr: r.bestLr,
      valAcc: jsonStat(r.valAcc),
      testAcc: jsonStat(r.testAcc),
      finalLoss: jsonStat(r.finalLoss),
      status: r.status,
      seconds: r.seconds,
      ...(analyze ? { analysis: analysisSummary(r.seeds) } : {}),
    })),
    ...(scheduleSpec === undefined ? {} : { schedule: scheduleSpec }),
    ...(weightDecay === undefined ? {} : { weightDecay }),
    ...(has(args, 'batch-growth') ? { batchGrowth: true } : {}),
  };
  const out = flag(args, 'out');
  if (out !== undefined) {
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'results.json'), `${JSON.stringify({ ...doc, perSeed: rows.map((r) => r.seeds) }, null, 1)}\n`);
    writeFileSync(join(out, 'curves.svg'), curvesSvg(task, rows));
    io.err(`wrote ${join(out, 'results.json')} and ${join(out, 'curves.svg')}`);
  }
  if (has(args, 'json')) io.out(JSON.stringify(doc));
  else {
    const pct = (s: Stat) => (Number.isFinite(s.mean) ? `${(100 * s.mean).toFixed(2)} +- ${(100 * s.std).toFixed(2)}` : '-').padStart(14);
    io.out(`${task.id}: ${seeds} seed(s), ${steps ?? task.steps} steps, learning rate from ${(lrs ?? task.lrGrid).join(', ')}`);
    io.out(`${'rule'.padEnd(24)} ${'best lr'.padStart(8)} ${'val acc %'.padStart(14)} ${'test acc %'.padStart(14)} ${'final loss'.padStart(11)} ${'status'.padEnd(9)} ${'time s'.padStart(7)}`);
    for (const r of rows) {
      io.out(
        `${(r.label.length > 24 ? `${r.label.slice(0, 23)}…` : r.label).padEnd(24)} ${String(r.bestLr ?? '-').padStart(8)} ${pct(r.valAcc)} ${pct(r.testAcc)} ${(Number.isFinite(r.finalLoss.mean) ? r.finalLoss.mean.toFixed(4) : '-').padStart(11)} ${r.status.padEnd(9)} ${r.seconds.toFixed(1).padStart(7)}`,
      );
    }
    if (analyze) {
      io.out('');
      io.out(`${'rule'.padEnd(24)} ${'train acc %'.padStart(14)} ${'gap (train-test) %'.padStart(19)} ${'sharpness %'.padStart(14)} ${'ensemble val %'.padStart(15)} ${'snapshots'.padStart(9)}`);
      for (const r of rows) {
        const a = analysisSummary(r.seeds);
        const f = (s: { mean: number | null; std: number | null }, k = 100) => (s.mean === null ? '-' : `${(k * s.mean).toFixed(2)} +- ${(k * (s.std ?? 0)).toFixed(2)}`);
        io.out(
          `${(r.label.length > 24 ? `${r.label.slice(0, 23)}…` : r.label).padEnd(24)} ${f(a.trainAcc).padStart(14)} ${f(a.gapAcc).padStart(19)} ${f(a.sharpness, 1).padStart(14)} ${f(a.ensembleValAcc).padStart(15)} ${String(a.snapshots ?? '-').padStart(9)}`,
        );
      }
    }
  }
  return 0;
}
