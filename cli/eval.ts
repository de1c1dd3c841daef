/** `nos tasks` and `nos eval`. */
import { secondsPerEvaluation } from '../evaluator/task-costs.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { baselineComparison, evaluateRules, type RulesEvaluation } from '../controller/evaluate.js';
import { nosVersion, resolveTask } from '../controller/run.js';
import type { CheckedRule } from '../dsl/index.js';
import { DEVICE_FLAG, deviceFlag } from './device.js';
import { GpuEvaluator } from '../evaluator/gpu-pool.js';
import { gpuProblem } from '../evaluator/gpu-train.js';
import { EvaluatorPool, resolveWorkers } from '../evaluator/pool.js';
import { QueueEvaluator } from '../evaluator/queue.js';
import { parseScheduleSpec, ScheduleError } from '../evaluator/schedules.js';
import type { PairedComparison } from '../evaluator/paired.js';
import { labelNoiseProblem } from '../evaluator/generalization.js';
import { analysisSummary, jsonNumber, jsonStat, type RuleSummary, type Stat } from '../evaluator/stats.js';
import { DEFAULT_TASK, parameterCount, TASKS, type TaskSpec } from '../evaluator/tasks.js';
import { evalCurvesSvg } from '../search-results/report.js';
import { type FlagSpecs, flag, has, intFlag, numberFlag, parseArgs, UsageError } from './args.js';
import { type Io, parseSetValues, ruleOverrides } from './io.js';
import { checkOutputDir, describeWriteError, writeOutputFile } from './paths.js';
import { isLearnedRule, type LearnedRule } from '../learned/kernel.js';
import { lookupEvalRule } from './learn.js';
import { queueFlags, queueFromArgs } from './queue-url.js';
import { shown } from '../util/terminal.js';

export function tasksCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { json: { type: 'bool' } });
  const rows = TASKS.map((t) => ({
    id: t.id,
    dataset: t.dataset,
    model: t.model,
    kind: t.kind,
    params: parameterCount(t),
    steps: t.steps,
    batchSize: t.batchSize,
    lrGrid: t.lrGrid,
    ...(t.trainSubset === undefined ? {} : { trainSubset: t.trainSubset }),
    metric: t.metric.name,
    metricGoal: t.metric.goal,
    score: t.metric.score,
    target: t.metric.target,
    targetNote: t.metric.targetNote,
    secondsPerEvaluation: secondsPerEvaluation(t.id),
    suite: t.suite,
    default: t.id === DEFAULT_TASK,
    description: t.description,
  }));
  if (has(args, 'json')) io.out(JSON.stringify(rows));
  else {
    io.out(
      `${'id'.padEnd(20)} ${'kind'.padEnd(14)} ${'suite'.padEnd(8)} ${'params'.padStart(7)} ${'steps'.padStart(6)} ${'s/eval'.padStart(7)}  metric (target)`,
    );
    for (const r of rows) {
      const cost =
        r.secondsPerEvaluation === null ? '-' : r.secondsPerEvaluation.toFixed(r.secondsPerEvaluation < 10 ? 1 : 0);
      io.out(
        `${r.id.padEnd(20)} ${r.kind.padEnd(14)} ${(r.suite ?? '-').padEnd(8)} ${String(r.params).padStart(7)} ${String(r.steps).padStart(6)} ${cost.padStart(7)}  ${r.metric} (${r.metricGoal === 'min' ? '<=' : '>='} ${r.target})${r.default ? ' (default task)' : ''}`,
      );
    }
    io.out(
      's/eval: seconds one evaluation takes (Adam, the grid and the full run, one seed, one thread), measured on 2 shared cores (bench/results/task-costs.txt)',
    );
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
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0))
    throw new UsageError(`--${name} expects positive numbers separated by commas, got '${shown(text)}'`);
  return xs;
}

