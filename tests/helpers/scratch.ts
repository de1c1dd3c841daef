import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './reference.js';

/** A scratch folder inside node_modules, so emitted modules resolve the project's packages. */
export function scratchDir(name: string): string {
  const dir = join(repoRoot, 'node_modules', '.cache', 'nos-tests', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
