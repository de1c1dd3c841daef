/**
 * nos from code: evaluate a rule and run a search without the command line. The CLI's
 * `nos eval` and `nos search` do the same through the same library functions. Both train in
 * worker threads (the calling thread only waits), report progress, and stop when their
 * `signal` aborts: they reject with an AbortError at once, their workers stopped.
 *
 *   import { evaluate, search } from 'nos';
 *   const adam = await evaluate('adam', { task: 'mlp-mnist', seeds: 3, onProgress: (p) => console.log(p.done) });
 *   const run = await search({ task: 'quadratic', budget: 50, strategy: 'random', signal: AbortSignal.timeout(60_000) });
 */
import { lookupRule } from '../dsl/index.js';
import { labelNoiseProblem } from '../evaluator/generalization.js';
import { GpuEvaluator } from '../evaluator/gpu-pool.js';
import { DEVICES, type Device, gpuProblem } from '../evaluator/gpu-train.js';
import { EvaluatorPool } from '../evaluator/pool.js';
import { parseScheduleSpec } from '../evaluator/schedules.js';
import type { RuleSummary } from '../evaluator/stats.js';
import { type EvalOptions, type EvalResult, LR_SELECTS } from '../evaluator/train.js';
import type { Candidate, Evaluation as RungEvaluation } from '../search-results/store.js';
import { abortError } from '../util/abort.js';
import { resolveOptional } from '../util/optional-deps.js';
import { type BaselineComparison, baselineComparison, evaluateRules } from './evaluate.js';
import type { FunnelSummary } from './funnel.js';
import { type LeaderboardEntry, type Rung, rankedLeaderboard } from './funnel-plan.js';
import {
  checkOptionNames,
  EVAL_FLAG_OPTIONS,
  inLibraryTerms,
  libraryWording,
  type OptionNames,
  SEARCH_FLAG_OPTIONS,
} from './options.js';
import {
  createRun,
  type FunnelRequest,
  RunConfigError,
  type RunRequest,
  resolveTask,
  resumeRun,
  type SuiteRequest,
  searchRun,
} from './run.js';
import type { SearchProgress, SearchSummary } from './search.js';
import type { UpdateStats } from './strategy.js';

export interface EvaluateOptions extends Omit<EvalOptions, 'seed'> {
  /** A task id (`TASKS`); default mlp-mnist. */
  readonly task?: string;
  /** Seeds 0..seeds-1 (default 1); each trains from its own initialisation and data order. */
  readonly seeds?: number;
  /** Compare with this rule (a built-in name or rule text) on the same seeds: a paired t-test on accuracy. */
  readonly baseline?: string;
  /** Worker threads that train (default: one per core, and at most that many); the calling thread only waits. */
  readonly workers?: number;
  /**
   * Where children train: `cpu` (default: the wasm backend, `workers` threads) or `webgpu`
   * (one GPU thread; classifier tasks; needs the optional packages webgpu and
   * @tensorflow/tfjs-backend-webgpu), as `nos eval --device`.
   */
  readonly device?: Device;
  /**
   * Aborting it rejects with an AbortError: at once on the CPU (the running evaluations are
   * stopped with their worker threads); on the GPU once the running evaluation has finished
   * (the device's thread is never stopped mid-evaluation; the others are dropped).
   */
  readonly signal?: AbortSignal;
  /** Hyperparameter overrides of the rule (the baseline keeps its defaults). */
  readonly params?: Readonly<Record<string, number>>;
  /** After each evaluation (one rule on one seed), in the order they finish. */
  onProgress?(progress: EvaluateProgress): void;
}

export interface EvaluateProgress {
  /** Evaluations finished, of `total` (rule and baseline, every seed). */
  readonly done: number;
  readonly total: number;
  /** The rule or the baseline, as given. */
  readonly rule: string;
  readonly seed: number;
  readonly result: EvalResult;
}

