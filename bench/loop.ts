/**
 * What the search loop sustains: the real loop (controller/run.ts searchRun: the RL controller,
 * the store, the rule-checking thread, the screen and the cache, then the funnel) on stand-in
 * evaluations that sleep a fixed time, with W workers, through the local stand-in evaluator
 * (the pool's interface) and through the queue (a throwaway redis-server and `nos worker
 * --stand-in` processes). Sleeping costs no CPU, so 2 cores can drive 128 workers.
 *
 * Per W: utilisation = busy worker time / (W x wall time) of the search (rung 0), and of the
 * funnel after it; the coordinator's CPU time (all its threads) per sampled rule. Each W runs the
 * default strategy (RL) with the default staleness and a batch of max(10, W) rules (the default,
 * 10, up to 8 workers: a run for W workers takes --batch W), for a budget of 50 x W trained rules
 * (about 10 s of work at 200 ms, some 70 strategy updates, as many as the default run makes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS, planRun, type RunRequest, searchRun } from '../controller/run.js';
import type { Evaluator } from '../evaluator/protocol.js';
import { SleepingEvaluator } from '../evaluator/stand-in.js';
import { SqliteStore } from '../search-results/store.js';
import { redisServerPath, startRedisServer } from './redis-server.js';

export interface LoopFigure {
  readonly workers: number;
  readonly via: 'pool' | 'queue';
  /** Busy worker time over W x wall time, during the search (rung 0). */
  readonly utilisation: number;
  /** The coordinator process's CPU time (every thread) per sampled rule, during the search. */
  readonly controllerMsPerSample: number;
  /** Utilisation during the funnel (its small top rungs cannot fill many workers). */
  readonly funnelUtilisation: number;
  readonly sampled: number;
  /** Rules trained by the search (its budget). */
  readonly trained: number;
  readonly seconds: number;
  readonly funnelSeconds: number;
  readonly batch: number;
  readonly staleness: number;
  /** Through the queue: `nos worker --stand-in` processes, each holding `jobsPerProcess` jobs. */
  readonly processes?: number;
  readonly jobsPerProcess?: number;
}

export interface LoopOptions {
  readonly workers?: readonly number[];
  readonly via?: readonly ('pool' | 'queue')[];
  /** Each stand-in evaluation's sleep, ms (default 200). */
  readonly ms?: number;
  /** Trained rules per worker (default 50). */
  readonly perWorker?: number;
  /** The most `nos worker` processes for the queue (default 8): W job slots are spread over them. */
  readonly maxProcesses?: number;
  readonly log?: (line: string) => void;
}

export const LOOP_WORKERS: readonly number[] = [2, 8, 32, 128];

/** The nos binary beside this module (dist/bench/loop.js or bench/loop.ts). */
function nosBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.split(sep).includes('dist') ? join(here, '..', '..', 'bin', 'nos.js') : join(here, '..', 'bin', 'nos.js');
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/** The run one measurement makes: the default search, as a stand-in run, with W's batch. */
export function loopRequest(workers: number, ms: number, perWorker: number, run: string): RunRequest {
  return {
    run,
    task: 'mlp-mnist',
    strategy: DEFAULTS.strategy,
    budget: perWorker * workers,
    batchSize: Math.max(DEFAULTS.batchSize, workers),
    staleness: DEFAULTS.staleness,
    seed: 0,
    standIn: ms,
  };
}

async function measure(
  workers: number,
  via: 'pool' | 'queue',
  options: { ms: number; perWorker: number; queueUrl?: string; root: string; log: (l: string) => void },
): Promise<Omit<LoopFigure, 'processes' | 'jobsPerProcess'>> {
  const { ms } = options;
  const store = SqliteStore.create(
    planRun(loopRequest(workers, ms, options.perWorker, `loop-${via}-${workers}`)),
    options.root,
  );
  const evaluator: Evaluator | undefined = via === 'pool' ? new SleepingEvaluator(workers, ms) : undefined;
  let t0 = 0;
  let c0 = 0;
  let t1 = 0;
  let c1 = 0;
  try {
    const summary = await searchRun(store, {
      ...(evaluator ? { evaluator } : { queue: { url: options.queueUrl as string, log: options.log } }),
      onStart: () => {
        t0 = performance.now();
        c0 = cpuMs();
      },
      // The search ends when runSearch returns; the funnel's own set-up (rung 0's rows) is the funnel's.
      onSearched: () => {
        t1 = performance.now();
        c1 = cpuMs();
      },
    });
    const t2 = performance.now();
    const funnelEvaluations = store.evaluations().filter((e) => e.rung > 0).length;
    // Rung 1's first seed is rung 0's row, reused: count the evaluations that ran.
    const ranInFunnel = summary.funnel?.evaluated ?? funnelEvaluations;
    const search = (t1 - t0) / 1000;
    const funnel = (t2 - t1) / 1000;
    return {
      workers,
      via,
      utilisation: (summary.evaluated * ms) / 1000 / (workers * search),
      controllerMsPerSample: (c1 - c0) / summary.sampled,
      funnelUtilisation: (ranInFunnel * ms) / 1000 / (workers * funnel),
      sampled: summary.sampled,
      trained: summary.evaluated,
      seconds: search,
      funnelSeconds: funnel,
      batch: store.config.batchSize,
      staleness: store.config.staleness ?? 0,
    };
  } finally {
    store.close();
  }
}

