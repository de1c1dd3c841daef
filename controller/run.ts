/**
 * Search runs as a library: what a run is (its complete config, every setting that changes its
 * results, stored with it), how one is planned and validated (before anything is created),
 * created, resumed (the stored config is enforced: a conflicting setting is refused, the budget
 * may be raised), opened for reading, and searched. The CLI parses flags into a RunRequest and
 * prints; benchmarks call the same functions.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initTf } from '../dsl/compile/tf-backend.js';
import { nearest } from '../dsl/diagnostics.js';
import { lookupRule } from '../dsl/index.js';
import { loadDataset } from '../evaluator/data.js';
import { GpuEvaluator } from '../evaluator/gpu-pool.js';
import { type Device, gpuProblem } from '../evaluator/gpu-train.js';
import { EvaluatorPool, resolveWorkers, workerLimit } from '../evaluator/pool.js';
import type { Evaluator } from '../evaluator/protocol.js';
import { QueueEvaluator } from '../evaluator/queue.js';
import type { QueueUrl } from '../evaluator/queue-url.js';
import { SleepingEvaluator } from '../evaluator/stand-in.js';
import { AGGREGATES, suiteTasks } from '../evaluator/suite.js';
import { DEFAULT_TASK, findTask, TASKS, type TaskSpec } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';
import { NOS_SPACE, type SearchSpace, type SpaceConfig } from '../primitives/nos-space.js';
import { checkRunName, RunNameError, type RunsLocation, SqliteStore, sampleCounts } from '../search-results/store.js';
import { abortError } from '../util/abort.js';
import { canonicalJson } from '../util/canonical-json.js';
import { shown } from '../util/terminal.js';
import { type FunnelConfig, openStore, type RunConfig, type RunStore, type SuiteConfig } from './config.js';
import { type FunnelHooks, type FunnelSummary, runFunnel } from './funnel.js';
import { defaultTransfer, FUNNEL_DEFAULTS } from './funnel-plan.js';
import { RlController } from './rl.js';
import {
  BUDGET_UNITS,
  type BudgetUnit,
  budgetUnitOf,
  MAX_STALENESS,
  runSearch,
  type SearchHooks,
  type SearchSummary,
  stalenessOf,
} from './search.js';
import { parseSpaceConfig, readSpaceFile, SpaceError } from './space.js';
import { Evolution, knownChoices, RandomSearch, type Strategy } from './strategy.js';
import { checkWorkerFile, sharedChecker, type ThreadChecker } from './thread-checker.js';

/**
 * A run setting that is wrong, or conflicts with a stored run: a user error naming the flag.
 * The library's `evaluate()` and `search()` throw it worded with option names, `option` set.
 */
export class RunConfigError extends Error {
  /** The library option it is about (`budgetUnit`, `funnel.longTop`), on errors the library functions throw. */
  readonly option: string | undefined;

  constructor(
    /** The flag it is about, without dashes (`groups`, `warm-start`). */
    readonly field: string,
    message: string,
    options: { readonly option?: string } = {},
  ) {
    super(message);
    this.name = 'RunConfigError';
    this.option = options.option;
  }
}

export const STRATEGIES = ['rl', 'random', 'evolution'] as const;

export const DEFAULTS = {
  strategy: 'rl',
  budget: 300,
  budgetUnit: 'trained',
  seed: 0,
  batchSize: 10,
  staleness: 4,
  groups: 2,
  warmStart: false,
} as const;

/** Inclusive ranges of the integer settings. */
export const LIMITS: Readonly<
  Record<'budget' | 'seed' | 'batch' | 'staleness' | 'groups' | 'steps' | 'stand-in', readonly [number, number]>
> = {
  'stand-in': [0, 3_600_000],
  budget: [1, 10_000_000],
  seed: [0, Number.MAX_SAFE_INTEGER],
  batch: [1, 10_000],
  staleness: [0, MAX_STALENESS],
  groups: [1, 8],
  steps: [1, 10_000_000],
};

