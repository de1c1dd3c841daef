/** `nos search`, `nos leaderboard`: flags in, the run library (controller/run.ts) does the rest. */

import type { RunStore } from '../controller/config.js';
import { FUNNEL_DEFAULTS } from '../controller/funnel.js';
import { type LeaderboardEntry, rankedLeaderboard, verdicts } from '../controller/funnel-plan.js';
import {
  createRun,
  DEFAULTS,
  type FunnelRequest,
  LIMITS,
  openRun,
  type RunRequest,
  resumeRun,
  runStaleness,
  STRATEGIES,
  SUITE_DEFAULTS,
  searchRun,
} from '../controller/run.js';
import { PLATEAU_BATCHES } from '../controller/rl.js';
import { cappedNote, type SearchProgress } from '../controller/search.js';
import { readableRule } from '../dsl/readable.js';
import { DEFAULT_TASK } from '../evaluator/tasks.js';
import { shown } from '../util/terminal.js';
import { type FlagSpecs, flag, has, intFlag, numberFlag, parseArgs, UsageError } from './args.js';
import { DEVICE_FLAG, deviceFlag } from './device.js';
import type { Io } from './io.js';
import { queueFlags, queueFromArgs } from './queue-url.js';
import { writeReport } from './report.js';

export const SEARCH_FLAGS: FlagSpecs = {
  task: {
    type: 'string',
    value: 'ID',
    description: `one child task to train rules on, instead of the workload suite (nos tasks lists them; ${DEFAULT_TASK} is the classic proxy)`,
  },
  suite: {
    type: 'string',
    value: 'on|off',
    description:
      "the workload suite (default on without --task): the reward aggregates the search workloads, each normalised against the baseline; the finalists' verdicts come from the held-out workloads",
  },
  aggregate: {
    type: 'string',
    value: 'NAME',
    description:
      "how a suite run's workloads make one reward: mean (of scores normalised against the baseline; default) or profile (AlgoPerf's performance profile)",
  },
  'search-workloads': {
    type: 'string',
    value: 'A,B',
    description:
      "a suite run's search workloads: the tasks the reward aggregates (default: the search suite, nos tasks; a held-out workload is refused)",
  },
  budget: {
    type: 'string',
    value: 'N',
    description: `rules to train (or sample, with --budget-unit sampled; default ${SUITE_DEFAULTS.budget} for the suite, ${DEFAULTS.budget} with --task); with --resume, raises the run's budget`,
  },
  'budget-unit': {
    type: 'string',
    value: 'UNIT',
    description: `what --budget counts: trained (rules actually trained; cache hits are free, up to 20x the budget in samples) or sampled (default ${DEFAULTS.budgetUnit})`,
  },
  strategy: { type: 'string', value: 'NAME', description: `${STRATEGIES.join(', ')} (default ${DEFAULTS.strategy})` },
  workers: {
    type: 'string',
    value: 'K',
    description: 'evaluator threads (default and most: the number of cores); results do not depend on it',
  },
  ...queueFlags("evaluate through this Redis queue with 'nos worker's, not here (same results)"),
  ...DEVICE_FLAG,
  seed: {
    type: 'string',
    value: 'S',
    description: `seed of the strategy and of every evaluation (default ${DEFAULTS.seed})`,
  },
  'stand-in': {
    type: 'string',
    value: 'MS',
    description:
      "benchmarks and tests only: train nothing; each evaluation sleeps MS ms and returns a made-up reward (from a hash of the rule); --workers K is then any number of sleeping workers, and --queue sends the jobs to 'nos worker --stand-in'; stored with the run",
  },
  run: {
    type: 'string',
    value: 'NAME',
    description: "the run's name (default <strategy>-<task>-<time>); with --resume, the run to continue",
  },
  resume: { type: 'bool', description: 'continue the stopped run --run NAME with its stored config' },
  json: { type: 'bool', description: 'print one JSON document at the end (progress goes to stderr)' },
  batch: {
    type: 'string',
    value: 'N',
    description: `rules per strategy update (default ${DEFAULTS.batchSize}, at most ${LIMITS.batch[1]})`,
  },
  staleness: {
    type: 'string',
    value: 'S',
    description: `batches proposed before the strategy has learned from the one S batches back: S+1 batches in flight keep the workers busy (default ${DEFAULTS.staleness}, at most ${LIMITS.staleness[1]}; stored with the run: results depend on it, never on --workers)`,
  },
  groups: {
    type: 'string',
    value: 'N',
    description: `groups of choices per rule, ${LIMITS.groups[0]}-${LIMITS.groups[1]} (default ${DEFAULTS.groups})`,
  },
  steps: { type: 'string', value: 'N', description: "training steps per evaluation (default: the task's)" },
  'warm-start': {
    type: 'bool',
    description: "seed evolution's population with PowerSign (2 groups) or AddSign (3 groups)",
  },
  space: {
    type: 'string',
    value: 'FILE.json',
    description: 'restrict or extend the search vocabulary: {"operands": [...], "unary": [...], "binary": [...]}',
  },
  funnel: {
    type: 'string',
    value: 'on|off',
    description:
      'after the search, climb the best rules up rungs of rising fidelity (more seeds, longer runs, a transfer task), with the baseline beside them (default on)',
  },
  promote: {
    type: 'string',
    value: 'F',
    description: `fraction of trained rules promoted to rung 1 (default ${FUNNEL_DEFAULTS.promote}, at least max(${FUNNEL_DEFAULTS.minPromoted}, --long-top) rules)`,
  },
  'rung-seeds': {
    type: 'string',
    value: 'A,B,C',
    description: `seeds at rungs 1, 2 and 3 (default ${FUNNEL_DEFAULTS.seeds.join(',')} with --task, ${SUITE_DEFAULTS.seeds.join(',')} for the suite)`,
  },
  'long-top': {
    type: 'string',
    value: 'K',
    description: `rules promoted to rung 2 (default ${FUNNEL_DEFAULTS.longTop} with --task, ${SUITE_DEFAULTS.longTop} for the suite)`,
  },
  'long-factor': {
    type: 'string',
    value: 'N',
    description: `rung 2's steps as a multiple of the proxy's (default ${FUNNEL_DEFAULTS.longFactor} with --task, ${SUITE_DEFAULTS.longFactor} for the suite)`,
  },
  finalists: {
    type: 'string',
    value: 'K',
    description: `rules promoted to rung 3, the transfer task or the held-out suite (default ${FUNNEL_DEFAULTS.finalists})`,
  },
  transfer: {
    type: 'string',
    value: 'TASK',
    description: "rung 3's task, or none (default convnet-fashion for MNIST tasks, none for analytic tasks)",
  },
  baseline: {
    type: 'string',
    value: 'NAME',
    description: `the built-in rule every rung compares with, paired by seed (default ${FUNNEL_DEFAULTS.baseline})`,
  },
};

