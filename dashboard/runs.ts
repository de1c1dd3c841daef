/**
 * The dashboard's view of a runs folder: which runs it holds, each run read read-only (no lock,
 * no writes: SqliteStore.openFolder), its state, and a cheap signature that changes whenever
 * the run does (so a live page re-reads a run only when a search has written to it).
 *
 * A run is `running` while a live nos holds its lock, `done` when its budget is spent (and its
 * funnel climbed), else `stopped`. A run that cannot be read (a damaged or locked run.db) is an
 * error for that run only. Run folders are found by name under the folder, and a folder or
 * run.db that resolves (through links) outside it is refused.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { parseRunConfig, type RunConfig } from '../controller/config.js';
import { budgetUnitOf, sampleCap } from '../controller/search.js';
import { planFunnel } from '../controller/funnel-plan.js';
import { sampleCounts } from '../search-results/samples.js';
import {
  type Candidate,
  checkRunName,
  describeEnvironmentError,
  type Evaluation,
  type LockState,
  lockState,
  SqliteStore,
  StoreError,
  type StrategyCheckpoint,
} from '../search-results/store.js';

export type RunState = 'running' | 'stopped' | 'done';

export interface RunSnapshot {
  readonly name: string;
  readonly config: RunConfig;
  readonly candidates: readonly Candidate[];
  readonly checkpoints: readonly StrategyCheckpoint[];
  readonly evaluations: readonly Evaluation[];
  readonly state: RunState;
  readonly lock: LockState;
  /** When the run was last written (ms since the epoch), from its files. */
  readonly updatedMs: number;
}

export type RunRead =
  | { readonly ok: true; readonly name: string; readonly run: RunSnapshot }
  | { readonly ok: false; readonly name: string; readonly error: string };

/** A request the dashboard refuses or cannot answer: an HTTP status and a message for the page. */
export class DashboardError extends Error {
  constructor(
    readonly status: 403 | 404,
    message: string,
  ) {
    super(message);
  }
  override get name(): string {
    return 'DashboardError';
  }
}

const inside = (base: string, path: string) => path === base || path.startsWith(base.endsWith(sep) ? base : base + sep);

const FILES = ['run.db', 'run.db-wal', 'run.lock'] as const;

/** A runs folder, read-only. */
export class RunsFolder {
  private readonly cache = new Map<string, { signature: string; read: RunRead }>();

  constructor(
    /** The folder as given (for messages). */
    readonly dir: string,
    /** How long a read waits for a run.db another process has locked. */
    private readonly busyTimeoutMs = 250,
  ) {}

  /** The folder itself, resolved; undefined when it does not exist (yet). */
  private base(): string | undefined {
    try {
      return realpathSync(this.dir);
    } catch {
      return undefined;
    }
  }

  /** The names of the runs in the folder (sub-folders with a run.db), sorted. */
  names(): string[] {
    const base = this.base();
    if (base === undefined) return [];
    let entries: string[];
    try {
      entries = readdirSync(base);
    } catch {
      return [];
    }
    return entries
      .filter((name) => {
        try {
          checkRunName(name);
          this.folder(name);
          return true;
        } catch {
          return false;
        }
      })
      .sort();
  }

  /**
   * The folder of run `name`, checked: a valid run name, a folder with a run.db, and neither
   * resolving outside the runs folder. Throws a DashboardError (404 or 403) otherwise.
   */
  folder(name: string): string {
    try {
      checkRunName(name);
    } catch {
      throw new DashboardError(404, `no run named '${name}' (run names are letters, digits, '.' and '-')`);
    }
    const base = this.base();
    if (base === undefined) throw new DashboardError(404, `the runs folder ${this.dir} does not exist`);
    const folder = join(base, name);
    let real: string;
    let db: string;
    try {
      real = realpathSync(folder);
      db = realpathSync(join(folder, 'run.db'));
    } catch {
      throw new DashboardError(404, `no run '${name}' in ${this.dir}`);
    }
    if (!inside(base, real) || !inside(base, db))
      throw new DashboardError(403, `run '${name}' links outside ${this.dir}: the dashboard reads only runs inside it`);
    if (!statSync(real).isDirectory() || !statSync(db).isFile())
      throw new DashboardError(404, `no run '${name}' in ${this.dir}`);
    return folder;
  }

