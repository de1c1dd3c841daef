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
export { MissingDependencyError, OPTIONAL_PACKAGES, type OptionalPackage } from './util/optional-deps.js';
