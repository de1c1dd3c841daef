/**
 * The evaluation queue (BullMQ on Redis): what the coordinator (`nos search/eval --queue`) and
 * the workers (`nos worker`, evaluator/queue-worker.ts) share, and the coordinator's side, the
 * `QueueEvaluator`, a second implementation of the `Evaluator` interface beside the local pool.
 *
 * - A job carries an EvalRequest (rule text, task, protocol, seed): plain data, checked again on
 *   the worker (zod), whose pool parses and compiles the rule itself.
 * - Its id is a hash of the request, so a retried, duplicated or re-sent job is one job: adding
 *   it again returns the existing one, finished or not.
 * - Finished jobs (and their results) stay in Redis for `KEEP_SECONDS`: a coordinator restarted
 *   with `--resume` collects what finished while it was down and re-sends what is missing.
 * - The queue's name carries nos's version: workers of another version never take its jobs.
 * - Passwords never reach a message: every URL printed goes through `redactUrl`.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { z } from 'zod';
import { learnedFileSchema } from '../learned/file.js';
import { canonicalJson } from '../util/canonical-json.js';
import { importOptional } from '../util/optional-deps.js';
import { abortError } from '../util/abort.js';
import type { EvalRequest, EvaluateOptions, Evaluator } from './protocol.js';
import { isStandIn } from './stand-in.js';
import { type EvalResult, failedResult } from './train.js';

/** A queue URL that cannot be used, or a Redis that cannot be reached: a user error. */
export class QueueError extends Error {
  override readonly name = 'QueueError';
}

/** How long finished jobs and their results stay in Redis (a week). */
export const KEEP_SECONDS = 7 * 24 * 3600;

/** Attempts per job: a job whose worker fails it this many times (or stalls twice) ends failed. */
export const ATTEMPTS = 3;

/**
 * The BullMQ queue of this nos version (workers of another version never see its jobs); stand-in
 * jobs (benchmarks: `nos search --stand-in`, `nos worker --stand-in`) have a queue of their own.
 */
export function queueName(version: string, standIn = false): string {
  return `nos-evals-${version.replace(/[^A-Za-z0-9.-]/g, '_')}${standIn ? '-stand-in' : ''}`;
}

/** A queue URL, checked: redis:// or rediss:// (TLS), a host, a port, an optional /DB. */
export interface QueueUrl {
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  readonly db: number;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** The URL with its password replaced by ***: the only form that is ever printed. */
  readonly redacted: string;
}

/** The URL with any password replaced by `***` (also for text that does not parse as a URL). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const colon = auth.indexOf(':');
    return `${scheme}${colon < 0 ? '***' : `${auth.slice(0, colon)}:***`}@`;
  });
}

/** Parse `redis://[[user]:password@]host[:port][/db]` (or `rediss://` for TLS). */
export function parseQueueUrl(text: string): QueueUrl {
  const shown = redactUrl(text);
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new QueueError(`--queue '${shown}' is not a URL: expected redis://HOST:PORT[/DB] (or rediss:// for TLS)`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new QueueError(`--queue '${shown}': the scheme must be redis:// or rediss:// (TLS), not ${u.protocol}//`);
  if (u.hostname === '') throw new QueueError(`--queue '${shown}': no host (expected redis://HOST:PORT[/DB])`);
  if (u.search !== '' || u.hash !== '')
    throw new QueueError(`--queue '${shown}': options after ? or # are not supported`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path))
    throw new QueueError(`--queue '${shown}': the path must be a database number (/0 to /15), got '/${path}'`);
  const db = path === '' ? 0 : Number(path);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    tls: u.protocol === 'rediss:',
    host,
    port,
    db,
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    redacted: `${u.protocol}//${u.password !== '' ? `${u.username}:***@` : u.username !== '' ? `${u.username}@` : ''}${u.host}/${db}`,
  };
}