/** What the user asked for: any field left out takes its default (new run) or stored value (resume). */
export interface RunRequest {
  readonly run?: string;
  readonly task?: string;
  readonly strategy?: string;
  readonly budget?: number;
  /** What the budget counts: rules trained (new runs' default) or rules sampled. */
  readonly budgetUnit?: string;
  readonly seed?: number;
  readonly batchSize?: number;
  /** Batches proposed ahead of what the strategy has observed (the pipeline's depth less one). */
  readonly staleness?: number;
  readonly steps?: number;
  readonly groups?: number;
  readonly warmStart?: boolean;
  /** A `--space` JSON file... */
  readonly spaceFile?: string;
  /** ...or a space configuration given directly. */
  readonly space?: SpaceConfig;
  /** Worker threads (does not change results; stored for the record). */
  readonly workers?: number;
  /** Benchmarks and tests: a stand-in run, whose evaluations sleep this many ms instead of training. */
  readonly standIn?: number;
  /** The funnel after the search: settings to change from the defaults, or false for none. */
  readonly funnel?: FunnelRequest | false;
  /**
   * The workload suite instead of one task: the reward aggregates the search workloads, the
   * funnel's last rung gives verdicts on the held-out ones (false or absent: one task).
   */
  readonly suite?: SuiteRequest | false;
}

/** Suite settings as asked for (left out: the default). */
export interface SuiteRequest {
  /** 'mean' (default) or 'profile'. */
  readonly aggregate?: string;
  /**
   * The search workloads: the tasks the reward (and rungs 0-2) aggregate, by id (default: the
   * search suite, `nos tasks`). A held-out workload is refused: its verdicts must come from
   * workloads the reward never saw.
   */
  readonly search?: readonly string[];
}

/** The search workloads a suite request asks for, checked (default: the search suite). */
export function suiteSearch(req: SuiteRequest | false | undefined): string[] {
  if (req === undefined || req === false || req.search === undefined) return suiteTasks('search');
  const ids = req.search;
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > 64)
    throw new RunConfigError('search-workloads', '--search-workloads needs 1 to 64 task ids, comma-separated');
  const heldOut = suiteTasks('held-out');
  const seen = new Set<string>();
  for (const id of ids) {
    if (typeof id !== 'string' || findTask(id) === undefined)
      throw new RunConfigError(
        'search-workloads',
        `--search-workloads: unknown task '${shown(String(id))}' (nos tasks lists them)`,
      );
    if (heldOut.includes(id))
      throw new RunConfigError(
        'search-workloads',
        `--search-workloads: '${id}' is a held-out workload (${heldOut.join(', ')}): the finalists' verdicts come from it, so the reward must never see it`,
      );
    if (seen.has(id)) throw new RunConfigError('search-workloads', `--search-workloads: '${id}' is given twice`);
    seen.add(id);
  }
  return [...ids];
}

/**
 * A suite run's defaults, sized so that the default `nos search` stays near 15 minutes on 2
 * cores (its workloads cost more than one proxy; an estimate from per-step costs, README): 60
 * rules, and a funnel whose rung 2 runs the verdict protocol at the workloads' own horizon
 * (longFactor 1) on 3 seeds for its 3 best rules, and 2 finalists on the held-out suite with 2
 * seeds (bench/long-search.sh gives 10-seed verdicts).
 */
export const SUITE_DEFAULTS = { budget: 60, longFactor: 1, longTop: 3, finalists: 2, seeds: [3, 3, 2] } as const;

/** The suite a request describes, checked (baseline: the funnel's). */
export function suiteConfig(req: SuiteRequest | false | undefined, baseline: string): SuiteConfig | null {
  if (req === undefined || req === false) return null;
  const aggregate = req.aggregate ?? 'mean';
  if (aggregate !== 'mean' && aggregate !== 'profile')
    throw new RunConfigError('aggregate', `--aggregate must be one of ${AGGREGATES.join(', ')}, got '${aggregate}'`);
  return { search: suiteSearch(req), heldOut: suiteTasks('held-out'), aggregate, baseline };
}

/** Funnel settings as asked for (left out: the default). */
export interface FunnelRequest {
  readonly promote?: number;
  readonly longTop?: number;
  readonly finalists?: number;
  readonly seeds?: readonly number[];
  readonly longFactor?: number;
  /** A task id, or 'none'. */
  readonly transfer?: string;
  readonly baseline?: string;
}

