import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  conv3x3,
  conv3x3FilterGrad,
  conv3x3OnInput,
  maxPool2x2,
  patches3x3,
  registerWasmConvFilterGrad,
} from '../../evaluator/wasm-kernels.js';
import { tfReady } from '../helpers/tf.js';

function values(n: number, k: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k) * 0.5);
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++)
    m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)) / (1 + Math.abs(a[i] as number)));
  return m;
}

/** f on the cpu backend (the reference: tf's own kernels and autodiff) and on wasm (ours). */
async function onBoth(f: (backend: string) => number[]): Promise<{ cpu: number[]; wasm: number[] }> {
  await tf.setBackend('cpu');
  const cpu = tf.tidy(() => f('cpu'));
  await tf.setBackend('wasm');
  const wasm = tf.tidy(() => f('wasm'));
  return { cpu, wasm };
}

describe('ConvNet kernels for the wasm backend', () => {
  beforeAll(async () => {
    await tfReady;
    registerWasmConvFilterGrad();
  });

  it("patches3x3 gives each pixel's 3x3 neighbourhood (zero padded) in the order (c, ky, kx)", () => {
    tf.tidy(() => {
      const [n, h, w, c] = [2, 4, 5, 3];
      const xs = values(n * h * w * c, 1);
      const p = patches3x3(tf.tensor4d(xs, [n, h, w, c])).arraySync();
      expect(p.length).toBe(n * h * w);
      for (let b = 0; b < n; b++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++)
            for (let ch = 0; ch < c; ch++)
              for (let ky = 0; ky < 3; ky++)
                for (let kx = 0; kx < 3; kx++) {
                  const yy = y + ky - 1;
                  const xx = x + kx - 1;
                  const want =
                    yy < 0 || yy >= h || xx < 0 || xx >= w ? 0 : (xs[((b * h + yy) * w + xx) * c + ch] as number);
                  expect(p[(b * h + y) * w + x]![ch * 9 + ky * 3 + kx]).toBe(Math.fround(want));
                }
    });
  });

  it("conv3x3FilterGrad equals tf.conv2d's filter gradient on cpu, few channels (patch matMul) and many (swapped convolution)", async () => {
    for (const [c, f] of [
      [1, 32],
      [3, 32],
      [8, 5],
      [32, 32],
    ] as const) {
      const { cpu, wasm } = await onBoth((backend) => {
        const x = tf.tensor4d(values(3 * 6 * 7 * c, c), [3, 6, 7, c]);
        const dy = tf.tensor4d(values(3 * 6 * 7 * f, f + 1), [3, 6, 7, f]);
        if (backend === 'cpu')
          return Array.from(
            tf
              .grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, 1, 'same'), dy)))(
                tf.zeros([3, 3, c, f]),
              )
              .dataSync(),
          );
        return Array.from(conv3x3FilterGrad(x, dy).dataSync());
      });
      expect(maxRel(cpu, wasm), `c ${c} f ${f}`).toBeLessThan(1e-5);
    }
  });

  it("conv3x3OnInput has conv3x3's value and filter gradient, and a zero input gradient", () => {
    tf.tidy(() => {
      const x = tf.tensor4d(values(2 * 6 * 6 * 1, 2), [2, 6, 6, 1]);
      const w = tf.tensor4d(values(3 * 3 * 1 * 4, 3), [3, 3, 1, 4]);
      const loss = (conv: typeof conv3x3) => (a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(conv(a as tf.Tensor4D, b as tf.Tensor4D)));
      const [gx, gw] = tf.grads(loss(conv3x3))([x, w]);
      const [hx, hw] = tf.grads(loss(conv3x3OnInput))([x, w]);
      expect(Array.from(conv3x3OnInput(x, w).dataSync())).toEqual(Array.from(conv3x3(x, w).dataSync()));
      expect(Array.from((hw as tf.Tensor).dataSync())).toEqual(Array.from((gw as tf.Tensor).dataSync()));
      expect(Math.max(...Array.from((gx as tf.Tensor).dataSync()).map(Math.abs))).toBeGreaterThan(0);
      expect(Array.from((hx as tf.Tensor).dataSync()).every((v) => v === 0)).toBe(true);
    });
  });

  it("maxPool2x2's gradient equals tf.maxPool's on cpu, ties (first maximum wins), -Infinity and NaN included", async () => {
    const xs = values(4 * 6 * 6 * 5, 4).map((v) => Math.round(v * 4) / 4); // many ties
    xs[0] = Number.NEGATIVE_INFINITY;
    xs[5] = Number.NaN;
    for (let i = 0; i < 4; i++) xs[[7 * 5, 7 * 5 + 5, 13 * 5, 13 * 5 + 5][i] as number] = Number.NEGATIVE_INFINITY;
    const { cpu, wasm } = await onBoth((backend) => {
      const x = tf.tensor4d(xs, [4, 6, 6, 5]);
      const dy = tf.tensor4d(values(4 * 3 * 3 * 5, 9), [4, 3, 3, 5]);
      const pool =
        backend === 'cpu'
          ? (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'valid')
          : (t: tf.Tensor) => maxPool2x2(t as tf.Tensor4D);
      return [
        ...Array.from(pool(x).dataSync()),
        ...Array.from(
          tf
            .grad((t: tf.Tensor) => tf.sum(tf.mul(pool(t), dy)))(x)
            .dataSync(),
        ),
      ];
    });
    expect(wasm.length).toBe(4 * 3 * 3 * 5 + 4 * 6 * 6 * 5);
    const grad = (a: number[]) => a.slice(4 * 3 * 3 * 5);
    expect(grad(wasm)).toEqual(grad(cpu));
  });

  it('leaks no tensors', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.tensor4d(values(2 * 6 * 6 * 4, 7), [2, 6, 6, 4]);
      const w = tf.tensor4d(values(3 * 3 * 4 * 2, 8), [3, 3, 4, 2]);
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(maxPool2x2(conv3x3(a as tf.Tensor4D, b as tf.Tensor4D))))([x, w]);
      tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(conv3x3OnInput(a as tf.Tensor4D, b as tf.Tensor4D)))([x, w]);
    });
    expect(tf.memory().numTensors).toBe(before);
  });
});
