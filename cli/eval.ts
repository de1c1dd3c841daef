/** `nos tasks` and `nos eval`. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveTask } from '../controller/run.js';
import { lookupRule } from '../dsl/index.js';
import { EvaluatorPool, resolveWorkers } from '../evaluator/pool.js';
import { parseScheduleSpec, ScheduleError } from '../evaluator/schedules.js';
import { analysisSummary, jsonStat, type Stat, summarize } from '../evaluator/stats.js';
import { DEFAULT_TASK, parameterCount, TASKS, type TaskSpec } from '../evaluator/tasks.js';
import type { EvalResult } from '../evaluator/train.js';
import { evalCurvesSvg } from '../search-results/report.js';
import { type FlagSpecs, flag, has, intFlag, numberFlag, parseArgs, setFlags, UsageError } from './args.js';
import type { Io } from './io.js';
import { checkOutputDir, describeWriteError } from './paths.js';

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

/** A task by id (default: the default task); an unknown one is a user error with a suggestion. */
export function taskFromFlag(id: string | undefined): TaskSpec {
  return resolveTask(id);
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

export const EVAL_FLAGS: FlagSpecs = {
  rules: { type: 'string', value: 'a,b,...', description: 'rules to train: built-in names or rule text, comma-separated (required)' },
  task: { type: 'string', value: 'ID', description: `the child task (default ${DEFAULT_TASK}; nos tasks lists them)` },
  seeds: { type: 'string', value: 'N', description: 'seeds per rule, 0..N-1 (default 1)' },
  steps: { type: 'string', value: 'S', description: "training steps (default: the task's)" },
  lrs: { type: 'string', value: 'x,y,...', description: "the learning-rate grid (default: the task's)" },
  workers: { type: 'string', value: 'K', description: 'evaluator threads (default and most: the number of cores)' },
  set: { type: 'list', value: 'k=v', description: "override a hyperparameter of the rules (repeatable)" },
  out: { type: 'string', value: 'DIR', description: 'write results.json and curves.svg into this folder (checked before training)' },
  json: { type: 'bool', description: 'print one JSON document on stdout (progress goes to stderr)' },
  schedule: { type: 'string', value: 'S', description: 'a learning-rate schedule around the rule (nos schedule lists them)' },
  'weight-decay': { type: 'string', value: 'WD', description: 'decoupled weight decay, times the learning rate' },
  'batch-growth': { type: 'bool', description: "turn the --schedule's decay into batch growth" },
  analyze: { type: 'bool', description: 'also report train accuracy, the generalisation gap, sharpness and a snapshot ensemble' },
};

export async function evalCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, EVAL_FLAGS);
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
  const workers = resolveWorkers(intFlag(args, 'workers', 1));
  const params = setFlags(args);
  const out = flag(args, 'out');
  if (out !== undefined) checkOutputDir(out);
  if (workers.note !== undefined) io.err(`nos eval: ${workers.note}`);
  const pool = new EvaluatorPool({ workers: workers.workers, datasets: task.dataset ? [task.dataset] : [] });
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
  // Results are printed before any file is written: an output error never loses them.
  if (out !== undefined) {
    const files = [join(out, 'results.json'), join(out, 'curves.svg')];
    try {
      mkdirSync(out, { recursive: true });
      writeFileSync(files[0] as string, `${JSON.stringify({ ...doc, perSeed: rows.map((r) => r.seeds) }, null, 1)}\n`);
      writeFileSync(files[1] as string, evalCurvesSvg(task.id, rows));
    } catch (e) {
      io.err(`nos eval: error: could not write the results into ${out}: ${describeWriteError(e)} (they are printed above)`);
      return 1;
    }
    io.err(`wrote ${files.join(' and ')}`);
  }
  return 0;
}
