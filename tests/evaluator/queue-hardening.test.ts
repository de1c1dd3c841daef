/**
 * The queue against hostile or clumsy input (issue 24), on one real redis-server with a password
 * full of URL delimiters: passwords never shown (messages, ps), the URL from a file or the
 * environment, malformed escapes and missing databases refused clearly, workers of another
 * database not counted, replies validated (a NaN reward becomes a status, also when Redis
 * serves it again to a later run), and jobs whose data or options are not JSON fail at once.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseArgs } from '../../cli/args.js';
import { queueFlags, queueFromArgs } from '../../cli/queue-url.js';
import { nosVersion } from '../../controller/run.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import {
  decodeReply,
  encodeNonFinite,
  jobId,
  parseQueueUrl,
  QueueError,
  QueueEvaluator,
  queueName,
  redactUrl,
} from '../../evaluator/queue.js';
import { startQueueWorker } from '../../evaluator/queue-worker.js';
import { standInResult } from '../../evaluator/stand-in.js';
import { failedResult } from '../../evaluator/train.js';
import { redactedArgs } from '../../util/redact.js';
import { NosProcess, type RedisServer, redis, stopAll } from '../helpers/redis.js';

/** Every character a URL parser could take for a delimiter. */
const PASSWORD = 'S3cr3t/p@ss:w%rd#?x';
const ENCODED = encodeURIComponent(PASSWORD);
let server: RedisServer;
const url = (db = 0, password = ENCODED) => `redis://:${password}@127.0.0.1:${server.port}/${db}`;
const quiet = { log: () => {}, pollMs: 100, workerCheckMs: 100 };
const runsDir = mkdtempSync(join(tmpdir(), 'nos-queue-hardening-'));

beforeAll(async () => {
  server = await redis({ password: PASSWORD });
}, 30_000);

afterAll(async () => {
  await stopAll();
  rmSync(runsDir, { recursive: true, force: true });
});

function messageOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(QueueError);
    return (e as Error).message;
  }
  throw new Error('expected a QueueError');
}

