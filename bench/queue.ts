/**
 * The queue against the local pool, on this machine: evaluations per minute of mlp-mnist through
 * the local pool with 2 threads, and through the queue (a throwaway redis-server, two
 * `nos worker` processes of 1 thread each: the same 2 threads), and the queue's overhead per
 * job (a trivial job, one at a time, through each; the difference of the median round trips).
 * The two paths are measured alternately, four times, and the best round of each is kept (other
 * load on the machine only ever slows a round down).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nosVersion } from '../controller/run.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import type { EvalRequest, Evaluator } from '../evaluator/protocol.js';
import { QueueEvaluator } from '../evaluator/queue.js';
import { redisServerPath, startRedisServer } from './redis-server.js';

export interface QueueFigures {
  evalsPerMinLocal: number;
  evalsPerMinQueue: number;
  overheadMsPerJob: number;
  /** Queue throughput over the local pool's (goal: at least 0.95). */
  ratio: number;
  evaluations: number;
  rounds: number;
}

const RULES = [
  'adam',
  'sgd',
  'momentum',
  'powersign',
  'addsign',
  'rmsprop',
  'lion',
  'signum',
  'nesterov',
  'adagrad',
  'amsgrad',
  'sgdw',
];

/** The nos binary beside this module (dist/bench/queue.js or bench/queue.ts). */
function nosBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.split(sep).includes('dist') ? join(here, '..', '..', 'bin', 'nos.js') : join(here, '..', 'bin', 'nos.js');
}

async function perMinute(evaluator: Evaluator, requests: readonly EvalRequest[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(requests.map((r) => evaluator.evaluate(r)));
  return requests.length / ((performance.now() - t0) / 60_000);
}

/** The median round trip of requests sent one at a time (a thread started on the way is one outlier, not a mean's shift). */
async function medianLatencyMs(evaluator: Evaluator, requests: readonly EvalRequest[]): Promise<number> {
  const ms: number[] = [];
  for (const r of requests) {
    const t0 = performance.now();
    await evaluator.evaluate(r);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)] as number;
}

interface Workers {
  readonly procs: ChildProcess[];
  readonly logs: string[];
}

function startWorkers(url: string, n: number): Workers {
  const logs: string[] = [];
  const procs = Array.from({ length: n }, (_, i) => {
    logs[i] = '';
    const p = spawn(process.execPath, [nosBin(), 'worker', '--queue', url, '--workers', '1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    p.stderr?.on('data', (d: Buffer) => {
      logs[i] += d.toString();
    });
    return p;
  });
  return { procs, logs };
}

async function until(what: () => boolean, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function benchQueue(log: (s: string) => void = () => {}, count = 24, rounds = 4): Promise<QueueFigures> {
  if (!existsSync(redisServerPath()))
    throw new Error(`no redis-server at ${redisServerPath()} (apt-get install redis-server, or set $REDIS_SERVER)`);
  // Distinct seeds: every request is its own job (the queue would share equal ones).
  const requests = (offset: number): EvalRequest[] =>
    Array.from({ length: count }, (_, i) => ({
      rule: RULES[i % RULES.length] as string,
      task: 'mlp-mnist',
      seed: offset + i,
    }));
  // A trivial job (one step of the analytic task, well under a millisecond): what is left is the trip.
  const tiny = (offset: number): EvalRequest[] =>
    Array.from({ length: 30 }, (_, i) => ({ rule: 'sgd', task: 'quadratic', seed: offset + i, steps: 1 }));
  const server = await startRedisServer();
  const workers = startWorkers(server.url, 2);
  const pool = new EvaluatorPool({ workers: 2, datasets: ['mnist'] });
  let queue: QueueEvaluator | undefined;
  try {
    queue = await QueueEvaluator.open({ url: server.url, version: nosVersion(), log });
    await until(() => workers.logs.every((l) => /ready:/.test(l)), 60_000, 'the workers');
    // Warm both paths: tfjs in every thread, MNIST loaded by each worker process.
    await Promise.all(
      Array.from({ length: 2 }, (_, i) => pool.evaluate({ rule: 'sgd', task: 'mlp-mnist', seed: 9000 + i, steps: 5 })),
    );
    // (a worker keeps a pool per dataset: warm the MNIST one and the analytic tasks' one)
    const warm = async (task: string, seed: number) => {
      // Until each worker has run one since now (the jobs awaited here are finished when the loop checks).
      const from = workers.logs.map((l) => l.length);
      for (let i = 0; !workers.logs.every((l, w) => l.slice(from[w]).includes(`taken: ${task} seed`)); i += 2) {
        if (i > 40) throw new Error(`a worker took no ${task} warm-up job`);
        await Promise.all(
          [0, 1].map((k) => (queue as QueueEvaluator).evaluate({ rule: 'sgd', task, seed: seed + i + k, steps: 5 })),
        );
      }
    };
    await warm('mlp-mnist', 9100);
    let local = 0;
    let queued = 0;
    for (let r = 0; r < rounds; r++) {
      const l = await perMinute(pool, requests(1000 * r));
      log(`queue bench round ${r + 1}: local pool (2 threads) ${l.toFixed(1)} evals/min`);
      const q = await perMinute(queue, requests(1000 * r + 500));
      log(`queue bench round ${r + 1}: queue (2 workers x 1 thread) ${q.toFixed(1)} evals/min`);
      local = Math.max(local, l);
      queued = Math.max(queued, q);
    }
    // The workers' analytic-task threads (a pool per dataset) start now, not in the timed part.
    await warm('quadratic', 9300);
    await pool.evaluate({ rule: 'sgd', task: 'quadratic', seed: 9400, steps: 1 });
    const localMs = await medianLatencyMs(pool, tiny(5000));
    const queueMs = await medianLatencyMs(queue, tiny(6000));
    log(
      `queue bench: a trivial job takes (median) ${localMs.toFixed(1)} ms through the local pool, ${queueMs.toFixed(1)} ms through the queue`,
    );
    return {
      evalsPerMinLocal: local,
      evalsPerMinQueue: queued,
      overheadMsPerJob: queueMs - localMs,
      ratio: queued / local,
      evaluations: count,
      rounds,
    };
  } finally {
    await queue?.close();
    await pool.close();
    for (const p of workers.procs) p.kill('SIGTERM');
    await Promise.all(
      workers.procs.map((p) =>
        p.exitCode !== null || p.signalCode !== null ? undefined : new Promise((r) => p.once('exit', r)),
      ),
    );
    await server.dispose();
  }
}
