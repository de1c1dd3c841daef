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
import type { Queue, QueueEvents } from 'bullmq';
import type { Redis, RedisOptions } from 'ioredis';
import { z } from 'zod';
import { learnedFileSchema } from '../learned/file.js';
import { abortError } from '../util/abort.js';
import { canonicalJson } from '../util/canonical-json.js';
import { importOptional } from '../util/optional-deps.js';
import { shown } from '../util/terminal.js';
import type { EvalRequest, EvaluateOptions, Evaluator } from './protocol.js';
import { parseQueueUrl, QueueError, type QueueUrl } from './queue-url.js';
import { isStandIn } from './stand-in.js';
import { type EvalResult, failedResult } from './train.js';

// The URL's parts live in queue-url.ts (no ioredis types there: the library's types reach it).
export { MAX_DB, parseQueueUrl, QueueError, type QueueUrl, redactUrl, withPassword } from './queue-url.js';

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

/**
 * Whether an error from ioredis or BullMQ is about the connection (Redis away, a reset, a
 * timeout), as opposed to something Redis or a job held (a script error, data BullMQ could not
 * read): only the first is worth "lost the connection, reconnecting".
 */
export function isConnectionError(e: Error): boolean {
  const code = String((e as { code?: unknown }).code ?? '');
  return (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ECONNABORTED)$/.test(
      code,
    ) ||
    /connection is closed|connect ETIMEDOUT|socket|stream isn't writeable|Reached the max retries|LOADING/i.test(
      e.message,
    )
  );
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
  } catch (e) {
    client.disconnect();
    const why = (last ?? (e instanceof Error ? e : new Error(String(e)))).message;
    throw new QueueError(
      `cannot reach Redis at ${url.redacted}${timedOut ? ` within ${Math.round(timeoutMs / 1000)} s` : ''}: ${why} (is redis-server running there, and the password and certificate right?)`,
    );
  } finally {
    clearTimeout(timer);
  }
  // ioredis selects the database on connect but carries on in database 0 when Redis refuses:
  // select it again, and say so if it does not exist.
  try {
    await client.select(url.db);
  } catch (e) {
    client.disconnect();
    throw new QueueError(
      `Redis at ${url.redacted} has no database ${url.db} (${e instanceof Error ? e.message : String(e)}): a Redis has /0 to /15 unless its 'databases' setting gives more`,
    );
  }
  return client;
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

/** Any number, NaN and infinities included (a failed run's loss is NaN; zod's number() refuses it). */
const num = z.union([z.number(), z.nan()]);
const status = z.enum(['ok', 'diverged', 'invalid', 'timeout']);
const runStatus = z.enum(['ok', 'diverged', 'invalid', 'timeout']);
/** Longest curve a reply may carry (points; a curve point is every few steps). */
export const MAX_REPLY_CURVE = 1_000_000;

/**
 * What a worker must return, checked on the coordinator before anything reaches the store: a
 * reply is untrusted input (a worker of another build, a bug, or whoever can write to Redis).
 * What the store keeps must be a number there: reward and seconds finite, a best learning rate
 * finite and positive or null.
 */
const ReplySchema = z.object({
  result: z
    .object({
      rule: z.string().max(MAX_RULE_CHARS),
      hash: z.string().max(200),
      task: z.string().max(64),
      seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      status,
      reason: z.string().max(100_000).optional(),
      reward: z.number().finite(),
      bestLr: z.number().finite().positive().nullable(),
      valAcc: num,
      testAcc: num.nullable(),
      finalLoss: num,
      grid: z.array(z.object({ lr: num, status: runStatus, valAcc: num, valLoss: num }).passthrough()).max(64),
      curve: z.array(num).max(MAX_REPLY_CURVE),
      curveEvery: z.number().finite().positive(),
      seconds: z.number().finite().min(0),
      analysis: z.record(z.string(), z.unknown()).optional(),
      /** A stand-in's mark (evaluator/stand-in.ts): present, it is `true`; the coordinator checks it against the job. */
      standIn: z.literal(true).optional(),
    })
    .passthrough(),
  memoryMb: z.number().finite().nullable(),
});

export interface QueueReply {
  readonly result: EvalResult;
  readonly memoryMb: number | null;
}

/**
 * A worker's return value, decoded and checked; a message when it is not a reply (or, given the
 * request, not a reply to it: another task or seed).
 */
export function decodeReply(
  value: unknown,
  req?: Pick<EvalRequest, 'task' | 'seed'>,
): { ok: true; reply: QueueReply } | { ok: false; message: string } {
  const r = ReplySchema.safeParse(decodeNonFinite(value));
  if (!r.success) {
    const issue = r.error.issues[0];
    return {
      ok: false,
      message: `a worker returned a malformed result (${issue?.path.join('.') || 'the value'}: ${issue?.message ?? 'invalid'})`,
    };
  }
  const result = r.data.result;
  if (req !== undefined && (result.task !== req.task || result.seed !== req.seed))
    return {
      ok: false,
      message: `a worker returned the result of another evaluation (task ${shown(result.task, 40)} seed ${result.seed}, for task ${req.task} seed ${req.seed})`,
    };
  return { ok: true, reply: r.data as unknown as QueueReply };
}

