/**
 * The nos dataset file: what the dataset cache holds and what the in-browser search loads. The
 * parser reads the cache that evaluator/data.ts writes, round-trips what it encodes, and refuses
 * damaged files with a message that says what is wrong.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheLocation, loadDataset, loadSharedDataset } from '../../evaluator/data.js';
import {
  DATASET_FILE_MAGIC,
  DatasetFileError,
  encodeDatasetFile,
  IMAGE,
  parseDatasetFile,
  viewDataset,
} from '../../evaluator/images.js';

/** Byte-for-byte equality of large arrays (vitest's toEqual walks them element by element). */
const same = (a: ArrayBufferLike | Uint8Array, b: ArrayBufferLike | Uint8Array) =>
  Buffer.from(a instanceof Uint8Array ? a : new Uint8Array(a)).equals(
    Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)),
  );

function tiny(counts: [number, number, number]): Uint8Array {
  const total = counts[0] + counts[1] + counts[2];
  const pixels = Uint8Array.from({ length: total * IMAGE }, (_, i) => (i * 7) % 256);
  const labels = Uint8Array.from({ length: total }, (_, i) => i % 10);
  return encodeDatasetFile({ name: 'mnist', pixels: pixels.buffer, labels: labels.buffer, counts });
}

describe('nos dataset files', () => {
  it('reads the dataset cache that data.ts writes: the same images and labels as the loader', () => {
    const shared = loadSharedDataset('mnist');
    const { dir } = cacheLocation();
    const file = dir === undefined ? undefined : join(dir, 'mnist.bin');
    expect(file !== undefined && existsSync(file), 'loading MNIST writes its cache').toBe(true);
    const parsed = parseDatasetFile(new Uint8Array(readFileSync(file as string)), 'mnist');
    expect(parsed.counts).toEqual(shared.counts);
    expect(same(parsed.labels, shared.labels)).toBe(true);
    expect(same(parsed.pixels, shared.pixels)).toBe(true);
    // And views over either are the same dataset.
    const a = viewDataset(parsed);
    const b = loadDataset('mnist');
    expect(same(a.test.y, b.test.y)).toBe(true);
    expect(same(a.val.x.subarray(0, IMAGE), b.val.x.subarray(0, IMAGE))).toBe(true);
  });

  it('round-trips what it encodes', () => {
    const bytes = tiny([3, 2, 1]);
    expect(bytes.length).toBe(16 + 6 + 6 * IMAGE);
    const d = parseDatasetFile(bytes, 'mnist');
    expect(d.counts).toEqual([3, 2, 1]);
    expect(encodeDatasetFile(d)).toEqual(bytes);
    const v = viewDataset(d);
    expect([v.train.n, v.val.n, v.test.n]).toEqual([3, 2, 1]);
    expect(Array.from(v.test.y)).toEqual([5]);
  });

  it('refuses damaged files, saying what is wrong', () => {
    const bad = (bytes: Uint8Array, message: RegExp) => {
      expect(() => parseDatasetFile(bytes, 'mnist')).toThrow(DatasetFileError);
      expect(() => parseDatasetFile(bytes, 'mnist')).toThrow(message);
    };
    const good = tiny([3, 2, 1]);
    bad(good.subarray(0, 10), /too short/);
    const magic = good.slice();
    magic[0] = 0;
    bad(magic, /not a nos dataset file/);
    bad(good.subarray(0, good.length - 1), /header says/);
    bad(new Uint8Array([...good, 0]), /header says/);
    const label = good.slice();
    label[16 + 4] = 10;
    bad(label, /label 4 is 10/);
    const empty = good.slice();
    new DataView(empty.buffer).setUint32(8, 0, true);
    bad(empty, /validation split is empty/);
    const huge = new Uint8Array(16);
    const view = new DataView(huge.buffer);
    view.setUint32(0, DATASET_FILE_MAGIC, true);
    for (const at of [4, 8, 12]) view.setUint32(at, 2 ** 31, true);
    bad(huge, /at most 100000/);
  });
});