/** ioredis options for a URL; BullMQ needs `maxRetriesPerRequest: null` (commands wait out a reconnect). */
export function redisOptions(url: QueueUrl): RedisOptions {
  return {
    host: url.host,
    port: url.port,
    db: url.db,
    ...(url.username === undefined ? {} : { username: url.username }),
    ...(url.password === undefined ? {} : { password: url.password }),
    // TLS checks the certificate against the host (SNI only for names: it may not carry an IP).
    ...(url.tls ? { tls: isIP(url.host) === 0 ? { servername: url.host } : {} } : {}),
    maxRetriesPerRequest: null,
    // Reconnect for ever, at most every 2 s: a restarted Redis is found again.
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  };
}

/** A connected ioredis client, or a QueueError that says why not (within `timeoutMs`). */
export async function connectRedis(url: QueueUrl, timeoutMs = 10_000, onError?: (e: Error) => void): Promise<Redis> {
  const { Redis: RedisClient } = await importOptional<typeof import('ioredis')>('ioredis');
  const client = new RedisClient(redisOptions(url));
  let last: Error | undefined;
  let fatal: ((e: Error) => void) | undefined;
  client.on('error', (e: Error) => {
    last = e;
    onError?.(e);
    // A certificate that is not trusted stays untrusted: no point in retrying for the timeout.
    if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(String((e as { code?: unknown }).code ?? '')))
      fatal?.(e);
  });
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    await Promise.race([
      client.ping(),
      new Promise((_r, reject) => {
        fatal = reject;
        timer = setTimeout(() => {
          timedOut = true;
          reject(new Error('timed out'));
        }, timeoutMs);
      }),
    ]);
    return client;
  } catch (e) {
    client.disconnect();
    const why = (last ?? (e instanceof Error ? e : new Error(String(e)))).message;
    throw new QueueError(
      `cannot reach Redis at ${url.redacted}${timedOut ? ` within ${Math.round(timeoutMs / 1000)} s` : ''}: ${why} (is redis-server running there, and the password and certificate right?)`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** The job id of a request: a hash of what is evaluated (keys in a fixed order). */
export function jobId(req: EvalRequest): string {
  return `e${createHash('sha256').update(canonicalJson(req)).digest('hex')}`;
}

const finite = z.number().finite();
const MAX_RULE_CHARS = 100_000;

/** What a job's data must be: an EvalRequest, each field checked (unknown fields refused). */
export const EvalRequestSchema = z
  .object({
    rule: z.string().min(1).max(MAX_RULE_CHARS),
    task: z.string().min(1).max(64),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    steps: z.number().int().min(1).max(10_000_000).optional(),
    lrGrid: z.array(finite.positive()).min(1).max(64).optional(),
    params: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/), finite)
      .refine((r) => Object.keys(r).length <= 64, 'at most 64 hyperparameters')
      .optional(),
    test: z.boolean().optional(),
    timeLimitMs: z
      .number()
      .int()
      .min(1)
      .max(24 * 3600 * 1000)
      .optional(),
    schedule: z.string().min(1).max(1000).optional(),
    weightDecay: finite.min(0).optional(),
    batchGrowth: z.boolean().optional(),
    analyze: z.boolean().optional(),
    gridSteps: z.number().int().min(1).max(10_000_000).optional(),
    lrSelect: z.enum(['val-acc', 'val-loss', 'train-loss']).optional(),
    lrTop: z.number().int().min(1).max(64).optional(),
    valSize: z.number().int().min(1).max(10_000_000).optional(),
    labelNoise: finite.min(0).max(1).optional(),
    learned: learnedFileSchema.optional(),
    standInMs: z.number().int().min(0).max(3_600_000).optional(),
  })
  .strict();

/**
 * Every EvalRequest field has a check above: a field added to the request but not here fails to
 * compile (a job carrying it would otherwise be refused as malformed, or lose the field).
 */
const everyFieldChecked: Record<Exclude<keyof EvalRequest, keyof z.infer<typeof EvalRequestSchema>>, never> = {};
void everyFieldChecked;

