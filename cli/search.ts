/** `nos search`, `nos leaderboard`: flags in, the run library (controller/run.ts) does the rest. */
import { readableRule } from '../dsl/readable.js';
import { createRun, DEFAULTS, LIMITS, openRun, type RunRequest, resumeRun, STRATEGIES, searchRun } from '../controller/run.js';
import type { SearchProgress } from '../controller/search.js';
import { parseQueueUrl } from '../evaluator/queue.js';
import { DEFAULT_TASK } from '../evaluator/tasks.js';
import { type Candidate, leaderboard, type SqliteStore } from '../search-results/store.js';
import { type FlagSpecs, flag, has, intFlag, parseArgs } from './args.js';
import type { Io } from './io.js';
import { writeReport } from './report.js';

export const SEARCH_FLAGS: FlagSpecs = {
  task: { type: 'string', value: 'ID', description: `the child task rules are trained on (default ${DEFAULT_TASK}; nos tasks lists them)` },
  budget: { type: 'string', value: 'N', description: `rules to train (or sample, with --budget-unit sampled; default ${DEFAULTS.budget}); with --resume, raises the run's budget` },
  'budget-unit': { type: 'string', value: 'UNIT', description: `what --budget counts: trained (rules actually trained; cache hits are free, up to 20x the budget in samples) or sampled (default ${DEFAULTS.budgetUnit})` },
  strategy: { type: 'string', value: 'NAME', description: `${STRATEGIES.join(', ')} (default ${DEFAULTS.strategy})` },
  workers: { type: 'string', value: 'K', description: 'evaluator threads (default and most: the number of cores); results do not depend on it' },
  queue: { type: 'string', value: 'URL', description: "evaluate through this Redis queue (redis://[:PASSWORD@]HOST:PORT[/DB] or rediss://) with 'nos worker's, not here; same results" },
  seed: { type: 'string', value: 'S', description: `seed of the strategy and of every evaluation (default ${DEFAULTS.seed})` },
  run: { type: 'string', value: 'NAME', description: "the run's name (default <strategy>-<task>-<time>); with --resume, the run to continue" },
  resume: { type: 'bool', description: 'continue the stopped run --run NAME with its stored config' },
  json: { type: 'bool', description: 'print one JSON document at the end (progress goes to stderr)' },
  batch: { type: 'string', value: 'N', description: `rules per strategy update (default ${DEFAULTS.batchSize}, at most ${LIMITS.batch[1]})` },
  groups: { type: 'string', value: 'N', description: `groups of choices per rule, ${LIMITS.groups[0]}-${LIMITS.groups[1]} (default ${DEFAULTS.groups})` },
  steps: { type: 'string', value: 'N', description: "training steps per evaluation (default: the task's)" },
  'warm-start': { type: 'bool', description: "seed evolution's population with PowerSign (2 groups) or AddSign (3 groups)" },
  space: { type: 'string', value: 'FILE.json', description: 'restrict or extend the search vocabulary: {"operands": [...], "unary": [...], "binary": [...]}' },
};

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function bar(p: SearchProgress): string {
  const width = 24;
  const filled = Math.min(width, Math.round((width * p.spent) / Math.max(1, p.budget)));
  const rate = p.spent / Math.max(1e-9, p.elapsedMs / 1000);
  const eta = rate > 0 ? ((p.budget - p.spent) / rate) * 1000 : 0;
  return `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${p.spent}/${p.budget} rules ${p.unit}  ${rate.toFixed(2)}/s  ETA ${duration(eta)}  best ${p.best.toFixed(4)}  sampled ${p.sampled}  trained ${p.evaluated}  cached ${p.cached}  rejected ${p.rejected}`;
}

/** The settings given on the command line (left out: default, or the stored value on --resume). */
function request(args: ReturnType<typeof parseArgs>): RunRequest {
  const opt = <K extends keyof RunRequest>(key: K, value: RunRequest[K] | undefined): Partial<RunRequest> => (value === undefined ? {} : { [key]: value });
  return {
    ...opt('run', flag(args, 'run')),
    ...opt('task', flag(args, 'task')),
    ...opt('strategy', flag(args, 'strategy')),
    ...opt('budget', intFlag(args, 'budget', 1)),
    ...opt('budgetUnit', flag(args, 'budget-unit')),
    ...opt('seed', intFlag(args, 'seed', 0)),
    ...opt('batchSize', intFlag(args, 'batch', 1)),
    ...opt('steps', intFlag(args, 'steps', 1)),
    ...opt('groups', intFlag(args, 'groups', 1)),
    ...opt('warmStart', has(args, 'warm-start') ? true : undefined),
    ...opt('spaceFile', flag(args, 'space')),
    ...opt('workers', intFlag(args, 'workers', 1)),
  };
}