/** The funnel flags given (left out: the default, or the stored value on --resume). */
function funnelRequest(args: ReturnType<typeof parseArgs>): FunnelRequest | false | undefined {
  const mode = flag(args, 'funnel');
  if (mode !== undefined && mode !== 'on' && mode !== 'off')
    throw new UsageError(`--funnel must be on or off, got '${shown(mode)}'`);
  const seedsText = flag(args, 'rung-seeds');
  const seeds =
    seedsText === undefined
      ? undefined
      : seedsText.split(',').map((x) => (/^\s*\d+\s*$/.test(x) ? Number(x) : Number.NaN));
  if (seeds?.some((x) => Number.isNaN(x)))
    throw new UsageError(
      `--rung-seeds takes three integers separated by commas (seeds at rungs 1, 2, 3), got '${shown(seedsText ?? '')}'`,
    );
  const r: FunnelRequest = {
    ...(numberFlag(args, 'promote') === undefined ? {} : { promote: numberFlag(args, 'promote') as number }),
    ...(seeds === undefined ? {} : { seeds }),
    ...(intFlag(args, 'long-top', 1) === undefined ? {} : { longTop: intFlag(args, 'long-top', 1) as number }),
    ...(intFlag(args, 'long-factor', 1) === undefined ? {} : { longFactor: intFlag(args, 'long-factor', 1) as number }),
    ...(intFlag(args, 'finalists', 1) === undefined ? {} : { finalists: intFlag(args, 'finalists', 1) as number }),
    ...(flag(args, 'transfer') === undefined ? {} : { transfer: flag(args, 'transfer') as string }),
    ...(flag(args, 'baseline') === undefined ? {} : { baseline: flag(args, 'baseline') as string }),
  };
  if (mode === 'off') {
    if (Object.keys(r).length > 0)
      throw new UsageError(`--funnel off takes no funnel settings (--${Object.keys(r)[0]})`);
    return false;
  }
  return mode === undefined && Object.keys(r).length === 0 ? undefined : r;
}