/** A job's data checked as an EvalRequest, or the first problem with its location (`seed: Expected number`). */
export function checkJobData(data: unknown): { ok: true; req: EvalRequest } | { ok: false; message: string } {
  const r = EvalRequestSchema.safeParse(data);
  if (r.success) return { ok: true, req: r.data as EvalRequest };
  const issue = r.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? 'the job data' : issue.path.join('.');
  return { ok: false, message: `malformed job: ${where}: ${issue?.message ?? 'invalid'}` };
}

/**
 * Results cross as JSON, which has no NaN or Infinity (a failed run's loss is NaN, a diverged
 * curve holds Infinity): they travel as {"$n": "NaN"} and come back as the same numbers, so a
 * result through the queue equals the local pool's.
 */
export function encodeNonFinite(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $n: String(value) };
  if (Array.isArray(value)) return value.map(encodeNonFinite);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encodeNonFinite(v)]));
  return value;
}

export function decodeNonFinite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeNonFinite);
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    const n = (value as { $n?: unknown }).$n;
    if (keys.length === 1 && (n === 'NaN' || n === 'Infinity' || n === '-Infinity')) return Number(n);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decodeNonFinite(v)]));
  }
  return value;
}

/** Any number, NaN included (a failed run's loss is NaN; zod's number() refuses it). */
const num = z.union([z.number(), z.nan()]);
const status = z.enum(['ok', 'diverged', 'invalid', 'timeout']);
const runStatus = z.enum(['ok', 'diverged', 'invalid', 'timeout']);

/** What a worker must return (checked on the coordinator before anything reaches the store). */
const ReplySchema = z.object({
  result: z
    .object({
      rule: z.string(),
      hash: z.string(),
      task: z.string(),
      seed: num,
      status,
      reason: z.string().optional(),
      reward: num,
      bestLr: num.nullable(),
      valAcc: num,
      testAcc: num.nullable(),
      finalLoss: num,
      grid: z.array(z.object({ lr: num, status: runStatus, valAcc: num, valLoss: num }).passthrough()),
      curve: z.array(num),
      curveEvery: num,
      seconds: num,
      analysis: z.record(z.string(), z.unknown()).optional(),
    })
    .passthrough(),
  memoryMb: num.nullable(),
});

export interface QueueReply {
  readonly result: EvalResult;
  readonly memoryMb: number | null;
}

/** A worker's return value, decoded and checked; a message when it is not a reply. */
export function decodeReply(value: unknown): { ok: true; reply: QueueReply } | { ok: false; message: string } {
  const r = ReplySchema.safeParse(decodeNonFinite(value));
  if (r.success) return { ok: true, reply: r.data as unknown as QueueReply };
  const issue = r.error.issues[0];
  return {
    ok: false,
    message: `a worker returned a malformed result (${issue?.path.join('.') || 'the value'}: ${issue?.message ?? 'invalid'})`,
  };
}

export interface QueueEvaluatorOptions {
  /** redis://[:password@]HOST:PORT[/DB] or rediss://... */
  readonly url: string;
  /** nos's version (the queue's name carries it). */
  readonly version: string;
  /** Progress notes for the user: waiting for a worker, a lost connection. */
  readonly log?: (line: string) => void;
  /** How often jobs in flight are checked in Redis besides the events (ms). */
  readonly pollMs?: number;
  /** How often, while jobs wait, the workers connected are counted (ms). */
  readonly workerCheckMs?: number;
  readonly connectTimeoutMs?: number;
  /**
   * Benchmarks: send stand-in jobs (requests with `standInMs`) to the stand-in queue, where
   * `nos worker --stand-in` takes them; only stand-in results are accepted then, and never otherwise.
   */
  readonly standIn?: boolean;
}

interface Pending {
  readonly req: EvalRequest;
  readonly promise: Promise<QueueReply>;
  readonly resolve: (r: QueueReply) => void;
  readonly t0: number;
}

/**
 * The coordinator's evaluator: each request becomes a job (id: the request's hash); the result
 * comes back through the queue's events, or, should an event be missed (a Redis restart, a
 * coordinator restart), from the periodic check of the jobs in flight, which also re-sends a
 * job Redis no longer has. Never rejects: a failed job comes back as a status, as with the pool.
 */