export interface Evaluation {
  readonly task: string;
  /** Mean and spread over seeds, the learning rate most seeds chose, and every seed's result. */
  readonly summary: RuleSummary;
  readonly results: readonly EvalResult[];
  /**
   * With `baseline`: rule minus baseline, paired by seed, on test accuracy when every seed of
   * both measured it, else validation accuracy (`accuracy` says which), in the shape of
   * `nos eval --json`'s `vsBaseline`.
   */
  readonly vsBaseline?: BaselineComparison;
}

/** Every option of `evaluate()`, for the check of unknown names (the compiler checks the list is complete). */
export const EVALUATE_OPTIONS = [
  'task',
  'seeds',
  'baseline',
  'workers',
  'device',
  'signal',
  'onProgress',
  'steps',
  'lrGrid',
  'gridSteps',
  'lrTop',
  'lrSelect',
  'valSize',
  'params',
  'test',
  'timeLimitMs',
  'labelNoise',
  'learned',
  'schedule',
  'weightDecay',
  'batchGrowth',
  'analyze',
] as const satisfies readonly (keyof EvaluateOptions)[];

/** Every option of `search()` (and of its `funnel`), likewise. */
export const SEARCH_OPTIONS = [
  'run',
  'resume',
  'root',
  'task',
  'strategy',
  'budget',
  'budgetUnit',
  'seed',
  'batchSize',
  'staleness',
  'steps',
  'groups',
  'warmStart',
  'spaceFile',
  'space',
  'workers',
  'device',
  'funnel',
  'suite',
  'standIn',
  'signal',
  'onProgress',
  'onUpdate',
  'onFunnel',
  'shouldStop',
] as const satisfies readonly (keyof SearchOptions)[];

export const FUNNEL_OPTIONS = [
  'promote',
  'longTop',
  'finalists',
  'seeds',
  'longFactor',
  'transfer',
  'baseline',
] as const satisfies readonly (keyof FunnelRequest)[];

export const SUITE_OPTIONS = ['aggregate', 'search'] as const satisfies readonly (keyof SuiteRequest)[];

/** Compile-time: each list names every option (a new option must be added to its list). */
type Unlisted<T, L extends readonly PropertyKey[]> = Exclude<keyof T, L[number]>;
const complete: [
  Unlisted<EvaluateOptions, typeof EVALUATE_OPTIONS>,
  Unlisted<SearchOptions, typeof SEARCH_OPTIONS>,
  Unlisted<FunnelRequest, typeof FUNNEL_OPTIONS>,
  Unlisted<SuiteRequest, typeof SUITE_OPTIONS>,
] extends [never, never, never, never]
  ? true
  : never = true;
void complete;

const EVALUATE_NAMES: OptionNames = EVALUATE_OPTIONS;
const SEARCH_NAMES: OptionNames = [
  ...SEARCH_OPTIONS.filter((o) => o !== 'funnel' && o !== 'suite'),
  ['funnel', FUNNEL_OPTIONS],
  ['suite', SUITE_OPTIONS],
];

/** A bad option value: a RunConfigError naming the option (and the CLI flag that sets the same). */
function badOption(option: string, table: Readonly<Record<string, string>>, message: string): RunConfigError {
  const flag = Object.entries(table).find(([, o]) => o === option)?.[0] ?? option;
  return new RunConfigError(flag, message, { option });
}

function checkPositiveInt(option: string, value: unknown, table: Readonly<Record<string, string>>): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isSafeInteger(value) && value >= 1))
    throw badOption(option, table, `${option} must be a positive integer, got ${describe(value)}`);
}

function checkFunction(option: string, value: unknown, table: Readonly<Record<string, string>>): void {
  if (value !== undefined && typeof value !== 'function')
    throw badOption(option, table, `${option} must be a function, got ${describe(value)}`);
}

function checkDevice(value: unknown, table: Readonly<Record<string, string>>): void {
  if (value === undefined) return;
  if (!(DEVICES as readonly unknown[]).includes(value))
    throw badOption('device', table, `device must be one of ${DEVICES.join(', ')}, got ${describe(value)}`);
  if (value === 'webgpu') {
    // Missing packages are said now (MissingDependencyError), not per evaluation.
    resolveOptional('webgpu');
    resolveOptional('@tensorflow/tfjs-backend-webgpu');
  }
}

