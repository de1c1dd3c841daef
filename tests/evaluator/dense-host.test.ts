import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchPixels, loadDataset } from '../../evaluator/data.js';
import { mlpGradientsHost } from '../../evaluator/dense-host.js';
import { SparseBatch } from '../../evaluator/sparse-rows.js';
import { denseGradients } from '../../evaluator/tasks.js';
import { tfReady } from '../helpers/tf.js';

function values(n: number, k: number, scale = 0.1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * scale);
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)) / (1 + Math.abs(b[i] as number)));
  return m;
}

describe('the MLP step on the host and the sparse-row wasm kernel', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('SparseBatch gives x W and x^T D as dense products do (zeros skipped), and regrows for a larger batch', () => {
    for (const [n, d, width] of [
      [5, 7, 4],
      [3, 11, 8],
      [64, 784, 64],
      [130, 50, 12],
    ] as const) {
      const x = values(n * d, n + d, 1).map((v, i) => (i % 3 === 0 || v > 0.3 ? v : 0));
      const w = values(d * width, 3);
      const dz = values(n * width, 5);
      const sb = new SparseBatch(width);
      const { xw, backward } = sb.forward(x, n, d, w);
      const gw = backward(dz);
      const refXw = new Float64Array(n * width);
      const refGw = new Float64Array(d * width);
      for (let i = 0; i < n; i++)
        for (let p = 0; p < d; p++)
          for (let c = 0; c < width; c++) {
            refXw[i * width + c]! += x[i * d + p]! * w[p * width + c]!;
            refGw[p * width + c]! += x[i * d + p]! * dz[i * width + c]!;
          }
      expect(maxRel(xw, refXw), `x W ${n}x${d}x${width}`).toBeLessThan(1e-5);
      expect(maxRel(gw, refGw), `x^T D ${n}x${d}x${width}`).toBeLessThan(1e-5);
    }
    expect(() => new SparseBatch(6)).toThrow(/multiple of 4/);
  });

  it('mlpGradientsHost equals the tensor backprop (denseGradients) on MNIST batches, large and small', () => {
    const data = loadDataset('mnist');
    const weights = [values(784 * 64, 1, 0.05), values(64, 2), values(640, 3, 0.3), values(10, 4)];
    for (const n of [64, 7]) {
      const idx = Int32Array.from({ length: n }, (_, i) => i * 13 + n);
      const labels = Int32Array.from(idx, (i) => data.train.y[i]!);
      const x = batchPixels(data.train, idx);
      const ours = mlpGradientsHost(weights, x, labels, n);
      tf.tidy(() => {
        const p = weights.map((w, i) => tf.tensor(w, [[784, 64], [64], [64, 10], [10]][i]!));
        const ref = denseGradients(
          'mlp',
          p,
          tf.tensor2d(x, [n, 784]),
          tf.oneHot(tf.tensor1d(labels, 'int32'), 10) as tf.Tensor2D,
        );
        expect(ours.loss).toBeCloseTo(ref.loss.dataSync()[0]!, 5);
        ref.grads.forEach((g, i) => {
          expect(maxRel(ours.grads[i]!, g.dataSync()), `grad ${i}, batch ${n}`).toBeLessThan(1e-5);
        });
      });
    }
  });

  it('a NaN weight makes the loss NaN (so the trainer reports divergence), as the tensor version does', () => {
    const data = loadDataset('mnist');
    const weights = [values(784 * 64, 1, 0.05), values(64, 2), values(640, 3, 0.3), values(10, 4)];
    weights[1]![3] = Number.NaN;
    const idx = Int32Array.from({ length: 8 }, (_, i) => i);
    const r = mlpGradientsHost(
      weights,
      batchPixels(data.train, idx),
      Int32Array.from(idx, (i) => data.train.y[i]!),
      8,
    );
    expect(r.loss).toBeNaN();
  });
});
