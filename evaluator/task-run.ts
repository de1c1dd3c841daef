/** A task instantiated for one seed: weights, gradients, evaluation (evaluator/tasks.ts and evaluator/workloads.ts build them). */
export type SplitName = 'train' | 'val' | 'test';

export interface TaskRun {
  /** The parameter vectors, updated in place by the rule. */
  readonly weights: Float32Array[];
  /** Loss and gradients at the current weights on the next batch (default size: the task's). */
  gradients(step: number, batchSize?: number): { loss: number; grads: Float32Array[] };
  /** Loss and gradients on a fixed sample of the training set (for sharpness). */
  fixedGradients(): { loss: number; grads: Float32Array[] };
  /** Accuracy (or the analytic score) and loss on a split ('train': a fixed sample of it). */
  evaluate(split: SplitName): { acc: number; loss: number };
  /**
   * Projection onto the feasible set, applied by the trainer after every update (constrained
   * tasks only, e.g. the Reddi et al. interval [-1, 1]).
   */
  project?(): void;
  /** Class probabilities on a split (classifiers only), for snapshot ensembles. */
  probabilities?(split: SplitName): { probs: Float32Array; labels: Uint8Array; classes: number };
  dispose(): void;
}
