/**
 * The durable results store: one SQLite database per run (better-sqlite3, WAL while a search
 * writes it), under `search-results/runs/<run>/run.db`. Every evaluated candidate is committed
 * as it arrives, and a strategy checkpoint with each batch, so a `kill -9` loses at most what
 * was in flight. The search loop talks to the `ResultsStore` interface, so another back end
 * can slot in.
 *
 * A store opened for writing holds the run's lock (`run.lock`: pid, host, a token), so two
 * searches never write one run; a lock whose process is gone (same host) is taken over. A
 * store opened read-only takes no lock and writes nothing (a run.db the user can only read).
 * Problems of the environment (permissions, a read-only or full disk) are `StoreError`s with a
 * message that says what and where: user errors, not bugs.
 */
import { randomUUID } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type Database from 'better-sqlite3';
import type { Status } from '../evaluator/train.js';
import { requireOptional } from '../util/optional-deps.js';
import { systemRootOf } from '../util/paths.js';

/** better-sqlite3, loaded when a store is first opened (an optional dependency: apps that only want an optimizer need not install it). */
const sqlite = (): typeof Database => requireOptional<typeof Database>('better-sqlite3');
import { z } from 'zod';
import { shown } from '../util/terminal.js';
import {
  RunDamagedError,
  RunExistsError,
  RunLockedError,
  RunMissingError,
  RunNameError,
  StoreAccessError,
  StoreError,
} from './errors.js';

export const SCHEMA_VERSION = 1;

/**
 * What the store itself reads of a run's config: the run's name. The rest (every setting that
 * changes a run's results) is its owner's to type and check: controller/config.ts.
 */
export interface StoredConfig {
  readonly run: string;
}

/**
 * Turns a run's stored config (parsed JSON, untrusted: an old nos or an edited run.db) into the
 * owner's type, or throws a StoreError that names the run and the field.
 */
export type ConfigParser<C extends StoredConfig> = (
  raw: unknown,
  where: { readonly run: string; readonly dir: string },
) => C;

/** The stored config as it is: a JSON object (its `run` is the folder's name, set by the store). */
const asStored: ConfigParser<StoredConfig> = (raw, where) => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new StoreError(
      `run '${where.run}' in ${where.dir}: its stored config is not readable: config: not an object`,
    );
  return { ...(raw as Record<string, unknown>), run: where.run };
};

/** A run's workload suite: the reward's workloads, the verdicts' workloads, how scores aggregate. */
export interface SuiteConfig {
  readonly search: readonly string[];
  readonly heldOut: readonly string[];
  /** 'mean': the mean of scores normalised against the baseline; 'profile': AlgoPerf's performance profile. */
  readonly aggregate: 'mean' | 'profile';
  /** The rule each workload's score is normalised against (the funnel's baseline too). */
  readonly baseline: string;
}

/** One evaluation of a rule at one funnel rung, workload and seed (rung 0 is the search's own). */
export interface Evaluation {
  readonly hash: string;
  readonly rung: number;
  readonly seed: number;
  readonly rule: string;
  readonly task: string;
  readonly status: Status;
  readonly reward: number;
  readonly bestLr: number | null;
  readonly valAcc: number | null;
  readonly testAcc: number | null;
  readonly seconds: number;
}

/** A store that also keeps the funnel's evaluations (one row per rule x rung x workload x seed). */
export interface FunnelStore {
  evaluations(): Evaluation[];
  /** Record one evaluation durably; a row that exists is kept (evaluations are never recomputed). */
  addEvaluation(e: Evaluation): void;
  /** addEvaluation for many rows, all or none (one transaction). */
  addEvaluations(es: readonly Evaluation[]): void;
}

export type CandidateStatus = Status | 'rejected' | 'cached';

import { TRAINED_STATUSES } from './samples.js';

export {
  isTrained,
  type SampleKind,
  sampleCounts,
  sampleKind,
  TRAINED_STATUSES,
} from './samples.js';

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
  /**
   * The batches the strategy had proposed beyond this one when it was saved (JSON: a list of
   * proposal lists; the pipelined loop's S batches in flight), or null: none (runs of the
   * synchronous loop, and runs made before the column existed).
   */
  readonly pending?: string | null;
}

export interface ResultsStore<C extends StoredConfig = StoredConfig> {
  readonly config: C;
  candidates(): Candidate[];
  byHash(hash: string): Candidate | undefined;
  byFingerprint(fingerprint: string): Candidate | undefined;
  /** Record one candidate, durably, as soon as it is known. */
  add(c: Candidate): void;
  /**
   * Record the strategy's state after a batch. The batch's candidates were recorded one by one
   * with add() as they finished; on resume, the loop restores the last checkpoint and reuses them.
   */
  saveCheckpoint(checkpoint: StrategyCheckpoint): void;
  lastCheckpoint(): StrategyCheckpoint | undefined;
  checkpoints(): StrategyCheckpoint[];
  close(): void;
}

export { RunDamagedError, RunExistsError, RunLockedError, RunMissingError, RunNameError, StoreAccessError, StoreError };

const ERRNO_WORDS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EFBIG: 'the file would exceed the largest file this process may write (ulimit -f)',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  ENAMETOOLONG: 'the path is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
  EIO: 'input/output error',
  EEXIST: 'it already exists',
  ENOENT: 'no such file or folder',
};