/** The funnel a request describes for a task, checked (a RunConfigError names the flag). */
export function funnelConfig(req: FunnelRequest | false | undefined, task: TaskSpec): FunnelConfig | null {
  if (req === false) return null;
  const r = req ?? {};
  const intIn = (field: string, v: number | undefined, lo: number, hi: number) => {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < lo || v > hi))
      throw new RunConfigError(field, `--${field} must be an integer from ${lo} to ${hi}, got ${v}`);
  };
  if (r.promote !== undefined && !(Number.isFinite(r.promote) && r.promote > 0 && r.promote <= 1)) {
    throw new RunConfigError(
      'promote',
      `--promote is the fraction of trained rules promoted to rung 1: a number in (0, 1], got ${r.promote}`,
    );
  }
  intIn('long-top', r.longTop, 1, 10_000);
  intIn('finalists', r.finalists, 1, 10_000);
  intIn('long-factor', r.longFactor, 1, 100);
  let seeds = FUNNEL_DEFAULTS.seeds;
  if (r.seeds !== undefined) {
    const [a, b, c] = r.seeds;
    if (r.seeds.length !== 3 || a === undefined || b === undefined || c === undefined)
      throw new RunConfigError(
        'rung-seeds',
        `--rung-seeds takes three integers (seeds at rungs 1, 2 and 3), got ${r.seeds.length}`,
      );
    for (const v of r.seeds) intIn('rung-seeds', v, 1, 100);
    seeds = [a, b, c];
  }
  let transfer = defaultTransfer(task);
  if (r.transfer !== undefined) {
    if (r.transfer === 'none') transfer = null;
    else {
      const t = findTask(r.transfer);
      if (t === undefined) {
        const hint = nearest(
          r.transfer,
          TASKS.map((x) => x.id),
        );
        throw new RunConfigError(
          'transfer',
          `--transfer: unknown task '${shown(r.transfer)}'${hint ? `; did you mean '${hint}'?` : ''} (or 'none')`,
        );
      }
      transfer = t.id;
    }
  }
  const baseline = r.baseline ?? FUNNEL_DEFAULTS.baseline;
  if (!lookupRule(baseline).ok)
    throw new RunConfigError(
      'baseline',
      `--baseline: '${shown(baseline)}' is not a built-in rule (nos rules lists them)`,
    );
  const longTop = r.longTop ?? FUNNEL_DEFAULTS.longTop;
  const finalists = r.finalists ?? FUNNEL_DEFAULTS.finalists;
  if (finalists > longTop)
    throw new RunConfigError(
      'finalists',
      `--finalists ${finalists} exceeds --long-top ${longTop}: the finalists are drawn from the rules at rung 2`,
    );
  return {
    promote: r.promote ?? FUNNEL_DEFAULTS.promote,
    minPromoted: Math.max(FUNNEL_DEFAULTS.minPromoted, longTop),
    longTop,
    finalists,
    seeds,
    longFactor: r.longFactor ?? FUNNEL_DEFAULTS.longFactor,
    transfer,
    baseline,
  };
}

/** A suite run's funnel: no transfer task (the held-out suite is its last rung), rung 2 at SUITE_LONG_FACTOR x steps. */
export function suiteFunnel(
  req: FunnelRequest | false | undefined,
  firstWorkload: string = suiteTasks('search')[0] ?? '',
): FunnelConfig | null {
  if (req === false) return null;
  const search = findTask(firstWorkload);
  if (search === undefined) throw new Error('the search suite is empty');
  const f = funnelConfig(
    {
      longFactor: SUITE_DEFAULTS.longFactor,
      longTop: SUITE_DEFAULTS.longTop,
      finalists: SUITE_DEFAULTS.finalists,
      seeds: SUITE_DEFAULTS.seeds,
      ...(req ?? {}),
      transfer: 'none',
    },
    search,
  );
  return f;
}

let version: string | undefined;

/** nos's version, from its package.json (found from this module, in the source tree or in dist/). */
export function nosVersion(): string {
  if (version !== undefined) return version;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'nos' && typeof pkg.version === 'string') {
        version = pkg.version;
        return version;
      }
    } catch {
      // no package.json here: look further up
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  version = 'unknown';
  return version;
}