/** A duration for progress lines: `42s`, `3m07s`. */
export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function bar(p: SearchProgress): string {
  const width = 24;
  const filled = Math.min(width, Math.round((width * p.spent) / Math.max(1, p.budget)));
  const rate = p.spent / Math.max(1e-9, p.elapsedMs / 1000);
  const eta = rate > 0 ? ((p.budget - p.spent) / rate) * 1000 : 0;
  return `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${p.spent}/${p.budget} rules ${p.unit}  ${rate.toFixed(2)}/s  ETA ${duration(eta)}  best ${p.best.toFixed(4)}  sampled ${p.sampled}  trained ${p.evaluated}  cached ${p.cached}  rejected ${p.rejected}  in flight ${p.inFlight}`;
}

/** The settings given on the command line (left out: default, or the stored value on --resume). */
function request(args: ReturnType<typeof parseArgs>): RunRequest {
  const opt = <K extends keyof RunRequest>(key: K, value: RunRequest[K] | undefined): Partial<RunRequest> =>
    value === undefined ? {} : { [key]: value };
  return {
    ...opt('run', flag(args, 'run')),
    ...opt('task', flag(args, 'task')),
    ...opt('strategy', flag(args, 'strategy')),
    ...opt('budget', intFlag(args, 'budget', 1)),
    ...opt('budgetUnit', flag(args, 'budget-unit')),
    ...opt('seed', intFlag(args, 'seed', 0)),
    ...opt('batchSize', intFlag(args, 'batch', 1)),
    ...opt('staleness', intFlag(args, 'staleness', 0)),
    ...opt('steps', intFlag(args, 'steps', 1)),
    ...opt('groups', intFlag(args, 'groups', 1)),
    ...opt('warmStart', has(args, 'warm-start') ? true : undefined),
    ...opt('spaceFile', flag(args, 'space')),
    ...opt('workers', intFlag(args, 'workers', 1)),
    ...opt('standIn', intFlag(args, 'stand-in', 0)),
    ...opt('funnel', funnelRequest(args)),
    ...opt('suite', suiteRequest(args)),
  };
}

/** --suite, --aggregate, --search-workloads: the suite by default when no --task is given (a resume keeps the stored choice). */
function suiteRequest(args: ReturnType<typeof parseArgs>): RunRequest['suite'] {
  const mode = flag(args, 'suite');
  if (mode !== undefined && mode !== 'on' && mode !== 'off')
    throw new UsageError(`--suite must be on or off, got '${mode}'`);
  const aggregate = flag(args, 'aggregate');
  const workloads = flag(args, 'search-workloads');
  if (mode === 'off') {
    if (aggregate !== undefined) throw new UsageError('--aggregate applies to a suite run (drop --suite off)');
    if (workloads !== undefined) throw new UsageError('--search-workloads applies to a suite run (drop --suite off)');
    return false;
  }
  const search = workloads?.split(',').map((w) => w.trim());
  if (mode === 'on' || aggregate !== undefined || search !== undefined)
    return { ...(aggregate === undefined ? {} : { aggregate }), ...(search === undefined ? {} : { search }) };
  if (has(args, 'resume') || flag(args, 'task') !== undefined) return undefined;
  return {};
}

