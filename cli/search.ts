/** `nos search`, `nos leaderboard`. */
import { RlController } from '../controller/rl.js';
import { leaderboard, runSearch, type SearchProgress } from '../controller/search.js';
import { Evolution, RandomSearch, type Strategy } from '../controller/strategy.js';
import { readFileSync } from 'node:fs';
import { initTf } from '../dsl/compile/tf-backend.js';
import { compileRules, formatDiagnostics } from '../dsl/index.js';
import { configureSpace, fill, NOS_SPACE, type SpaceConfig } from '../primitives/nos-space.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { type Candidate, type RunConfig, RunExistsError, RunMissingError, SqliteStore, runPath } from '../search-results/store.js';
import { flag, has, intFlag, parseArgs, UsageError } from './args.js';
import { taskFromFlag } from './eval.js';
import type { Io } from './io.js';

const STRATEGIES = ['rl', 'random', 'evolution'] as const;
export const DEFAULT_BUDGET = 1500;

export function makeStrategy(config: RunConfig, groups: number, warmStart: boolean): Strategy {
  const space = config.space ? configureSpace(config.space) : NOS_SPACE;
  switch (config.strategy) {
    case 'rl':
      return new RlController({ seed: config.seed, groups, space });
    case 'random':
      return new RandomSearch({ seed: config.seed, groups, space });
    case 'evolution':
      return new Evolution({ seed: config.seed, groups, warmStart, space });
    default:
      throw new UsageError(`unknown strategy '${config.strategy}'`);
  }
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function bar(p: SearchProgress): string {
  const width = 24;
  const filled = Math.round((width * p.sampled) / Math.max(1, p.budget));
  const rate = p.sampled / Math.max(1e-9, p.elapsedMs / 1000);
  const eta = rate > 0 ? ((p.budget - p.sampled) / rate) * 1000 : 0;
  return `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${p.sampled}/${p.budget} rules  ${rate.toFixed(2)}/s  ETA ${duration(eta)}  best ${p.best.toFixed(4)}  trained ${p.evaluated}  cached ${p.cached}  rejected ${p.rejected}`;
}

export async function searchCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, {
    task: { type: 'string' },
    budget: { type: 'string' },
    strategy: { type: 'string' },
    workers: { type: 'string' },
    seed: { type: 'string' },
    run: { type: 'string' },
    resume: { type: 'bool' },
    json: { type: 'bool' },
    batch: { type: 'string' },
    groups: { type: 'string' },
    steps: { type: 'string' },
    'warm-start': { type: 'bool' },
    space: { type: 'string' },
  });
  const workers = intFlag(args, 'workers', 1);
  const groups = intFlag(args, 'groups', 1) ?? 2;
  let store: SqliteStore;
  if (has(args, 'resume')) {
    const run = flag(args, 'run');
    if (run === undefined) throw new UsageError('--resume needs --run NAME');
    try {
      store = SqliteStore.open(run);
    } catch (e) {
      if (e instanceof RunMissingError) throw new UsageError(e.message);
      throw e;
    }
    io.err(`resuming run '${run}': ${store.candidates().length} of ${store.config.budget} rules done`);
  } else {
    const task = taskFromFlag(flag(args, 'task'));
    const strategy = flag(args, 'strategy') ?? 'rl';
    if (!(STRATEGIES as readonly string[]).includes(strategy)) throw new UsageError(`--strategy must be one of ${STRATEGIES.join(', ')}`);
    const seed = intFlag(args, 'seed', 0) ?? 0;
    const spaceFile = flag(args, 'space');
    let space: SpaceConfig | undefined;
    if (spaceFile !== undefined) {
      try {
        space = JSON.parse(readFileSync(spaceFile, 'utf8')) as SpaceConfig;
        const configured = configureSpace(space);
        // Every entry must be valid rule text.
        for (const e of configured.operands) {
          const r = compileRules(`(${e.text}) * g`, spaceFile);
          if (!r.ok) throw new Error(`operand '${e.id}': ${formatDiagnostics(r)}`);
        }
        for (const e of configured.unary) if (!compileRules(fill(e.text, ['g']), spaceFile).ok) throw new Error(`unary '${e.id}' is not valid rule text with $1 = g`);
        for (const e of configured.binary) if (!compileRules(fill(e.text, ['g', 'g']), spaceFile).ok) throw new Error(`binary '${e.id}' is not valid rule text with $1 = $2 = g`);
      } catch (e) {
        throw new UsageError(`--space ${spaceFile}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
    const config: RunConfig = {
      run: flag(args, 'run') ?? `${strategy}-${task.id}-${stamp}`,
      task: task.id,
      strategy,
      budget: intFlag(args, 'budget', 1) ?? DEFAULT_BUDGET,
      seed,
      workers: workers ?? 0,
      batchSize: intFlag(args, 'batch', 1) ?? 10,
      steps: intFlag(args, 'steps', 1) ?? null,
      ...(space ? { space } : {}),
      createdAt: new Date().toISOString(),
      nosVersion: '0.1.0',
    };
    try {
      store = SqliteStore.create(config);
    } catch (e) {
      if (e instanceof RunExistsError || (e instanceof Error && /run name/.test(e.message))) throw new UsageError(e.message);
      throw e;
    }
  }
  const config = store.config;
  const task = taskFromFlag(config.task);
  const backend = await initTf();
  const pool = new EvaluatorPool({ ...(workers === undefined ? {} : { workers }), datasets: task.dataset ? [task.dataset] : [] });
  io.err(`nos search: run '${config.run}', ${config.strategy} on ${task.id}, budget ${config.budget} rules, seed ${config.seed}, ${pool.workers} worker(s), tfjs ${backend.name}`);
  const strategy = makeStrategy(config, groups, has(args, 'warm-start'));
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
    const summary = await runSearch(store, strategy, pool, {
      shouldStop: () => stopRequested,
      onCandidate: (_c, p) => {
        if (tty) process.stderr.write(`\r${bar(p)}\u001b[K`);
        else if (p.sampled - lastLine >= Math.max(1, Math.floor(p.budget / 20)) || p.sampled === p.budget) {
          lastLine = p.sampled;
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
      stopped: summary.stopped,
      best: summary.best,
    };
    if (has(args, 'json')) io.out(JSON.stringify(doc));
    else {
      io.out(`run '${summary.run}': ${summary.sampled} rules sampled, ${summary.evaluated} trained, ${summary.cached} cached, ${summary.rejected} rejected${summary.stopped ? ' (stopped: --resume continues)' : ''}`);
      io.out(leaderboardTable(leaderboard(store.candidates(), 10)));
      const { reportCommand } = await import('./report.js');
      const quiet = { out: (t: string) => io.out(`report: ${t}`), err: () => {} };
      await reportCommand(['--run', summary.run], quiet);
      io.out(`results: ${runPath(summary.run)}/run.db   (nos leaderboard --run ${summary.run}; nos export --run ${summary.run} --rank 1 --format ts)`);
    }
    return summary.stopped ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
    await pool.close();
    store.close();
    if ('dispose' in strategy && typeof strategy.dispose === 'function') strategy.dispose();
  }
}

export function leaderboardTable(rows: readonly Candidate[]): string {
  if (rows.length === 0) return '(no rule trained successfully yet)';
  return [
    `${'rank'.padStart(4)}  ${'reward'.padEnd(8)} ${'lr'.padEnd(7)} rule`,
    ...rows.map((c, i) => `${String(i + 1).padStart(4)}  ${c.reward.toFixed(4).padEnd(8)} ${String(c.bestLr ?? '-').padEnd(7)} ${c.rule}`),
  ].join('\n');
}

export function openRun(run: string | undefined): SqliteStore {
  if (run === undefined) throw new UsageError('--run NAME is required');
  try {
    return SqliteStore.open(run);
  } catch (e) {
    if (e instanceof RunMissingError || (e instanceof Error && /run name/.test(e.message))) throw new UsageError(e.message);
    throw e;
  }
}

export function leaderboardCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { run: { type: 'string' }, top: { type: 'string' }, json: { type: 'bool' } });
  const store = openRun(flag(args, 'run'));
  try {
    const rows = leaderboard(store.candidates(), intFlag(args, 'top', 1) ?? 10);
    if (has(args, 'json')) {
      io.out(
        JSON.stringify(
          rows.map((c, i) => ({ rank: i + 1, rule: c.rule, reward: c.reward, status: c.status, bestLr: c.bestLr, valAcc: c.valAcc, testAcc: c.testAcc, hash: c.hash, index: c.index })),
        ),
      );
    } else io.out(leaderboardTable(rows));
    return 0;
  } finally {
    store.close();
  }
}
