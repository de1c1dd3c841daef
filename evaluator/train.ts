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
  /** A schedule spec: `name`, `name:k=v,...`, or an expression of t and T. */
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

/** Train one rule at one learning rate. */
export function trainOnce(
  rule: CheckedRule | LearnedRule,
  task: TaskSpec,
  data: Dataset | undefined,
  lr: number,
  steps: number,
  options: {
    seed: number;
    params?: Readonly<Record<string, number>>;
    deadline: number;
    test?: boolean;
    kernel?: RuleKernelBackend;
  } & TrainExtras,
): RunResult & { testAcc: number | null } {
  const t0 = performance.now();
  const { schedule, params: scheduleParams } = parseScheduleSpec(options.schedule ?? 'constant');
  const multipliers = schedule.values(steps, scheduleParams, options.seed);
  const cycleEnds = new Set(options.analyze ? (schedule.cycleEnds?.(steps, scheduleParams) ?? []) : []);
  const snapshots: Float32Array[][] = [];
  const wd = options.weightDecay ?? 0;
  const growth = options.batchGrowth === true;
  const examplesBudget = steps * task.batchSize;
  let examples = 0;
  const params = { ...(rule.params.some((p) => p.name === 'T') ? { T: steps } : {}), ...(options.params ?? {}) };
  // The rule's update: the wasm SIMD kernel, or fused JS (then the interpreter) where it has no wasm form.
  const compiled = isLearnedRule(rule) ? rule : compileRule(rule, { backend: options.kernel ?? 'wasm', params });
  const run = createRun(task, options.seed, data);
  const kernels = run.weights.map((w, i) => compiled.create(w.length, options.seed * 1000 + i));
  const curveEvery = Math.max(1, Math.floor(steps / 50));
  const curve: number[] = [];
  let firstLoss = Number.NaN;
  let lastLoss = Number.NaN;
  let status: Status = 'ok';
  let reason: string | undefined;
  let done = 0;
  let changedEver = false;
  let windowSum = 0;
  const tailFrom = steps - Math.max(1, Math.floor(steps / 4)) + 1;
  let tailSum = 0;
  const before = run.weights.map((w) => new Float32Array(w.length));
  try {
    for (let step = 1; step <= steps; step++) {
      // Batch growth: the schedule is read at the step a fixed batch would have reached after the
      // examples seen so far (Smith et al. grow the batch at the epochs where the rate would drop),
      // the batch grows by 1/m (capped at 32x), and the learning rate stays.
      const m = multipliers[Math.min(steps, growth ? Math.floor(examples / task.batchSize) + 1 : step) - 1] as number;
      const batch = growth
        ? Math.min(32 * task.batchSize, Math.max(task.batchSize, Math.round(task.batchSize / Math.max(m, 1e-9))))
        : task.batchSize;
      const lrStep = growth ? lr : lr * m;
      const { loss, grads } = run.gradients(step, batch);
      examples += batch;
      if (step === 1) firstLoss = loss;
      lastLoss = loss;
      windowSum += loss;
      if (step >= tailFrom) tailSum += loss;
      if (step % curveEvery === 0) {
        curve.push(windowSum / curveEvery);
        windowSum = 0;
      }
      if (!Number.isFinite(loss)) {
        status = 'diverged';
        reason = `loss is ${loss} at step ${step}`;
        break;
      }
      if (step > 1 && loss > DIVERGE_FACTOR * Math.max(firstLoss, 1e-12)) {
        status = 'diverged';
        reason = `loss ${loss.toPrecision(4)} exceeds ${DIVERGE_FACTOR}x its start at step ${step}`;
        break;
      }
      const watch = !changedEver && step <= ZERO_UPDATE_STEPS;
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
      done = step;
      if (cycleEnds.has(step)) snapshots.push(run.weights.map((w) => Float32Array.from(w)));
      if (watch) changedEver = run.weights.some((w, i) => w.some((v, j) => v !== (before[i] as Float32Array)[j]));
      if (!changedEver && step === ZERO_UPDATE_STEPS) {
        status = 'invalid';
        reason = `the rule did not change any weight in ${ZERO_UPDATE_STEPS} steps`;
        break;
      }
      if (run.weights.some((w) => !w.every(Number.isFinite))) {
        status = 'diverged';
        reason = `weights became NaN/Inf at step ${step}`;
        break;
      }
      if (performance.now() > options.deadline) {
        status = 'timeout';
        reason = `time limit reached at step ${step}`;
        break;
      }
      if (growth && examples >= examplesBudget) break;
    }
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
      lr,
      status,
      ...(reason === undefined ? {} : { reason }),
      steps: done,
      valAcc: val.acc,
      valLoss: val.loss,
      finalLoss: lastLoss,
      tailLoss:
        status === 'ok' && done === steps && Number.isFinite(tailSum)
          ? tailSum / (steps - tailFrom + 1)
          : Number.POSITIVE_INFINITY,
      curve,
      curveEvery,
      seconds: (performance.now() - t0) / 1000,
      ruleBackend: 'backend' in compiled ? compiled.backend : 'learned',
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

/** The time limit of an evaluation that does not set one: the task's (longer for a learned optimizer). */
export function defaultTimeLimitMs(task: Pick<TaskSpec, 'timeLimitMs'>, learned: boolean): number {
  return task.timeLimitMs * (learned ? LEARNED_TIME_FACTOR : 1);
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
  const deadline = performance.now() + (options.timeLimitMs ?? defaultTimeLimitMs(task, options.learned !== undefined));
  const grid: RunResult[] = [];
  let best: RunResult | undefined;
  // The same layers around the rule in the grid and the full run.
  const layers: TrainExtras = {
    ...(options.schedule === undefined ? {} : { schedule: options.schedule }),
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
    const r = trainOnce(rule, task, trainData, lr, gridSteps, {
      seed,
      ...(options.params ? { params: options.params } : {}),
      deadline,
      ...layers,
    });
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
  const full = trainOnce(rule, task, trainData, best.lr, steps, {
    seed,
    ...(options.params ? { params: options.params } : {}),
    deadline,
    test: options.test ?? false,
    ...layers,
    ...(options.analyze ? { analyze: true } : {}),
  });
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
