/**
 * The pipelined loop from the command line, with real processes: one seed's search gives the
 * same stored evaluations and leaderboard with 1 or 8 workers and through a real redis-server
 * queue (stand-in evaluations, and real training with 1 and 2 threads); a coordinator killed
 * with kill -9 while 64 evaluations run resumes to the same run as an uninterrupted one, each
 * evaluation done once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { NosProcess, redis, stopAll } from '../helpers/redis.js';

const runsDir = mkdtempSync(join(tmpdir(), 'nos-pipeline-runs-'));
const ENV = { NOS_RUNS: runsDir, NOS_QUEUE_LOCK_MS: '2000' };

afterAll(async () => {
  await stopAll();
  rmSync(runsDir, { recursive: true, force: true });
});

type Row = Record<string, unknown> & { idx: number; status: string };

/** Everything a run stored that its results are: candidates, checkpoints, funnel rows (timings left out). */
function stored(run: string): { candidates: Row[]; checkpoints: unknown[]; evaluations: unknown[] } {
  const db = new Database(join(runsDir, run, 'run.db'), { readonly: true, fileMustExist: true });
  try {
    const strip = (rows: Record<string, unknown>[]): Row[] =>
      rows.map(({ seconds: _s, detail, ...r }) => ({
        ...(r as Row),
        ...(typeof detail === 'string'
          ? {
              detail: (({ grid, curve }) => ({ grid, curve }))(JSON.parse(detail) as { grid: unknown; curve: unknown }),
            }
          : {}),
      }));
    return {
      candidates: strip(
        db.prepare('SELECT * FROM candidates ORDER BY idx').all() as { seconds: number; detail: string }[],
      ),
      checkpoints: db.prepare('SELECT batch, samples, state, stats, pending FROM checkpoints ORDER BY batch').all(),
      evaluations: strip(
        db.prepare('SELECT * FROM evaluations ORDER BY rung, hash, seed').all() as { seconds: number }[],
      ),
    };
  } finally {
    db.close();
  }
}

async function finished(p: NosProcess): Promise<unknown> {
  expect(await p.finished(120_000), p.stderr).toBe(0);
  return JSON.parse(p.stdout);
}

async function leaderboard(run: string): Promise<unknown> {
  const p = new NosProcess(['leaderboard', '--run', run, '--json'], ENV);
  return await finished(p);
}

const ids = (text: string, what: 'taken' | 'done'): string[] =>
  [...text.matchAll(new RegExp(`job (e[0-9a-f]{64}) ${what}`, 'g'))].map((m) => m[1] as string);