function checkSignal(value: unknown, table: Readonly<Record<string, string>>): void {
  if (value !== undefined && !(value instanceof AbortSignal))
    throw badOption('signal', table, `signal must be an AbortSignal, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** The options of `evaluate()` checked before anything starts: names, then values. */
function checkEvaluateOptions(rule: unknown, options: EvaluateOptions): void {
  const t = EVAL_FLAG_OPTIONS;
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`evaluate(): options must be an object, got ${describe(options)}`);
  checkOptionNames('evaluate', options, EVALUATE_NAMES, t);
  if (typeof rule !== 'string')
    throw badOption('rule', t, `the rule must be a string (a name or rule text), got ${describe(rule)}`);
  for (const o of ['seeds', 'workers', 'steps', 'gridSteps', 'lrTop', 'valSize', 'timeLimitMs'] as const)
    checkPositiveInt(o, options[o], t);
  checkSignal(options.signal, t);
  checkFunction('onProgress', options.onProgress, t);
  checkDevice(options.device, t);
  const { lrGrid, lrSelect, weightDecay, labelNoise, schedule } = options;
  if (
    lrGrid !== undefined &&
    !(
      Array.isArray(lrGrid) &&
      lrGrid.length > 0 &&
      lrGrid.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)
    )
  )
    throw badOption('lrGrid', t, `lrGrid must be a non-empty list of positive numbers, got ${describe(lrGrid)}`);
  if (lrSelect !== undefined && !LR_SELECTS.includes(lrSelect))
    throw badOption('lrSelect', t, `lrSelect must be one of ${LR_SELECTS.join(', ')}, got ${describe(lrSelect)}`);
  if (
    weightDecay !== undefined &&
    !(typeof weightDecay === 'number' && Number.isFinite(weightDecay) && weightDecay >= 0)
  )
    throw badOption('weightDecay', t, `weightDecay must be a number >= 0, got ${describe(weightDecay)}`);
  if (schedule !== undefined) {
    try {
      parseScheduleSpec(schedule);
    } catch (e) {
      throw badOption('schedule', t, `schedule: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (options.batchGrowth && schedule === undefined)
    throw badOption('batchGrowth', t, 'batchGrowth needs a decaying schedule (e.g. step) to turn into batch growth');
  const task = resolveTask(options.task);
  if (labelNoise !== undefined) {
    const problem = labelNoiseProblem(labelNoise, task);
    if (problem !== undefined) throw badOption('labelNoise', t, `labelNoise: ${problem}`);
  }
  if (options.device === 'webgpu') {
    const problem = gpuProblem(task, { analyze: options.analyze === true, learned: options.learned !== undefined });
    if (problem !== undefined) throw badOption('device', t, `device 'webgpu': ${libraryWording(problem, t)}`);
  }
  if (options.learned === undefined) {
    const found = lookupRule(rule);
    if (!found.ok) throw badOption('rule', t, `the rule is not valid rule text or a built-in name:\n${found.message}`);
  }
  if (options.baseline !== undefined) {
    const found = typeof options.baseline === 'string' ? lookupRule(options.baseline) : undefined;
    if (!found?.ok)
      throw badOption(
        'baseline',
        t,
        `baseline must be a built-in name or rule text${found === undefined ? `, got ${describe(options.baseline)}` : `:\n${found.message}`}`,
      );
  }
}

/**
 * Train the task's child model with a rule over its learning-rate grid, once per seed (and the
 * baseline on the same seeds), in worker threads: the calling thread stays free. Rejects with
 * an AbortError at once when `signal` aborts; with a RunConfigError (naming the option) or an
 * UnknownOptionError for bad options, before anything trains.
 */
export async function evaluate(rule: string, options: EvaluateOptions = {}): Promise<Evaluation> {
  try {
    return await evaluateChecked(rule, options);
  } catch (e) {
    throw inLibraryTerms(e, EVAL_FLAG_OPTIONS);
  }
}

async function evaluateChecked(rule: string, options: EvaluateOptions): Promise<Evaluation> {
  checkEvaluateOptions(rule, options);
  const {
    task: taskId,
    seeds = 1,
    baseline,
    workers,
    device,
    signal,
    onProgress,
    params,
    learned,
    ...protocol
  } = options;
  if (signal?.aborted) throw abortError(signal, 'the evaluation');
  const task = resolveTask(taskId);
  // Stops the evaluations in flight when the caller aborts, or when anything here fails.
  const halt = new AbortController();
  const stop = () => halt.abort(signal?.reason);
  signal?.addEventListener('abort', stop, { once: true });
  const datasets = task.dataset ? [task.dataset] : [];
  const pool =
    device === 'webgpu'
      ? new GpuEvaluator({ datasets })
      : new EvaluatorPool({ ...(workers === undefined ? {} : { workers }), datasets });
  const labels = [rule, ...(baseline === undefined ? [] : [baseline])];
  try {
    const e = await evaluateRules(
      {
        rules: [
          {
            label: rule,
            rule,
            ...(learned === undefined ? {} : { learned }),
            ...(params === undefined ? {} : { params }),
          },
          ...(baseline === undefined ? [] : [{ label: baseline, rule: baseline }]),
        ],
        task: task.id,
        seeds,
        ...(baseline === undefined ? {} : { baseline: 1 }),
        options: { ...protocol, test: protocol.test ?? true },
      },
      { evaluate: (req) => pool.evaluate(req, { signal: halt.signal, interrupt: halt.signal }) },
      onProgress === undefined
        ? undefined
        : ({ rule: i, seed, result, done, total }) =>
            onProgress({ done, total, rule: labels[i] as string, seed, result }),
    );
    const out: Evaluation = { task: task.id, summary: e.summaries[0] as RuleSummary, results: e.results[0] ?? [] };
    const vs = e.vsBaseline;
    const c = vs?.comparisons[0];
    if (baseline === undefined || vs === undefined || c === undefined) return out;
    return { ...out, vsBaseline: baselineComparison(baseline, c, vs.accuracy) };
  } catch (e) {
    if (signal?.aborted) throw abortError(signal, 'the evaluation');
    throw e;
  } finally {
    halt.abort();
    signal?.removeEventListener('abort', stop);
    await pool.close();
  }
}

export interface SearchOptions extends RunRequest {
  /** Continue the stopped run named `run` with its stored config (settings given again must equal it; `budget` may be raised). */
  readonly resume?: boolean;
  /** The folder that holds the run folders: a run named X is `<root>/X` (default: $NOS_RUNS, else ./search-results/runs). */
  readonly root?: string;
  /** Worker threads that train (default: one per core, and at most that many). */
  readonly workers?: number;
  /** Where children train: `cpu` (default) or `webgpu` (one GPU thread), as `nos search --device`; not stored with the run. */
  readonly device?: Device;
  /**
   * Aborting it stops the search at once (evaluations in flight are stopped and not stored) and
   * rejects with an AbortError; the run keeps what it stored and can be resumed (`resume: true`).
   * A run that had stored nothing is removed.
   */
  readonly signal?: AbortSignal;
  /** After each sampled rule. */
  onProgress?(progress: SearchProgress, candidate: Candidate): void;
  /** After each strategy update (mean reward, baseline, entropy). */
  onUpdate?(batch: number, stats: UpdateStats, progress: SearchProgress): void;
  /** The funnel after the search: as each rung starts, and after each of its evaluations. */
  onFunnel?(progress: FunnelProgress): void;
  /** Polled between evaluations: true stops after what is in flight, and the search resolves (`stopped: true`). */
  shouldStop?(): boolean;
}

/** The funnel's progress: a rung starting (its rules, and the evaluations it has left to run), or one evaluation stored. */
export type FunnelProgress =
  | { readonly kind: 'rung'; readonly rung: Rung; readonly rules: number; readonly evaluations: number }
  | { readonly kind: 'evaluation'; readonly evaluation: RungEvaluation; readonly left: number };

export interface SearchResult extends SearchSummary {
  /**
   * The run's leaderboard (the top 10), as `nos search` and `nos leaderboard` show it: ranked by
   * the highest funnel rung reached, then the mean reward there.
   */
  readonly leaderboard: readonly LeaderboardEntry[];
  /** The funnel's rungs, the evaluations it ran, and the verdicts against its baseline (absent with `funnel: false`). */
  readonly funnel?: FunnelSummary;
  /** What a resume changed (a raised budget), and a worker count capped at the number of cores. */
  readonly notes: readonly string[];
}

function checkSearchOptions(options: SearchOptions): void {
  const t = SEARCH_FLAG_OPTIONS;
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`search(): options must be an object, got ${describe(options)}`);
  checkOptionNames('search', options, SEARCH_NAMES, t);
  checkPositiveInt('workers', options.workers, t);
  checkDevice(options.device, t);
  checkSignal(options.signal, t);
  for (const f of ['onProgress', 'onUpdate', 'onFunnel', 'shouldStop'] as const) checkFunction(f, options[f], t);
  if (options.resume !== undefined && typeof options.resume !== 'boolean')
    throw badOption('resume', t, `resume must be true or false, got ${describe(options.resume)}`);
  if (options.root !== undefined && (typeof options.root !== 'string' || options.root === ''))
    throw badOption('root', t, `root must be a folder's path, got ${describe(options.root)}`);
  if (options.resume === true && options.run === undefined)
    throw badOption('run', t, 'resume: true needs run (the name of the run to continue)');
}