export interface QueueEvaluatorOptions {
  /** redis://[:password@]HOST:PORT[/DB] or rediss://..., or one parsed already (parseQueueUrl). */
  readonly url: string | QueueUrl;
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
  /** New jobs waiting for this turn's MULTI (see post). */
  private readonly outbox: { readonly id: string; readonly p: Pending }[] = [];
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
    private readonly options: QueueEvaluatorOptions,
  ) {
    events.on('completed', ({ jobId: id, returnvalue }) => {
      const p = this.pending.get(id);
      if (p !== undefined) this.settleWith(id, p, returnvalue);
    });
    events.on('failed', ({ jobId: id }) => {
      if (this.pending.has(id)) void this.check(id);
    });
    // A job sent before (by a coordinator that stopped, or killed): it may have finished already,
    // and then no 'completed' event will come for it. Only these are looked up at once; the
    // periodic check below catches any whose event was missed.
    events.on('duplicated', ({ jobId: id }) => {
      if (this.pending.has(id)) void this.check(id, true);
    });
    const poll = setInterval(() => void this.checkAll(), options.pollMs ?? 1000);
    poll.unref();
    this.timers.push(poll);
  }

  /** Connect (or a QueueError that says why not) and start listening for results. */
  static async open(options: QueueEvaluatorOptions): Promise<QueueEvaluator> {
    const url = typeof options.url === 'string' ? parseQueueUrl(options.url) : options.url;
    const { Queue: BullQueue, QueueEvents: BullEvents } = await importOptional<typeof import('bullmq')>('bullmq');
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
    const q = new QueueEvaluator(url, name, queue, events, clients, options);
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
      isConnectionError(e)
        ? `lost the connection to Redis at ${this.url.redacted} (${e.message}): reconnecting; jobs in flight are kept`
        : `Redis at ${this.url.redacted} reported an error (${e.message}); jobs in flight are kept`,
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
      this.post(id, created);
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

  /**
   * Send a new job with the others asked for in this turn of the event loop: one MULTI for all
   * of them (a search hands out a chunk of samples at once), not a round trip each.
   */
  private post(id: string, p: Pending): void {
    this.outbox.push({ id, p });
    if (this.outbox.length > 1) return;
    setImmediate(() => {
      const jobs = this.outbox.splice(0);
      if (!this.closed) void this.send(jobs);
    });
  }

  private async send(jobs: readonly { readonly id: string; readonly p: Pending }[]): Promise<void> {
    try {
      await this.queue.addBulk(
        jobs.map(({ id, p }) => ({
          name: 'eval',
          data: p.req,
          opts: {
            jobId: id,
            attempts: ATTEMPTS,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: { age: KEEP_SECONDS },
            removeOnFail: { age: KEEP_SECONDS },
          },
        })),
      );
    } catch (e) {
      // Redis is away: the periodic check sends them again once it is back.
      this.connectionError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private settleWith(id: string, p: Pending, value: unknown): void {
    if (this.pending.get(id) !== p) return;
    this.pending.delete(id);
    this.workerSeen();
    let decoded = decodeReply(value, p.req);
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

  /** Settle a job as a failed evaluation (status invalid, reward 0) with the reason. */
  private settleFailed(id: string, p: Pending, reason: string): void {
    if (this.pending.get(id) !== p) return;
    this.pending.delete(id);
    const seconds = (performance.now() - p.t0) / 1000;
    p.resolve({
      result: failedResult(p.req.rule, p.req.task, p.req.seed, 'invalid', reason, seconds),
      memoryMb: null,
    });
  }

  /**
   * Look a job up in Redis: settle it when finished, send it again when Redis lost it. Reads the
   * job's fields as they are (never its data, which a damaged job may hold as text that is not
   * JSON: BullMQ's own reader would throw on it, and the job would wait for ever).
   */
  private async check(id: string, first = false): Promise<void> {
    const p = this.pending.get(id);
    if (p === undefined || this.closed) return;
    try {
      const client = this.clients[0] as Redis;
      const [finishedOn, returnvalue, failedReason, atm, attemptsMade] = await client.hmget(
        this.queue.toKey(id),
        'finishedOn',
        'returnvalue',
        'failedReason',
        'atm',
        'attemptsMade',
      );
      if (this.pending.get(id) !== p) return;
      if (finishedOn === null) {
        if (!first && (await client.exists(this.queue.toKey(id))) === 0) await this.send([{ id, p }]);
        return;
      }
      const state = await this.queue.getJobState(id);
      if (state === 'completed') {
        if (first) this.reused++;
        let value: unknown;
        try {
          value = JSON.parse(returnvalue ?? '');
        } catch {
          this.settleFailed(id, p, 'a worker returned a malformed result (not JSON)');
          return;
        }
        this.settleWith(id, p, value);
      } else if (state === 'failed') {
        this.settleFailed(
          id,
          p,
          `the queue job failed after ${Number(atm ?? attemptsMade ?? 0) || 1} attempt(s): ${shown(failedReason ?? 'no reason given', 2000)}`,
        );
      }
    } catch (e) {
      this.connectionError(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private async checkAll(): Promise<void> {
    if (this.closed || this.pending.size === 0) return;
    // Only jobs out for a while: a younger one's event is on its way (looking up every job in
    // flight each second cost the coordinator two Redis commands a job, hundreds a second).
    const now = performance.now();
    const age = 3 * (this.options.pollMs ?? 1000);
    const due = [...this.pending].filter(([, p]) => now - p.t0 >= age).map(([id]) => id);
    await Promise.all(due.map((id) => this.check(id)));
    if (Date.now() - this.lastWorkerCheck >= (this.options.workerCheckMs ?? 5000)) await this.checkWorkers();
  }

  /** A job finished: a worker is there (said once, after the waiting message). */
  private workerSeen(): void {
    if (this.waiting === true) this.options.log?.('a worker connected; evaluating');
    this.waiting = false;
  }

  /**
   * Workers connected to this queue now (Redis's CLIENT LIST), in this queue's database only:
   * a worker of a queue with the same name in another database takes none of these jobs.
   */
  async workersConnected(): Promise<number> {
    const db = String(this.url.db);
    return (await this.queue.getWorkers()).filter((w) => w.db === db).length;
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