export async function searchCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, SEARCH_FLAGS);
  const req = request(args);
  // Checked before a run is created or opened: a bad URL leaves nothing behind.
  const queueUrl = queueFromArgs(args, io, 'search');
  const device = deviceFlag(args);
  if (device === 'webgpu' && queueUrl !== undefined)
    throw new UsageError('--device webgpu trains here: it does not go with --queue');
  let store: RunStore;
  if (has(args, 'resume')) {
    const resumed = resumeRun(req.run, req);
    store = resumed.store;
    io.err(
      `resuming run '${store.config.run}': ${store.candidates().length} rules sampled so far, budget ${store.config.budget}`,
    );
    for (const note of resumed.notes) io.err(`nos search: ${note}`);
  } else store = createRun(req);
  const config = store.config;
  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    io.err('\nstopping after the evaluations in flight (Ctrl-C again to quit now; --resume continues)');
  };
  process.on('SIGINT', onSigint);
  const tty = process.stderr.isTTY === true && !has(args, 'json');
  let lastLine = 0;
  let lastBar = Number.NEGATIVE_INFINITY;
  try {
    const summary = await searchRun(store, {
      ...(req.workers === undefined ? {} : { workers: req.workers }),
      ...(device === 'cpu' ? {} : { device }),
      ...(queueUrl === undefined
        ? {}
        : { queue: { url: queueUrl, log: (line: string) => io.err(`nos search: ${line}`) } }),
      onStart: ({ workers, workersNote, backend, queue, standIn }) => {
        if (workersNote !== undefined) io.err(`nos search: ${workersNote}`);
        io.err(
          `nos search: run '${config.run}', ${config.strategy} on ${config.suite ? `the search suite (${config.suite.search.join(', ')}; held out: ${config.suite.heldOut.join(', ')})` : config.task}, budget ${config.budget} rules, seed ${config.seed}, ${config.groups} groups${config.warmStart ? ', warm start' : ''}${config.space ? ', own space' : ''}, batch ${config.batchSize}, staleness ${runStaleness(config)}, ${queue !== undefined ? `evaluated through the queue at ${queue}` : device === 'webgpu' ? 'children on the GPU (one thread)' : `${workers} worker(s)`}${standIn === undefined ? `, tfjs ${backend}` : `, stand-in evaluations (each sleeps ${standIn} ms; nothing is trained)`}`,
        );
      },
      shouldStop: () => stopRequested,
      funnelHooks: {
        onRung: (rung, rules, evaluations) => {
          if (rung.rung === 0)
            io.err(
              `funnel: the baseline (${config.funnel?.baseline}) on ${config.suite ? 'the search suite' : 'the proxy'}`,
            );
          else
            io.err(
              `funnel: rung ${rung.rung} (${rung.label}${rung.steps === null ? '' : `, ${rung.steps} steps`}): ${rules} rules + the baseline, ${evaluations} evaluations to run`,
            );
        },
        onEvaluation: (e, left) => {
          if (tty) process.stderr.write(`\r  rung ${e.rung}: ${left} left\u001b[K${left === 0 ? '\n' : ''}`);
        },
      },
      onCandidate: (_c, p) => {
        // A terminal gets the bar at most every 100 ms (many workers finish hundreds of rules a second).
        if (tty) {
          const now = performance.now();
          if (now - lastBar >= 100 || p.spent === p.budget) {
            lastBar = now;
            process.stderr.write(`\r${bar(p)}\u001b[K`);
          }
        } else if (p.spent - lastLine >= Math.max(1, Math.floor(p.budget / 20)) || p.spent === p.budget) {
          lastLine = p.spent;
          io.err(bar(p));
        }
      },
      onSearched: (summary) => {
        const note = cappedNote(summary, store.candidates());
        if (note !== undefined) {
          if (tty) process.stderr.write('\n');
          io.err(`nos search: ${note}`);
        }
      },
      onUpdate: (batch, stats, p) => {
        const line = `update ${batch}: mean reward ${stats.meanReward.toFixed(4)}${stats.baseline === null ? '' : `, baseline ${stats.baseline.toFixed(4)}`}${stats.entropy === null ? '' : `, entropy ${stats.entropy.toFixed(3)}`}${stats.flattened === undefined ? '' : `; ${PLATEAU_BATCHES} batches with no reward spread: policy flattened (logits x ${stats.flattened})`}`;
        if (tty) process.stderr.write(`\r${line}\u001b[K\n${bar(p)}`);
        else io.err(line);
      },
    });
    if (tty) process.stderr.write('\n');
    const board = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 10);
    const doc = {
      run: summary.run,
      evaluated: summary.evaluated,
      cached: summary.cached,
      rejected: summary.rejected,
      sampled: summary.sampled,
      budget: summary.budget,
      budgetUnit: summary.budgetUnit,
      capped: summary.capped,
      stopped: summary.stopped,
      best: board
        .slice(0, 5)
        .map((e) => ({ rule: e.rule, reward: e.reward, rung: e.rung, seeds: e.seeds, ci95: e.ci95 })),
      ...(summary.funnel
        ? {
            funnel: {
              baseline: summary.funnel.baseline,
              rungs: summary.funnel.rungs.map((r) => ({
                rung: r.rung,
                task: r.task,
                steps: r.steps,
                seeds: r.seeds.length,
                rules: r.rules,
              })),
              verdicts: summary.funnel.verdicts.map((v) => ({
                rule: v.rule,
                proxy: v.proxy && verdictJson(v.proxy),
                transfer: v.transfer && { ...verdictJson(v.transfer), task: v.transfer.task },
                ...(v.workloads ? { workloads: workloadsJson(v.workloads) } : {}),
              })),
            },
          }
        : {}),
    };
    if (has(args, 'json')) io.out(JSON.stringify(doc));
    else {
      io.out(
        `run '${summary.run}': ${summary.sampled} rules sampled, ${summary.evaluated} trained, ${summary.cached} cached, ${summary.rejected} rejected${summary.stopped ? ' (stopped: --resume continues)' : ''}`,
      );
      io.out(leaderboardTable(board));
      const v = verdicts(store.config, store.candidates(), store.evaluations());
      if (v.length > 0)
        io.out(verdictLines(v, store.config.funnel?.baseline ?? 'adam', store.config.suite !== undefined));
      try {
        io.out(`report: ${await writeReport(store, undefined, true)}`);
      } catch (e) {
        io.err(`nos search: the report was not written: ${e instanceof Error ? e.message : String(e)}`);
      }
      io.out(
        `results: ${store.dir}/run.db   (nos leaderboard --run ${summary.run}; nos export --run ${summary.run} --rank 1 --format ts)`,
      );
    }
    return summary.stopped ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    store.close();
  }
}