const SQLITE_WORDS: readonly [RegExp, string][] = [
  [/^SQLITE_READONLY/, 'the database or its folder is read-only'],
  [/^SQLITE_CANTOPEN/, 'the database cannot be opened (missing, or its folder is not accessible)'],
  [/^SQLITE_FULL/, 'the disk is full'],
  [/^SQLITE_IOERR/, 'input/output error'],
  [/^SQLITE_PERM/, 'permission denied'],
  [/^SQLITE_NOTADB/, 'the file is not a SQLite database'],
  [/^SQLITE_CORRUPT/, 'the database file is corrupt'],
  [/^SQLITE_BUSY/, 'the database is locked by another process'],
];

function codeOf(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * A message for an error the environment caused (errno codes from the file system, SQLite's
 * I/O codes), or undefined when it is not one (a bug).
 */
export function describeEnvironmentError(e: unknown): string | undefined {
  const code = codeOf(e);
  if (code === undefined) return undefined;
  const message = e instanceof Error ? e.message : String(e);
  const errno = ERRNO_WORDS[code];
  if (errno !== undefined && code !== 'ENOENT' && code !== 'EEXIST') return `${message} (${errno})`;
  const sqlite = SQLITE_WORDS.find(([re]) => re.test(code));
  if (sqlite) return `${message}: ${sqlite[1]} (${code})`;
  return undefined;
}

/** An environment error as a StoreAccessError that says what was being done; anything else as is. */
function asAccessError(what: string, e: unknown): unknown {
  if (e instanceof StoreError) return e;
  const code = codeOf(e);
  const words = code === undefined ? undefined : (ERRNO_WORDS[code] ?? SQLITE_WORDS.find(([re]) => re.test(code))?.[1]);
  return code !== undefined && words !== undefined ? new StoreAccessError(`${what}: ${words} (${code})`) : e;
}

/** Run `f`; an environment error becomes a StoreAccessError that says what was being done. */
function access<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw asAccessError(what, e);
  }
}

/** Refuse to create anything under /proc, /sys or /dev (see util/paths.ts). */
export function assertCreatablePath(path: string, what: string): void {
  const root = systemRootOf(path);
  if (root !== undefined)
    throw new StoreAccessError(`${what} '${path}' is under ${root}, a system folder: pick another place`);
}

/** Where runs are kept (a run named X is the folder `<runs folder>/X`). */
export interface RunsLocation {
  /** The folder the runs folder is under (default: the working directory), unless $NOS_RUNS. */
  readonly root?: string;
  /** The runs folder itself: wins over `root` and $NOS_RUNS (the library's `root` option). */
  readonly runs?: string;
}

/** The runs folder: `runs` if given, else $NOS_RUNS, else `<root>/search-results/runs`. */
export function runsDir(where: string | RunsLocation = {}): string {
  const w = typeof where === 'string' ? { root: where } : where;
  if (w.runs !== undefined) return w.runs;
  return process.env.NOS_RUNS || join(w.root ?? process.cwd(), 'search-results', 'runs');
}

export function runPath(run: string, where?: string | RunsLocation): string {
  return join(runsDir(where), run);
}

/** Remove `dir`, then its parents up to `top`, each only while it is empty (folders a failed create made). */
function removeEmptyFolders(dir: string, top: string): void {
  const last = resolve(top);
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (d !== last && !d.startsWith(`${last}/`)) return;
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === last) return;
  }
}

const RUN_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;

export function checkRunName(run: string): void {
  if (!RUN_NAME.test(run))
    throw new RunNameError(
      `run name '${shown(run)}' must be 1-64 letters, digits, '.' or '-', starting with a letter or digit`,
    );
}

// ---------------------------------------------------------------------------------------------
// The run lock

const LOCK_FILE = 'run.lock';

interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
  readonly since: string;
}

const lockInfo = z.object({ pid: z.number().int(), host: z.string(), token: z.string(), since: z.string() });

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return codeOf(e) === 'EPERM';
  }
}

