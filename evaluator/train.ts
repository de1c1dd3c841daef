/**
 * The training protocol behind every reward.
 *
 * For one rule on one task and seed: short runs over a log-spaced learning-rate grid, the best
 * learning rate by validation accuracy (then loss), then the full run at that rate. The reward
 * is the validation accuracy of the full run (the analytic tasks report a loss-reduction score
 * in its place); the test split is measured but never used for the reward.
 *
 * A run ends early, as a status with a defined reward (0) and never as an exception, when:
 *   - the loss or the weights become NaN/Inf, or the loss exceeds 10x its first value: `diverged`;
 *   - the rule never changes the weights over its first steps: `invalid`;
 *   - it runs past the task's time limit: `timeout`.
 */
import { compileRule } from '../dsl/compile/index.js';
import type { RuleKernelBackend } from './device.js';
import { type CheckedRule, lookupRule } from '../dsl/index.js';
import type { Dataset } from './images.js';
import { ensembleAccuracy, sharpness } from './analysis.js';
import {
  labelNoiseProblem,
  type Reliance,
  rescaledSharpness,
  singleDirectionReliance,
  withLabelNoise,
} from './generalization.js';
import { parseScheduleSpec } from './schedules.js';
import { createRun, type TaskSpec } from './tasks.js';
import { type LearnedData, validateLearned } from '../learned/file.js';
import { isLearnedRule, type LearnedRule, learnedRule } from '../learned/kernel.js';

export type Status = 'ok' | 'diverged' | 'invalid' | 'timeout';

export interface RunResult {
  readonly lr: number;
  readonly status: Status;
  readonly reason?: string;
  readonly steps: number;
  readonly valAcc: number;
  readonly valLoss: number;
  readonly finalLoss: number;
  /** Mean training loss over the last quarter of the run's steps (Infinity when it did not finish). */
  readonly tailLoss: number;
  /** Training loss, averaged over windows of `curveEvery` steps. */
  readonly curve: readonly number[];
  readonly curveEvery: number;
  readonly seconds: number;
  /** The back end that applied the rule's updates (wasm unless the rule has no wasm form). */
  readonly ruleBackend?: string;
  /** With `analyze`: what kind of minimum the run ended in. */
  readonly analysis?: Analysis;
}

export interface Analysis {
  readonly trainAcc: number;
  readonly trainLoss: number;
  readonly testAcc: number;
  readonly testLoss: number;
  /** trainAcc - testAcc, and testLoss - trainLoss. */
  readonly gapAcc: number;
  readonly gapLoss: number;
  /** Keskar et al. sharpness, percent (eps = 1e-3). */
  readonly sharpness: number;
  /** Sharpness of the same function after Dinh et al.'s rescaling (first ReLU layer x5, next layer /5); null without a ReLU layer. */
  readonly sharpnessRescaled: number | null;
  /** Morcos et al.'s cumulative ablation curve on the training sample; null without hidden units. */
  readonly reliance: Reliance | null;
  /** Snapshot ensemble at the schedule's cycle ends (when it has restarts). */
  readonly ensemble: {
    readonly snapshots: number;
    readonly valAcc: number | null;
    readonly testAcc: number | null;
  } | null;
}

/** Layers around the rule: a schedule, decoupled weight decay, batch growth; and analysis. */
export interface TrainExtras {
  /** A schedule spec: `name`, `name:k=v,...`, or an expression of t and T (evaluateRule: default the task's, `constant` for none). */
  readonly schedule?: string;
  /** Decoupled weight decay (Loshchilov & Hutter): w <- w - lr_t * (d_t + wd * w). */
  readonly weightDecay?: number;
  /** Grow the batch size by 1/m(t) instead of decaying the learning rate (Smith et al. 2017), same examples seen. */
  readonly batchGrowth?: boolean;
  /** Measure sharpness, the generalisation gap and the snapshot ensemble after the full run. */
  readonly analyze?: boolean;
}

/**
 * How the learning-rate grid picks its rate: the grid run's validation accuracy (then loss),
 * its validation loss, or its training loss averaged over the last quarter of its steps
 * (smoothed over many batches, and free: no extra forward passes).
 */
export type LrSelect = 'val-acc' | 'val-loss' | 'train-loss';

export const LR_SELECTS: readonly LrSelect[] = ['val-acc', 'val-loss', 'train-loss'];