/** A child task by id (default: the default task), or a user error with a suggestion. */
export function resolveTask(id: string | undefined): TaskSpec {
  const name = id ?? DEFAULT_TASK;
  const task = findTask(name);
  if (task === undefined) {
    const hint = nearest(
      name,
      TASKS.map((t) => t.id),
    );
    throw new RunConfigError(
      'task',
      `--task: unknown task '${shown(name)}'${hint ? `; did you mean '${hint}'?` : ''} (nos tasks lists them)`,
    );
  }
  return task;
}

function checkInt(field: keyof typeof LIMITS, value: number | undefined): void {
  if (value === undefined) return;
  const [lo, hi] = LIMITS[field];
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw new RunConfigError(
      field,
      `--${field} must be an integer from ${lo} to ${hi === Number.MAX_SAFE_INTEGER ? '2^53-1' : hi}, got ${value}`,
    );
  }
}

function checkBudgetUnit(unit: string | undefined): BudgetUnit | undefined {
  if (unit === undefined) return undefined;
  const found = BUDGET_UNITS.find((u) => u === unit);
  if (found === undefined)
    throw new RunConfigError(
      'budget-unit',
      `--budget-unit must be one of ${BUDGET_UNITS.join(', ')}, got '${shown(unit)}'`,
    );
  return found;
}

/** A stored config's staleness (runs made before it was stored ran the synchronous loop: 0). */
export function runStaleness(config: RunConfig): number {
  try {
    return stalenessOf(config);
  } catch (e) {
    throw new RunConfigError('staleness', `run '${config.run}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** A stored config's budget unit (runs made before the unit existed count samples). */
export function runBudgetUnit(config: RunConfig): BudgetUnit {
  try {
    return budgetUnitOf(config);
  } catch (e) {
    throw new RunConfigError('budget-unit', `run '${config.run}': ${e instanceof Error ? e.message : String(e)}`);
  }
}

function checkStrategy(strategy: string): void {
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    const hint = nearest(strategy, STRATEGIES);
    throw new RunConfigError(
      'strategy',
      `--strategy must be one of ${STRATEGIES.join(', ')}, got '${shown(strategy)}'${hint ? `; did you mean '${hint}'?` : ''}`,
    );
  }
}

/** The requested space, checked: from the file, or as given. */
function requestedSpace(req: RunRequest): { config: SpaceConfig; space: SearchSpace } | undefined {
  try {
    if (req.spaceFile !== undefined) return readSpaceFile(req.spaceFile);
    if (req.space !== undefined) return parseSpaceConfig(req.space);
  } catch (e) {
    if (e instanceof SpaceError) throw new RunConfigError('space', `--space ${e.message}`);
    throw e;
  }
  return undefined;
}

/** The search space of a config (stored spaces are checked again: a run.db may be old or edited). */
export function spaceOf(config: Pick<RunConfig, 'run' | 'space'>): SearchSpace {
  if (config.space === undefined) return NOS_SPACE;
  try {
    return parseSpaceConfig(config.space).space;
  } catch (e) {
    if (e instanceof SpaceError)
      throw new RunConfigError('space', `run '${config.run}': its stored search space is not valid: ${e.message}`);
    throw e;
  }
}

function checkWarmStart(
  strategy: string,
  warmStart: boolean,
  groups: number,
  space: SearchSpace,
  spaceGiven: boolean,
): void {
  if (!warmStart) return;
  if (strategy !== 'evolution') {
    throw new RunConfigError(
      'warm-start',
      `--warm-start seeds evolution's population with known rules: it does nothing with --strategy ${strategy} (use --strategy evolution, or drop --warm-start)`,
    );
  }
  if (!knownChoices(space).some((c) => c.groups.length === groups)) {
    throw new RunConfigError(
      'warm-start',
      `--warm-start: no known rule fits ${spaceGiven ? 'this --space with ' : ''}--groups ${groups} (PowerSign takes 2 groups, AddSign 3${spaceGiven ? ", and both need the operands 'sign-g', 'sign-m', 'g', 'one', the unary 'id', 'exp' and the binary 'mul', 'add'" : ''})`,
    );
  }
}

