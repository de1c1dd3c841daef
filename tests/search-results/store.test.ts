import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunConfig } from '../../controller/config.js';
import { leaderboard } from '../../controller/funnel-plan.js';
import {
  type Candidate,
  RunExistsError,
  RunLockedError,
  RunMissingError,
  SqliteStore,
  sampleCounts,
  sampleKind,
  StoreAccessError,
  StoreError,
} from '../../search-results/store.js';

function config(run: string): RunConfig {
  return {
    run,
    task: 'quadratic',
    strategy: 'random',
    budget: 10,
    seed: 1,
    workers: 1,
    batchSize: 5,
    steps: null,
    groups: 2,
    warmStart: false,
    createdAt: 'test',
    nosVersion: 'test',
  };
}

function candidate(index: number, reward: number, status: Candidate['status'] = 'ok'): Candidate {
  return {
    index,
    batch: 0,
    rule: `g * ${index}`,
    hash: `h${index}`,
    fingerprint: null,
    status,
    reward,
    bestLr: 0.1,
    valAcc: reward,
    testAcc: null,
    finalLoss: 1,
    detail: '{}',
    seconds: 0,
    strategy: 'random',
    parent: null,
  };
}

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('results store', () => {
  let dir: string;
  const prev = process.env.NOS_RUNS;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nos-store-'));
    delete process.env.NOS_RUNS;
  });
  afterEach(() => {
    if (prev !== undefined) process.env.NOS_RUNS = prev;
  });
  const runDir = (run: string) => join(dir, 'search-results', 'runs', run);

  it('one writer at a time: a second writable open is refused while the first holds the lock; readers are not', () => {
    const a = SqliteStore.create(config('r'), dir);
    const lock = JSON.parse(readFileSync(join(runDir('r'), 'run.lock'), 'utf8')) as { pid: number; host: string };
    expect(lock).toMatchObject({ pid: process.pid, host: hostname() });
    expect(() => SqliteStore.open('r', dir)).toThrow(RunLockedError);
    expect(() => SqliteStore.open('r', dir)).toThrow(
      new RegExp(
        `run 'r' is in use by another nos \\(pid ${process.pid} on ${hostname()}, since .*\\): wait for it to finish or stop it$`,
      ),
    );
    expect(() => SqliteStore.create(config('r'), dir)).toThrow(RunExistsError);
    a.add(candidate(0, 0.5));
    const reader = SqliteStore.open('r', { root: dir, readonly: true });
    expect(reader.candidates()).toHaveLength(1);
    expect(() => reader.add(candidate(1, 0.1))).toThrow(/read-only/);
    reader.close();
    a.close();
    expect(existsSync(join(runDir('r'), 'run.lock'))).toBe(false);
    const b = SqliteStore.open('r', dir);
    expect(b.candidates()).toHaveLength(1);
    b.close();
  });

  it('takes over a stale lock (its process is gone), refuses one from another host or one it cannot read', () => {
    SqliteStore.create(config('r'), dir).close();
    const lockFile = join(runDir('r'), 'run.lock');
    writeFileSync(
      lockFile,
      JSON.stringify({ pid: deadPid(), host: hostname(), token: 'old', since: '2020-01-01T00:00:00Z' }),
    );
    const s = SqliteStore.open('r', dir);
    expect(JSON.parse(readFileSync(lockFile, 'utf8'))).toMatchObject({ pid: process.pid });
    s.close();
    writeFileSync(
      lockFile,
      JSON.stringify({ pid: 1, host: 'elsewhere.example', token: 't', since: '2020-01-01T00:00:00Z' }),
    );
    expect(() => SqliteStore.open('r', dir)).toThrow(
      /in use by another nos \(pid 1 on elsewhere\.example.*if no nos runs on elsewhere\.example any more, remove .*run\.lock/,
    );
    writeFileSync(lockFile, 'garbage');
    expect(() => SqliteStore.open('r', dir)).toThrow(
      /locked by .*run\.lock, which nos cannot read: if no nos uses the run, remove that file/,
    );
    // Readers do not care.
    const reader = SqliteStore.open('r', { root: dir, readonly: true });
    expect(reader.config.run).toBe('r');
    reader.close();
  });

  it('a read-only open writes nothing: no lock, no journal files, the database untouched', () => {
    const s = SqliteStore.create(config('r'), dir);
    s.add(candidate(0, 0.3));
    s.saveCheckpoint({ batch: 0, samples: 1, state: '{}', stats: '{}' });
    s.close();
    const files = readdirSync(runDir('r')).sort();
    expect(files).toEqual(['run.db']);
    const before = statSync(join(runDir('r'), 'run.db'));
    const reader = SqliteStore.open('r', { root: dir, readonly: true });
    expect(readdirSync(runDir('r')).sort()).toEqual(['run.db']);
    expect(reader.candidates()).toHaveLength(1);
    expect(reader.checkpoints()).toHaveLength(1);
    reader.close();
    const after = statSync(join(runDir('r'), 'run.db'));
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.size).toBe(before.size);
    expect(readdirSync(runDir('r')).sort()).toEqual(['run.db']);
  });

  it('environment problems are StoreErrors that say what and where; nothing half-made is left', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    process.env.NOS_RUNS = join(file, 'runs');
    try {
      const e = (() => {
        try {
          SqliteStore.create(config('r'));
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(StoreAccessError);
      expect((e as Error).message).toMatch(
        /cannot create the runs folder .*a-file\/runs: a part of the path is a file, not a folder \(ENOTDIR\)/,
      );
      // Node 20's recursive mkdir never returns under /proc: refused before trying.
      process.env.NOS_RUNS = '/proc/nos-test/runs';
      expect(() => SqliteStore.create(config('r'))).toThrow(
        /the runs folder '\/proc\/nos-test\/runs\/r' is under \/proc, a system folder/,
      );
      process.env.NOS_RUNS = '/sys/x';
      expect(() => SqliteStore.create(config('r'))).toThrow(StoreError);
    } finally {
      delete process.env.NOS_RUNS;
    }
    expect(() => SqliteStore.open('nope', dir)).toThrow(RunMissingError);
    expect(() => SqliteStore.open('bad name', dir)).toThrow(/run name 'bad name' must be/);
    // A run.db that is not a database.
    SqliteStore.create(config('junk'), dir).close();
    writeFileSync(
      join(runDir('junk'), 'run.db'),
      'not sqlite at all, just some text that is long enough to be read as a header',
    );
    expect(() => SqliteStore.open('junk', { root: dir, readonly: true })).toThrow(StoreError);
  });

  it('funnel rows in one transaction: all written, existing ones kept, none when one cannot be', () => {
    const store = SqliteStore.create(config('rows'), dir);
    const row = (hash: string, seed: number, reward: number) => ({
      hash,
      rung: 0,
      seed,
      rule: `g * ${seed}`,
      task: 'quadratic',
      status: 'ok' as const,
      reward,
      bestLr: 0.1,
      valAcc: reward,
      testAcc: null,
      seconds: 1,
    });
    store.addEvaluation(row('a', 0, 0.5));
    store.addEvaluations([row('a', 0, 0.9), row('a', 1, 0.6), row('b', 0, 0.7)]);
    expect(store.evaluations().map((e) => [e.hash, e.seed, e.reward])).toEqual([
      ['a', 0, 0.5],
      ['a', 1, 0.6],
      ['b', 0, 0.7],
    ]);
    // A row that cannot be written (a value SQLite cannot store) takes the rows before it in its batch with it.
    const bad = { ...row('c', 1, 0.1), reward: { not: 'a number' } } as unknown as ReturnType<typeof row>;
    expect(() => store.addEvaluations([row('c', 0, 0.2), bad])).toThrow();
    expect(store.evaluations().map((e) => e.hash)).toEqual(['a', 'a', 'b']);
    store.addEvaluations([]);
    store.close();
  });

  it('counts samples by kind in one place: trained (whatever came out), cached, rejected', () => {
    const cs = [
      candidate(0, 0.5),
      candidate(1, 0.9, 'cached'),
      candidate(2, 0.7, 'rejected'),
      candidate(3, 0.8, 'diverged'),
      candidate(4, 0.2, 'timeout'),
      candidate(5, 0.6, 'invalid'),
      candidate(6, 0.3),
    ];
    expect(cs.map((c) => sampleKind(c.status))).toEqual([
      'trained',
      'cached',
      'rejected',
      'trained',
      'trained',
      'trained',
      'trained',
    ]);
    // The best reward is of a rule that trained successfully: not a copy, not a diverged run.
    expect(sampleCounts(cs)).toEqual({ trained: 5, cached: 1, rejected: 1, best: 0.5 });
    expect(sampleCounts([])).toEqual({ trained: 0, cached: 0, rejected: 0, best: 0 });
    // A status nos never writes (an edited run.db) is nothing to reuse.
    expect(sampleKind('edited')).toBe('rejected');
  });

  it('the proxy leaderboard: ok rules by reward, ties by index', () => {
    const cs = [
      candidate(0, 0.5),
      candidate(1, 0.9, 'cached'),
      candidate(2, 0.7),
      candidate(3, 0.7),
      candidate(4, 1, 'diverged'),
    ];
    expect(leaderboard(cs, 10).map((c) => c.index)).toEqual([2, 3, 0]);
    expect(leaderboard(cs, 1).map((c) => c.index)).toEqual([2]);
  });
});