describe('the pipelined loop, from the command line', () => {
  it('stand-in evaluations: the same run with 1 worker, 8 workers and through the queue', async () => {
    const search = [
      'search',
      '--task',
      'mlp-mnist',
      '--seed',
      '3',
      '--budget',
      '60',
      '--batch',
      '8',
      '--staleness',
      '3',
      '--stand-in',
      '20',
      '--json',
    ];
    const one = new NosProcess([...search, '--run', 's1', '--workers', '1'], ENV);
    const eight = new NosProcess([...search, '--run', 's8', '--workers', '8'], ENV);
    const r = await redis();
    new NosProcess(['worker', '--queue', r.url, '--stand-in', '--workers', '8'], ENV);
    const queued = new NosProcess([...search, '--run', 'sq', '--queue', r.url], ENV);
    const docs = await Promise.all([one, eight, queued].map(finished));
    expect(one.stderr).toMatch(
      /batch 8, staleness 3, 1 worker\(s\), stand-in evaluations \(each sleeps 20 ms; nothing is trained\)/,
    );
    const want = stored('s1');
    expect(want.candidates.filter((c) => c.status !== 'cached' && c.status !== 'rejected')).toHaveLength(60);
    expect(want.evaluations.some((e) => (e as { rung: number }).rung === 3)).toBe(true);
    for (const run of ['s8', 'sq']) expect(stored(run), run).toEqual(want);
    const strip = (d: unknown) => ({ ...(d as Record<string, unknown>), run: null });
    expect(strip(docs[1])).toEqual(strip(docs[0]));
    expect(strip(docs[2])).toEqual(strip(docs[0]));
    const boards = await Promise.all(['s1', 's8', 'sq'].map(leaderboard));
    expect(boards[1]).toEqual(boards[0]);
    expect(boards[2]).toEqual(boards[0]);
  }, 120_000);

  it('real training: the same run with 1 and 2 threads and through the queue', async () => {
    const search = [
      'search',
      '--task',
      'quadratic',
      '--seed',
      '4',
      '--budget',
      '8',
      '--batch',
      '4',
      '--steps',
      '300',
      '--json',
    ];
    const r = await redis();
    new NosProcess(['worker', '--queue', r.url, '--workers', '2'], ENV);
    const runs = [
      new NosProcess([...search, '--run', 'r1', '--workers', '1'], ENV),
      new NosProcess([...search, '--run', 'r2', '--workers', '2'], ENV),
      new NosProcess([...search, '--run', 'rq', '--queue', r.url], ENV),
    ];
    await Promise.all(runs.map(finished));
    const want = stored('r1');
    expect(want.evaluations.length).toBeGreaterThan(8);
    expect(stored('r2')).toEqual(want);
    expect(stored('rq')).toEqual(want);
    const boards = await Promise.all(['r1', 'r2', 'rq'].map(leaderboard));
    expect(boards[1]).toEqual(boards[0]);
    expect(boards[2]).toEqual(boards[0]);
  }, 120_000);

  it('a coordinator killed with kill -9 while 64 evaluations run resumes to the uninterrupted run; each evaluation runs once', async () => {
    const search = [
      'search',
      '--task',
      'mlp-mnist',
      '--seed',
      '6',
      '--budget',
      '300',
      '--batch',
      '32',
      '--staleness',
      '4',
      '--stand-in',
      '400',
      '--funnel',
      'off',
    ];
    const straight = new NosProcess([...search, '--run', 'straight', '--workers', '64', '--json'], ENV);
    const r = await redis();
    const worker = new NosProcess(['worker', '--queue', r.url, '--stand-in', '--workers', '64'], ENV);
    await worker.until(() => /ready: 64 stand-in job/.test(worker.stderr), 30_000, 'the worker');
    const first = new NosProcess([...search, '--run', 'killed', '--queue', r.url], ENV);
    const running = () => ids(worker.stderr, 'taken').length - ids(worker.stderr, 'done').length;
    // Past the first wave, with every slot of the worker busy.
    await worker.until(
      () => ids(worker.stderr, 'done').length >= 64 && running() === 64,
      60_000,
      '64 evaluations in flight',
    );
    first.kill('SIGKILL');
    await first.exit;
    const before = stored('killed').candidates;
    expect(before.length).toBeGreaterThan(0);
    // Progress says how many are in flight (running, or waiting for a worker).
    expect(first.stderr).toMatch(/rules trained .* in flight \d+\n/);
    const resumed = new NosProcess(['search', '--resume', '--run', 'killed', '--queue', r.url, '--json'], ENV);
    await finished(resumed);
    await finished(straight);
    const want = stored('straight');
    expect(stored('killed')).toEqual(want);
    // What was stored before the kill was kept as it was.
    const after = new Map(want.candidates.map((c) => [c.idx, c]));
    for (const c of before) expect(after.get(c.idx)).toEqual(c);
    // Every job ran once: the ones that finished while no coordinator listened were collected.
    const taken = ids(worker.stderr, 'taken');
    expect(new Set(taken).size).toBe(taken.length);
    expect(taken.length).toBe(want.candidates.filter((c) => c.status !== 'cached' && c.status !== 'rejected').length);
    expect(resumed.stderr).toMatch(/resuming run 'killed'/);
  }, 120_000);
});
