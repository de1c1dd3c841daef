/**
 * Scale-out through the queue, with real processes only: a real redis-server on a free loopback
 * port, `nos worker` processes and `nos search --queue` coordinators (the built binary). Each
 * fault is made for real (SIGKILL of a worker mid-job, SIGKILL of the coordinator and a
 * `--resume`, a Redis restart), and each run must hold every evaluation exactly once and equal,
 * candidate for candidate, a run of the local pool with the same seed.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { nosVersion } from '../../controller/run.js';
import { queueName } from '../../evaluator/queue.js';
import { nos } from '../helpers/cli.js';
import { NosProcess, redis, stopAll } from '../helpers/redis.js';

const runsDir = mkdtempSync(join(tmpdir(), 'nos-queue-runs-'));
/** Short locks, so a dead worker's job goes back to the queue in about 3 s. */
const ENV = { NOS_RUNS: runsDir, NOS_QUEUE_LOCK_MS: '2000' };
/**
 * A tiny search whose evaluations take a second or two each (long enough to kill one mid-job),
 * without the funnel (its 28 evaluations, most at 4x steps, took ~50 s and test nothing here).
 */
const SEARCH = [
  'search',
  '--task',
  'quadratic',
  '--strategy',
  'random',
  '--seed',
  '5',
  '--budget',
  '6',
  '--batch',
  '3',
  '--steps',
  '300000',
  '--funnel',
  'off',
  '--json',
];

interface Row {
  idx: number;
  rule: string;
  hash: string;
  status: string;
  reward: number;
  best_lr: number | null;
  final_loss: number | null;
}

