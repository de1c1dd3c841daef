/**
 * nos as a library: the rule language, compiled kernels and ready-to-use optimizers.
 *
 *   import * as nos from 'nos';
 *   const opt = nos.optimizer('powersign', { learningRate: 0.01 });
 */
export { type BackendName, type CompiledRule, compileRule, traceCompiled, UnsupportedError, type VectorKernel } from './dsl/compile/index.js';
export { initTf } from './dsl/compile/tf-backend.js';
export {
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
export { optimizer, RuleConfigError, RuleOptimizer, type RuleOptimizerConfig } from './optimizer/rule-optimizer.js';
export { emitPyTorch } from './dsl/compile/pytorch.js';
export { emitTypeScript } from './dsl/compile/ts.js';
