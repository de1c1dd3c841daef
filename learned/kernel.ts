/**
 * A learned optimizer where a rule goes: `learned:FILE` in `nos eval --rules`, with the same
 * kernel interface as a compiled rule (`create(size, seed).step(w, g, lr)`).
 *
 * What the learning rate means for it: `w <- w + lr * Δ`, Δ the LSTM's update. lr = 1 is the
 * optimizer exactly as meta-trained; other values of the grid scale its steps (the evaluation
 * protocol's grid search may pick one, as it does for rules; a study that wants the optimizer
 * untuned passes `--lrs 1`).
 */
import type { VectorKernel } from '../dsl/compile/index.js';
import type { Vec } from '../dsl/interp.js';
import { sha256Hex } from '../dsl/sha256.js';
import { type LearnedData, weightsOf } from './file.js';
import { JsLstm, type LstmWeights, TfLstm } from './lstm.js';

/** The prefix of a learned optimizer in a list of rules. */
export const LEARNED_PREFIX = 'learned:';

export function isLearnedSpec(label: string): boolean {
  return label.trim().startsWith(LEARNED_PREFIX);
}

/** The file named by `learned:FILE`. */
export function learnedPath(label: string): string {
  return label.trim().slice(LEARNED_PREFIX.length);
}

/** Which forward pass runs the LSTM: plain JS loops, batched tfjs ops, or by size (`auto`). */
export type LearnedBackend = 'js' | 'tf' | 'auto';

/**
 * Vectors at least this long run on tfjs under `auto`. Measured here (tfjs-wasm, one core):
 * 1,280 coordinates 15 ms per step either way; 4,096: JS 39 ms, tf 26 ms; 50,890 (mlp-mnist):
 * JS 782 ms, tf 202 ms (bench/learned-study.ts re-measures it: docs/learned/results.json).
 */
export const TF_MIN_SIZE = 2048;

export function learnedKernel(
  weights: LstmWeights,
  size: number,
  backend: LearnedBackend = 'auto',
): VectorKernel & { dispose(): void } {
  const useTf = backend === 'tf' || (backend === 'auto' && size >= TF_MIN_SIZE);
  const lstm = useTf ? new TfLstm(weights, size) : new JsLstm(weights, size);
  const delta = new Float32Array(size);
  let t = 0;
  return {
    backend: useTf ? 'tf' : 'js',
    get t() {
      return t;
    },
    step(w: Vec, g: Vec, lr: number) {
      lstm.step(g instanceof Float32Array ? g : Float32Array.from(g), delta);
      for (let j = 0; j < size; j++) w[j] = (w[j] as number) + lr * (delta[j] as number);
      t++;
    },
    dispose() {
      if (lstm instanceof TfLstm) lstm.dispose();
    },
  };
}

/** A learned optimizer in the evaluator: a label, a hash of its weights, and kernels. */
export interface LearnedRule {
  readonly kind: 'learned';
  /** The label as given (`learned:FILE`). */
  readonly canonical: string;
  /** sha256 of the weights: equal files evaluate as the same rule. */
  readonly hash: string;
  /** No hyperparameters (`--set` does not apply). */
  readonly params: readonly [];
  readonly data: LearnedData;
  create(size: number, seed?: number): VectorKernel & { dispose(): void };
}

export function learnedRule(label: string, data: LearnedData, backend: LearnedBackend = 'auto'): LearnedRule {
  const weights = weightsOf(data);
  return {
    kind: 'learned',
    canonical: label.trim(),
    hash: sha256Hex(JSON.stringify(data.weights)),
    params: [],
    data,
    create: (size) => learnedKernel(weights, size, backend),
  };
}

export function isLearnedRule(rule: object): rule is LearnedRule {
  return (rule as { kind?: unknown }).kind === 'learned';
}
