/** Output paths, checked before any work: an output that cannot be written is refused up front. */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { assertCreatablePath, describeEnvironmentError } from '../search-results/store.js';
import { AtomicWriteError, writeFileAtomic } from '../util/atomic-write.js';
import { shown } from '../util/terminal.js';
import { UsageError } from './args.js';

/** An empty path names no file: refused before any work (`--out ''` once failed only after training). */
function nonEmpty(path: string, flag: string): void {
  if (path.trim() === '') throw new UsageError(`${flag} is empty: give a path`);
}

function nearestExisting(path: string): string {
  let p = resolve(path);
  while (!existsSync(p)) {
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  return p;
}

function writableFolder(dir: string, flag: string, path: string): void {
  if (!statSync(dir).isDirectory())
    throw new UsageError(`${flag} ${path}: cannot be created, because ${dir} is a file`);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new UsageError(`${flag} ${path}: cannot write in ${dir} (${describeEnvironmentError(e) ?? String(e)})`);
  }
}

/** A folder to write into (created later if missing): refused if it is a file or cannot be made. */
export function checkOutputDir(path: string, flag = '--out', files: readonly string[] = []): void {
  nonEmpty(path, flag);
  assertCreatablePath(path, flag);
  for (const f of files) {
    const inside = join(path, f);
    if (existsSync(inside) && statSync(inside).isDirectory())
      throw new UsageError(
        `${flag} ${path}: ${inside} is a folder, so ${f} cannot be written there: remove it or pick another ${flag}`,
      );
  }
  if (existsSync(path)) {
    if (!statSync(path).isDirectory())
      throw new UsageError(`${flag} ${path} is an existing file: ${flag} names a folder to write the results into`);
    writableFolder(path, flag, path);
    return;
  }
  writableFolder(nearestExisting(path), flag, path);
}

/** A file to write: refused if it is a folder, or its folder does not exist or cannot be written. */
export function checkOutputFile(path: string, flag = '--out'): void {
  nonEmpty(path, flag);
  assertCreatablePath(path, flag);
  if (existsSync(path) && statSync(path).isDirectory())
    throw new UsageError(`${flag} ${path} is a folder: give a file name`);
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) throw new UsageError(`${flag} ${path}: the folder ${dir} does not exist`);
  writableFolder(dir, flag, path);
}

/** A write error, said plainly (the code and what it means). */
export function describeWriteError(e: unknown): string {
  return describeEnvironmentError(e) ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Write an output file atomically (util/atomic-write.ts): on failure the file that was there is
 * unchanged, and the UsageError says why and that it is.
 */
export function writeOutputFile(path: string, text: string, what = 'the output'): void {
  try {
    writeFileAtomic(path, text);
  } catch (e) {
    if (!(e instanceof AtomicWriteError)) throw e;
    throw new UsageError(
      `cannot write ${what} to ${shown(path, 200)}: ${describeWriteError(e.cause)}; ${e.existed ? 'the file that was there is unchanged' : 'no file was written'}`,
    );
  }
}