type Comparison = NonNullable<LeaderboardEntry['vsBaseline']>;

/** Per-workload results as the leaderboard's JSON shows them: mean, ci95, seeds, verdict (and the paired difference). */
export function workloadsJson(w: NonNullable<LeaderboardEntry['workloads']>) {
  return Object.fromEntries(
    Object.entries(w).map(([task, x]) => [
      task,
      {
        mean: x.mean,
        ci95: x.ci95,
        seeds: x.seeds,
        verdict: x.verdict,
        ...(x.diff ? { diff: { mean: x.diff.mean, ci95: x.diff.ci95 }, p: x.diff.p } : {}),
      },
    ]),
  );
}

function verdictJson(c: Comparison & { rung: number }) {
  return { rung: c.rung, seeds: c.n, diff: { mean: c.mean, ci95: c.ci95 }, p: c.p, test: c.test, verdict: c.verdict };
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}`;

function comparisonText(c: Comparison): string {
  return `${c.verdict} (${pct(c.mean)} points${c.ci95 ? `, 95% CI [${pct(c.ci95[0])}, ${pct(c.ci95[1])}]` : ''}${c.p === null ? '' : `, p=${c.p.toPrecision(2)}`}, ${c.n} seeds)`;
}

/** The finalists' verdicts against the baseline, on the proxy task and the transfer task. */
export function verdictLines(vs: ReturnType<typeof verdicts>, baseline: string, suite = false): string {
  const [lower, upper] = suite ? ['search suite', 'held-out suite'] : ['proxy task', 'transfer'];
  return [
    `verdicts vs ${baseline} (paired t-test by seed, 95% CI of the accuracy difference):`,
    ...vs.map(
      (v) =>
        `  ${readableRule(v.rule)}\n    ${lower}, ${v.proxy ? `rung ${v.proxy.rung}: ${comparisonText(v.proxy)}` : 'not compared'}\n    ${upper}${v.transfer ? `${v.transfer.task === upper ? '' : ` (${v.transfer.task})`}, rung ${v.transfer.rung}: ${comparisonText(v.transfer)}` : ': not reached'}${Object.entries(
          v.workloads ?? {},
        )
          .map(([task, w]) => `\n      ${task}: ${w.diff ? comparisonText(w.diff) : `mean ${w.mean.toFixed(4)}`}`)
          .join('')}`,
    ),
  ].join('\n');
}

export function leaderboardTable(rows: readonly LeaderboardEntry[]): string {
  if (rows.length === 0) return '(no rule trained successfully yet)';
  const funnel = rows.some((r) => r.rung > 0);
  const ci = (r: LeaderboardEntry) => (r.ci95 ? `+-${((100 * (r.ci95[1] - r.ci95[0])) / 2).toFixed(2)}` : '');
  return [
    `${'rank'.padStart(4)}  ${'reward'.padEnd(8)} ${funnel ? `${'95% CI'.padEnd(8)} ${'rung'.padEnd(4)} ${'seeds'.padEnd(5)} ${'vs baseline'.padEnd(11)} ` : ''}${'lr'.padEnd(7)} rule`,
    ...rows.map(
      (r) =>
        `${String(r.rank).padStart(4)}  ${r.reward.toFixed(4).padEnd(8)} ${funnel ? `${ci(r).padEnd(8)} ${String(r.rung).padEnd(4)} ${String(r.seeds).padEnd(5)} ${(r.vsBaseline && r.vsBaseline.p !== null ? r.vsBaseline.verdict : '-').padEnd(11)} ` : ''}${String(r.candidate.bestLr ?? '-').padEnd(7)} ${readableRule(r.rule)}`,
    ),
    ...(funnel
      ? [
          '(reward: mean over seeds at the highest rung reached; the CI is in points of accuracy; rung 3 is the transfer task)',
        ]
      : []),
  ].join('\n');
}

export const LEADERBOARD_FLAGS: FlagSpecs = {
  run: { type: 'string', value: 'NAME', description: 'the run (required)' },
  top: { type: 'string', value: 'K', description: 'how many rules (default 10)' },
  json: { type: 'bool', description: 'print one JSON document' },
};

export function leaderboardCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, LEADERBOARD_FLAGS);
  const top = intFlag(args, 'top', 1) ?? 10;
  const store = openRun(flag(args, 'run'));
  try {
    const rows = rankedLeaderboard(store.config, store.candidates(), store.evaluations(), top);
    if (has(args, 'json')) {
      io.out(
        JSON.stringify(
          rows.map(({ rank, rule, reward, rung, task, seeds, ci95, vsBaseline, workloads, candidate: c }) => ({
            rank,
            rule,
            readable: readableRule(rule),
            reward,
            status: c.status,
            rung,
            task,
            seeds,
            ci95,
            ...(workloads && Object.keys(workloads).length > 1 ? { workloads: workloadsJson(workloads) } : {}),
            ...(vsBaseline
              ? {
                  vsBaseline: {
                    baseline: store.config.funnel?.baseline ?? store.config.suite?.baseline ?? null,
                    ...verdictJson({ ...vsBaseline, rung }),
                  },
                }
              : {}),
            bestLr: c.bestLr,
            valAcc: c.valAcc,
            testAcc: c.testAcc,
            hash: c.hash,
            index: c.index,
          })),
        ),
      );
    } else io.out(leaderboardTable(rows));
    return 0;
  } finally {
    store.close();
  }
}
