/**
 * Where nos may create files. Node 20's recursive mkdir never returns under procfs, and
 * nothing of nos's belongs in /sys or /dev: paths there are refused before anything is made.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';

const REFUSED_ROOTS = ['/proc', '/sys', '/dev'] as const;

/** The path with symbolic links resolved as far as it exists. */
function realish(path: string): string {
  const rest: string[] = [];
  let probe = path;
  for (;;) {
    try {
      return join(realpathSync(probe), ...rest.reverse());
    } catch {
      const parent = dirname(probe);
      if (parent === probe) return path;
      rest.push(basename(probe));
      probe = parent;
    }
  }
}

/** The system folder a path lies under (as given, or with its links followed), if any. */
export function systemRootOf(path: string): string | undefined {
  const abs = resolve(path);
  for (const p of new Set([abs, realish(abs)])) {
    const root = REFUSED_ROOTS.find((r) => p === r || p.startsWith(`${r}${sep}`));
    if (root !== undefined) return root;
  }
  return undefined;
}