export interface EvalOptions extends TrainExtras {
  readonly seed?: number;
  /** How the grid picks its rate (default: the task's). */
  readonly lrSelect?: LrSelect;
  /** Steps of each grid run (default: the task's, scaled with `steps`). */
  readonly gridSteps?: number;
  /**
   * Full runs at the best this-many grid rates, the one with the best validation score kept
   * (default: the task's, else 1). Two steadies the rate choice where the grid's short runs
   * cannot tell two neighbouring rates apart (Adam on mlp-mnist: 0.01 or 0.03).
   */
  readonly lrTop?: number;
  /** Validation examples the grid and the reward are measured on (default: the task's). */
  readonly valSize?: number;
  /** Override the task's full-run steps (grid steps scale with it). */
  readonly steps?: number;
  readonly lrGrid?: readonly number[];
  readonly params?: Readonly<Record<string, number>>;
  /** Also measure the test split (never used for the reward). */
  readonly test?: boolean;
  /** Ms; defaults to the task's limit. */
  readonly timeLimitMs?: number;
  /** Replace this fraction of the training labels by uniformly random ones, seeded by `seed` (image tasks; Zhang et al. 2017). */
  readonly labelNoise?: number;
  /** The weights of a learned optimizer (`learned:FILE`): validated again here, then trained like a rule. */
  readonly learned?: LearnedData;
}

export interface EvalResult {
  readonly rule: string;
  readonly hash: string;
  readonly task: string;
  readonly seed: number;
  readonly status: Status | 'invalid';
  readonly reason?: string;
  readonly reward: number;
  readonly bestLr: number | null;
  readonly valAcc: number;
  readonly testAcc: number | null;
  readonly finalLoss: number;
  readonly grid: readonly { lr: number; status: Status; valAcc: number; valLoss: number; tailLoss: number }[];
  readonly curve: readonly number[];
  readonly curveEvery: number;
  readonly seconds: number;
  readonly analysis?: Analysis;
  /** The fraction of training labels replaced (absent: none). */
  readonly labelNoise?: number;
}

const DIVERGE_FACTOR = 10;
/** Steps without any weight change after which a rule counts as doing nothing. */
const ZERO_UPDATE_STEPS = 3;

/** An evaluation that never trained: reward 0 and a reason. */
export function failedResult(
  rule: string,
  task: string,
  seed: number,
  status: EvalResult['status'],
  reason: string,
  seconds: number,
): EvalResult {
  return {
    rule,
    hash: '',
    task,
    seed,
    status,
    reason,
    reward: 0,
    bestLr: null,
    valAcc: 0,
    testAcc: null,
    finalLoss: Number.NaN,
    grid: [],
    curve: [],
    curveEvery: 1,
    seconds,
  };
}

/** How one training run goes: its seed, hyperparameters, deadline, and the layers around the rule. */
export type TrainOptions = {
  seed: number;
  params?: Readonly<Record<string, number>>;
  deadline: number;
  test?: boolean;
  kernel?: RuleKernelBackend;
} & TrainExtras;

export type TrainResult = RunResult & { testAcc: number | null };

/** One training run the protocol asks for: `trainOnce`'s arguments. */
export interface TrainCall {
  readonly rule: CheckedRule | LearnedRule;
  readonly task: TaskSpec;
  readonly data: Dataset | undefined;
  readonly lr: number;
  readonly steps: number;
  readonly options: TrainOptions;
}

/**
 * Each step's batch size and learning rate: the task's batch at `lr` times the schedule, or, with
 * batch growth, the batch grown instead (Smith et al. 2017). Shared by the CPU and GPU loops.
 */
export class StepPlan {
  private readonly multipliers: ArrayLike<number>;
  private readonly growth: boolean;
  private examples = 0;
  /** The steps that end a schedule's cycle (snapshot ensembles; only with `analyze`). */
  readonly cycleEnds: ReadonlySet<number>;
  /** The rule's hyperparameters for this run: a decay's `T` is the run's length unless given. */
  readonly params: Readonly<Record<string, number>>;

  constructor(
    rule: Pick<CheckedRule | LearnedRule, 'params'>,
    private readonly task: Pick<TaskSpec, 'batchSize'>,
    private readonly lr: number,
    private readonly steps: number,
    options: TrainOptions,
  ) {
    const { schedule, params } = parseScheduleSpec(options.schedule ?? 'constant');
    this.multipliers = schedule.values(steps, params, options.seed);
    this.cycleEnds = new Set(options.analyze ? (schedule.cycleEnds?.(steps, params) ?? []) : []);
    this.growth = options.batchGrowth === true;
    this.params = { ...(rule.params.some((p) => p.name === 'T') ? { T: steps } : {}), ...(options.params ?? {}) };
  }

