import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv3x3, matMul, registerWasmConvFilterGrad } from '../../evaluator/wasm-kernels.js';
import { tfReady } from '../helpers/tf.js';

function values(n: number, k: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.5);
}

/** Gradients of f on the cpu backend (the reference) and on wasm. */
async function onBoth(f: () => number[]): Promise<{ cpu: number[]; wasm: number[] }> {
  await tf.setBackend('cpu');
  const cpu = tf.tidy(f);
  await tf.setBackend('wasm');
  const wasm = tf.tidy(f);
  return { cpu, wasm };
}

function maxRel(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - (b[i] as number)) / (1 + Math.abs(x))));
}

describe('wasm backend holes, filled', () => {
  beforeAll(async () => {
    await tfReady;
    registerWasmConvFilterGrad();
  });

  it('matMul with explicit-transpose gradients equals tf.matMul gradients on cpu', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const a = tf.tensor2d(values(6 * 5, 1), [6, 5]);
      const b = tf.tensor2d(values(5 * 4, 2), [5, 4]);
      const mm = tf.getBackend() === 'cpu' ? tf.matMul : matMul;
      const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.square(mm(x as tf.Tensor2D, y as tf.Tensor2D))),
      )([a, b]);
      return [...(ga as tf.Tensor).dataSync(), ...(gb as tf.Tensor).dataSync()];
    });
    expect(maxRel(cpu, wasm)).toBeLessThan(1e-5);
  });

  it('Conv2DBackpropFilter is registered for wasm and matches cpu', async () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
    for (const [pad, stride] of [
      ['same', 1],
      ['valid', 1],
    ] as const) {
      const { cpu, wasm } = await onBoth(() => {
        const x = tf.tensor4d(values(2 * 7 * 7 * 3, 3), [2, 7, 7, 3]);
        const w = tf.tensor4d(values(3 * 3 * 3 * 4, 4), [3, 3, 3, 4]);
        return Array.from(
          tf
            .grad((f: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, f as tf.Tensor4D, stride, pad))))(w)
            .dataSync(),
        );
      });
      expect(maxRel(cpu, wasm), `${pad} stride ${stride}`).toBeLessThan(1e-4);
    }
    // Larger strides are refused, not answered wrongly.
    expect(() =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(2 * 7 * 7 * 3, 3), [2, 7, 7, 3]);
        const w = tf.tensor4d(values(3 * 3 * 3 * 4, 4), [3, 3, 3, 4]);
        tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 2, 'same')))(w);
      }),
    ).toThrow(/only stride 1/);
  });

  it('conv3x3 (custom gradients) matches tf.conv2d gradients on cpu, for input and filter', async () => {
    const { cpu, wasm } = await onBoth(() => {
      const x = tf.tensor4d(values(2 * 6 * 6 * 3, 5), [2, 6, 6, 3]);
      const w = tf.tensor4d(values(3 * 3 * 3 * 5, 6), [3, 3, 3, 5]);
      const conv = tf.getBackend() === 'cpu' ? (a: tf.Tensor4D, b: tf.Tensor4D) => tf.conv2d(a, b, 1, 'same') : conv3x3;
      const [gx, gw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(conv(a as tf.Tensor4D, b as tf.Tensor4D))),
      )([x, w]);
      return [...(gx as tf.Tensor).dataSync(), ...(gw as tf.Tensor).dataSync()];
    });
    expect(maxRel(cpu, wasm)).toBeLessThan(1e-4);
  });

  it('leaks no tensors', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.tensor4d(values(1 * 5 * 5 * 2, 7), [1, 5, 5, 2]);
      const w = tf.tensor4d(values(3 * 3 * 2 * 2, 8), [3, 3, 2, 2]);
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(conv3x3(a as tf.Tensor4D, b as tf.Tensor4D)))([x, w]);
      tf.grad((f: tf.Tensor) => tf.sum(tf.conv2d(x, f as tf.Tensor4D, 1, 'same')))(w);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('explicit backprop of the dense classifiers', () => {
  it('equals tf.variableGrads of the same loss, for the MLP and softmax regression', async () => {
    const { denseGradients, forward } = await import('../../evaluator/tasks.js');
    await tfReady;
    for (const [model, shapes] of [
      ['mlp', [[784, 64], [64], [64, 10], [10]]],
      ['softmax', [[784, 10], [10]]],
    ] as const) {
      tf.tidy(() => {
        const p = shapes.map((s, k) =>
          tf.variable(
            tf
              .tensor(
                values(
                  s.reduce((a, b) => a * b, 1),
                  k + 10,
                ),
                [...s],
              )
              .mul(0.1),
          ),
        );
        const x = tf.tensor2d(
          values(8 * 784, 3).map((v) => v + 0.5),
          [8, 784],
        );
        const labels = tf.tensor1d([0, 1, 2, 3, 4, 5, 6, 7], 'int32');
        const onehot = tf.oneHot(labels, 10) as tf.Tensor2D;
        const ours = denseGradients(model, p, x, onehot);
        const auto = tf.variableGrads(
          () => tf.losses.softmaxCrossEntropy(onehot, forward(model, p, x)) as tf.Scalar,
          p,
        );
        expect(ours.loss.dataSync()[0]).toBeCloseTo(auto.value.dataSync()[0] as number, 5);
        ours.grads.forEach((g, i) => {
          expect(
            maxRel(Array.from(g.dataSync()), Array.from((auto.grads[p[i]!.name] as tf.Tensor).dataSync())),
            `${model} grad ${i}`,
          ).toBeLessThan(1e-5);
        });
        for (const v of p) v.dispose();
      });
    }
  });
});
