/**
 * The durable results store: one SQLite database per run (better-sqlite3, WAL), under
 * `search-results/runs/<run>/run.db`. Every evaluated candidate is committed as it arrives,
 * and a strategy checkpoint with each batch, so a `kill -9` loses at most what was in flight.
 * The search loop talks to the `ResultsStore` interface, so another back end can slot in.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SpaceConfig } from '../primitives/nos-space.js';

export const SCHEMA_VERSION = 1;

export interface RunConfig {
  readonly run: string;
  readonly task: string;
  readonly strategy: string;
  readonly budget: number;
  readonly seed: number;
  readonly workers: number;
  readonly batchSize: number;
  readonly steps: number | null;
  /** The search space, if not the full NOS space (see primitives/nos-space.ts configureSpace). */
  readonly space?: SpaceConfig;
  readonly createdAt: string;
  readonly nosVersion: string;
}

export type CandidateStatus = 'ok' | 'diverged' | 'invalid' | 'timeout' | 'rejected' | 'cached';

export interface Candidate {
  /** 0-based index of the sample in the run. */
  readonly index: number;
  /** The strategy update (batch) it belongs to. */
  readonly batch: number;
  readonly rule: string;
  readonly hash: string;
  readonly fingerprint: string | null;
  readonly status: CandidateStatus;
  readonly reward: number;
  readonly bestLr: number | null;
  readonly valAcc: number | null;
  readonly testAcc: number | null;
  readonly finalLoss: number | null;
  /** Per-learning-rate metrics of the grid, the learning curve, why it ended: JSON. */
  readonly detail: string;
  readonly seconds: number;
  readonly strategy: string;
  /** Index of the candidate it was derived from (evolution), or the one it duplicates (cached). */
  readonly parent: number | null;
}

export interface StrategyCheckpoint {
  readonly batch: number;
  /** Candidates recorded when the checkpoint was taken. */
  readonly samples: number;
  readonly state: string;
  /** One log line per update: mean reward, baseline, entropy. */
  readonly stats: string;
}

export interface ResultsStore {
  readonly config: RunConfig;
  candidates(): Candidate[];
  byHash(hash: string): Candidate | undefined;
  byFingerprint(fingerprint: string): Candidate | undefined;
  add(c: Candidate): void;
  /** Record a batch's candidates and the checkpoint after it, atomically. */
  commitBatch(cs: readonly Candidate[], checkpoint: StrategyCheckpoint): void;
  lastCheckpoint(): StrategyCheckpoint | undefined;
  checkpoints(): StrategyCheckpoint[];
  close(): void;
}

export class RunExistsError extends Error {}
export class RunMissingError extends Error {}

export function runsDir(root = process.cwd()): string {
  return process.env.NOS_RUNS ?? join(root, 'search-results', 'runs');
}

