/**
 * The worker's side of the evaluation queue (`nos worker`): takes jobs from the queue of this
 * nos version and runs them in its local Piscina pool (evaluator/pool.ts), loading the
 * datasets they need itself. A job's data is checked before anything runs; a malformed one
 * fails at once (no retries), and a rule that fails or crashes its thread comes back as a
 * status from the pool, as it would locally. A worker that dies holding jobs loses its locks:
 * BullMQ's stalled-job check (run by the other workers) hands the jobs on, at most twice each.
 */
import type { Job as BullJob, JobJson } from 'bullmq';
import type { Redis } from 'ioredis';
import { importOptional } from '../util/optional-deps.js';
import type { DatasetName } from './data.js';
import { EvaluatorPool } from './pool.js';
import {
  checkJobData,
  connectRedis,
  encodeNonFinite,
  isConnectionError,
  parseQueueUrl,
  type QueueUrl,
  queueName,
} from './queue.js';
import { parseScheduleSpec } from './schedules.js';
import { sleep, standInResult } from './stand-in.js';
import { findTask } from './tasks.js';
import type { EvalResult } from './train.js';

export interface QueueWorkerOptions {
  /** The queue's URL, or one parsed already (parseQueueUrl). */
  readonly url: string | QueueUrl;
  readonly version: string;
  /** Evaluator threads (already resolved: see resolveWorkers); also the jobs held at once. */
  readonly threads: number;
  readonly log: (line: string) => void;
  /**
   * How long a job's lock lasts without renewal, ms (default 30 s, or $NOS_QUEUE_LOCK_MS): a
   * dead worker's jobs go back to the queue after about this long, plus half of it.
   */
  readonly lockMs?: number;
  readonly connectTimeoutMs?: number;
  /**
   * Benchmarks: take the stand-in queue's jobs and sleep each one's `standInMs` instead of
   * training (no evaluator threads; `threads` is then just the jobs held at once).
   */
  readonly standIn?: boolean;
}

export interface QueueWorkerHandle {
  readonly url: QueueUrl;
  readonly queue: string;
  readonly threads: number;
  readonly lockMs: number;
  /** Stop taking jobs, finish the ones held, close. `force`: close now (held jobs go back after their lock expires). */
  close(force?: boolean): Promise<void>;
}

/** The lock duration: the option, else $NOS_QUEUE_LOCK_MS, else 30 s. */
export function lockDuration(
  option: number | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): number {
  if (option !== undefined) return option;
  const v = Number(env.NOS_QUEUE_LOCK_MS);
  return Number.isInteger(v) && v >= 200 && v <= 3_600_000 ? v : 30_000;
}