export const EVAL_FLAGS: FlagSpecs = {
  rules: {
    type: 'string',
    value: 'a,b,...',
    description:
      'rules to train: built-in names, rule text, or learned:FILE (a learned optimizer from nos learn; the lr multiplies its update, 1 = as trained), comma-separated (required)',
  },
  task: { type: 'string', value: 'ID', description: `the child task (default ${DEFAULT_TASK}; nos tasks lists them)` },
  seeds: { type: 'string', value: 'N', description: 'seeds per rule, 0..N-1 (default 1)' },
  steps: { type: 'string', value: 'S', description: "training steps (default: the task's)" },
  lrs: { type: 'string', value: 'x,y,...', description: "the learning-rate grid (default: the task's)" },
  workers: { type: 'string', value: 'K', description: 'evaluator threads (default and most: the number of cores)' },
  ...DEVICE_FLAG,
  ...queueFlags("evaluate through this Redis queue with 'nos worker's, not here"),
  set: {
    type: 'list',
    value: 'k=v',
    description: 'override a hyperparameter of the rules that declare it (repeatable)',
  },
  baseline: {
    type: 'string',
    value: 'NAME',
    description:
      'compare every rule with this one, paired by seed (a paired t-test on accuracy; added to --rules if absent)',
  },
  out: {
    type: 'string',
    value: 'DIR',
    description: 'write results.json and curves.svg into this folder (checked before training)',
  },
  json: { type: 'bool', description: 'print one JSON document on stdout (progress goes to stderr)' },
  schedule: {
    type: 'string',
    value: 'S',
    description: 'a learning-rate schedule around the rule (nos schedule lists them)',
  },
  'weight-decay': { type: 'string', value: 'WD', description: 'decoupled weight decay, times the learning rate' },
  'batch-growth': { type: 'bool', description: "turn the --schedule's decay into batch growth" },
  analyze: {
    type: 'bool',
    description:
      'also report train accuracy, the generalisation gap, sharpness (also after a function-preserving x5 ReLU rescaling), single-direction reliance and a snapshot ensemble',
  },
  'label-noise': {
    type: 'string',
    value: 'P',
    description:
      'replace this fraction (0..1) of the training labels by uniformly random ones, seeded; validation and test stay clean (image tasks)',
  },
};

/** Hyperparameter overrides per rule: each --set name must belong to at least one rule. */
function overridesPerRule(
  rules: readonly (CheckedRule | LearnedRule)[],
  pairs: readonly string[],
): Readonly<Record<string, number>>[] {
  if (pairs.length === 0) return rules.map(() => ({}));
  const given = parseSetValues(pairs); // syntax, number literals and duplicates, for every name
  const nameOf = (kv: string) => /^\s*([A-Za-z][A-Za-z0-9]*)\s*=/.exec(kv)?.[1] ?? '';
  for (const name of given.keys()) {
    if (!rules.some((r) => r.params.some((p) => p.name === name))) {
      throw new UsageError(`--set ${name}: no rule in --rules has a hyperparameter '${shown(name)}'`);
    }
  }
  return rules.map((r) =>
    isLearnedRule(r)
      ? {}
      : ruleOverrides(
          r,
          pairs.filter((kv) => r.params.some((p) => p.name === nameOf(kv))),
        ),
  );
}

