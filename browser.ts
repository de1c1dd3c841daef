/**
 * nos for browsers (and any bundler): the rule language, compiled kernels, the tfjs
 * `RuleOptimizer` and the code emitters, with no Node built-ins. Bundlers pick this file
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
