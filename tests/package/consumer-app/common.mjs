// The consumer app's model and data: a small classifier with seeded initializers, fixed data.
import * as tf from '@tensorflow/tfjs';

export const RULE = 'drop(adam, 0.2) + 0.05 * noise';
export const OPTIONS = { learningRate: 0.02, seed: 7 };
export const FIT = { epochs: 3, batchSize: 8, shuffle: false, verbose: 0 };

export function data() {
  const xs = tf.tensor2d(
    Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i * 0.37)),
    [32, 4],
  );
  const ys = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 32 }, (_, i) => i % 3),
      'int32',
    ),
    3,
  );
  return { xs, ys };
}

export function model(optimizer) {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 8,
      inputShape: [4],
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  m.add(
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  );
  m.compile({ optimizer, loss: 'categoricalCrossentropy' });
  return m;
}

export const weights = (m) => m.getWeights().map((w) => Array.from(w.dataSync()));