function checkName(run: string): void {
  try {
    checkRunName(run);
  } catch (e) {
    if (e instanceof RunNameError) throw new RunConfigError('run', `--run: ${e.message}`);
    throw e;
  }
}

/**
 * The complete config of a new run, every setting checked (the space file read and each entry
 * checked as rule text). No side effects: nothing is created.
 */
export function planRun(req: RunRequest, now = new Date()): RunConfig & { readonly budgetUnit: BudgetUnit } {
  const suiteAsked = req.suite !== undefined && req.suite !== false;
  if (suiteAsked && req.task !== undefined)
    throw new RunConfigError(
      'task',
      "--task picks one task; a suite run trains on the suite's workloads (drop --task, or --suite off)",
    );
  if (suiteAsked && req.steps !== undefined)
    throw new RunConfigError(
      'steps',
      '--steps applies to one task; a suite run trains each workload for its own steps',
    );
  if (suiteAsked && req.funnel && req.funnel.transfer !== undefined)
    throw new RunConfigError('transfer', "--transfer picks one task; a suite run's last rung is the held-out suite");
  const suite = suiteAsked
    ? suiteConfig(req.suite, (req.funnel === false ? undefined : req.funnel?.baseline) ?? FUNNEL_DEFAULTS.baseline)
    : null;
  const task = resolveTask(suite ? suite.search[0] : req.task);
  const strategy = req.strategy ?? DEFAULTS.strategy;
  checkStrategy(strategy);
  const budgetUnit = checkBudgetUnit(req.budgetUnit) ?? DEFAULTS.budgetUnit;
  checkInt('budget', req.budget);
  checkInt('seed', req.seed);
  checkInt('batch', req.batchSize);
  checkInt('staleness', req.staleness);
  checkInt('stand-in', req.standIn);
  checkInt('groups', req.groups);
  checkInt('steps', req.steps);
  const groups = req.groups ?? DEFAULTS.groups;
  const warmStart = req.warmStart ?? DEFAULTS.warmStart;
  const space = requestedSpace(req);
  checkWarmStart(strategy, warmStart, groups, space?.space ?? NOS_SPACE, space !== undefined);
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const run = req.run ?? `${strategy}-${suiteAsked ? 'suite' : task.id}-${stamp}`;
  checkName(run);
  return {
    run,
    task: task.id,
    strategy,
    budget: req.budget ?? (suiteAsked ? SUITE_DEFAULTS.budget : DEFAULTS.budget),
    budgetUnit,
    seed: req.seed ?? DEFAULTS.seed,
    workers: req.workers ?? 0,
    batchSize: req.batchSize ?? DEFAULTS.batchSize,
    staleness: req.staleness ?? DEFAULTS.staleness,
    ...(req.standIn === undefined ? {} : { standIn: req.standIn }),
    steps: req.steps ?? null,
    groups,
    warmStart,
    ...(space ? { space: space.config } : {}),
    funnel: suiteAsked ? suiteFunnel(req.funnel, task.id) : funnelConfig(req.funnel, task),
    ...(suiteAsked ? { suite } : {}),
    createdAt: now.toISOString(),
    nosVersion: nosVersion(),
  };
}

/** Plan, then create a new run (its folder, database and lock). Nothing is created if a setting is wrong. */
export function createRun(req: RunRequest, options: RunsLocation = {}): RunStore {
  return SqliteStore.create(planRun(req), options);
}

export interface ResumedRun {
  readonly store: RunStore;
  /** What the resume changed (a raised budget, a copied run's new name), for the user. */
  readonly notes: readonly string[];
}

/**
 * Open a stopped run to continue it, with its stored config. A setting given again must equal
 * the stored one (else a RunConfigError names the flag and the stored value); the budget may
 * be raised, and the raised budget is stored.
 */