/** A difference in accuracy points with its interval and verdict, for the table. */
function vsCell(c: PairedComparison): string {
  const pts = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;
  if (!Number.isFinite(c.mean)) return '-';
  const ci = c.ci95 === null ? `(${c.n} seed${c.n === 1 ? '' : 's'})` : `[${pts(c.ci95[0])}, ${pts(c.ci95[1])}]`;
  return `${pts(c.mean)} ${ci} ${c.verdict}${c.p === null ? '' : ` (p ${c.p < 0.001 ? c.p.toExponential(1) : c.p.toFixed(3)})`}`;
}

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
  if (has(args, 'batch-growth') && scheduleSpec === undefined)
    throw new UsageError('--batch-growth needs a decaying --schedule (e.g. step) to turn into batch growth');
  const analyze = has(args, 'analyze');
  const labelNoise = numberFlag(args, 'label-noise');
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
  const rules: (CheckedRule | LearnedRule)[] = [];
  for (const label of labels) {
    const found = lookupEvalRule(label);
    if (!found.ok) problems.push(`rule '${shown(label)}':\n${found.message}`);
    else rules.push(found.rule);
  }
  if (problems.length > 0) throw new UsageError(problems.join('\n'));
  // The baseline: one of the rules (same label or same canonical hash), else added to them.
  const baselineName = flag(args, 'baseline');
  let baselineIndex = -1;
  if (baselineName !== undefined) {
    const found = lookupEvalRule(baselineName);
    if (!found.ok) throw new UsageError(`--baseline '${shown(baselineName)}' is not a rule:\n${found.message}`);
    baselineIndex = labels.indexOf(baselineName);
    if (baselineIndex < 0) baselineIndex = rules.findIndex((r) => r.hash === found.rule.hash);
    if (baselineIndex < 0) {
      labels.push(baselineName);
      rules.push(found.rule);
      baselineIndex = labels.length - 1;
    }
  }
  const task = taskFromFlag(flag(args, 'task'));
  const noiseProblem = labelNoise === undefined ? undefined : labelNoiseProblem(labelNoise, task);
  if (noiseProblem !== undefined) throw new UsageError(`--label-noise: ${noiseProblem}`);
  const seeds = intFlag(args, 'seeds', 1) ?? 1;
  const steps = intFlag(args, 'steps', 1);
  const lrs = flag(args, 'lrs') === undefined ? undefined : numberList(flag(args, 'lrs') as string, 'lrs');
  const workers = resolveWorkers(intFlag(args, 'workers', 1));
  const params = overridesPerRule(rules, args.flags.get('set') ?? []);
  const out = flag(args, 'out');
  if (out !== undefined) checkOutputDir(out, '--out', ['results.json', 'curves.svg']);
  const queueUrl = queueFromArgs(args, io, 'eval');
  const device = deviceFlag(args);
  if (device === 'webgpu') {
    if (queueUrl !== undefined) throw new UsageError('--device webgpu trains here: it does not go with --queue');
    const problem = gpuProblem(task, { analyze, learned: rules.some(isLearnedRule) });
    if (problem !== undefined) throw new UsageError(`--device webgpu: ${problem}`);
  }
  if (workers.note !== undefined && device === 'cpu') io.err(`nos eval: ${workers.note}`);
  const datasets = task.dataset ? [task.dataset] : [];
  const pool =
    device === 'webgpu'
      ? new GpuEvaluator({ datasets })
      : queueUrl === undefined
        ? new EvaluatorPool({ workers: workers.workers, datasets })
        : await QueueEvaluator.open({
            url: queueUrl,
            version: nosVersion(),
            log: (line) => io.err(`nos eval: ${line}`),
          });
  io.err(
    `nos eval: ${labels.length} rule(s) x ${seeds} seed(s) on ${task.id}, ${pool instanceof QueueEvaluator ? `through the queue at ${pool.url.redacted}` : pool instanceof GpuEvaluator ? 'on the GPU (one thread)' : `${pool.workers} worker(s)`}`,
  );
  let evaluation: RulesEvaluation;
  try {
    evaluation = await evaluateRules(
      {
        rules: rules.map((rule, i) => ({
          label: labels[i] as string,
          rule: rule.canonical,
          ...(isLearnedRule(rule) ? { learned: rule.data } : {}),
          params: params[i] ?? {},
        })),
        task: task.id,
        seeds,
        ...(baselineIndex < 0 ? {} : { baseline: baselineIndex }),
        options: {
          test: true,
          ...(steps === undefined ? {} : { steps }),
          ...(lrs === undefined ? {} : { lrGrid: lrs }),
          ...layers,
          ...(labelNoise === undefined ? {} : { labelNoise }),
        },
      },
      pool,
      ({ rule, seed, result, done, total }) =>
        io.err(
          `  [${done}/${total}] ${labels[rule]} seed ${seed}: ${result.status} val ${result.valAcc.toFixed(4)} (lr ${result.bestLr ?? '-'}, ${result.seconds.toFixed(1)} s)`,
        ),
    );
  } finally {
    await pool.close();
  }
  const rows = evaluation.summaries;
  const base = baselineIndex < 0 ? undefined : (rows[baselineIndex] as RuleSummary);
  const accuracy = evaluation.vsBaseline?.accuracy ?? 'validation';
  const comparisons = evaluation.vsBaseline?.comparisons ?? rows.map(() => undefined);
  const doc = {
    task: task.id,
    seeds,
    ...(device === 'webgpu' ? { device } : {}),
    ...(base === undefined ? {} : { baseline: base.label, compared: `${accuracy} accuracy` }),
    results: rows.map((r, i) => ({
      rule: r.label,
      canonical: r.rule,
      bestLr: r.bestLr,
      valAcc: jsonStat(r.valAcc),
      testAcc: jsonStat(r.testAcc),
      finalLoss: jsonStat(r.finalLoss),
      status: r.status,
      seconds: r.seconds,
      perSeed: r.seeds.map((x, seed) => ({
        seed,
        valAcc: jsonNumber(x.valAcc),
        testAcc: x.testAcc === null || x.testAcc === undefined ? null : jsonNumber(x.testAcc),
        bestLr: x.bestLr,
      })),
      ...(base !== undefined && i === baselineIndex ? { baseline: true } : {}),
      ...(comparisons[i] === undefined || base === undefined
        ? {}
        : { vsBaseline: baselineComparison(base.label, comparisons[i] as PairedComparison, accuracy) }),
      ...(analyze ? { analysis: analysisSummary(r.seeds) } : {}),
    })),
    ...(scheduleSpec === undefined ? {} : { schedule: scheduleSpec }),
    ...(weightDecay === undefined ? {} : { weightDecay }),
    ...(has(args, 'batch-growth') ? { batchGrowth: true } : {}),
    ...(labelNoise === undefined ? {} : { labelNoise }),
  };
  if (has(args, 'json')) io.out(JSON.stringify(doc));
  else {
    const pct = (s: Stat) =>
      (Number.isFinite(s.mean) ? `${(100 * s.mean).toFixed(2)} +- ${(100 * s.std).toFixed(2)}` : '-').padStart(14);
    io.out(
      `${task.id}: ${seeds} seed(s), ${steps ?? task.steps} steps, learning rate from ${(lrs ?? task.lrGrid).join(', ')}`,
    );
    const vsHeader = base === undefined ? '' : `  vs ${base.label} (${accuracy} acc, points: diff [95% CI] verdict)`;
    io.out(
      `${'rule'.padEnd(24)} ${'best lr'.padStart(8)} ${'val acc %'.padStart(14)} ${'test acc %'.padStart(14)} ${'final loss'.padStart(11)} ${'status'.padEnd(9)} ${'time s'.padStart(7)}${vsHeader}`,
    );
    for (const [i, r] of rows.entries()) {
      io.out(
        `${(r.label.length > 24 ? `${r.label.slice(0, 23)}…` : r.label).padEnd(24)} ${String(r.bestLr ?? '-').padStart(8)} ${pct(r.valAcc)} ${pct(r.testAcc)} ${(Number.isFinite(r.finalLoss.mean) ? r.finalLoss.mean.toFixed(4) : '-').padStart(11)} ${r.status.padEnd(9)} ${r.seconds.toFixed(1).padStart(7)}${base === undefined ? '' : `  ${i === baselineIndex ? '(baseline)' : vsCell(comparisons[i] as PairedComparison)}`}`,
      );
    }
    if (analyze) {
      io.out('');
      io.out(
        `${'rule'.padEnd(24)} ${'train acc %'.padStart(14)} ${'gap (train-test) %'.padStart(19)} ${'sharpness %'.padStart(14)} ${'ensemble val %'.padStart(15)} ${'snapshots'.padStart(9)} ${'sharp. x5 %'.padStart(14)} ${'reliance'.padStart(8)}`,
      );
      for (const r of rows) {
        const a = analysisSummary(r.seeds);
        const f = (s: { mean: number | null; std: number | null }, k = 100) =>
          s.mean === null ? '-' : `${(k * s.mean).toFixed(2)} +- ${(k * (s.std ?? 0)).toFixed(2)}`;
        io.out(
          `${(r.label.length > 24 ? `${r.label.slice(0, 23)}…` : r.label).padEnd(24)} ${f(a.trainAcc).padStart(14)} ${f(a.gapAcc).padStart(19)} ${f(a.sharpness, 1).padStart(14)} ${f(a.ensembleValAcc).padStart(15)} ${String(a.snapshots ?? '-').padStart(9)} ${f(a.sharpnessRescaled, 1).padStart(14)} ${(a.reliance === null ? '-' : a.reliance.area.toFixed(3)).padStart(8)}`,
        );
      }
    }
  }
  if (base !== undefined && seeds < 2) {
    const note = `note: with one seed there is no confidence interval or test, so every verdict is 'tied'; a claim against ${base.label} needs more seeds (--seeds 10 or more, as the README's claims use)`;
    if (has(args, 'json')) io.err(`nos eval: ${note}`);
    else io.out(note);
  }
  // Results are printed before any file is written: an output error never loses them.
  if (out !== undefined) {
    // Both texts are made before either file is written; each file is written whole or not at all.
    const files: readonly (readonly [string, string, string])[] = [
      [
        join(out, 'results.json'),
        `${JSON.stringify({ ...doc, perSeed: rows.map((r) => r.seeds) }, null, 1)}\n`,
        'the results',
      ],
      [join(out, 'curves.svg'), evalCurvesSvg(task.id, rows), 'the curves'],
    ];
    const written: string[] = [];
    try {
      try {
        mkdirSync(out, { recursive: true });
      } catch (e) {
        throw new UsageError(`cannot create the folder ${out}: ${describeWriteError(e)}`);
      }
      for (const [file, text, what] of files) {
        writeOutputFile(file, text, what);
        written.push(file);
      }
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      io.err(
        `nos eval: error: ${e.message} (the results are printed above${written.length > 0 ? `; ${written.join(' and ')} was written` : ''})`,
      );
      return 1;
    }
    io.err(`wrote ${written.join(' and ')}`);
  }
  return 0;
}