interface Workers {
  readonly procs: ChildProcess[];
  readonly ready: Promise<void>;
}

/**
 * `nos worker --stand-in` processes holding `jobs` jobs each, ready when each has said so. Their
 * logs go to files in `dir`, not to pipes into this process: the workers log every job, and this
 * process is the coordinator being measured (reading some thousand lines a second costs it CPU).
 */
function startWorkers(url: string, processes: number, jobs: number, dir: string): Workers {
  const procs: ChildProcess[] = [];
  const readies: Promise<void>[] = [];
  for (let i = 0; i < processes; i++) {
    const logFile = join(dir, `worker-${i}.log`);
    const fd = openSync(logFile, 'w');
    const p = spawn(process.execPath, [nosBin(), 'worker', '--queue', url, '--stand-in', '--workers', String(jobs)], {
      stdio: ['ignore', 'ignore', fd],
    });
    closeSync(fd);
    procs.push(p);
    const log = () => {
      try {
        return readFileSync(logFile, 'utf8');
      } catch {
        return '';
      }
    };
    readies.push(
      new Promise<void>((resolve, reject) => {
        const poll = setInterval(() => {
          if (/ready:/.test(log())) {
            clearInterval(poll);
            resolve();
          }
        }, 50);
        p.once('exit', (code, signal) => {
          clearInterval(poll);
          reject(new Error(`a nos worker exited (${code ?? signal}) before it was ready: ${log().slice(-2000)}`));
        });
      }),
    );
  }
  return { procs, ready: Promise.all(readies).then(() => undefined) };
}

async function stopWorkers(w: Workers): Promise<void> {
  for (const p of w.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await Promise.all(
    w.procs.map((p) =>
      p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => p.once('exit', r)),
    ),
  );
}

export async function benchLoop(options: LoopOptions = {}): Promise<LoopFigure[]> {
  const ms = options.ms ?? 200;
  const perWorker = options.perWorker ?? 50;
  const log = options.log ?? (() => {});
  const root = mkdtempSync(join(tmpdir(), 'nos-bench-loop-'));
  const out: LoopFigure[] = [];
  try {
    // Warm up outside the figures: module loading, and the JIT of the loop and of the process's
    // checking thread (shared by the searches, its screens reset for each), on a search large
    // enough to make them hot (~1,300 samples), so that a figure does not depend on what ran
    // before it in the process (with a 40-rule warm-up, a W=128 queue run measured alone lost
    // its first 2-3 s to the cold JIT: 85-90% where it measures 96% after other runs).
    await measure(32, 'pool', { ms: 2, perWorker: 30, root: join(root, 'warm-up'), log });
    const via = options.via ?? ['pool', 'queue'];
    for (const v of via) {
      if (v === 'queue' && !existsSync(redisServerPath()))
        throw new Error(`no redis-server at ${redisServerPath()} (apt-get install redis-server, or set $REDIS_SERVER)`);
      for (const workers of options.workers ?? LOOP_WORKERS) {
        if (v === 'pool') {
          const f = await measure(workers, 'pool', { ms, perWorker, root, log });
          log(lineOf(f));
          out.push(f);
          continue;
        }
        // A throwaway Redis (no persistence: the bench measures the loop, not the disk) and the workers.
        const server = await startRedisServer({ persistence: false });
        const processes = Math.min(workers, options.maxProcesses ?? 8);
        const jobs = Math.ceil(workers / processes);
        const w = startWorkers(server.url, processes, jobs, root);
        try {
          await w.ready;
          const f = {
            ...(await measure(processes * jobs, 'queue', { ms, perWorker, queueUrl: server.url, root, log })),
            processes,
            jobsPerProcess: jobs,
          };
          log(lineOf(f));
          out.push(f);
        } finally {
          await stopWorkers(w);
          await server.dispose();
        }
      }
    }
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** One figure as a line of text. */
export function lineOf(f: LoopFigure): string {
  const where =
    f.via === 'pool'
      ? 'stand-in evaluator (the pool interface)'
      : `queue, ${f.processes} nos worker process(es) x ${f.jobsPerProcess} job(s)`;
  return `W=${String(f.workers).padStart(3)} ${f.via.padEnd(5)} utilisation ${pct(f.utilisation).padStart(6)}  controller ${f.controllerMsPerSample.toFixed(2)} ms/sample  (${f.trained} trained of ${f.sampled} sampled in ${f.seconds.toFixed(1)} s; batch ${f.batch}, staleness ${f.staleness}; funnel ${pct(f.funnelUtilisation)} over ${f.funnelSeconds.toFixed(1)} s; ${where})`;
}

export function loopTable(figures: readonly LoopFigure[], ms: number): string {
  return [
    `loop: the real search loop (RL, store, checker thread, screen, cache; then the funnel) on stand-in evaluations of ${ms} ms; utilisation = busy worker time / (W x wall time)`,
    ...figures.map(lineOf),
  ].join('\n');
}