/**
 * Create a run (or continue one: `resume: true`) and search it until its budget is spent, then
 * climb its funnel: the library form of `nos search`. Rejects with an AbortError at once when
 * `signal` aborts (the run can be resumed), with a RunConfigError naming the option or an
 * UnknownOptionError for bad options (nothing is created), with a RunExistsError for a new
 * run whose name is taken.
 */
export async function search(options: SearchOptions = {}): Promise<SearchResult> {
  try {
    return await searchChecked(options);
  } catch (e) {
    throw inLibraryTerms(e, SEARCH_FLAG_OPTIONS);
  }
}

async function searchChecked(options: SearchOptions): Promise<SearchResult> {
  checkSearchOptions(options);
  const { resume, root, device, signal, onProgress, onUpdate, onFunnel, shouldStop, ...request } = options;
  if (signal?.aborted) throw abortError(signal, 'the search');
  const where = root === undefined ? {} : { runs: root };
  const notes: string[] = [];
  let store: ReturnType<typeof createRun>;
  if (resume === true) {
    const resumed = resumeRun(request.run, request, where);
    store = resumed.store;
    notes.push(...resumed.notes);
  } else store = createRun(request, where);
  try {
    const summary = await searchRun(store, {
      ...(request.workers === undefined ? {} : { workers: request.workers }),
      ...(device === undefined ? {} : { device }),
      // The caller's abort stops the evaluations that run too (the pool stops their threads).
      ...(signal === undefined ? {} : { signal, interrupt: true }),
      ...(onProgress ? { onCandidate: (c: Candidate, p: SearchProgress) => onProgress(p, c) } : {}),
      ...(onUpdate ? { onUpdate } : {}),
      ...(onFunnel
        ? {
            funnelHooks: {
              onRung: (rung: Rung, rules: number, evaluations: number) =>
                onFunnel({ kind: 'rung', rung, rules, evaluations }),
              onEvaluation: (evaluation: RungEvaluation, left: number) =>
                onFunnel({ kind: 'evaluation', evaluation, left }),
            },
          }
        : {}),
      ...(shouldStop ? { shouldStop } : {}),
      onStart: ({ workersNote }) => {
        if (workersNote !== undefined) notes.push(workersNote.replace(/^--workers/, 'workers'));
      },
    });
    return {
      ...summary,
      leaderboard: rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 10),
      notes,
    };
  } finally {
    store.close();
  }
}
