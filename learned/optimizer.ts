/**
 * `LearnedOptimizer`: a learned LSTM optimizer (a `nos learn` file) as a tfjs `Optimizer`, for
 * tfjs layers models or custom training loops:
 *
 *   const opt = await loadLearnedOptimizer('opt.json');         // or new LearnedOptimizer({ learned: data })
 *   model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
 *
 * Each variable gets its own per-coordinate LSTM state (JS loops for small variables, batched
 * tfjs ops for large ones: learned/kernel.ts); `w <- w + learningRate * Δ`, learningRate 1 (the
 * default) being the optimizer as meta-trained. Its config carries the weights (validated again
 * by `fromConfig`); the LSTM's hidden state is not saved with `getWeights` (a reloaded optimizer
 * starts from a zero state).
 */
import { readFileSync, statSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { type LearnedData, LearnedFileError, MAX_FILE_BYTES, parseLearnedFile, validateLearned } from './file.js';
import { type LearnedBackend, learnedKernel } from './kernel.js';
import { weightsOf } from './file.js';
import type { LstmWeights } from './lstm.js';

type NamedTensor = { name: string; tensor: tf.Tensor };

export interface LearnedOptimizerConfig {
  /** The file's contents (validated). */
  readonly learned: LearnedData | unknown;
  /** Multiplies the learned update; default 1 (as meta-trained). */
  readonly learningRate?: number;
  readonly backend?: LearnedBackend;
}

export class LearnedOptimizer extends tf.Optimizer {
  static get className(): string {
    return 'LearnedOptimizer';
  }

  readonly learned: LearnedData;
  readonly learningRate: number;
  private readonly weights: LstmWeights;
  private readonly backend: LearnedBackend;
  private kernels = new Map<string, ReturnType<typeof learnedKernel>>();

  constructor(config: LearnedOptimizerConfig) {
    super();
    this.learned = validateLearned(config.learned, '<LearnedOptimizer config>');
    const lr = config.learningRate ?? 1;
    if (!Number.isFinite(lr)) throw new LearnedFileError(`learningRate must be a finite number, got ${lr}`);
    this.learningRate = lr;
    this.backend = config.backend ?? 'auto';
    this.weights = weightsOf(this.learned);
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      const grad = Array.isArray(variableGradients) ? variableGradients[i]?.tensor : variableGradients[name];
      if (value === undefined || grad == null) return;
      let kernel = this.kernels.get(name);
      if (kernel === undefined) {
        kernel = learnedKernel(this.weights, value.size, this.backend);
        this.kernels.set(name, kernel);
      }
      const w = (value.dataSync() as Float32Array).slice();
      kernel.step(w, grad.dataSync() as Float32Array, this.learningRate);
      tf.tidy(() => value.assign(tf.tensor(w, value.shape, 'float32')));
    });
    this.incrementIterations();
  }

  override async getWeights(): Promise<NamedTensor[]> {
    return [await this.saveIterations()];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    await this.extractIterations(weightValues);
  }

  override getConfig(): tf.serialization.ConfigDict {
    // The weights as one JSON string: tfjs rewrites keys and strings in nested configs on load.
    return { learned: JSON.stringify(this.learned), learningRate: this.learningRate };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const text = config.learned;
    if (typeof text !== 'string')
      throw new LearnedFileError('<LearnedOptimizer config>: learned must be the JSON text of a learned optimizer');
    return new cls({
      learned: parseLearnedFile(text, '<LearnedOptimizer config>'),
      learningRate: config.learningRate === undefined ? 1 : Number(config.learningRate),
    });
  }

  override dispose(): void {
    super.dispose();
    for (const k of this.kernels.values()) k.dispose();
    this.kernels.clear();
  }
}

tf.serialization.registerClass(LearnedOptimizer);

/** Read a `nos learn` file (validated; errors name the path) into a LearnedOptimizer. */
export function loadLearnedOptimizer(
  path: string,
  options: Omit<LearnedOptimizerConfig, 'learned'> = {},
): LearnedOptimizer {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new LearnedFileError(`${path}: not a regular file`);
    if (st.size > MAX_FILE_BYTES)
      throw new LearnedFileError(
        `${path}: the file is ${st.size} bytes; a learned optimizer is at most ${MAX_FILE_BYTES}`,
      );
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof LearnedFileError) throw e;
    throw new LearnedFileError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  return new LearnedOptimizer({ learned: parseLearnedFile(text, path), ...options });
}
