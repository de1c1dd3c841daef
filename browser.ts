/**
 * nos for browsers (and any bundler): the rule language, compiled kernels, the tfjs
 * `RuleOptimizer`, the code emitters, and the search itself (strategies, the loop, the
 * pre-screen, the tasks and the training protocol, an in-memory results store), with no Node
 * built-ins: `nos dashboard`'s in-browser search page (dashboard/play/) is built from it. Bundlers pick this file
 * through the package's `browser` export condition; `nos/browser` names it explicitly.
 * `index.ts` (the Node entry) re-exports all of it and adds the Node-only parts.
 *
 *   import * as tf from '@tensorflow/tfjs';
 *   import { optimizer } from 'nos';
 *   model.compile({ optimizer: optimizer('adam', { learningRate: 0.01 }), loss: 'meanSquaredError' });
 */
export {
  type BackendName,
  type CompiledRule,
  compileRule,
  traceCompiled,
  UnsupportedError,
  type VectorKernel,
} from './dsl/compile/index.js';
export { emitPyTorch } from './dsl/compile/pytorch.js';
export { emitTypeScript } from './dsl/compile/ts.js';
export {
  BindError,
  bindParams,
  type CheckedRule,
  type CompileResult,
  compileRules,
  type Diagnostic,
  formatDiagnostics,
  library,
  lookupRule,
  ruleHash,
} from './dsl/index.js';
export { Interpreter, traceInterp } from './dsl/interp.js';
export { LoweringError } from './dsl/lower.js';
export { readableExpr, readableRule } from './dsl/readable.js';
export {
  DEFAULT_LEARNING_RATE,
  optimizer,
  RuleConfigError,
  RuleOptimizer,
  type RuleOptimizerConfig,
} from './optimizer/rule-optimizer.js';

// The search in a browser (or any JavaScript runtime): the loop, strategies, pre-screen, tasks
// and the training protocol, with results kept in memory.
export type { RunConfig } from './controller/config.js';
export { type LeaderboardEntry, leaderboard } from './controller/funnel-plan.js';
export { RlController } from './controller/rl.js';
export {
  type BudgetUnit,
  runSearch,
  SAMPLE_CAP_FACTOR,
  type SearchHooks,
  type SearchProgress,
  type SearchSummary,
} from './controller/search.js';
export {
  Evolution,
  knownChoices,
  type Proposal,
  RandomSearch,
  type Strategy,
  type UpdateStats,
} from './controller/strategy.js';
export {
  type Dataset,
  type DatasetBuffers,
  DatasetFileError,
  encodeDatasetFile,
  IMAGE,
  parseDatasetFile,
  viewDataset,
} from './evaluator/images.js';
export type { EvalRequest, Evaluator } from './evaluator/protocol.js';
export { type ScreenResult, screenRule } from './evaluator/screen.js';
export { DEFAULT_TASK, findTask, TASKS, type TaskSpec } from './evaluator/tasks.js';
export { type EvalOptions, type EvalResult, evaluateRule } from './evaluator/train.js';
export { MemoryStore } from './search-results/memory.js';
export { lineChart, type Series } from './search-results/plot.js';
export type { Candidate, ResultsStore, StrategyCheckpoint } from './search-results/store.js';