/** The lock file's holder; null if the file is not a lock nos wrote; undefined if there is none. */
function readLock(path: string): LockInfo | null | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (codeOf(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const r = lockInfo.safeParse(JSON.parse(text));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}

/**
 * Whether a run folder's lock is held: `held` by a live nos on this host (or by one on another
 * host, which cannot be checked), `stale` (its process is gone), `unreadable` (a lock file nos
 * did not write), or `free` (no lock file). Reads only.
 */
export type LockState =
  | { readonly state: 'held'; readonly pid: number; readonly host: string; readonly since: string }
  | { readonly state: 'stale' | 'unreadable' | 'free' };

export function lockState(dir: string): LockState {
  let holder: LockInfo | null | undefined;
  try {
    holder = readLock(join(dir, LOCK_FILE));
  } catch {
    return { state: 'unreadable' };
  }
  if (holder === undefined) return { state: 'free' };
  if (holder === null) return { state: 'unreadable' };
  if (holder.host === hostname() && !pidAlive(holder.pid)) return { state: 'stale' };
  return { state: 'held', pid: holder.pid, host: holder.host, since: holder.since };
}

const held = new Set<RunLock>();
let exitHook = false;

/** An exclusive lock on a run folder, held by this process until released (or it exits). */
export class RunLock {
  private released = false;

  private constructor(
    readonly path: string,
    private readonly info: LockInfo,
  ) {
    held.add(this);
    if (!exitHook) {
      exitHook = true;
      process.on('exit', () => {
        for (const l of held) l.release();
      });
    }
  }

  static acquire(dir: string, run: string): RunLock {
    const path = join(dir, LOCK_FILE);
    const info: LockInfo = { pid: process.pid, host: hostname(), token: randomUUID(), since: new Date().toISOString() };
    const busy = (h: LockInfo | null) =>
      new RunLockedError(
        h === null
          ? `run '${run}' is locked by ${path}, which nos cannot read: if no nos uses the run, remove that file`
          : `run '${run}' is in use by another nos (pid ${h.pid} on ${h.host}, since ${h.since}): wait for it to finish or stop it${h.host === info.host ? '' : `; if no nos runs on ${h.host} any more, remove ${path}`}`,
      );
    for (let attempt = 0; attempt < 5; attempt++) {
      // Written whole, then linked into place: the lock file never exists half-written.
      const tmp = `${path}.${process.pid}.${info.token}`;
      writeFileSync(tmp, JSON.stringify(info));
      try {
        linkSync(tmp, path);
        return new RunLock(path, info);
      } catch (e) {
        if (codeOf(e) !== 'EEXIST') throw e;
      } finally {
        rmSync(tmp, { force: true });
      }
      const holder = readLock(path);
      if (holder === undefined) continue; // released meanwhile
      if (holder === null || holder.host !== info.host || pidAlive(holder.pid)) throw busy(holder);
      // A stale lock (its process is gone): move it aside atomically, and make sure the one
      // moved is the stale one, not a lock another process has just taken.
      const aside = `${path}.stale.${info.token}`;
      try {
        renameSync(path, aside);
      } catch (e) {
        if (codeOf(e) === 'ENOENT') continue;
        throw e;
      }
      const moved = readLock(aside);
      if (moved && moved.token !== holder.token) {
        try {
          linkSync(aside, path);
        } catch {
          // someone else holds it now: either way it is not ours
        }
        rmSync(aside, { force: true });
        throw busy(moved);
      }
      rmSync(aside, { force: true });
    }
    throw new RunLockedError(`run '${run}': could not take its lock ${path} (it keeps changing hands)`);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    try {
      if (readLock(this.path)?.token === this.info.token) unlinkSync(this.path);
    } catch {
      // the folder went away or became read-only: a lock left behind is stale, and is detected
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The store

type Row = Record<string, unknown>;

/**
 * The largest values a run.db may hold (characters; rule text as the language allows it). A
 * value past these is damage, refused before it is loaded.
 */
export const STORE_LIMITS = {
  rule: 200_000,
  name: 256,
  detail: 16 * 1024 * 1024,
  state: 64 * 1024 * 1024,
  stats: 1024 * 1024,
  pending: 64 * 1024 * 1024,
  meta: 1024 * 1024,
  curvePoints: 1_000_000,
} as const;

/**
 * The columns nos reads, by table (a run.db missing one is damaged). Not listed: the checkpoints'
 * `pending`, which runs made before the pipelined loop lack (added when they are opened for
 * writing; read as NULL until then), but checked as the others when it is there.
 */
const COLUMNS: Readonly<Record<'meta' | 'candidates' | 'checkpoints' | 'evaluations', readonly string[]>> = {
  meta: ['key', 'value'],
  candidates: [
    'idx',
    'batch',
    'rule',
    'hash',
    'fingerprint',
    'status',
    'reward',
    'best_lr',
    'val_acc',
    'test_acc',
    'final_loss',
    'detail',
    'seconds',
    'strategy',
    'parent',
  ],
  checkpoints: ['batch', 'samples', 'state', 'stats'],
  evaluations: [
    'hash',
    'rung',
    'seed',
    'rule',
    'task',
    'status',
    'reward',
    'best_lr',
    'val_acc',
    'test_acc',
    'seconds',
  ],
};

/** Text columns and their largest values, by table. */
const SIZES: Readonly<Record<'meta' | 'candidates' | 'checkpoints' | 'evaluations', Readonly<Record<string, number>>>> =
  {
    meta: { key: STORE_LIMITS.name, value: STORE_LIMITS.meta },
    candidates: {
      rule: STORE_LIMITS.rule,
      hash: STORE_LIMITS.name,
      fingerprint: STORE_LIMITS.name,
      status: STORE_LIMITS.name,
      detail: STORE_LIMITS.detail,
      strategy: STORE_LIMITS.name,
    },
    checkpoints: { state: STORE_LIMITS.state, stats: STORE_LIMITS.stats, pending: STORE_LIMITS.pending },
    evaluations: {
      hash: STORE_LIMITS.name,
      rule: STORE_LIMITS.rule,
      task: STORE_LIMITS.name,
      status: STORE_LIMITS.name,
    },
  };

/** A stored value as a message shows it. */
function describe(v: unknown): string {
  if (v === null || v === undefined) return 'empty (NULL)';
  if (typeof v === 'string') return `text ('${shown(v, 40)}')`;
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'bigint') return `the integer ${v}`;
  if (v instanceof Uint8Array) return `a blob of ${v.length} bytes`;
  return typeof v;
}

const CANDIDATE_STATUSES: readonly CandidateStatus[] = [...TRAINED_STATUSES, 'rejected', 'cached'];

/** Reads one row's columns, each checked; a value that is not what nos writes throws `fail`'s error. */
class RowReader {
  constructor(
    private readonly row: Row,
    private readonly where: string,
    private readonly fail: (what: string) => Error,
  ) {}

  private bad(col: string, expected: string): never {
    throw this.fail(`${this.where}: ${col} is ${describe(this.row[col])}, where ${expected} belongs`);
  }

  int(col: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.row[col];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
      this.bad(col, `an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? '2^53-1' : max}`);
    return v;
  }

  intOrNull(col: string, min = 0): number | null {
    return this.row[col] === null ? null : this.int(col, min);
  }

  number(col: string, min = Number.NEGATIVE_INFINITY): number {
    const v = this.row[col];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
      this.bad(col, min === Number.NEGATIVE_INFINITY ? 'a finite number' : `a finite number >= ${min}`);
    return v;
  }

  numberOrNull(col: string): number | null {
    return this.row[col] === null ? null : this.number(col);
  }

  text(col: string): string {
    const v = this.row[col];
    if (typeof v !== 'string') this.bad(col, 'text');
    return v;
  }

  textOrNull(col: string): string | null {
    return this.row[col] === null ? null : this.text(col);
  }

  oneOf<T extends string>(col: string, values: readonly T[]): T {
    const v = this.row[col];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v))
      this.bad(col, `one of ${values.join(', ')}`);
    return v as T;
  }

  /** JSON text; `check` says what is wrong with the parsed value, if anything. */
  json(col: string, check: (v: unknown) => string | undefined = () => undefined): string {
    const text = this.text(col);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.bad(col, 'JSON');
    }
    const problem = check(value);
    if (problem !== undefined) throw this.fail(`${this.where}: ${col} ${problem}`);
    return text;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What is wrong with a candidate's detail JSON, if anything (the report and export read it). */
function detailProblem(v: unknown): string | undefined {
  if (!isObject(v)) return 'is JSON but not an object';
  if (v.curve !== undefined) {
    if (!Array.isArray(v.curve)) return 'holds a curve that is not a list';
    if (v.curve.length > STORE_LIMITS.curvePoints)
      return `holds a curve of ${v.curve.length} points; at most ${STORE_LIMITS.curvePoints}`;
    if (!v.curve.every((x) => x === null || typeof x === 'number')) return 'holds a curve that is not numbers';
  }
  if (v.curveEvery !== undefined && !(typeof v.curveEvery === 'number' && v.curveEvery > 0))
    return 'holds a curveEvery that is not a positive number';
  if (v.grid !== undefined && !Array.isArray(v.grid)) return 'holds a grid that is not a list';
  if (v.reason !== undefined && v.reason !== null && typeof v.reason !== 'string')
    return 'holds a reason that is not text';
  return undefined;
}

/** A stored candidate row, checked (a run.db is untrusted input). */
function toCandidate(r: Row, fail: (what: string) => Error): Candidate {
  const c = new RowReader(r, `candidates row ${describeKey(r.idx)}`, fail);
  return {
    index: c.int('idx'),
    batch: c.int('batch'),
    rule: c.text('rule'),
    hash: c.text('hash'),
    fingerprint: c.textOrNull('fingerprint'),
    status: c.oneOf('status', CANDIDATE_STATUSES),
    reward: c.number('reward'),
    bestLr: c.numberOrNull('best_lr'),
    valAcc: c.numberOrNull('val_acc'),
    testAcc: c.numberOrNull('test_acc'),
    finalLoss: c.numberOrNull('final_loss'),
    detail: c.json('detail', detailProblem),
    seconds: c.number('seconds', 0),
    strategy: c.text('strategy'),
    parent: c.intOrNull('parent'),
  };
}

/**
 * A stored strategy checkpoint, checked: its state and stats are JSON (the strategy reads the
 * state), its proposed batches (`pending`: absent or NULL in runs of the synchronous loop) JSON
 * lists (the search loop checks each proposal in them: controller/search.ts).
 */
function toCheckpoint(r: Row, fail: (what: string) => Error): StrategyCheckpoint {
  const c = new RowReader(r, `checkpoints row ${describeKey(r.batch)}`, fail);
  return {
    batch: c.int('batch'),
    samples: c.int('samples'),
    state: c.json('state'),
    stats: c.json('stats', (v) => (isObject(v) ? undefined : 'is JSON but not an object')),
    pending:
      r.pending === undefined || r.pending === null
        ? null
        : c.json('pending', (v) =>
            Array.isArray(v) && v.every((b) => Array.isArray(b)) ? undefined : 'is JSON but not a list of batches',
          ),
  };
}

/** A row's key for messages: the number, or what stands there instead. */
function describeKey(v: unknown): string {
  return typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : `(key ${describe(v)})`;
}

/** A stored config's JSON text, parsed by `parse` (a run.db is untrusted input). */
function parseConfig<C extends StoredConfig>(
  text: string | undefined,
  run: string,
  dir: string,
  parse: ConfigParser<C>,
): C {
  let raw: unknown;
  try {
    raw = JSON.parse(text ?? '');
  } catch {
    throw new StoreError(
      `run '${run}' in ${dir} has no readable config (its run.db was not made by nos, or is damaged)`,
    );
  }
  return parse(raw, { run, dir });
}

export interface OpenOptions<C extends StoredConfig = StoredConfig> extends RunsLocation {
  /** Read only: no lock, no writes (leaderboard, report, export). */
  readonly readonly?: boolean;
  /** Types and checks the stored config (controller/config.ts); default: the JSON object as it is. */
  readonly parse?: ConfigParser<C>;
  /** How long a read-only open waits for a database another process has locked (default 5 s). */
  readonly busyTimeoutMs?: number;
}

/**
 * The funnel's rows, one per rule x rung x workload x seed (added to runs made before it when
 * they are opened for writing; a table keyed without the workload, from before the suite, is
 * rebuilt with it: its rows are kept).
 */
const EVALUATIONS = `
  CREATE TABLE IF NOT EXISTS evaluations (
    hash TEXT NOT NULL, rung INTEGER NOT NULL, seed INTEGER NOT NULL, rule TEXT NOT NULL, task TEXT NOT NULL,
    status TEXT NOT NULL, reward REAL NOT NULL, best_lr REAL, val_acc REAL, test_acc REAL, seconds REAL NOT NULL,
    PRIMARY KEY (hash, rung, task, seed)
  );
`;

/** Rebuild an evaluations table keyed by (hash, rung, seed) with the workload in its key, rows kept. */
function migrateEvaluations(db: Database.Database): void {
  const row = db.prepare("SELECT sql FROM sqlite_master WHERE type='table' AND name='evaluations'").get() as
    | { sql: string }
    | undefined;
  if (row === undefined || /PRIMARY KEY \(hash, rung, task, seed\)/.test(row.sql)) return;
  db.transaction(() => {
    db.exec('ALTER TABLE evaluations RENAME TO evaluations_before_suite');
    db.exec(EVALUATIONS);
    db.exec('INSERT OR IGNORE INTO evaluations SELECT * FROM evaluations_before_suite');
    db.exec('DROP TABLE evaluations_before_suite');
  })();
}

const TABLES = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS candidates (
    idx INTEGER PRIMARY KEY, batch INTEGER NOT NULL, rule TEXT NOT NULL, hash TEXT NOT NULL, fingerprint TEXT,
    status TEXT NOT NULL, reward REAL NOT NULL, best_lr REAL, val_acc REAL, test_acc REAL, final_loss REAL,
    detail TEXT NOT NULL, seconds REAL NOT NULL, strategy TEXT NOT NULL, parent INTEGER
  );
  CREATE INDEX IF NOT EXISTS candidates_hash ON candidates (hash);
  CREATE INDEX IF NOT EXISTS candidates_fingerprint ON candidates (fingerprint);
  CREATE TABLE IF NOT EXISTS checkpoints (batch INTEGER PRIMARY KEY, samples INTEGER NOT NULL, state TEXT NOT NULL, stats TEXT NOT NULL, pending TEXT);
${EVALUATIONS}`;

/** Add the checkpoints' `pending` column to a run made before it existed (opened for writing). */
function addPendingColumn(db: Database.Database): void {
  const columns = db.prepare('PRAGMA table_info(checkpoints)').all() as { name: string }[];
  if (columns.length > 0 && !columns.some((c) => c.name === 'pending'))
    db.exec('ALTER TABLE checkpoints ADD COLUMN pending TEXT');
}

/**
 * Close a database this process wrote, back in rollback-journal mode: a closed run.db is then
 * one file that anyone allowed to read it can open read-only (SQLite cannot read a WAL
 * database in a folder the reader may not write).
 */
function closeDb(db: Database.Database): void {
  try {
    db.pragma('journal_mode = DELETE');
  } catch {
    // another connection is reading it: it stays in WAL mode, which is fine
  }
  db.close();
}

/** A stored evaluation row (one rule x rung x seed of the funnel), checked. */
function toEvaluation(r: Row, fail: (what: string) => Error): Evaluation {
  const task = typeof r.task === 'string' ? shown(r.task, 40) : describe(r.task);
  const e = new RowReader(
    r,
    `evaluations row (rung ${describeKey(r.rung)}, ${task}, seed ${describeKey(r.seed)})`,
    fail,
  );
  return {
    hash: e.text('hash'),
    rung: e.int('rung', 0, 99),
    seed: e.int('seed'),
    rule: e.text('rule'),
    task: e.text('task'),
    status: e.oneOf('status', TRAINED_STATUSES),
    reward: e.number('reward'),
    bestLr: e.numberOrNull('best_lr'),
    valAcc: e.numberOrNull('val_acc'),
    testAcc: e.numberOrNull('test_acc'),
    seconds: e.number('seconds', 0),
  };
}

export class SqliteStore<C extends StoredConfig = StoredConfig> implements ResultsStore<C>, FunnelStore {
  private cfg: C;
  private readonly db: Database.Database;
  private readonly insert: Database.Statement | undefined;
  private closed = false;
  /** The outermost folder above the run's that creating it made (removed with an unused run, if empty). */
  private madeAbove: string | undefined;

  private constructor(
    db: Database.Database,
    config: C,
    /** The run's folder: where it was opened from (a copied run writes into its copy). */
    readonly dir: string,
    private readonly lock: RunLock | undefined,
    /** This process created the folder (an unused new run can be discarded). */
    private readonly madeDir: boolean,
    /** A private copy that a read-only open of a WAL database reads (removed on close). */
    private readonly scratch?: string,
  ) {
    this.db = db;
    this.cfg = config;
    this.insert = lock
      ? db.prepare(
          `INSERT OR REPLACE INTO candidates (idx, batch, rule, hash, fingerprint, status, reward, best_lr, val_acc, test_acc, final_loss, detail, seconds, strategy, parent)
       VALUES (@index, @batch, @rule, @hash, @fingerprint, @status, @reward, @bestLr, @valAcc, @testAcc, @finalLoss, @detail, @seconds, @strategy, @parent)`,
        )
      : undefined;
  }

  get config(): C {
    return this.cfg;
  }

  get readonly(): boolean {
    return this.lock === undefined;
  }

  private static openWritable(path: string): Database.Database {
    const db = new (sqlite())(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    return db;
  }

  /** Create a new run (and take its lock); refuses to overwrite one. Leaves nothing behind on failure. */
  static create<C extends StoredConfig>(config: C, where?: string | RunsLocation): SqliteStore<C> {
    checkRunName(config.run);
    const base = runsDir(where);
    const dir = join(base, config.run);
    assertCreatablePath(dir, 'the runs folder');
    const madeAbove = access(`cannot create the runs folder ${base}`, () => mkdirSync(base, { recursive: true }));
    let madeDir = false;
    access(`cannot create the run folder ${dir}`, () => {
      try {
        mkdirSync(dir);
        madeDir = true;
      } catch (e) {
        if (codeOf(e) !== 'EEXIST') throw e;
        if (!statSync(dir).isDirectory())
          throw new StoreAccessError(`cannot create run '${config.run}': ${dir} exists and is not a folder`);
      }
    });
    // An existing run, or a database that is not one, is refused before anything touches it
    // (no lock, no write). Only an empty database (a create that died at once) is taken over.
    const file = join(dir, 'run.db');
    const exists = () =>
      new RunExistsError(
        `run '${config.run}' already exists in ${dir}: pass --resume to continue it, or pick another --run`,
      );
    const foreign = (what: string) =>
      new RunExistsError(
        `cannot create run '${config.run}': ${file} is already there and is not a nos run (${what}); nos will not add a run to it: move it away, or pick another --run`,
      );
    if (!madeDir && existsSync(file)) {
      const peek = SqliteStore.peek(file);
      if (peek.kind === 'run') throw exists();
      if (peek.kind === 'foreign') throw foreign(`no stored config; it holds the tables ${peek.tables.join(', ')}`);
      if (peek.kind === 'unreadable') throw foreign(peek.why);
    }
    let lock: RunLock | undefined;
    let db: Database.Database | undefined;
    try {
      lock = access(`cannot create run '${config.run}' in ${dir}`, () => RunLock.acquire(dir, config.run));
      const d = access(`cannot create run '${config.run}' in ${dir}`, () => SqliteStore.openWritable(file));
      db = d;
      // Again under the lock: another process may have made it meanwhile.
      const tables = SqliteStore.tables(d);
      if (tables.includes('meta') && d.prepare("SELECT 1 FROM meta WHERE key = 'config'").get()) throw exists();
      if (tables.length > 0) throw foreign(`no stored config; it holds the tables ${tables.join(', ')}`);
      access(`cannot create run '${config.run}' in ${dir}`, () =>
        d.transaction(() => {
          d.exec(TABLES);
          const put = d.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
          put.run('schema', String(SCHEMA_VERSION));
          put.run('config', JSON.stringify(config));
        })(),
      );
      const store = new SqliteStore(d, config, dir, lock, madeDir);
      store.madeAbove = madeAbove;
      return store;
    } catch (e) {
      if (db !== undefined) closeDb(db);
      lock?.release();
      if (madeDir) rmSync(dir, { recursive: true, force: true });
      if (madeAbove !== undefined) removeEmptyFolders(base, madeAbove);
      throw e;
    }
  }

  /** The tables of a database, by name. */
  private static tables(db: Database.Database): string[] {
    return (
      db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").all() as { name: string }[]
    ).map((r) => r.name);
  }

  /**
   * What a database file holds (a read-only peek): a run (its config is stored), nothing (an
   * empty database, or an empty file), something else (tables but no config), or a file SQLite
   * cannot read.
   */
  private static peek(
    file: string,
  ): { kind: 'run' } | { kind: 'empty' } | { kind: 'foreign'; tables: string[] } | { kind: 'unreadable'; why: string } {
    try {
      if (statSync(file).size === 0) return { kind: 'empty' };
      const db = new (sqlite())(file, { readonly: true, fileMustExist: true });
      try {
        const tables = SqliteStore.tables(db);
        if (tables.includes('meta') && db.prepare("SELECT 1 FROM meta WHERE key = 'config'").get() !== undefined)
          return { kind: 'run' };
        return tables.length === 0 ? { kind: 'empty' } : { kind: 'foreign', tables };
      } finally {
        db.close();
      }
    } catch (e) {
      return { kind: 'unreadable', why: describeEnvironmentError(e) ?? (e instanceof Error ? e.message : String(e)) };
    }
  }

  /**
   * Open an existing run by the name of its folder. For writing (the default) it takes the
   * run's lock; `readonly` takes none and writes nothing. The config's `run` is the folder's
   * name: a copied run is its own run.
   */
  static open<C extends StoredConfig>(
    run: string,
    options: OpenOptions<C> & { readonly parse: ConfigParser<C> },
  ): SqliteStore<C>;
  static open(run: string, rootOrOptions?: string | OpenOptions): SqliteStore;
  static open<C extends StoredConfig>(run: string, rootOrOptions?: string | OpenOptions<C>): SqliteStore<C> {
    const options: OpenOptions<C> = typeof rootOrOptions === 'string' ? { root: rootOrOptions } : (rootOrOptions ?? {});
    // Without a parser, C is StoredConfig (the overloads say so), which asStored gives.
    const parse = options.parse ?? (asStored as ConfigParser<StoredConfig> as ConfigParser<C>);
    checkRunName(run);
    const dir = runPath(run, options);
    const file = join(dir, 'run.db');
    if (!existsSync(file)) throw new RunMissingError(`no run '${run}' in ${runsDir(options)}`);
    return options.readonly
      ? SqliteStore.openReadonly(run, dir, parse, options.busyTimeoutMs)
      : SqliteStore.openForWriting(run, dir, parse);
  }

  /**
   * Open the run in folder `dir` read-only (no lock, no writes), wherever the folder is: the run
   * is named by the folder. For readers of any runs folder (`nos dashboard --dir D`).
   */
  static openFolder<C extends StoredConfig>(
    dir: string,
    options: { readonly parse: ConfigParser<C>; readonly busyTimeoutMs?: number },
  ): SqliteStore<C> {
    const run = basename(dir);
    checkRunName(run);
    if (!existsSync(join(dir, 'run.db'))) throw new RunMissingError(`no run in ${dir} (it has no run.db)`);
    return SqliteStore.openReadonly(run, dir, options.parse, options.busyTimeoutMs);
  }

  private static readMeta<C extends StoredConfig>(
    db: Database.Database,
    run: string,
    dir: string,
    parse: ConfigParser<C>,
  ): C {
    const hasMeta = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'").get();
    if (!hasMeta)
      throw new RunMissingError(
        `run '${run}' in ${dir} is incomplete (no stored config): remove the folder and start it again`,
      );
    SqliteStore.checkTables(db, run, dir, ['meta']);
    const meta = new Map(
      (db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [
        r.key,
        r.value,
      ]),
    );
    const schema = Number(meta.get('schema'));
    if (schema !== SCHEMA_VERSION)
      throw new StoreError(
        `run '${run}' has store schema ${shown(String(meta.get('schema')), 40)}; this nos reads schema ${SCHEMA_VERSION}`,
      );
    const config = { ...parseConfig(meta.get('config'), run, dir, parse), run };
    SqliteStore.checkTables(db, run, dir, ['candidates', 'checkpoints', 'evaluations']);
    return config;
  }

  /** A RunDamagedError for this run: `what` says where and what. */
  private static damaged(run: string, dir: string): (what: string) => Error {
    return (what) => new RunDamagedError(`run '${run}' in ${dir} is damaged: ${what}`);
  }

  /**
   * The tables and columns nos reads are there (the funnel's evaluations may be missing from
   * runs made before it), and no text value is larger than nos writes (checked without loading
   * it: a 1 GB value is refused, not read).
   */
  private static checkTables(
    db: Database.Database,
    run: string,
    dir: string,
    which: readonly (keyof typeof COLUMNS)[],
  ): void {
    const damaged = SqliteStore.damaged(run, dir);
    const tables = SqliteStore.tables(db);
    for (const table of which) {
      const columns = COLUMNS[table];
      if (!tables.includes(table)) {
        if (table === 'evaluations') continue;
        throw damaged(`its ${table} table is missing`);
      }
      const have = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
      const missing = columns.filter((c) => !have.includes(c));
      if (missing.length > 0)
        throw damaged(`its ${table} table has no column ${missing.join(', ')} (it has ${have.join(', ')})`);
      // Optional columns (checkpoints.pending) are sized when they are there.
      const sizes = Object.entries(SIZES[table]).filter(([c]) => have.includes(c));
      const longest = db
        .prepare(`SELECT ${sizes.map(([c]) => `max(length(${c})) AS ${c}`).join(', ')} FROM ${table}`)
        .get() as Record<string, number | null>;
      for (const [column, max] of sizes) {
        const n = longest[column];
        if (typeof n === 'number' && n > max)
          throw damaged(`${table}.${column} holds a value of ${n} characters; at most ${max}`);
      }
    }
  }

  private static openForWriting<C extends StoredConfig>(
    run: string,
    dir: string,
    parse: ConfigParser<C>,
  ): SqliteStore<C> {
    const lock = access(`cannot open run '${run}' for writing in ${dir}`, () => RunLock.acquire(dir, run));
    let db: Database.Database | undefined;
    try {
      db = access(`cannot open run '${run}' for writing in ${dir}`, () =>
        SqliteStore.openWritable(join(dir, 'run.db')),
      );
      const d = db;
      const config = access(`cannot read run '${run}' in ${dir}`, () => SqliteStore.readMeta(d, run, dir, parse));
      access(`cannot open run '${run}' for writing in ${dir}`, () => {
        d.exec(EVALUATIONS);
        migrateEvaluations(d);
        addPendingColumn(d);
      });
      const store = new SqliteStore(d, config, dir, lock, false);
      // A copied run: record the name it goes by now.
      const stored = JSON.parse(
        (d.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
      ) as { run?: unknown };
      if (stored.run !== run) store.updateConfig(config);
      return store;
    } catch (e) {
      if (db !== undefined) closeDb(db);
      lock.release();
      throw e;
    }
  }

  private static openReadonly<C extends StoredConfig>(
    run: string,
    dir: string,
    parse: ConfigParser<C>,
    busyTimeoutMs?: number,
  ): SqliteStore<C> {
    const file = join(dir, 'run.db');
    const attempt = (path: string) => {
      const db = new (sqlite())(path, {
        readonly: true,
        fileMustExist: true,
        ...(busyTimeoutMs === undefined ? {} : { timeout: busyTimeoutMs }),
      });
      try {
        return { db, config: SqliteStore.readMeta(db, run, dir, parse) };
      } catch (e) {
        db.close();
        throw e;
      }
    };
    try {
      const { db, config } = attempt(file);
      return new SqliteStore(db, config, dir, undefined, false);
    } catch (e) {
      const code = codeOf(e) ?? '';
      if (!/^SQLITE_(READONLY|CANTOPEN)/.test(code)) throw asAccessError(`cannot read run '${run}' in ${dir}`, e);
    }
    // A database in WAL mode (a search is writing it, or was killed) in a folder this user may
    // not write: SQLite cannot read it in place. Read a private copy instead.
    const scratch = mkdtempSync(join(tmpdir(), 'nos-run-'));
    try {
      access(`cannot read run '${run}' in ${dir}`, () => {
        copyFileSync(file, join(scratch, 'run.db'));
        if (existsSync(`${file}-wal`)) copyFileSync(`${file}-wal`, join(scratch, 'run.db-wal'));
      });
      const { db, config } = access(`cannot read run '${run}' in ${dir}`, () => attempt(join(scratch, 'run.db')));
      return new SqliteStore(db, config, dir, undefined, false, scratch);
    } catch (e) {
      rmSync(scratch, { recursive: true, force: true });
      throw e;
    }
  }

  private writable(): void {
    if (this.lock === undefined) throw new Error(`run '${this.cfg.run}' was opened read-only`);
  }

  /** Replace the stored config (a resume that raised the budget, a copied run's new name). */
  updateConfig(config: C): void {
    this.writable();
    access(`cannot write run '${this.cfg.run}' in ${this.dir}`, () =>
      this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('config', ?)").run(JSON.stringify(config)),
    );
    this.cfg = config;
  }

  /** Read from the database: a SQLite error (a corrupt page) is a StoreAccessError naming the run. */
  private read<T>(f: () => T): T {
    return access(`cannot read run '${this.cfg.run}' in ${this.dir}`, f);
  }

  private get damaged(): (what: string) => Error {
    return SqliteStore.damaged(this.cfg.run, this.dir);
  }

  /** Every sample, each row checked (a RunDamagedError names the first that is not what nos writes). */
  candidates(): Candidate[] {
    const rows = this.read(() => this.db.prepare('SELECT * FROM candidates ORDER BY idx').all() as Row[]);
    return rows.map((r) => toCandidate(r, this.damaged));
  }

  byHash(hash: string): Candidate | undefined {
    const r = this.read(() =>
      this.db
        .prepare("SELECT * FROM candidates WHERE hash = ? AND status NOT IN ('cached') ORDER BY idx LIMIT 1")
        .get(hash),
    ) as Row | undefined;
    return r ? toCandidate(r, this.damaged) : undefined;
  }

  byFingerprint(fingerprint: string): Candidate | undefined {
    const r = this.read(() =>
      this.db
        .prepare(
          `SELECT * FROM candidates WHERE fingerprint = ? AND status IN (${TRAINED_STATUSES.map((s) => `'${s}'`).join(', ')}) ORDER BY idx LIMIT 1`,
        )
        .get(fingerprint),
    ) as Row | undefined;
    return r ? toCandidate(r, this.damaged) : undefined;
  }

  add(c: Candidate): void {
    this.writable();
    access(`cannot write run '${this.cfg.run}' in ${this.dir}`, () => this.insert?.run(c));
  }

  evaluations(): Evaluation[] {
    if (!this.db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name='evaluations'").get()) return [];
    const rows = this.read(
      () => this.db.prepare('SELECT * FROM evaluations ORDER BY rung, hash, task, seed').all() as Row[],
    );
    return rows.map((r) => toEvaluation(r, this.damaged));
  }

  addEvaluation(e: Evaluation): void {
    this.addEvaluations([e]);
  }

  addEvaluations(es: readonly Evaluation[]): void {
    this.writable();
    if (es.length === 0) return;
    access(`cannot write run '${this.cfg.run}' in ${this.dir}`, () => {
      const insert = this.db.prepare(
        `INSERT OR IGNORE INTO evaluations (hash, rung, seed, rule, task, status, reward, best_lr, val_acc, test_acc, seconds)
           VALUES (@hash, @rung, @seed, @rule, @task, @status, @reward, @bestLr, @valAcc, @testAcc, @seconds)`,
      );
      this.db.transaction(() => {
        for (const e of es) insert.run(e);
      })();
    });
  }

  saveCheckpoint(checkpoint: StrategyCheckpoint): void {
    this.writable();
    access(`cannot write run '${this.cfg.run}' in ${this.dir}`, () =>
      this.db
        .prepare(
          'INSERT OR REPLACE INTO checkpoints (batch, samples, state, stats, pending) VALUES (@batch, @samples, @state, @stats, @pending)',
        )
        .run({ ...checkpoint, pending: checkpoint.pending ?? null }),
    );
  }

  lastCheckpoint(): StrategyCheckpoint | undefined {
    const r = this.read(() => this.db.prepare('SELECT * FROM checkpoints ORDER BY batch DESC LIMIT 1').get()) as
      | Row
      | undefined;
    return r === undefined ? undefined : toCheckpoint(r, this.damaged);
  }

  checkpoints(): StrategyCheckpoint[] {
    const rows = this.read(() => this.db.prepare('SELECT * FROM checkpoints ORDER BY batch').all() as Row[]);
    return rows.map((r) => toCheckpoint(r, this.damaged));
  }

  /**
   * Close a run this process created and never used (no candidate, no checkpoint), and remove
   * its folder, and the folders above it that creating it made: a run that failed to start
   * leaves nothing behind.
   */
  discardIfUnused(): boolean {
    if (this.closed || !this.madeDir || this.lock === undefined) return false;
    const used =
      (
        this.db.prepare('SELECT (SELECT COUNT(*) FROM candidates) + (SELECT COUNT(*) FROM checkpoints) AS n').get() as {
          n: number;
        }
      ).n > 0;
    if (used) return false;
    this.close();
    rmSync(this.dir, { recursive: true, force: true });
    if (this.madeAbove !== undefined) removeEmptyFolders(dirname(this.dir), this.madeAbove);
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.lock !== undefined) closeDb(this.db);
    else this.db.close();
    this.lock?.release();
    if (this.scratch !== undefined) rmSync(this.scratch, { recursive: true, force: true });
  }
}