  /** Changes whenever the run's files or its lock's holder do (stat calls and a small read: cheap). */
  signature(name: string): string {
    let folder: string;
    try {
      folder = this.folder(name);
    } catch (e) {
      return e instanceof DashboardError ? `missing:${e.status}` : 'missing';
    }
    const files = FILES.map((f) => {
      try {
        const s = statSync(join(folder, f));
        return `${s.size}:${s.mtimeMs}`;
      } catch {
        return '-';
      }
    });
    return `${files.join('|')}|${lockState(folder).state}`;
  }

  /** The folder's signature: its runs and each run's signature. */
  listingSignature(): string {
    return this.names()
      .map((n) => `${n}=${this.signature(n)}`)
      .join(';');
  }

  /**
   * A run, read read-only; an unreadable run is an error for it, never an exception. A good read
   * is kept until the run's signature changes; a failed one is tried again next time (another
   * process's lock on the database ends without touching its files).
   */
  read(name: string): RunRead {
    const folder = this.folder(name); // refused names and paths throw: they are not runs
    const signature = this.signature(name);
    const hit = this.cache.get(name);
    if (hit !== undefined && hit.signature === signature) return hit.read;
    const read = readRun(name, folder, this.busyTimeoutMs);
    if (read.ok) this.cache.set(name, { signature, read });
    else this.cache.delete(name);
    return read;
  }
}

/** Why a run cannot be read, for its page: the store's message, or the environment's. */
export function describeReadError(e: unknown): string {
  if (e instanceof StoreError) return e.message;
  return describeEnvironmentError(e) ?? `cannot read it: ${e instanceof Error ? e.message : String(e)}`;
}

const STATUSES = new Set(['ok', 'diverged', 'invalid', 'timeout', 'rejected', 'cached']);

/** A stored candidate row checked for the fields the pages use (a run.db is untrusted input). */
function checkCandidate(c: Candidate): string | undefined {
  if (!Number.isSafeInteger(c.index) || c.index < 0) return `a candidate has index ${String(c.index)}`;
  if (typeof c.rule !== 'string') return `candidate #${c.index} has no rule text`;
  if (typeof c.status !== 'string' || !STATUSES.has(c.status))
    return `candidate #${c.index} has status '${String(c.status)}'`;
  if (typeof c.reward !== 'number' || Number.isNaN(c.reward)) return `candidate #${c.index} has no numeric reward`;
  return undefined;
}

/** Whether the search spent its budget (and its funnel climbed every rung). */
export function finished(config: RunConfig, cs: readonly Candidate[], evals: readonly Evaluation[]): boolean {
  const unit = budgetUnitOf(config);
  const { trained } = sampleCounts(cs);
  const searched =
    unit === 'trained'
      ? trained >= config.budget || cs.length >= sampleCap(config.budget, unit)
      : cs.length >= config.budget;
  if (!searched) return false;
  if (!config.funnel) return true;
  const plan = planFunnel(config, cs, evals);
  return plan.complete >= plan.rungs.length - 1;
}

function updatedMs(folder: string): number {
  let latest = 0;
  for (const f of FILES.slice(0, 2)) {
    try {
      latest = Math.max(latest, statSync(join(folder, f)).mtimeMs);
    } catch {
      // no such file
    }
  }
  return latest;
}

function readRun(name: string, folder: string, busyTimeoutMs: number): RunRead {
  let store: SqliteStore<RunConfig> | undefined;
  try {
    store = SqliteStore.openFolder(folder, { parse: parseRunConfig, busyTimeoutMs });
    const config = store.config;
    const candidates = store.candidates();
    const damaged = candidates.map(checkCandidate).find((p) => p !== undefined);
    if (damaged !== undefined) return { ok: false, name, error: `its run.db is damaged: ${damaged}` };
    const checkpoints = store.checkpoints();
    const evaluations = store.evaluations();
    const lock = lockState(folder);
    const state: RunState =
      lock.state === 'held' || lock.state === 'unreadable'
        ? 'running'
        : finished(config, candidates, evaluations)
          ? 'done'
          : 'stopped';
    return {
      ok: true,
      name,
      run: { name, config, candidates, checkpoints, evaluations, state, lock, updatedMs: updatedMs(folder) },
    };
  } catch (e) {
    return { ok: false, name, error: describeReadError(e) };
  } finally {
    store?.close();
  }
}
