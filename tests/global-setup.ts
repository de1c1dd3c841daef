/**
 * Builds dist/ once, so tests can run the real `nos` binary as a user would. Type errors do
 * not stop the build here (tsc still emits): `npm test` type-checks the whole tree first,
 * and a half-edited file elsewhere should not keep the rest of the suite from running.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')],
    { encoding: 'utf8' },
  );
  if (r.status !== 0)
    process.stderr.write(`tsc reported problems building dist/ (it still emitted):\n${r.stdout.slice(0, 4000)}\n`);
  if (r.error) throw r.error;
}