export function resumeRun(run: string | undefined, req: RunRequest, options: RunsLocation = {}): ResumedRun {
  if (run === undefined) throw new RunConfigError('run', '--resume needs --run NAME');
  checkName(run);
  // Check what can be checked without the run first (a bad value is a bad value).
  if (req.strategy !== undefined) checkStrategy(req.strategy);
  const unit = checkBudgetUnit(req.budgetUnit);
  for (const [f, v] of [
    ['budget', req.budget],
    ['seed', req.seed],
    ['batch', req.batchSize],
    ['staleness', req.staleness],
    ['stand-in', req.standIn],
    ['groups', req.groups],
    ['steps', req.steps],
  ] as const)
    checkInt(f, v);
  const asked = requestedSpace(req);
  const task = req.task === undefined ? undefined : resolveTask(req.task);
  const store = openStore(run, options);
  try {
    const c = store.config;
    const refuse = (field: string, given: string, stored: string) =>
      new RunConfigError(
        field,
        `--${field}${given ? ` ${given}` : ''} conflicts with run '${run}', which was made with ${stored}: a resumed run keeps its stored config (drop --${field}, or start a new run with another --run)`,
      );
    if (task !== undefined && (task.id !== c.task || c.suite))
      throw refuse('task', task.id, c.suite ? 'the workload suite' : `--task ${c.task}`);
    if (req.strategy !== undefined && req.strategy !== c.strategy)
      throw refuse('strategy', req.strategy, `--strategy ${c.strategy}`);
    const storedUnit = runBudgetUnit(c);
    if (unit !== undefined && unit !== storedUnit)
      throw refuse(
        'budget-unit',
        unit,
        `--budget-unit ${storedUnit}${'budgetUnit' in c ? '' : ' (a run made before the unit could be chosen)'}`,
      );
    if (req.seed !== undefined && req.seed !== c.seed) throw refuse('seed', String(req.seed), `--seed ${c.seed}`);
    if (req.batchSize !== undefined && req.batchSize !== c.batchSize)
      throw refuse('batch', String(req.batchSize), `--batch ${c.batchSize}`);
    const storedStaleness = runStaleness(c);
    if (req.staleness !== undefined && req.staleness !== storedStaleness)
      throw refuse(
        'staleness',
        String(req.staleness),
        `--staleness ${storedStaleness}${c.staleness === undefined ? ' (a run of the synchronous loop, made before the staleness was stored)' : ''}`,
      );
    if (req.standIn !== undefined && req.standIn !== c.standIn)
      throw refuse(
        'stand-in',
        String(req.standIn),
        c.standIn === undefined ? 'real evaluations (no --stand-in)' : `--stand-in ${c.standIn}`,
      );
    if (req.steps !== undefined && req.steps !== c.steps)
      throw refuse(
        'steps',
        String(req.steps),
        c.steps === null ? "the task's own steps (no --steps)" : `--steps ${c.steps}`,
      );
    if (req.groups !== undefined && req.groups !== c.groups)
      throw refuse('groups', String(req.groups), `--groups ${c.groups}`);
    if (req.warmStart === true && !c.warmStart) throw refuse('warm-start', '', 'no --warm-start');
    if (asked !== undefined && canonicalJson(asked.config) !== canonicalJson(c.space ?? null)) {
      throw refuse(
        'space',
        req.spaceFile ?? '(given)',
        c.space === undefined ? 'the full NOS space (no --space)' : `another space: ${JSON.stringify(c.space)}`,
      );
    }
    const storedSuite = c.suite ?? null;
    if (req.suite !== undefined) {
      const askedSuite = suiteConfig(req.suite, storedSuite?.baseline ?? FUNNEL_DEFAULTS.baseline);
      if (canonicalJson(askedSuite) !== canonicalJson(storedSuite))
        throw refuse(
          'suite',
          req.suite === false ? 'off' : 'on',
          storedSuite ? `the suite ${JSON.stringify(storedSuite)}` : `one task (--task ${c.task})`,
        );
    }
    if (req.funnel !== undefined) {
      const asked = storedSuite ? suiteFunnel(req.funnel, c.task) : funnelConfig(req.funnel, resolveTask(c.task));
      if (canonicalJson(asked) !== canonicalJson(c.funnel ?? null)) {
        throw refuse('funnel', '', c.funnel ? `another funnel: ${JSON.stringify(c.funnel)}` : 'no funnel');
      }
    }
    // The stored config must still make a strategy and name tasks this nos has (an old or edited run.db).
    checkStrategy(c.strategy);
    for (const [field, id] of [
      ['task', c.task],
      ['transfer', c.funnel?.transfer ?? null],
    ] as const)
      if (id !== null && findTask(id) === undefined)
        throw new RunConfigError(
          field,
          `run '${run}' has ${field === 'task' ? 'task' : 'transfer task'} '${shown(id)}', which this nos does not know (nos tasks lists them)`,
        );
    for (const id of [...(c.suite?.search ?? []), ...(c.suite?.heldOut ?? [])])
      if (findTask(id) === undefined)
        throw new RunConfigError(
          'suite',
          `run '${run}' has workload '${shown(id)}' in its suite, which this nos does not know (nos tasks lists them)`,
        );
    checkWarmStart(c.strategy, c.warmStart, c.groups, spaceOf(c), c.space !== undefined);
    const notes: string[] = [];
    if (req.budget !== undefined && req.budget !== c.budget) {
      const cs = store.candidates();
      const { trained } = sampleCounts(cs);
      if (req.budget < c.budget) {
        throw new RunConfigError(
          'budget',
          `--budget ${req.budget} is below the budget of run '${run}' (${c.budget} ${storedUnit} rules, with ${trained} trained of ${cs.length} sampled): a resume may only raise the budget`,
        );
      }
      store.updateConfig({ ...c, budget: req.budget });
      notes.push(`budget raised from ${c.budget} to ${req.budget} rules (stored with the run)`);
    }
    return { store, notes };
  } catch (e) {
    store.close();
    throw e;
  }
}