  /** Step `step`'s batch size and learning rate (counts the batch as seen). */
  next(step: number): { batch: number; lr: number } {
    const b = this.task.batchSize;
    // Batch growth: the schedule is read at the step a fixed batch would have reached after the
    // examples seen so far (Smith et al. grow the batch at the epochs where the rate would drop),
    // the batch grows by 1/m (capped at 32x), and the learning rate stays.
    const m = this.multipliers[
      Math.min(this.steps, this.growth ? Math.floor(this.examples / b) + 1 : step) - 1
    ] as number;
    const batch = this.growth ? Math.min(32 * b, Math.max(b, Math.round(b / Math.max(m, 1e-9)))) : b;
    this.examples += batch;
    return { batch, lr: this.growth ? this.lr : this.lr * m };
  }

  /** With batch growth: the run has seen the examples a fixed batch would have in `steps`. */
  spent(): boolean {
    return this.growth && this.examples >= this.steps * this.task.batchSize;
  }
}

/**
 * The bookkeeping of one training run, step by step, shared by the CPU loop (`trainOnce`) and
 * the GPU one (evaluator/gpu-train.ts, which replays the losses and flags it reads back in
 * batches): the loss curve, the tail loss, and when a run stops and why.
 */
export class RunLedger {
  status: Status = 'ok';
  reason: string | undefined;
  /** Steps whose update was applied. */
  done = 0;
  firstLoss = Number.NaN;
  lastLoss = Number.NaN;
  readonly curve: number[] = [];
  readonly curveEvery: number;
  private changedEver = false;
  private windowSum = 0;
  private tailSum = 0;
  private readonly tailFrom: number;

  constructor(private readonly steps: number) {
    this.curveEvery = Math.max(1, Math.floor(steps / 50));
    this.tailFrom = steps - Math.max(1, Math.floor(steps / 4)) + 1;
  }

  /** The loss of this step's batch, before its update: false when the run stops here (diverged). */
  loss(step: number, loss: number): boolean {
    if (step === 1) this.firstLoss = loss;
    this.lastLoss = loss;
    this.windowSum += loss;
    if (step >= this.tailFrom) this.tailSum += loss;
    if (step % this.curveEvery === 0) {
      this.curve.push(this.windowSum / this.curveEvery);
      this.windowSum = 0;
    }
    if (!Number.isFinite(loss)) return this.stop('diverged', `loss is ${loss} at step ${step}`);
    if (step > 1 && loss > DIVERGE_FACTOR * Math.max(this.firstLoss, 1e-12))
      return this.stop('diverged', `loss ${loss.toPrecision(4)} exceeds ${DIVERGE_FACTOR}x its start at step ${step}`);
    return true;
  }

  /** Whether this step's update must be checked for changing any weight. */
  watching(step: number): boolean {
    return !this.changedEver && step <= ZERO_UPDATE_STEPS;
  }

  /**
   * After this step's update: whether it changed a weight (when `watching`), whether every
   * weight is finite, whether the time limit has passed. False when the run stops here.
   */
  updated(step: number, changed: boolean | undefined, finite: boolean, late: boolean): boolean {
    this.done = step;
    if (changed) this.changedEver = true;
    if (!this.changedEver && step === ZERO_UPDATE_STEPS)
      return this.stop('invalid', `the rule did not change any weight in ${ZERO_UPDATE_STEPS} steps`);
    if (!finite) return this.stop('diverged', `weights became NaN/Inf at step ${step}`);
    if (late) return this.stop('timeout', `time limit reached at step ${step}`);
    return true;
  }

  /** The run's result: this bookkeeping, the validation figures, and what applied the rule. */
  result(lr: number, val: { acc: number; loss: number }, seconds: number, ruleBackend: string): RunResult {
    return {
      lr,
      status: this.status,
      ...(this.reason === undefined ? {} : { reason: this.reason }),
      steps: this.done,
      valAcc: val.acc,
      valLoss: val.loss,
      finalLoss: this.lastLoss,
      tailLoss: this.tailLoss(),
      curve: this.curve,
      curveEvery: this.curveEvery,
      seconds,
      ruleBackend,
    };
  }