export class QueueEvaluator implements Evaluator {
  private readonly pending = new Map<string, Pending>();
  private readonly timers: NodeJS.Timeout[] = [];
  private waiting: boolean | undefined;
  private lastWorkerCheck = 0;
  private closed = false;
  private lastErrorAt = 0;
  /** Jobs this coordinator found finished when it first asked (results kept from before). */
  reused = 0;

  private constructor(
    readonly url: QueueUrl,
    readonly name: string,
    private readonly queue: Queue,
    private readonly events: QueueEvents,
    private readonly clients: readonly Redis[],
    private readonly jobClass: typeof Job,
    private readonly options: QueueEvaluatorOptions,
  ) {
    events.on('completed', ({ jobId: id, returnvalue }) => {
      const p = this.pending.get(id);
      if (p !== undefined) this.settleWith(id, p, returnvalue);
    });
    events.on('failed', ({ jobId: id }) => {
      if (this.pending.has(id)) void this.check(id);
    });
    const poll = setInterval(() => void this.checkAll(), options.pollMs ?? 1000);
    poll.unref();
    this.timers.push(poll);
  }

  /** Connect (or a QueueError that says why not) and start listening for results. */
  static async open(options: QueueEvaluatorOptions): Promise<QueueEvaluator> {
    const url = parseQueueUrl(options.url);
    const {
      Queue: BullQueue,
      QueueEvents: BullEvents,
      Job: BullJob,
    } = await importOptional<typeof import('bullmq')>('bullmq');
    const timeout = options.connectTimeoutMs ?? 10_000;
    const clients: Redis[] = [];
    try {
      clients.push(await connectRedis(url, timeout));
      clients.push(await connectRedis(url, timeout));
    } catch (e) {
      for (const c of clients) c.disconnect();
      throw e;
    }
    const name = queueName(options.version, options.standIn === true);
    const queue = new BullQueue(name, { connection: clients[0] as Redis });
    const events = new BullEvents(name, { connection: clients[1] as Redis });
    const q = new QueueEvaluator(url, name, queue, events, clients, BullJob, options);
    for (const c of clients) c.on('error', (e: Error) => q.connectionError(e));
    queue.on('error', (e: Error) => q.connectionError(e));
    events.on('error', (e: Error) => q.connectionError(e));
    await events.waitUntilReady();
    return q;
  }

  private connectionError(e: Error): void {
    const now = Date.now();
    if (now - this.lastErrorAt < 10_000 || this.closed) return;
    this.lastErrorAt = now;
    this.options.log?.(
      `lost the connection to Redis at ${this.url.redacted} (${e.message}): reconnecting; jobs in flight are kept`,
    );
  }