describe('queue URLs with hostile passwords', () => {
  it('a password with / @ : % # ? is parsed raw or encoded, and never shown', () => {
    const raw = parseQueueUrl('redis://:S3cr3t/pw@127.0.0.1:7000/3');
    expect(raw).toMatchObject({ host: '127.0.0.1', port: 7000, db: 3, password: 'S3cr3t/pw' });
    expect(raw.redacted).toBe('redis://:***@127.0.0.1:7000/3');
    expect(parseQueueUrl('redis://u:a@b:c@h:1')).toMatchObject({ username: 'u', password: 'a@b:c', host: 'h' });
    const encoded = parseQueueUrl(`redis://:${ENCODED}@h:1/0`);
    expect(encoded.password).toBe(PASSWORD);
    expect(encoded.redacted).toBe('redis://:***@h:1/0');
    for (const text of [
      'redis://:S3cr3t/pw@127.0.0.1:PORT/0',
      'redis://:S3cr3t/pw@h:99999',
      ':S3cr3t/pw@h:1',
      'http://:S3cr3t/pw@h:1',
      'redis://:S3cr3t/pw@h:1/x',
    ])
      expect(messageOf(() => parseQueueUrl(text))).not.toMatch(/S3cr3t/);
    for (const text of ['redis://:S3cr3t/pw@h:1', 'x://u:S3cr3t@pw@h', ':S3cr3t@h', 'redis://S3cr3t@h'])
      expect(redactUrl(text)).not.toMatch(/S3cr3t/);
  });

  it("malformed %-escapes ('URI malformed' before) are a clear error without the password", () => {
    for (const text of ['redis://:S3cr%zzt-pw@127.0.0.1:6379', 'redis://:S3cr%fft-pw@h:1', 'redis://S3%cr@h:1']) {
      const m = messageOf(() => parseQueueUrl(text));
      expect(m).toMatch(/holds a '%' that does not start a valid %XX escape \(write % itself as %25/);
      expect(m).not.toMatch(/S3cr|URI malformed/);
    }
  });

  it('database numbers: /16 and up are checked against the server, not silently database 0', async () => {
    expect(parseQueueUrl('redis://h/15').db).toBe(15);
    expect(messageOf(() => parseQueueUrl('redis://h/123456'))).toMatch(/the path must be a database number/);
    let error: unknown;
    try {
      await QueueEvaluator.open({ url: url(16), version: 'hardening', ...quiet });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(QueueError);
    expect((error as Error).message).toMatch(
      /^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/16 has no database 16 \(ERR DB index is out of range\)/,
    );
    expect((error as Error).message).not.toContain('S3cr3t');
  });

  it('--queue-file, $NOS_QUEUE_URL and $REDISCLI_AUTH: where the URL and password come from, in that order', () => {
    const io = { out: () => {}, err: (t: string) => errs.push(t) };
    const errs: string[] = [];
    const spec = { ...queueFlags('q') };
    const from = (argv: string[], env: Record<string, string>) => queueFromArgs(parseArgs(argv, spec), io, 't', env);
    const dir = mkdtempSync(join(tmpdir(), 'nos-queue-file-'));
    const file = join(dir, 'queue.url');
    writeFileSync(file, `# the team's queue\n${url(2)}\n`, { mode: 0o600 });
    expect(from(['--queue-file', file], {})).toMatchObject({ db: 2, password: PASSWORD });
    expect(from([], { NOS_QUEUE_URL: 'redis://h:1/4' })).toMatchObject({ db: 4, password: undefined });
    expect(from([], { NOS_QUEUE_URL: 'redis://h:1/4', REDISCLI_AUTH: 'raw%zz/@' })).toMatchObject({
      password: 'raw%zz/@',
      redacted: 'redis://:***@h:1/4',
    });
    expect(from(['--queue', 'redis://h:1/5'], { NOS_QUEUE_URL: 'redis://h:1/4' })?.db).toBe(5);
    expect(from([], {})).toBeUndefined();
    expect(errs).toEqual([]);
    // A password on the command line works, with a warning that says where else to put it.
    expect(from(['--queue', url(1)], {})?.password).toBe(PASSWORD);
    expect(errs.join('\n')).toMatch(/warning: a password on the command line can be read by other users/);
    expect(errs.join('\n')).not.toContain('S3cr3t');
    writeFileSync(file, 'redis://a\nredis://b\n');
    expect(() => from(['--queue-file', file], {})).toThrow(/expected one line with the queue's URL/);
    expect(() => from(['--queue-file', file, '--queue', 'redis://h'], {})).toThrow(/not both/);
    rmSync(dir, { recursive: true, force: true });
    expect(redactedArgs(['worker', '--queue', url(0), '--workers', '1'])?.join(' ')).toBe(
      `worker --queue redis://:***@127.0.0.1:${server.port}/0 --workers 1`,
    );
    expect(redactedArgs(['worker', `--queue=${url(0)}`])?.[1]).toBe(`--queue=redis://:***@127.0.0.1:${server.port}/0`);
    expect(redactedArgs(['worker', '--queue', 'redis://h:1'])).toBeUndefined();
  });

  it('nos worker: the password is out of ps, and the worker works', async () => {
    const w = new NosProcess(['worker', '--queue', url(0), '--workers', '1'], {});
    await w.until(() => /nos worker: ready/.test(w.stderr), 30_000, 'ready');
    const cmdline = readFileSync(`/proc/${w.child.pid}/cmdline`, 'utf8');
    expect(cmdline).not.toContain('S3cr3t');
    expect(cmdline).toContain(`--queue redis://:***@127.0.0.1:${server.port}/0`);
    expect(w.stderr).toMatch(/warning: a password on the command line/);
    const q = await QueueEvaluator.open({ url: url(0), version: nosVersion(), ...quiet });
    try {
      const { result } = await q.evaluate({ rule: 'sign(g)', task: 'quadratic', seed: 0, steps: 20 });
      expect(result.status).toBe('ok');
    } finally {
      await q.close();
    }
    w.kill('SIGTERM');
    expect(await w.finished(20_000)).toBe(0);
    expect(w.stderr + w.stdout).not.toContain('S3cr3t');
  }, 60_000);

  it('nos worker --stand-in finds its queue and password as nos worker does ($NOS_QUEUE_URL, $REDISCLI_AUTH), and never shows it', async () => {
    const env = { NOS_QUEUE_URL: `redis://127.0.0.1:${server.port}/3`, REDISCLI_AUTH: PASSWORD };
    const w = new NosProcess(['worker', '--stand-in', '--workers', '4'], env);
    await w.until(() => /nos worker: ready/.test(w.stderr), 30_000, 'ready');
    expect(w.stderr).toMatch(
      new RegExp(
        `ready: 4 stand-in job\\(s\\) at once .* from redis://:\\*\\*\\*@127\\.0\\.0\\.1:${server.port}/3 \\(queue nos-evals-.*-stand-in\\)`,
      ),
    );
    expect(w.stderr).not.toMatch(/warning: a password on the command line/);
    const q = await QueueEvaluator.open({ url: url(3), version: nosVersion(), standIn: true, ...quiet });
    try {
      const req: EvalRequest = { rule: 'sign(g)', task: 'quadratic', seed: 4, standInMs: 5 };
      const { result } = await q.evaluate(req);
      expect(result).toEqual(standInResult(req));
    } finally {
      await q.close();
    }
    w.kill('SIGTERM');
    expect(await w.finished(20_000)).toBe(0);
    expect(w.stderr + w.stdout).not.toContain('S3cr3t');
  }, 60_000);
});

describe('the coordinator trusts nothing from Redis', () => {
  const version = 'hardening';
  const name = queueName(version);
  const client = () => new Redis({ host: '127.0.0.1', port: server.port, password: PASSWORD, db: 5 });

  it('counts only the workers of its own database (a worker on another database takes none of its jobs)', async () => {
    const conn = new Redis({
      host: '127.0.0.1',
      port: server.port,
      password: PASSWORD,
      db: 6,
      maxRetriesPerRequest: null,
    });
    const other = new Worker(name, async () => ({}), { connection: conn });
    await other.waitUntilReady();
    const lines: string[] = [];
    const here = await QueueEvaluator.open({ url: url(5), version, ...quiet, log: (l) => lines.push(l) });
    const there = await QueueEvaluator.open({ url: url(6), version, ...quiet });
    try {
      expect(await here.workersConnected()).toBe(0);
      expect(await there.workersConnected()).toBe(1);
      void here.evaluate({ rule: 'g', task: 'quadratic', seed: 9, steps: 5 });
      await new Promise((r) => setTimeout(r, 300));
      expect(lines.join('\n')).toMatch(/waiting for a worker: no 'nos worker' is connected to redis:\/\/:\*\*\*@/);
    } finally {
      await here.close();
      await there.close();
      await other.close();
      conn.disconnect();
    }
  });

  it('a reply with reward NaN, or for another request, is an invalid status, not a crash', () => {
    const req = { task: 'quadratic', seed: 3 };
    const good = { ...failedResult('g', 'quadratic', 3, 'ok', 'x', 1), bestLr: 0.1 };
    const wire = (r: object) => JSON.parse(JSON.stringify(encodeNonFinite({ result: r, memoryMb: null })));
    expect(decodeReply(wire(good), req).ok).toBe(true);
    for (const [bad, where] of [
      [{ ...good, reward: Number.NaN }, /result\.reward/],
      [{ ...good, reward: Number.POSITIVE_INFINITY }, /result\.reward/],
      [{ ...good, seconds: -1 }, /result\.seconds/],
      [{ ...good, bestLr: -0.1 }, /result\.bestLr/],
      [{ ...good, seed: 4 }, /the result of another evaluation \(task quadratic seed 4, for task quadratic seed 3\)/],
      [{ ...good, task: 'mlp-mnist' }, /the result of another evaluation/],
    ] as const) {
      const r = decodeReply(wire(bad), req);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.message).toMatch(where);
    }
  });

  it("a stand-in's reply is checked as any other: its mark is true or absent, its numbers are numbers", () => {
    const req: EvalRequest = { rule: 'sign(g)', task: 'quadratic', seed: 3, standInMs: 5 };
    const wire = (r: object) => JSON.parse(JSON.stringify(encodeNonFinite({ result: r, memoryMb: null })));
    // A good one, and a diverged one (final loss +Infinity crosses as {"$n": "Infinity"}).
    const good = standInResult(req);
    expect(decodeReply(wire(good), req)).toEqual({ ok: true, reply: { result: good, memoryMb: null } });
    const diverged = Array.from({ length: 40 }, (_x, seed) => standInResult({ ...req, seed })).find(
      (r) => r.status === 'diverged',
    );
    expect(diverged?.finalLoss).toBe(Number.POSITIVE_INFINITY);
    expect(decodeReply(wire(diverged as object), { task: 'quadratic', seed: diverged?.seed ?? -1 }).ok).toBe(true);
    for (const [bad, where] of [
      [{ ...good, reward: Number.NaN }, /result\.reward/],
      [{ ...good, standIn: 'yes' }, /result\.standIn/],
      [{ ...good, standIn: false }, /result\.standIn/],
      [{ ...good, seed: 4 }, /the result of another evaluation/],
    ] as const) {
      const r = decodeReply(wire(bad), req);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.message).toMatch(where);
    }
  });

  it('jobs whose data or options in Redis are not JSON fail at once, and the coordinator hears why', async () => {
    const conn = client();
    const queue = new Queue(name, { connection: conn });
    const coordinator = await QueueEvaluator.open({ url: url(5), version, ...quiet });
    try {
      // Damaged while no worker runs: one job's data, another's options.
      for (const [field, seed] of [
        ['data', 1],
        ['opts', 2],
      ] as const) {
        const req: EvalRequest = { rule: 'sign(g)', task: 'quadratic', seed, steps: 10 };
        await queue.add('eval', req, { jobId: jobId(req), attempts: 3 });
        await conn.hset(queue.toKey(jobId(req)), field, '{not json');
      }
      const w2 = await startQueueWorker({ url: url(5), version, threads: 1, log: () => {}, lockMs: 1000 });
      const results = await Promise.all(
        [1, 2].map((seed) => coordinator.evaluate({ rule: 'sign(g)', task: 'quadratic', seed, steps: 10 })),
      );
      await w2.close(true);
      expect(results.map((r) => r.result.status)).toEqual(['invalid', 'invalid']);
      expect(results[0]?.result.reason).toBe(
        'the queue job failed after 1 attempt(s): malformed job: its data in Redis is not JSON',
      );
      expect(results[1]?.result.reason).toBe(
        'the queue job failed after 1 attempt(s): malformed job: its options in Redis are not JSON',
      );
    } finally {
      await coordinator.close();
      await queue.close();
      conn.disconnect();
    }
  }, 30_000);

  it('nos search --queue with a worker that replies reward NaN ends with invalid statuses; a later run served the stored bad results from Redis ends too', async () => {
    const conn = new Redis({
      host: '127.0.0.1',
      port: server.port,
      password: PASSWORD,
      db: 7,
      maxRetriesPerRequest: null,
    });
    const liar = new Worker(
      queueName(nosVersion()),
      async (job: Job) => {
        const req = job.data as EvalRequest;
        const r = { ...failedResult(req.rule, req.task, req.seed, 'ok', 'forged', 0.01), reward: Number.NaN };
        return encodeNonFinite({ result: r, memoryMb: null });
      },
      { connection: conn },
    );
    await liar.waitUntilReady();
    const env = { NOS_RUNS: runsDir, NOS_QUEUE_URL: url(7) };
    const args = [
      'search',
      '--task',
      'quadratic',
      '--strategy',
      'random',
      '--budget',
      '3',
      '--funnel',
      'off',
      '--json',
    ];
    const first = new NosProcess([...args, '--run', 'liar-1'], env);
    expect(await first.finished(60_000), first.stderr).toBe(0);
    await liar.close();
    conn.disconnect();
    // No worker now: the second run's jobs are the first run's, finished in Redis with reward NaN.
    const second = new NosProcess([...args, '--run', 'liar-2'], env);
    expect(await second.finished(60_000), second.stderr).toBe(0);
    for (const run of ['liar-1', 'liar-2']) {
      const db = new Database(join(runsDir, run, 'run.db'), { readonly: true });
      const rows = db
        .prepare("SELECT status, reward, detail FROM candidates WHERE status NOT IN ('cached', 'rejected')")
        .all() as {
        status: string;
        reward: number;
        detail: string;
      }[];
      db.close();
      expect(rows.length, run).toBe(3);
      for (const r of rows) {
        expect(r).toMatchObject({ status: 'invalid', reward: 0 });
        expect(JSON.parse(r.detail).reason).toMatch(/a worker returned a malformed result \(result\.reward: /);
      }
    }
    expect(first.stderr + second.stderr).not.toContain('S3cr3t');
  }, 90_000);
});