export function runPath(run: string, root?: string): string {
  return join(runsDir(root), run);
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;

export function checkRunName(run: string): void {
  if (!RUN_NAME.test(run)) throw new Error(`run name '${run}' must be 1-64 letters, digits, '.' or '-', starting with a letter or digit`);
}

type Row = Record<string, unknown>;

function toCandidate(r: Row): Candidate {
  return {
    index: r.idx as number,
    batch: r.batch as number,
    rule: r.rule as string,
    hash: r.hash as string,
    fingerprint: (r.fingerprint as string | null) ?? null,
    status: r.status as CandidateStatus,
    reward: r.reward as number,
    bestLr: (r.best_lr as number | null) ?? null,
    valAcc: (r.val_acc as number | null) ?? null,
    testAcc: (r.test_acc as number | null) ?? null,
    finalLoss: (r.final_loss as number | null) ?? null,
    detail: r.detail as string,
    seconds: r.seconds as number,
    strategy: r.strategy as string,
    parent: (r.parent as number | null) ?? null,
  };
}

export class SqliteStore implements ResultsStore {
  readonly config: RunConfig;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement;

  private constructor(db: Database.Database, config: RunConfig) {
    this.db = db;
    this.config = config;
    this.insert = db.prepare(
      `INSERT OR REPLACE INTO candidates (idx, batch, rule, hash, fingerprint, status, reward, best_lr, val_acc, test_acc, final_loss, detail, seconds, strategy, parent)
       VALUES (@index, @batch, @rule, @hash, @fingerprint, @status, @reward, @bestLr, @valAcc, @testAcc, @finalLoss, @detail, @seconds, @strategy, @parent)`,
    );
  }

  private static openDb(path: string): Database.Database {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    return db;
  }

  /** Create a new run; refuses to overwrite one. */
  static create(config: RunConfig, root?: string): SqliteStore {
    checkRunName(config.run);
    const dir = runPath(config.run, root);
    mkdirSync(dir, { recursive: true });
    const db = SqliteStore.openDb(join(dir, 'run.db'));
    const existing = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").get();
    if (existing) {
      db.close();
      throw new RunExistsError(`run '${config.run}' already exists in ${dir}: pass --resume to continue it, or pick another --run`);
    }
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE candidates (
        idx INTEGER PRIMARY KEY, batch INTEGER NOT NULL, rule TEXT NOT NULL, hash TEXT NOT NULL, fingerprint TEXT,
        status TEXT NOT NULL, reward REAL NOT NULL, best_lr REAL, val_acc REAL, test_acc REAL, final_loss REAL,
        detail TEXT NOT NULL, seconds REAL NOT NULL, strategy TEXT NOT NULL, parent INTEGER
      );
      CREATE INDEX candidates_hash ON candidates (hash);
      CREATE INDEX candidates_fingerprint ON candidates (fingerprint);
      CREATE TABLE checkpoints (batch INTEGER PRIMARY KEY, samples INTEGER NOT NULL, state TEXT NOT NULL, stats TEXT NOT NULL);
    `);
    const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
    db.transaction(() => {
      put.run('schema', String(SCHEMA_VERSION));
      put.run('config', JSON.stringify(config));
    })();
    return new SqliteStore(db, config);
  }

  /** Open an existing run. */
  static open(run: string, root?: string): SqliteStore {
    checkRunName(run);
    const dir = runPath(run, root);
    let db: Database.Database;
    try {
      db = new Database(join(dir, 'run.db'), { fileMustExist: true });
    } catch {
      throw new RunMissingError(`no run '${run}' in ${runsDir(root)}`);
    }
    db.pragma('journal_mode = WAL');
    const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    const schema = Number(meta.get('schema'));
    if (schema !== SCHEMA_VERSION) {
      db.close();
      throw new Error(`run '${run}' has store schema ${schema}; this nos reads schema ${SCHEMA_VERSION}`);
    }
    return new SqliteStore(db, JSON.parse(meta.get('config') ?? '{}') as RunConfig);
  }

  candidates(): Candidate[] {
    return (this.db.prepare('SELECT * FROM candidates ORDER BY idx').all() as Row[]).map(toCandidate);
  }

  byHash(hash: string): Candidate | undefined {
    const r = this.db.prepare("SELECT * FROM candidates WHERE hash = ? AND status NOT IN ('cached') ORDER BY idx LIMIT 1").get(hash) as Row | undefined;
    return r ? toCandidate(r) : undefined;
  }

  byFingerprint(fingerprint: string): Candidate | undefined {
    const r = this.db.prepare("SELECT * FROM candidates WHERE fingerprint = ? AND status NOT IN ('cached', 'rejected') ORDER BY idx LIMIT 1").get(fingerprint) as
      | Row
      | undefined;
    return r ? toCandidate(r) : undefined;
  }

  add(c: Candidate): void {
    this.insert.run(c);
  }

  commitBatch(cs: readonly Candidate[], checkpoint: StrategyCheckpoint): void {
    this.db.transaction(() => {
      for (const c of cs) this.insert.run(c);
      this.db.prepare('INSERT OR REPLACE INTO checkpoints (batch, samples, state, stats) VALUES (@batch, @samples, @state, @stats)').run(checkpoint);
    })();
  }

  lastCheckpoint(): StrategyCheckpoint | undefined {
    return this.db.prepare('SELECT * FROM checkpoints ORDER BY batch DESC LIMIT 1').get() as StrategyCheckpoint | undefined;
  }

  checkpoints(): StrategyCheckpoint[] {
    return this.db.prepare('SELECT * FROM checkpoints ORDER BY batch').all() as StrategyCheckpoint[];
  }

  close(): void {
    this.db.close();
  }
}