  /** Mean training loss over the last quarter of the steps (Infinity unless the run finished). */
  tailLoss(): number {
    return this.status === 'ok' && this.done === this.steps && Number.isFinite(this.tailSum)
      ? this.tailSum / (this.steps - this.tailFrom + 1)
      : Number.POSITIVE_INFINITY;
  }

  private stop(status: Status, reason: string): false {
    this.status = status;
    this.reason = reason;
    return false;
  }
}

/** Train one rule at one learning rate. */
export function trainOnce(
  rule: CheckedRule | LearnedRule,
  task: TaskSpec,
  data: Dataset | undefined,
  lr: number,
  steps: number,
  options: TrainOptions,
): TrainResult {
  const t0 = performance.now();
  const plan = new StepPlan(rule, task, lr, steps, options);
  const snapshots: Float32Array[][] = [];
  const wd = options.weightDecay ?? 0;
  // The rule's update: the wasm SIMD kernel, or fused JS (then the interpreter) where it has no wasm form.
  const compiled = isLearnedRule(rule)
    ? rule
    : compileRule(rule, { backend: options.kernel ?? 'wasm', params: plan.params });
  const run = createRun(task, options.seed, data);
  const kernels = run.weights.map((w, i) => compiled.create(w.length, options.seed * 1000 + i));
  const ledger = new RunLedger(steps);
  const before = run.weights.map((w) => new Float32Array(w.length));
  try {
    for (let step = 1; step <= steps; step++) {
      const { batch, lr: lrStep } = plan.next(step);
      const { loss, grads } = run.gradients(step, batch);
      if (!ledger.loss(step, loss)) break;
      const watch = ledger.watching(step);
      if (watch) {
        run.weights.forEach((w, i) => {
          (before[i] as Float32Array).set(w);
        });
      }
      const prev = wd !== 0 ? run.weights.map((w) => Float32Array.from(w)) : undefined;
      run.weights.forEach((w, i) => {
        kernels[i]?.step(w, grads[i] as Float32Array, lrStep);
        if (prev) {
          const p = prev[i] as Float32Array;
          for (let j = 0; j < w.length; j++) w[j] = (w[j] as number) - lrStep * wd * (p[j] as number);
        }
      });
      run.project?.();
      if (plan.cycleEnds.has(step)) snapshots.push(run.weights.map((w) => Float32Array.from(w)));
      const changed = watch
        ? run.weights.some((w, i) => w.some((v, j) => v !== (before[i] as Float32Array)[j]))
        : undefined;
      const finite = run.weights.every((w) => w.every(Number.isFinite));
      if (!ledger.updated(step, changed, finite, performance.now() > options.deadline)) break;
      if (plan.spent()) break;
    }
    const { status } = ledger;
    const val = status === 'ok' ? run.evaluate('val') : { acc: 0, loss: Number.NaN };
    const testEval = status === 'ok' && (options.test || options.analyze) ? run.evaluate('test') : null;
    const testAcc = testEval && options.test ? testEval.acc : null;
    let analysis: Analysis | undefined;
    if (status === 'ok' && options.analyze && testEval) {
      const train = run.evaluate('train');
      const ensemble =
        snapshots.length >= 2
          ? {
              snapshots: snapshots.length,
              valAcc: ensembleAccuracy(run, snapshots, 'val'),
              testAcc: ensembleAccuracy(run, snapshots, 'test'),
            }
          : null;
      analysis = {
        trainAcc: train.acc,
        trainLoss: train.loss,
        testAcc: testEval.acc,
        testLoss: testEval.loss,
        gapAcc: train.acc - testEval.acc,
        gapLoss: testEval.loss - train.loss,
        sharpness: sharpness(run),
        sharpnessRescaled: rescaledSharpness(run, task.model),
        reliance: singleDirectionReliance(run, task.model, options.seed),
        ensemble,
      };
    }
    return {
      ...ledger.result(lr, val, (performance.now() - t0) / 1000, 'backend' in compiled ? compiled.backend : 'learned'),
      testAcc,
      ...(analysis ? { analysis } : {}),
    };
  } finally {
    for (const k of kernels) (k as { dispose?: () => void }).dispose?.();
    run.dispose();
  }
}