/** Rule text for a log line: printable ASCII, at most 60 characters. */
function shortText(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 60 ? `${clean.slice(0, 59)}…` : clean;
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  const url = typeof options.url === 'string' ? parseQueueUrl(options.url) : options.url;
  const { Worker, UnrecoverableError, Job } = await importOptional<typeof import('bullmq')>('bullmq');
  const client: Redis = await connectRedis(url, options.connectTimeoutMs ?? 10_000);
  const log = options.log;
  let lastError = 0;
  const onError = (e: Error) => {
    const now = Date.now();
    if (now - lastError < 10_000) return;
    lastError = now;
    log(
      isConnectionError(e)
        ? `lost the connection to Redis at ${url.redacted} (${e.message}): reconnecting`
        : `Redis at ${url.redacted} or BullMQ reported an error (${e.message}); taking jobs goes on`,
    );
  };
  client.on('error', onError);
  const pools = new Map<string, EvaluatorPool>();
  const poolFor = (dataset: DatasetName | null): EvaluatorPool => {
    const key = dataset ?? '-';
    let pool = pools.get(key);
    if (pool === undefined) {
      // Threads start as jobs arrive; a pool per dataset, so a worker loads only what its jobs need.
      pool = new EvaluatorPool({ workers: options.threads, datasets: dataset === null ? [] : [dataset] });
      pools.set(key, pool);
    }
    return pool;
  };
  let active = 0;
  let idleSince = Date.now();
  const processor = async (job: BullJob): Promise<unknown> => {
    active++;
    try {
      return await run(job);
    } finally {
      active--;
      if (active === 0) idleSince = Date.now();
    }
  };
  const run = async (job: BullJob): Promise<unknown> => {
    const damaged = job.id === undefined ? undefined : unreadable.get(job.id);
    if (damaged !== undefined) {
      unreadable.delete(job.id as string);
      throw new UnrecoverableError(damaged);
    }
    const checked = checkJobData(job.data);
    if (!checked.ok) throw new UnrecoverableError(checked.message);
    const req = checked.req;
    const task = findTask(req.task);
    if (task === undefined)
      throw new UnrecoverableError(
        `malformed job: task: unknown task '${shortText(req.task)}' (this worker runs nos ${options.version})`,
      );
    if (req.schedule !== undefined) {
      try {
        parseScheduleSpec(req.schedule);
      } catch (e) {
        throw new UnrecoverableError(`malformed job: schedule: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (options.standIn === true && req.standInMs === undefined)
      throw new UnrecoverableError('malformed job: standInMs: a stand-in worker takes only stand-in jobs');
    if (options.standIn !== true && req.standInMs !== undefined)
      throw new UnrecoverableError('malformed job: standInMs: a stand-in job, for nos worker --stand-in');
    log(`job ${job.id} taken: ${task.id} seed ${req.seed}: ${shortText(req.rule)}`);
    let reply: { readonly result: EvalResult; readonly memoryMb: number | null };
    if (req.standInMs !== undefined) {
      await sleep(req.standInMs);
      reply = { result: standInResult(req), memoryMb: null };
    } else {
      // A dataset that cannot be loaded here is an error of this machine: the job is retried (elsewhere).
      reply = await poolFor(task.dataset).evaluate(req);
    }
    const r = reply.result;
    log(`job ${job.id} done: ${r.status} reward ${r.reward.toFixed(4)} (${r.seconds.toFixed(1)} s)`);
    return encodeNonFinite({ result: r, memoryMb: reply.memoryMb });
  };
  const lockMs = lockDuration(options.lockMs);
  const name = queueName(options.version, options.standIn === true);
  /**
   * Jobs whose `data` or `opts` in Redis are not JSON (a damaged or forged job): BullMQ cannot
   * read them (its JSON.parse throws inside the worker loop, which would pass for a connection
   * error and leave the job active for ever, taken again after each lock). Such a job fails at
   * once instead, without retries, saying what is damaged.
   * - Data that is not JSON: the job is built with empty data, and the processor fails it.
   * - Options that are not JSON: BullMQ throws before a job exists, after moving it to active
   *   under this worker's lock token; the job holding that token is found, its unreadable fields
   *   replaced by {} (so BullMQ can read it), and it is moved to failed.
   */
  const unreadable = new Map<string, string>();
  const parses = (text: string | null | undefined): boolean => {
    try {
      JSON.parse(text || '{}');
      return true;
    } catch {
      return false;
    }
  };
  const damage = (fields: readonly string[]) =>
    `malformed job: its ${fields.join(' and ')} in Redis ${fields.length === 1 && fields[0] === 'data' ? 'is' : 'are'} not JSON`;
  const failDamaged = async (
    worker: Parameters<typeof Job.fromId>[0] & { toKey(type: string): string },
    token: string,
  ): Promise<void> => {
    for (const id of await client.lrange(worker.toKey('active'), 0, -1)) {
      if ((await client.get(worker.toKey(`${id}:lock`))) !== token) continue;
      const key = worker.toKey(id);
      const [data, opts] = await client.hmget(key, 'data', 'opts');
      const bad = [...(parses(data) ? [] : ['data']), ...(parses(opts) ? [] : ['options'])];
      if (bad.length === 0) continue;
      await client.hset(key, { ...(parses(data) ? {} : { data: '{}' }), ...(parses(opts) ? {} : { opts: '{}' }) });
      const job = await Job.fromId(worker, id);
      await job?.moveToFailed(new UnrecoverableError(damage(bad)), token, false);
      log(`job ${id} failed (attempt 1): ${damage(bad)}`);
    }
  };
  class CheckedWorker extends Worker {
    protected override createJob(data: JobJson, id: string): BullJob {
      try {
        return super.createJob(data, id);
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        unreadable.set(data.id || id, damage(['data']));
        return super.createJob({ ...data, data: '{}' }, id);
      }
    }

    protected override async moveToActive(token: string, name?: string): Promise<BullJob> {
      try {
        return await super.moveToActive(token, name);
      } catch (e) {
        if (!(e instanceof SyntaxError)) throw e;
        await failDamaged(this, token);
        return undefined as unknown as BullJob; // no job to process now: the loop asks for the next
      }
    }
  }
  const worker = new CheckedWorker(name, processor, {
    connection: client,
    concurrency: options.threads,
    lockDuration: lockMs,
    stalledInterval: Math.max(100, Math.round(lockMs / 2)),
    maxStalledCount: 2,
  });
  worker.on('error', onError);
  worker.on('failed', (job, err) => {
    if (job !== undefined) log(`job ${job.id} failed (attempt ${job.attemptsMade}): ${err.message}`);
  });
  worker.on('stalled', (id) => log(`job ${id} stalled (the worker that held it stopped): back in the queue`));
  await worker.waitUntilReady();
  let closing: Promise<void> | undefined;
  const release = async () => {
    await Promise.all([...pools.values()].map((p) => p.close()));
    client.disconnect();
  };
  return {
    url,
    queue: name,
    threads: options.threads,
    lockMs,
    close: (force = false) => {
      if (force) {
        // Held jobs stay locked until their lock expires; then another worker takes them.
        void worker.close(true).catch(() => {});
        return release();
      }
      closing ??= (async () => {
        // Finish the jobs in hand and report them. Should Redis stay away once they are done,
        // give up after a lock's duration rather than wait for it for ever: nothing is lost, as
        // unreported jobs go back to the queue when their locks expire.
        let timer: NodeJS.Timeout | undefined;
        const givenUp = new Promise<void>((resolve) => {
          timer = setInterval(() => {
            if (active === 0 && Date.now() - idleSince > Math.max(2000, lockMs)) {
              log(`could not reach Redis at ${url.redacted} to close cleanly; stopping anyway`);
              resolve();
            }
          }, 250);
        });
        await Promise.race([worker.close(), givenUp]);
        clearInterval(timer);
        await release();
      })();
      return closing;
    },
  };
}