function rows(run: string): Row[] {
  const db = new Database(join(runsDir, run, 'run.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare('SELECT idx, rule, hash, status, reward, best_lr, final_loss FROM candidates ORDER BY idx')
      .all() as Row[];
  } finally {
    db.close();
  }
}

const ids = (text: string, what: 'taken' | 'done'): string[] =>
  [...text.matchAll(new RegExp(`job (e[0-9a-f]{64}) ${what}`, 'g'))].map((m) => m[1] as string);

/** Every evaluation exactly once: indexes 0..n-1, trained rules distinct, as many as the budget. */
function expectExactlyOnce(run: string): void {
  const rs = rows(run);
  expect(rs.map((r) => r.idx)).toEqual(rs.map((_r, i) => i));
  const trained = rs.filter((r) => r.status !== 'cached' && r.status !== 'rejected');
  expect(trained.length).toBe(6);
  expect(new Set(trained.map((r) => r.hash)).size).toBe(trained.length);
}

let local: Row[];

function worker(url: string): NosProcess {
  return new NosProcess(['worker', '--queue', url, '--workers', '1'], ENV);
}

async function ready(...ws: NosProcess[]): Promise<void> {
  await Promise.all(ws.map((w) => w.until(() => /ready: 1 thread/.test(w.stderr), 30_000, 'the worker to be ready')));
}

beforeAll(async () => {
  const ref = new NosProcess([...SEARCH, '--run', 'local', '--workers', '2'], ENV);
  expect(await ref.finished(), ref.stderr).toBe(0);
  local = rows('local');
  expect(local.filter((r) => r.status === 'ok').length).toBeGreaterThan(0);
}, 90_000);

afterAll(async () => {
  await stopAll();
  rmSync(runsDir, { recursive: true, force: true });
});

describe('nos search --queue with nos worker processes', () => {
  it('a worker SIGKILLed mid-job: its job goes to the other worker; the run equals the local pool run', async () => {
    const r = await redis();
    const a = worker(r.url);
    const b = worker(r.url);
    await ready(a, b);
    const coordinator = new NosProcess([...SEARCH, '--run', 'killw', '--queue', r.url], ENV);
    // Kill A while it holds a job it has not finished.
    await a.until(() => ids(a.stderr, 'taken').length > ids(a.stderr, 'done').length, 60_000, 'worker A to take a job');
    a.kill('SIGKILL');
    const held = ids(a.stderr, 'taken').filter((id) => !ids(a.stderr, 'done').includes(id));
    expect(held.length).toBe(1);
    expect(await coordinator.finished(), coordinator.stderr).toBe(0);
    // B found the job stalled and ran it.
    expect(b.stderr).toContain(`job ${held[0]} stalled`);
    expect(ids(b.stderr, 'done')).toContain(held[0]);
    expectExactlyOnce('killw');
    expect(rows('killw')).toEqual(local);
  }, 90_000);

  it('the coordinator SIGKILLed and resumed: it collects what finished while it was down and sends only what is missing', async () => {
    const r = await redis();
    const a = worker(r.url);
    const b = worker(r.url);
    await ready(a, b);
    const first = new NosProcess([...SEARCH, '--run', 'killc', '--queue', r.url], ENV);
    const taken = () => [...ids(a.stderr, 'taken'), ...ids(b.stderr, 'taken')];
    const done = () => [...ids(a.stderr, 'done'), ...ids(b.stderr, 'done')];
    await first.until(() => taken().length >= 2 && done().length < taken().length, 60_000, 'jobs in flight');
    first.kill('SIGKILL');
    await first.exit;
    const before = rows('killc').length;
    // The workers finish what they hold with no coordinator to hear it.
    await a.until(() => done().length === taken().length, 30_000, 'the jobs in flight to finish');
    const finishedWhileDown = done().length;
    const resumed = new NosProcess(['search', '--resume', '--run', 'killc', '--queue', r.url, '--json'], ENV);
    expect(await resumed.finished(), resumed.stderr).toBe(0);
    expect(rows('killc').length).toBeGreaterThan(before);
    // Nothing was evaluated twice: the results that finished while it was down were collected.
    expect(new Set(taken()).size).toBe(taken().length);
    expect(finishedWhileDown).toBeGreaterThan(0);
    expectExactlyOnce('killc');
    expect(rows('killc')).toEqual(local);
  }, 90_000);

  it('Redis restarted mid-run: the clients reconnect and nothing is lost', async () => {
    const r = await redis();
    const a = worker(r.url);
    const b = worker(r.url);
    await ready(a, b);
    const coordinator = new NosProcess([...SEARCH, '--run', 'restart', '--queue', r.url], ENV);
    const done = () => [...ids(a.stderr, 'done'), ...ids(b.stderr, 'done')];
    await coordinator.until(() => done().length >= 2, 60_000, 'two evaluations');
    await r.stop();
    await new Promise((res) => setTimeout(res, 1500));
    await r.start();
    expect(await coordinator.finished(), coordinator.stderr).toBe(0);
    expect(coordinator.stderr).toMatch(/lost the connection to Redis at redis:\/\/127\.0\.0\.1:\d+\/0/);
    expect(a.running && b.running).toBe(true);
    expectExactlyOnce('restart');
    expect(rows('restart')).toEqual(local);
    // With Redis gone, SIGTERM still stops a worker, without a hang: BullMQ's close either ends
    // by itself or the worker gives up on it after a lock's duration (which one is a race: the
    // first happened in one CI run of many), saying so.
    await r.stop();
    a.kill('SIGTERM');
    expect(await a.finished(20_000)).toBe(0);
    expect(a.stderr).toMatch(
      /could not reach Redis at redis:\/\/127\.0\.0\.1:\d+\/0 to close cleanly; stopping anyway|nos worker: stopped/,
    );
  }, 90_000);

  it('with a password: waits for a worker and says how to start one, never prints the password; a malformed job fails once without harming the worker; SIGTERM drains', async () => {
    const password = 's3cret-pw';
    const r = await redis({ password });
    const wrong = new NosProcess(
      [
        'search',
        '--task',
        'quadratic',
        '--budget',
        '2',
        '--run',
        'nope',
        '--queue',
        r.url.replace(password, 'wrong-pw'),
      ],
      ENV,
    );
    expect(await wrong.finished()).toBe(1);
    expect(wrong.stderr).toMatch(
      /^nos search: error: cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: WRONGPASS/m,
    );
    expect(wrong.stderr).not.toContain('wrong-pw');

    const coordinator = new NosProcess(
      [
        'search',
        '--task',
        'quadratic',
        '--strategy',
        'random',
        '--budget',
        '4',
        '--batch',
        '2',
        '--run',
        'pw',
        '--queue',
        r.url,
      ],
      ENV,
    );
    await coordinator.until(() => /waiting for a worker/.test(coordinator.stderr), 30_000, 'the waiting message');
    expect(coordinator.stderr).toContain(
      `start one on each machine with: npx nos worker --queue redis://:***@127.0.0.1:${r.port}/0`,
    );
    // A malformed job, straight into the queue: it fails on its first attempt, with where.
    const client = new Redis(r.port, '127.0.0.1', { password, maxRetriesPerRequest: null });
    const queue = new Queue(queueName(nosVersion()), { connection: client });
    try {
      const bad = await queue.add(
        'eval',
        { rule: 42, task: 'quadratic', seed: 0 },
        { jobId: 'malformed-1', attempts: 3 },
      );
      const w = worker(r.url);
      expect(await coordinator.finished(), coordinator.stderr).toBe(0);
      expect(coordinator.stderr).toMatch(/(a worker|1 worker\(s\)) connected; evaluating/);
      await w.until(() => /job malformed-1 failed/.test(w.stderr), 10_000, 'the malformed job to fail');
      const job = await queue.getJob(bad.id as string);
      expect(await job?.getState()).toBe('failed');
      expect(job?.attemptsMade).toBe(1);
      expect(job?.failedReason).toBe('malformed job: rule: Expected string, received number');
      expect(rows('pw').filter((x) => x.status !== 'cached' && x.status !== 'rejected').length).toBe(4);
      // Ctrl-C / SIGTERM: the worker finishes what it holds and exits 0.
      w.kill('SIGTERM');
      expect(await w.finished(30_000)).toBe(0);
      expect(w.stderr).toMatch(/SIGTERM: finishing the jobs in hand/);
      for (const p of [coordinator, w]) expect(p.stderr + p.stdout).not.toContain(password);
      // Nor is it stored: the queue URL is not part of the run.
      for (const f of readdirSync(join(runsDir, 'pw')))
        expect(readFileSync(join(runsDir, 'pw', f)).includes(password), f).toBe(false);
    } finally {
      await queue.close();
      client.disconnect();
    }
  }, 90_000);

  it("nos eval --queue gives the local pool's results; bad URLs are refused before anything is made", async () => {
    expect(await nos('worker')).toMatchObject({
      code: 1,
      stderr:
        'nos worker: error: --queue is required (or --queue-file F, or $NOS_QUEUE_URL), e.g. nos worker --queue redis://127.0.0.1:6379',
    });
    const scheme = await nos('worker', '--queue', 'http://:pw@h:1');
    expect(scheme.code).toBe(1);
    expect(scheme.stderr).toBe(
      "nos worker: error: --queue 'http://:***@h:1': the scheme must be redis:// or rediss:// (TLS), not http://",
    );
    const bad = new NosProcess(
      ['search', '--task', 'quadratic', '--run', 'badq', '--queue', 'redis://:pw@h:1/db'],
      ENV,
    );
    expect(await bad.finished()).toBe(1);
    expect(bad.stderr).toMatch(/the path must be a database number/);
    expect(existsSync(join(runsDir, 'badq'))).toBe(false);

    const r = await redis();
    worker(r.url);
    const args = [
      'eval',
      '--rules',
      'adam,sgd,clip(g, 0.5)',
      '--task',
      'quadratic',
      '--seeds',
      '2',
      '--steps',
      '300',
      '--json',
    ];
    const viaQueue = new NosProcess([...args, '--queue', r.url], ENV);
    const here = new NosProcess([...args, '--workers', '1'], ENV);
    expect(await viaQueue.finished(), viaQueue.stderr).toBe(0);
    expect(await here.finished(), here.stderr).toBe(0);
    expect(viaQueue.stderr).toMatch(/on quadratic, through the queue at redis:\/\/127\.0\.0\.1:\d+\/0/);
    const strip = (out: string) =>
      (JSON.parse(out) as { results: { seconds?: number }[] }).results.map(({ seconds: _s, ...rest }) => rest);
    expect(strip(viaQueue.stdout)).toEqual(strip(here.stdout));
  }, 90_000);

  it('TLS (rediss://) with a password: the certificate is checked, and a trusted one works', async () => {
    const r = await redis({ password: 'tls-pw', tls: true });
    expect(r.url).toMatch(/^rediss:\/\//);
    const trust = { ...ENV, NODE_EXTRA_CA_CERTS: r.cert as string };
    const untrusted = new NosProcess(['eval', '--rules', 'sgd', '--task', 'quadratic', '--queue', r.url], ENV);
    expect(await untrusted.finished()).toBe(1);
    expect(untrusted.stderr).toMatch(
      /cannot reach Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0: self[- ]signed certificate/,
    );
    new NosProcess(['worker', '--queue', r.url, '--workers', '1'], trust);
    const viaTls = new NosProcess(
      ['eval', '--rules', 'sgd', '--task', 'quadratic', '--steps', '300', '--queue', r.url, '--json'],
      trust,
    );
    expect(await viaTls.finished(), viaTls.stderr).toBe(0);
    expect((JSON.parse(viaTls.stdout) as { results: { status: string }[] }).results[0]?.status).toBe('ok');
    expect(viaTls.stderr + untrusted.stderr).not.toContain('tls-pw');
  }, 90_000);
});