function better(a: RunResult, b: RunResult | undefined, select: LrSelect): boolean {
  if (b === undefined) return true;
  if (a.status === 'ok' && b.status !== 'ok') return true;
  if (a.status !== 'ok') return false;
  if (select === 'train-loss' && a.tailLoss !== b.tailLoss) return a.tailLoss < b.tailLoss;
  if (select === 'val-loss' && a.valLoss !== b.valLoss) return a.valLoss < b.valLoss;
  if (a.valAcc !== b.valAcc) return a.valAcc > b.valAcc;
  return a.valLoss < b.valLoss;
}

/** The grid's successful runs, best first (ties: the grid's order). */
function rankGrid(grid: readonly RunResult[], select: LrSelect): RunResult[] {
  return grid
    .filter((g) => g.status === 'ok')
    .map((g, i) => ({ g, i }))
    .sort((a, b) => (better(a.g, b.g, select) ? -1 : better(b.g, a.g, select) ? 1 : a.i - b.i))
    .map((x) => x.g);
}

/** Between two full runs: the one that finished, then the better validation score, then loss. */
function fullBetter(a: RunResult, b: RunResult): boolean {
  if (a.status === 'ok' && b.status !== 'ok') return true;
  if (a.status !== 'ok') return false;
  if (a.valAcc !== b.valAcc) return a.valAcc > b.valAcc;
  return a.valLoss < b.valLoss;
}

/** The task's data with label noise (a bad fraction or an analytic task is the caller's error). */
function noisyData(task: TaskSpec, data: Dataset | undefined, p: number, seed: number): Dataset {
  const problem = labelNoiseProblem(p, task);
  if (problem !== undefined) throw new RangeError(problem);
  if (data === undefined) throw new Error(`task ${task.id} needs the ${task.dataset} dataset`);
  return withLabelNoise(data, p, seed);
}

/**
 * A learned optimizer runs an LSTM per coordinate (about 0.2 s per step on mlp-mnist's 50,890
 * weights, hundreds of times a rule's update): its evaluations get this many times the task's limit.
 */
export const LEARNED_TIME_FACTOR = 10;

/**
 * The time limit of an evaluation that does not set one: the task's, for its own number of steps
 * (more steps asked for, a proportionally longer limit), longer for a learned optimizer.
 */
export function defaultTimeLimitMs(
  task: Pick<TaskSpec, 'timeLimitMs' | 'steps'>,
  learned: boolean,
  steps: number = task.steps,
): number {
  return task.timeLimitMs * (learned ? LEARNED_TIME_FACTOR : 1) * Math.max(1, steps / task.steps);
}

