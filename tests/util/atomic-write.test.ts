/**
 * util/atomic-write.ts through its seam: whichever step fails (open, a write half-way, fsync,
 * close, rename), the file that was there is unchanged, no temporary file is left, and the
 * error says which file and that it is unchanged. (tests/cli/hardening-cli.test.ts does the
 * same for real, with a file size limit in a child process.)
 */
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AtomicFs, AtomicWriteError, writeFileAtomic } from '../../util/atomic-write.js';

const dir = mkdtempSync(join(tmpdir(), 'nos-atomic-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const real: AtomicFs = {
  openSync: (p, f, m) => fs.openSync(p, f, m),
  writeSync: (fd, b, o, l) => fs.writeSync(fd, b, o, l),
  fsyncSync: (fd) => fs.fsyncSync(fd),
  closeSync: (fd) => fs.closeSync(fd),
  renameSync: (a, b) => fs.renameSync(a, b),
  rmSync: (p, o) => fs.rmSync(p, o),
};

const fail = (code: string) => {
  const e = new Error(`${code}: simulated`) as NodeJS.ErrnoException;
  e.code = code;
  throw e;
};

describe('writeFileAtomic', () => {
  const steps: [string, Partial<AtomicFs>][] = [
    ['open', { openSync: () => fail('EACCES') }],
    [
      'a write half-way (the disk fills up)',
      {
        writeSync: (fd, b, o, l) => (o === 0 ? fs.writeSync(fd, b, o, Math.min(l, 4096)) : fail('ENOSPC')),
      },
    ],
    ['fsync', { fsyncSync: () => fail('EIO') }],
    [
      'close',
      {
        closeSync: (fd) => {
          fs.closeSync(fd);
          fail('EDQUOT');
        },
      },
    ],
    ['rename', { renameSync: () => fail('EXDEV') }],
  ];
  for (const [step, broken] of steps) {
    it(`a failing ${step}: the old file is unchanged and nothing is left behind`, () => {
      const sub = mkdtempSync(join(dir, 'step-'));
      const path = join(sub, 'results.json');
      writeFileSync(path, 'GOOD');
      let error: unknown;
      try {
        writeFileAtomic(path, 'x'.repeat(100_000), { ...real, ...broken });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(AtomicWriteError);
      expect((error as AtomicWriteError).existed).toBe(true);
      expect((error as Error).message).toMatch(
        /^could not write .*results\.json \(E[A-Z]+\): the file that was there is unchanged$/,
      );
      expect(readFileSync(path, 'utf8')).toBe('GOOD');
      expect(readdirSync(sub)).toEqual(['results.json']);
    });
  }

  it('a new file that cannot be written: nothing is left, and the error says no file was written', () => {
    const path = join(dir, 'new.txt');
    expect(() => writeFileAtomic(path, 'data', { ...real, renameSync: () => fail('ENOSPC') })).toThrow(
      /no file was written$/,
    );
    expect(readdirSync(dir).filter((f) => f.includes('new.txt'))).toEqual([]);
  });

  it('writes the whole text, keeps the mode of the file it replaces, and writes through a symbolic link', () => {
    const target = join(dir, 'target.txt');
    writeFileSync(target, 'old', { mode: 0o600 });
    fs.chmodSync(target, 0o600);
    const link = join(dir, 'link.txt');
    symlinkSync(target, link);
    const text = 'é'.repeat(70_000);
    writeFileAtomic(link, text);
    expect(readFileSync(target, 'utf8')).toBe(text);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
  });
});
