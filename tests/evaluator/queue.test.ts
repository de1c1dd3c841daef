/**
 * The queue's plain parts: URLs (parsed, refused with a clear message, never printed with their
 * password), job ids (a hash of what is evaluated), job payloads checked field by field, and
 * results that cross as JSON and come back equal, NaN and Infinity included.
 */
import { describe, expect, it } from 'vitest';
import type { EvalRequest } from '../../evaluator/protocol.js';
import {
  checkJobData,
  decodeNonFinite,
  decodeReply,
  encodeNonFinite,
  jobId,
  parseQueueUrl,
  QueueError,
  queueName,
  redactUrl,
  redisOptions,
} from '../../evaluator/queue.js';
import { lockDuration } from '../../evaluator/queue-worker.js';
import { failedResult } from '../../evaluator/train.js';

describe('queue URLs', () => {
  it('parses host, port, database, user, password and TLS', () => {
    expect(parseQueueUrl('redis://127.0.0.1:6380/2')).toEqual({
      tls: false,
      host: '127.0.0.1',
      port: 6380,
      db: 2,
      username: undefined,
      password: undefined,
      redacted: 'redis://127.0.0.1:6380/2',
    });
    expect(parseQueueUrl('redis://queue.lan')).toMatchObject({
      host: 'queue.lan',
      port: 6379,
      db: 0,
      redacted: 'redis://queue.lan/0',
    });
    const secure = parseQueueUrl('rediss://nos:p%40ss@queue.lan:6390/1');
    expect(secure).toMatchObject({
      tls: true,
      username: 'nos',
      password: 'p@ss',
      redacted: 'rediss://nos:***@queue.lan:6390/1',
    });
    expect(redisOptions(secure)).toMatchObject({
      host: 'queue.lan',
      port: 6390,
      db: 1,
      username: 'nos',
      password: 'p@ss',
      tls: { servername: 'queue.lan' },
      maxRetriesPerRequest: null,
    });
    expect(redisOptions(parseQueueUrl('redis://h:1'))).not.toHaveProperty('tls');
    expect(parseQueueUrl('redis://:only-pw@[::1]:7000')).toMatchObject({
      host: '::1',
      password: 'only-pw',
      redacted: 'redis://:***@[::1]:7000/0',
    });
  });

  it('refuses what it cannot use, naming the problem, without the password', () => {
    const cases: [string, RegExp][] = [
      ['localhost:6379', /is not a URL|scheme must be redis/],
      ['http://:pw@h:1', /the scheme must be redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\//],
      ['redis://:pw@h:1/x', /the path must be a database number \(\/0 to \/15 on a Redis .*\), got '\/x'/],
      ['redis://:pw@h:1/0?tls=1', /options after \? or # are not supported/],
      ['redis://:pw@h:99999', /is not a URL/],
    ];
    for (const [url, msg] of cases) {
      let error: unknown;
      try {
        parseQueueUrl(url);
      } catch (e) {
        error = e;
      }
      expect(error, url).toBeInstanceOf(QueueError);
      expect((error as Error).message, url).toMatch(msg);
      expect((error as Error).message, url).not.toMatch(/:pw@/);
    }
  });

  it('redacts passwords, also in text that is not a valid URL', () => {
    expect(redactUrl('redis://:hunter2@h:1/0')).toBe('redis://:***@h:1/0');
    expect(redactUrl('rediss://user:hunter2@h')).toBe('rediss://user:***@h');
    expect(redactUrl('redis://hunter2@h')).toBe('redis://***@h');
    expect(redactUrl('redis://h:1')).toBe('redis://h:1');
    expect(redactUrl('redis://:hunter2@h:99999999')).not.toContain('hunter2');
  });
});

describe('jobs', () => {
  const req: EvalRequest = { rule: 'sign(g)', task: 'quadratic', seed: 3, steps: 100 };

  it('a job id is a hash of the request: key order does not matter, every field does', () => {
    const id = jobId(req);
    expect(id).toMatch(/^e[0-9a-f]{64}$/);
    expect(jobId({ steps: 100, seed: 3, task: 'quadratic', rule: 'sign(g)' })).toBe(id);
    expect(jobId({ ...req, params: { b: 1, a: 2 } })).toBe(jobId({ ...req, params: { a: 2, b: 1 } }));
    const variants: EvalRequest[] = [
      { ...req, seed: 4 },
      { ...req, steps: 101 },
      { ...req, rule: 'sign(m)' },
      { ...req, task: 'rosenbrock' },
      { ...req, test: true },
      { ...req, lrGrid: [0.1] },
    ];
    expect(new Set([id, ...variants.map(jobId)]).size).toBe(variants.length + 1);
    expect(queueName('0.1.0')).toBe('nos-evals-0.1.0');
    expect(queueName('1.0.0+build:7')).toBe('nos-evals-1.0.0_build_7');
  });

  it('job data is checked field by field; unknown fields and wrong types are refused with where', () => {
    expect(
      checkJobData({ ...req, params: { beta1: 0.9 }, lrGrid: [0.01, 0.1], test: true, schedule: 'cosine' }),
    ).toEqual({
      ok: true,
      req: { ...req, params: { beta1: 0.9 }, lrGrid: [0.01, 0.1], test: true, schedule: 'cosine' },
    });
    const bad: [unknown, string][] = [
      [null, 'malformed job: the job data: Expected object, received null'],
      [{ ...req, rule: 42 }, 'malformed job: rule: Expected string, received number'],
      [{ ...req, seed: -1 }, 'malformed job: seed: Number must be greater than or equal to 0'],
      [{ ...req, seed: 1.5 }, 'malformed job: seed: Expected integer, received float'],
      [{ ...req, steps: 0 }, 'malformed job: steps: Number must be greater than or equal to 1'],
      [{ ...req, lrGrid: [0.1, -1] }, 'malformed job: lrGrid.1: Number must be greater than 0'],
      [{ ...req, params: { 'x-y': 1 } }, 'malformed job: params.x-y: Invalid'],
      [{ ...req, code: 'process.exit()' }, "malformed job: the job data: Unrecognized key(s) in object: 'code'"],
      [{ ...req, rule: 'g'.repeat(100_001) }, 'malformed job: rule: String must contain at most 100000 character(s)'],
    ];
    for (const [data, message] of bad) expect(checkJobData(data)).toEqual({ ok: false, message });
  });

  it('results cross as JSON and come back equal, NaN and Infinity included', () => {
    const failed = failedResult('sign(g)', 'quadratic', 3, 'invalid', 'NaN', 0.5);
    const result = {
      ...failed,
      curve: [1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN],
      grid: [{ lr: 0.1, status: 'diverged' as const, valAcc: 0, valLoss: Number.NaN }],
    };
    const wire = JSON.parse(JSON.stringify(encodeNonFinite({ result, memoryMb: 12 })));
    expect(wire.result.finalLoss).toEqual({ $n: 'NaN' });
    expect(wire.result.reason).toBe('NaN'); // strings stay strings
    const back = decodeReply(wire);
    expect(back).toEqual({ ok: true, reply: { result, memoryMb: 12 } });
    expect(decodeNonFinite({ $n: 'NaN', other: 1 })).toEqual({ $n: 'NaN', other: 1 });
  });

  it('a malformed reply is a message, not a crash or a bad row', () => {
    expect(decodeReply({ result: { rule: 'x' }, memoryMb: 1 })).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^a worker returned a malformed result \(result\.hash: Required\)$/),
    });
    expect(decodeReply('garbage')).toMatchObject({ ok: false });
    const r = failedResult('g', 'quadratic', 0, 'ok', 'x', 0);
    expect(decodeReply({ result: { ...r, status: 'exploded' }, memoryMb: null })).toMatchObject({
      ok: false,
      message: expect.stringContaining('result.status'),
    });
  });

  it('lock duration: the option, else $NOS_QUEUE_LOCK_MS within bounds, else 30 s', () => {
    expect(lockDuration(5000, {})).toBe(5000);
    expect(lockDuration(undefined, { NOS_QUEUE_LOCK_MS: '1500' })).toBe(1500);
    expect(lockDuration(undefined, { NOS_QUEUE_LOCK_MS: '5' })).toBe(30_000);
    expect(lockDuration(undefined, { NOS_QUEUE_LOCK_MS: 'soon' })).toBe(30_000);
    expect(lockDuration(undefined, {})).toBe(30_000);
  });
});