/** A learned optimizer's weights as they arrive (plain data from a request): checked before use. */
function lookupLearned(label: string, data: unknown): { ok: true; rule: LearnedRule } | { ok: false; message: string } {
  try {
    return { ok: true, rule: learnedRule(label, validateLearned(data, label)) };
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}

/** The whole protocol for one rule (text or built-in name) on one task and seed. */
export function evaluateRule(
  ruleText: string,
  taskSpec: TaskSpec,
  data: Dataset | undefined,
  options: EvalOptions = {},
): EvalResult {
  const plan = evaluationPlan(ruleText, taskSpec, data, options);
  let next = plan.next();
  while (!next.done) {
    const c = next.value;
    next = plan.next(trainOnce(c.rule, c.task, c.data, c.lr, c.steps, c.options));
  }
  return next.value;
}

/** The same protocol with each training run done by `train` (the GPU's, which is asynchronous). */
export async function evaluateRuleAsync(
  ruleText: string,
  taskSpec: TaskSpec,
  data: Dataset | undefined,
  options: EvalOptions,
  train: (call: TrainCall) => Promise<TrainResult>,
): Promise<EvalResult> {
  const plan = evaluationPlan(ruleText, taskSpec, data, options);
  let next = plan.next();
  while (!next.done) next = plan.next(await train(next.value));
  return next.value;
}

/** The protocol as a plan: it yields each training run it needs and receives its result. */
function* evaluationPlan(
  ruleText: string,
  taskSpec: TaskSpec,
  data: Dataset | undefined,
  options: EvalOptions,
): Generator<TrainCall, EvalResult, TrainResult> {
  const t0 = performance.now();
  const seed = options.seed ?? 0;
  const task = options.valSize === undefined ? taskSpec : { ...taskSpec, valSize: options.valSize };
  const found =
    options.learned !== undefined ? lookupLearned(ruleText, options.learned) : lookupRule(ruleText, '<rule>');
  if (!found.ok) return failedResult(ruleText, task.id, seed, 'invalid', found.message, 0);
  const rule = found.rule;
  const noise = options.labelNoise;
  const trainData = noise === undefined ? data : noisyData(task, data, noise, seed);
  const steps = options.steps ?? task.steps;
  const gridSteps = options.gridSteps ?? Math.max(1, Math.round((steps * task.gridSteps) / task.steps));
  const select = options.lrSelect ?? task.lrSelect ?? 'val-acc';
  const deadline =
    performance.now() + (options.timeLimitMs ?? defaultTimeLimitMs(task, options.learned !== undefined, steps));
  const grid: RunResult[] = [];
  let best: RunResult | undefined;
  // The same layers around the rule in the grid and the full run.
  const schedule = options.schedule ?? task.schedule;
  const layers: TrainExtras = {
    ...(schedule === undefined ? {} : { schedule }),
    ...(options.weightDecay === undefined ? {} : { weightDecay: options.weightDecay }),
    ...(options.batchGrowth ? { batchGrowth: true } : {}),
  };
  const lrGrid = options.lrGrid ?? task.lrGrid;
  if (lrGrid.length === 0) throw new Error('the learning-rate grid is empty');
  if (lrGrid.length === 1) {
    // A single rate: no grid search, straight to the full run.
    best = {
      lr: lrGrid[0] as number,
      status: 'ok',
      steps: 0,
      valAcc: 0,
      valLoss: 0,
      finalLoss: 0,
      tailLoss: 0,
      curve: [],
      curveEvery: 1,
      seconds: 0,
    };
  }
  for (const lr of lrGrid.length > 1 ? lrGrid : []) {
    const r: RunResult = yield {
      rule,
      task,
      data: trainData,
      lr,
      steps: gridSteps,
      options: { seed, ...(options.params ? { params: options.params } : {}), deadline, ...layers },
    };
    grid.push(r);
    if (better(r, best, select)) best = r;
    if (r.status === 'timeout') break;
  }
  const gridOut = grid.map((g) => ({
    lr: g.lr,
    status: g.status,
    valAcc: g.valAcc,
    valLoss: g.valLoss,
    tailLoss: g.tailLoss,
  }));
  const base = {
    rule: rule.canonical,
    hash: rule.hash,
    task: task.id,
    seed,
    grid: gridOut,
    ...(noise === undefined ? {} : { labelNoise: noise }),
  };
  if (best === undefined || best.status !== 'ok') {
    const status: Status = grid.some((g) => g.status === 'timeout') ? 'timeout' : (best?.status ?? 'invalid');
    return {
      ...base,
      status,
      ...(best?.reason ? { reason: `at every learning rate; e.g. ${best.reason}` } : {}),
      reward: 0,
      bestLr: null,
      valAcc: 0,
      testAcc: null,
      finalLoss: best?.finalLoss ?? Number.NaN,
      curve: best?.curve ?? [],
      curveEvery: best?.curveEvery ?? 1,
      seconds: (performance.now() - t0) / 1000,
    };
  }
  // The best `top` grid rates (best first), each trained for the full run; the best validation score wins.
  const top = Math.max(1, Math.floor(options.lrTop ?? task.lrTop ?? 1));
  const ranked = lrGrid.length > 1 ? rankGrid(grid, select).slice(0, top) : [best];
  let full: TrainResult | undefined;
  let chosen = best;
  for (const g of ranked) {
    const r: TrainResult = yield {
      rule,
      task,
      data: trainData,
      lr: g.lr,
      steps,
      options: {
        seed,
        ...(options.params ? { params: options.params } : {}),
        deadline,
        test: options.test ?? false,
        ...layers,
        ...(options.analyze ? { analyze: true } : {}),
      },
    };
    if (full === undefined || fullBetter(r, full)) {
      full = r;
      chosen = g;
    }
    if (r.status === 'timeout') break;
  }
  if (full === undefined) throw new Error('no full run');
  best = chosen;
  return {
    ...base,
    status: full.status,
    ...(full.reason ? { reason: full.reason } : {}),
    reward: full.status === 'ok' ? full.valAcc : 0,
    bestLr: best.lr,
    valAcc: full.valAcc,
    testAcc: full.testAcc,
    finalLoss: full.finalLoss,
    curve: full.curve,
    curveEvery: full.curveEvery,
    seconds: (performance.now() - t0) / 1000,
    ...(full.analysis ? { analysis: full.analysis } : {}),
  };
}
