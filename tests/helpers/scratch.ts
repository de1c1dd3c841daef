import { createHash } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './reference.js';

/**
 * A scratch folder inside node_modules, so emitted modules resolve the project's packages. Named
 * per checkout too: several checkouts may share one node_modules (git worktrees with a link to it).
 */
const checkout = createHash('sha256').update(repoRoot).digest('hex').slice(0, 8);
export function scratchDir(name: string): string {
  const dir = join(repoRoot, 'node_modules', '.cache', 'nos-tests', `${name}-${checkout}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}