/** Open a run to read it (leaderboard, report, export): no lock, no writes. */
export function openRun(run: string | undefined, options: RunsLocation = {}): RunStore {
  if (run === undefined) throw new RunConfigError('run', '--run NAME is required');
  checkName(run);
  return openStore(run, { ...options, readonly: true });
}

/** The strategy a config describes, fresh (the search restores its checkpoint). */
export function makeStrategy(config: RunConfig): Strategy {
  const space = spaceOf(config);
  const { seed, groups } = config;
  checkInt('groups', groups);
  switch (config.strategy) {
    case 'rl':
      return new RlController({ seed, groups, space });
    case 'random':
      return new RandomSearch({ seed, groups, space });
    case 'evolution':
      return new Evolution({ seed, groups, warmStart: config.warmStart, space });
    default:
      throw new RunConfigError(
        'strategy',
        `run '${config.run}' has strategy '${shown(config.strategy)}', which this nos does not know (${STRATEGIES.join(', ')})`,
      );
  }
}

export interface SearchRunOptions extends SearchHooks {
  /** Progress of the funnel after the search. */
  readonly funnelHooks?: Omit<FunnelHooks, 'shouldStop' | 'signal' | 'interrupt'>;
  /** Worker threads of the local pool (default and cap: the number of cores). */
  readonly workers?: number;
  /**
   * Where children train (default cpu: the local pool). `webgpu`: one GPU thread
   * (evaluator/gpu-pool.ts). Not stored with the run: results agree to float32 tolerance.
   */
  readonly device?: Device;
  /** Another evaluation back end instead of the local pool. */
  readonly evaluator?: Evaluator;
  /**
   * Evaluate through the queue at this URL (`nos worker`s take the jobs) instead of the local
   * pool. Not stored with the run: a resume may use another queue (and a URL may hold a password).
   */
  readonly queue?: { readonly url: string | QueueUrl; readonly log?: (line: string) => void };
  /** Called once the evaluator is ready, before the first rule. */
  onStart?(info: {
    readonly workers: number;
    readonly workersNote: string | undefined;
    readonly backend: string;
    readonly queue?: string;
    /** A stand-in run: each evaluation sleeps this many ms (nothing is trained). */
    readonly standIn?: number;
  }): void;
  /** Called when the search (rung 0) has ended, before the funnel starts. */
  onSearched?(summary: SearchSummary): void;
}

/**
 * Search a created or resumed run until its budget is spent or `shouldStop` says so (or reject
 * with an AbortError when `signal` aborts). A run this process created that fails or is aborted
 * before its first rule is removed, so its name stays free.
 */