  /**
   * Evaluate one request through the queue. Never rejects for the rule: failures come back as
   * statuses. Aborted, it rejects with an AbortError at once; the job stays in the queue (a
   * worker may be running it), and a resumed run collects its result.
   */
  evaluate(req: EvalRequest, options: EvaluateOptions = {}): Promise<QueueReply> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(abortError(signal, 'the evaluation'));
    const id = jobId(req);
    let p = this.pending.get(id);
    if (p === undefined) {
      let resolve!: (r: QueueReply) => void;
      const promise = new Promise<QueueReply>((r) => {
        resolve = r;
      });
      const created: Pending = { req, promise, resolve, t0: performance.now() };
      p = created;
      this.pending.set(id, created);
      void this.send(id, created).then(() => this.check(id, true));
      if (this.waiting === undefined) void this.checkWorkers();
    }
    if (signal === undefined) return p.promise;
    const { promise } = p;
    return new Promise<QueueReply>((resolve, reject) => {
      const dropped = () => reject(abortError(signal, 'the evaluation'));
      signal.addEventListener('abort', dropped, { once: true });
      void promise.then((r) => {
        signal.removeEventListener('abort', dropped);
        resolve(r);
      });
    });
  }

  private async send(id: string, p: Pending): Promise<void> {
    try {
      await this.queue.add('eval', p.req, {
        jobId: id,
        attempts: ATTEMPTS,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: KEEP_SECONDS },
        removeOnFail: { age: KEEP_SECONDS },
      });
    } catch (e) {
      // Redis is away: the periodic check sends it again once it is back.
      this.connectionError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private settleWith(id: string, p: Pending, value: unknown): void {
    if (this.pending.get(id) !== p) return;
    this.pending.delete(id);
    this.workerSeen();
    let decoded = decodeReply(value);
    // A stand-in's made-up result never stands for a real evaluation, nor the other way round.
    if (decoded.ok && isStandIn(decoded.reply.result) !== (this.options.standIn === true))
      decoded = {
        ok: false,
        message: this.options.standIn
          ? 'a worker trained this stand-in job for real (stand-in jobs are for nos worker --stand-in)'
          : 'a worker returned a stand-in result (nos worker --stand-in, for benchmarks) for a real evaluation',
      };
    const seconds = (performance.now() - p.t0) / 1000;
    p.resolve(
      decoded.ok
        ? decoded.reply
        : {
            result: failedResult(p.req.rule, p.req.task, p.req.seed, 'invalid', decoded.message, seconds),
            memoryMb: null,
          },
    );
  }

  /** Look a job up in Redis: settle it when finished, send it again when Redis lost it. */
  private async check(id: string, first = false): Promise<void> {
    const p = this.pending.get(id);
    if (p === undefined || this.closed) return;
    try {
      const job = await this.jobClass.fromId(this.queue, id);
      if (this.pending.get(id) !== p) return;
      if (job === undefined) {
        if (!first) await this.send(id, p);
        return;
      }
      if (job.finishedOn === undefined || job.finishedOn === null) return;
      const state = await job.getState();
      if (state === 'completed') {
        if (first) this.reused++;
        this.settleWith(id, p, job.returnvalue);
      } else if (state === 'failed') {
        if (this.pending.get(id) !== p) return;
        this.pending.delete(id);
        const seconds = (performance.now() - p.t0) / 1000;
        p.resolve({
          result: failedResult(
            p.req.rule,
            p.req.task,
            p.req.seed,
            'invalid',
            `the queue job failed after ${job.attemptsMade} attempt(s): ${job.failedReason}`,
            seconds,
          ),
          memoryMb: null,
        });
      }
    } catch (e) {
      this.connectionError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private async checkAll(): Promise<void> {
    if (this.closed || this.pending.size === 0) return;
    await Promise.all([...this.pending.keys()].map((id) => this.check(id)));
    if (Date.now() - this.lastWorkerCheck >= (this.options.workerCheckMs ?? 5000)) await this.checkWorkers();
  }

  /** A job finished: a worker is there (said once, after the waiting message). */
  private workerSeen(): void {
    if (this.waiting === true) this.options.log?.('a worker connected; evaluating');
    this.waiting = false;
  }

  /** Workers connected to this queue now (Redis's CLIENT LIST). */
  async workersConnected(): Promise<number> {
    return await this.queue.getWorkersCount();
  }

  private async checkWorkers(): Promise<void> {
    this.lastWorkerCheck = Date.now();
    let n: number;
    try {
      n = await this.workersConnected();
    } catch {
      return; // a Redis that refuses CLIENT LIST: say nothing
    }
    if (this.closed) return;
    if (n === 0 && this.waiting !== true) {
      this.waiting = true;
      this.options.log?.(
        `waiting for a worker: no 'nos worker' is connected to ${this.url.redacted} (queue ${this.name}); start one on each machine with: npx nos worker --queue ${this.url.redacted}`,
      );
    } else if (n > 0) {
      if (this.waiting === true) this.options.log?.(`${n} worker(s) connected; evaluating`);
      this.waiting = false;
    }
  }

  /** Jobs sent and not yet finished. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Stop listening. Jobs in flight stay in the queue (a resumed run collects them). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.events.close().catch(() => {});
    await this.queue.close().catch(() => {});
    for (const c of this.clients) c.disconnect();
  }
}
