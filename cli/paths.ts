/** Output paths, checked before any work: an output that cannot be written is refused up front. */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { assertCreatablePath, describeEnvironmentError } from '../search-results/store.js';
import { UsageError } from './args.js';

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
export function checkOutputDir(path: string, flag = '--out'): void {
  assertCreatablePath(path, flag);
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