export async function searchRun(
  store: RunStore,
  options: SearchRunOptions = {},
): Promise<SearchSummary & { readonly funnel?: FunnelSummary }> {
  let strategy: Strategy | undefined;
  let pool: EvaluatorPool | GpuEvaluator | undefined;
  let queue: QueueEvaluator | undefined;
  let checker: ThreadChecker | undefined;
  const { signal } = options;
  try {
    if (signal?.aborted) throw abortError(signal, 'the search');
    const config = store.config;
    const task = resolveTask(config.task);
    const backend = await initTf();
    strategy = makeStrategy(config);
    let evaluator = options.evaluator;
    let workersNote: string | undefined;
    let workers = 0;
    if (evaluator === undefined && options.queue !== undefined) {
      queue = await QueueEvaluator.open({
        url: options.queue.url,
        version: nosVersion(),
        ...(options.queue.log ? { log: options.queue.log } : {}),
        ...(config.standIn === undefined ? {} : { standIn: true }),
      });
      evaluator = queue;
    } else if (evaluator === undefined && config.standIn !== undefined) {
      // Sleeping workers need no core each: as many as asked for.
      workers = options.workers ?? workerLimit();
      evaluator = new SleepingEvaluator(workers, config.standIn);
    } else if (evaluator === undefined) {
      const transfer = config.funnel?.transfer ? findTask(config.funnel.transfer) : undefined;
      const workloads = config.suite ? [...config.suite.search, ...config.suite.heldOut].map((id) => findTask(id)) : [];
      const datasets = [
        ...new Set(
          [task.dataset, transfer?.dataset, ...workloads.map((w) => w?.dataset)].filter(
            (d): d is NonNullable<typeof d> => d !== null && d !== undefined,
          ),
        ),
      ];
      if (options.device === 'webgpu') {
        for (const t of [task, transfer]) {
          const problem = t === undefined ? undefined : gpuProblem(t);
          if (problem !== undefined) throw new RunConfigError('device', `--device webgpu: ${problem}`);
        }
        pool = new GpuEvaluator({ datasets });
      } else {
        const w = resolveWorkers(options.workers);
        workersNote = w.note;
        pool = new EvaluatorPool({ workers: w.workers, datasets });
      }
      evaluator = pool;
      workers = pool.workers;
    }
    // With evaluations elsewhere (the queue, stand-ins), rules are parsed and screened in a thread
    // of their own, on a core no training uses; beside the local pool's threads, in this one.
    if (options.checker === undefined && pool === undefined && existsSync(checkWorkerFile())) {
      checker = sharedChecker();
      await checker.ready(true);
    }
    options.onStart?.({
      workers,
      workersNote,
      backend: backend.name,
      ...(queue ? { queue: queue.url.redacted } : {}),
      ...(config.standIn === undefined ? {} : { standIn: config.standIn }),
    });
    const summary = await runSearch(store, strategy, evaluator, { ...options, ...(checker ? { checker } : {}) });
    options.onSearched?.(summary);
    if (summary.stopped || !config.funnel) return summary;
    const funnel = await runFunnel(store, evaluator, {
      ...options.funnelHooks,
      ...(options.shouldStop ? { shouldStop: options.shouldStop } : {}),
      ...(signal ? { signal } : {}),
      ...(options.interrupt ? { interrupt: true } : {}),
    });
    return { ...summary, stopped: funnel.stopped, funnel };
  } catch (e) {
    store.discardIfUnused();
    if (signal?.aborted) throw abortError(signal, 'the search');
    throw e;
  } finally {
    await pool?.close();
    await queue?.close();
    if (strategy !== undefined && 'dispose' in strategy && typeof strategy.dispose === 'function') strategy.dispose();
  }
}

/** Adam's reward and learning curve under the run's protocol (task, seed, steps), for reports. */
export async function adamBaseline(
  config: RunConfig,
): Promise<{ reward: number; curve: number[]; curveEvery: number } | undefined> {
  const task = findTask(config.task);
  if (task === undefined) return undefined;
  await initTf();
  const r = evaluateRule('adam', task, task.dataset ? loadDataset(task.dataset) : undefined, {
    seed: config.seed,
    ...(config.steps ? { steps: config.steps } : {}),
  });
  return { reward: r.reward, curve: [...r.curve], curveEvery: r.curveEvery };
}