export async function searchCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, SEARCH_FLAGS);
  const req = request(args);
  const queueUrl = flag(args, 'queue');
  // Checked before a run is created or opened: a bad URL leaves nothing behind.
  if (queueUrl !== undefined) parseQueueUrl(queueUrl);
  let store: SqliteStore;
  if (has(args, 'resume')) {
    const resumed = resumeRun(req.run, req);
    store = resumed.store;
    io.err(`resuming run '${store.config.run}': ${store.candidates().length} rules sampled so far, budget ${store.config.budget}`);
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
  try {
    const summary = await searchRun(store, {
      ...(req.workers === undefined ? {} : { workers: req.workers }),
      ...(queueUrl === undefined ? {} : { queue: { url: queueUrl, log: (line: string) => io.err(`nos search: ${line}`) } }),
      onStart: ({ workers, workersNote, backend, queue }) => {
        if (workersNote !== undefined) io.err(`nos search: ${workersNote}`);
        io.err(
          `nos search: run '${config.run}', ${config.strategy} on ${config.task}, budget ${config.budget} rules, seed ${config.seed}, ${config.groups} groups${config.warmStart ? ', warm start' : ''}${config.space ? ', own space' : ''}, ${queue === undefined ? `${workers} worker(s)` : `evaluated through the queue at ${queue}`}, tfjs ${backend}`,
        );
      },
      shouldStop: () => stopRequested,
      onCandidate: (_c, p) => {
        if (tty) process.stderr.write(`\r${bar(p)}\u001b[K`);
        else if (p.spent - lastLine >= Math.max(1, Math.floor(p.budget / 20)) || p.spent === p.budget) {
          lastLine = p.spent;
          io.err(bar(p));
        }
      },
      onUpdate: (batch, stats, p) => {
        const line = `update ${batch}: mean reward ${stats.meanReward.toFixed(4)}${stats.baseline === null ? '' : `, baseline ${stats.baseline.toFixed(4)}`}${stats.entropy === null ? '' : `, entropy ${stats.entropy.toFixed(3)}`}`;
        if (tty) process.stderr.write(`\r${line}\u001b[K\n${bar(p)}`);
        else io.err(line);
      },
    });
    if (tty) process.stderr.write('\n');
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
      best: summary.best,
    };
    if (has(args, 'json')) io.out(JSON.stringify(doc));
    else {
      io.out(`run '${summary.run}': ${summary.sampled} rules sampled, ${summary.evaluated} trained, ${summary.cached} cached, ${summary.rejected} rejected${summary.stopped ? ' (stopped: --resume continues)' : ''}`);
      io.out(leaderboardTable(leaderboard(store.candidates(), 10)));
      try {
        io.out(`report: ${await writeReport(store, undefined, true)}`);
      } catch (e) {
        io.err(`nos search: the report was not written: ${e instanceof Error ? e.message : String(e)}`);
      }
      io.out(`results: ${store.dir}/run.db   (nos leaderboard --run ${summary.run}; nos export --run ${summary.run} --rank 1 --format ts)`);
    }
    return summary.stopped ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    store.close();
  }
}

export function leaderboardTable(rows: readonly Candidate[]): string {
  if (rows.length === 0) return '(no rule trained successfully yet)';
  return [
    `${'rank'.padStart(4)}  ${'reward'.padEnd(8)} ${'lr'.padEnd(7)} rule`,
    ...rows.map((c, i) => `${String(i + 1).padStart(4)}  ${c.reward.toFixed(4).padEnd(8)} ${String(c.bestLr ?? '-').padEnd(7)} ${readableRule(c.rule)}`),
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
    const rows = leaderboard(store.candidates(), top);
    if (has(args, 'json')) {
      io.out(
        JSON.stringify(
          rows.map((c, i) => ({ rank: i + 1, rule: c.rule, readable: readableRule(c.rule), reward: c.reward, status: c.status, bestLr: c.bestLr, valAcc: c.valAcc, testAcc: c.testAcc, hash: c.hash, index: c.index })),
        ),
      );
    } else io.out(leaderboardTable(rows));
    return 0;
  } finally {
    store.close();
  }
}
