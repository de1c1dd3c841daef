/**
 * A run's config as controller/ types and checks it: everything that changes a run's results,
 * stored with the run (search-results/store.ts keeps it as a JSON object and reads only its
 * name) and enforced on resume. A stored config is untrusted input (an older nos, an edited
 * run.db): it is parsed whenever a run is opened, runs made before a field existed get the value
 * they ran with, and a damaged one is refused with an error that names the run and the field.
 */
import { z } from 'zod';
import { lookupRule } from '../dsl/index.js';
import type { SpaceConfig } from '../primitives/nos-space.js';
import { type ConfigParser, type OpenOptions, SqliteStore, StoreError } from '../search-results/store.js';

/** What runs made before groups and warm starts were stored used. */
export const LEGACY_DEFAULTS = { groups: 2, warmStart: false } as const;

/** Everything that changes a run's results, stored with it and enforced on resume. */
export interface RunConfig {
  readonly run: string;
  readonly task: string;
  readonly strategy: string;
  /** Rules to sample. The one field a resume may change (raise). */
  readonly budget: number;
  readonly seed: number;
  /** Worker threads the run was started with (informational: results do not depend on it). */
  readonly workers: number;
  /** Rules per strategy update. */
  readonly batchSize: number;
  /**
   * Batches proposed ahead of what the strategy has observed (the pipelined loop): batch k is
   * proposed once batches up to k-1-S are observed. Absent in runs made before it was stored:
   * they ran the synchronous loop, S = 0.
   */
  readonly staleness?: number;
  /**
   * A stand-in run (benchmarks and tests, `--stand-in MS`): evaluations sleep this many ms and
   * return made-up results instead of training. Absent: a real run.
   */
  readonly standIn?: number;
  /** Training steps per evaluation, or null for the task's own. */
  readonly steps: number | null;
  /** Groups of choices per rule. */
  readonly groups: number;
  /** Evolution's population seeded with known rules. */
  readonly warmStart: boolean;
  /** The search space, if not the full NOS space (see primitives/nos-space.ts configureSpace). */
  readonly space?: SpaceConfig;
  /** The funnel of rising fidelity after the search (controller/funnel.ts); absent or null: none. */
  readonly funnel?: FunnelConfig | null;
  /**
   * The workload suite (evaluator/suite.ts): the reward aggregates the search workloads, each
   * normalised against the baseline; the held-out workloads only give the finalists' verdicts.
   * Absent or null: one task (`task`), as before.
   */
  readonly suite?: SuiteConfig | null;
  readonly createdAt: string;
  readonly nosVersion: string;
}

/**
 * The funnel's rungs after the proxy (rung 0, one seed, every trained rule): rung 1 re-runs the
 * proxy protocol with more seeds for the top fraction; rung 2 trains the best of those
 * `longFactor` times longer; rung 3 trains the finalists on a transfer task. The baseline is
 * evaluated on the same rungs and seeds, so every comparison with it is paired.
 */
export interface FunnelConfig {
  /** Fraction of the rules trained at rung 0 promoted to rung 1 (at least `minPromoted` of them). */
  readonly promote: number;
  readonly minPromoted: number;
  /** Rules promoted from rung 1 to rung 2, and from rung 2 to rung 3 (the finalists). */
  readonly longTop: number;
  readonly finalists: number;
  /** Seeds at rungs 1, 2 and 3 (the run's seed, then the next ones). */
  readonly seeds: readonly [number, number, number];
  /** Rung 2's steps, as a multiple of the proxy's. */
  readonly longFactor: number;
  /** Rung 3's task, or null for no transfer rung. */
  readonly transfer: string | null;
  /** The rule every rung compares against (a built-in name). */
  readonly baseline: string;
}

/** A run's workload suite: the reward's workloads, the verdicts' workloads, how scores aggregate. */
export interface SuiteConfig {
  readonly search: readonly string[];
  readonly heldOut: readonly string[];
  /** 'mean': the mean of scores normalised against the baseline; 'profile': AlgoPerf's performance profile. */
  readonly aggregate: 'mean' | 'profile';
  /** The rule each workload's score is normalised against (the funnel's baseline too). */
  readonly baseline: string;
}

/** A stored config, with the defaults of older runs for fields they did not store. */
const storedConfig = z
  .object({
    run: z.string(),
    task: z.string().max(100),
    strategy: z.string().max(100),
    // The ranges of controller/run.ts's LIMITS (a stored seed of 1e300 broke resumes).
    budget: z.number().int().min(1).max(10_000_000),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    workers: z.number().int().min(0).max(1_000_000).default(0),
    batchSize: z.number().int().min(1).max(10_000).default(10),
    staleness: z.number().int().min(0).max(1000).optional(),
    standIn: z.number().int().min(0).max(3_600_000).optional(),
    steps: z.number().int().min(1).max(10_000_000).nullable().default(null),
    groups: z.number().int().min(1).max(8).default(LEGACY_DEFAULTS.groups),
    warmStart: z.boolean().default(LEGACY_DEFAULTS.warmStart),
    space: z.record(z.unknown()).optional(),
    funnel: z
      .object({
        promote: z.number().gt(0).max(1),
        minPromoted: z.number().int().min(1).max(10_000),
        longTop: z.number().int().min(1).max(10_000),
        finalists: z.number().int().min(1).max(10_000),
        seeds: z.tuple([
          z.number().int().min(1).max(100),
          z.number().int().min(1).max(100),
          z.number().int().min(1).max(100),
        ]),
        longFactor: z.number().int().min(1).max(100),
        transfer: z.string().max(100).nullable(),
        baseline: z
          .string()
          .max(100)
          .refine((b) => lookupRule(b).ok, 'not a built-in rule (nos rules lists them)'),
      })
      .nullable()
      .optional(),
    suite: z
      .object({
        search: z.array(z.string().max(100)).min(1).max(64),
        heldOut: z.array(z.string().max(100)).max(64),
        aggregate: z.enum(['mean', 'profile']),
        baseline: z.string().max(100),
      })
      .nullable()
      .optional(),
    createdAt: z.string().max(100).default(''),
    nosVersion: z.string().max(100).default('unknown'),
  })
  .passthrough();

/** A run's stored config, checked (the store gives it to this when the run is opened). */
export const parseRunConfig: ConfigParser<RunConfig> = (raw, { run, dir }) => {
  const r = storedConfig.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new StoreError(
      `run '${run}' in ${dir}: its stored config is not readable: ${issue?.path.join('.') || 'config'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return r.data as unknown as RunConfig;
};

/** A run's store, its config typed and checked. */
export type RunStore = SqliteStore<RunConfig>;

/**
 * Open an existing run's store with its config checked (for writing, it takes the run's lock;
 * `readonly` takes none). controller/run.ts's `openRun` and `resumeRun` add the CLI's checks.
 */
export function openStore(run: string, options: string | Omit<OpenOptions<RunConfig>, 'parse'> = {}): RunStore {
  return SqliteStore.open(run, {
    ...(typeof options === 'string' ? { root: options } : options),
    parse: parseRunConfig,
  });
}
