/**
 * The in-browser search page as `npm run build` makes it (dist/play), rebuilt when any of its
 * sources is newer than the build (CI's `npm ci` builds it before the tests; a checkout being
 * edited rebuilds it here, once).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildPlay } from '../../dashboard/build-play.js';
import { repoRoot } from './reference.js';

const SOURCES = [
  'dashboard/play',
  'dashboard/build-play.ts',
  'browser.ts',
  'primitives',
  'dsl',
  'evaluator',
  'controller',
  'search-results',
  'optimizer',
  'learned',
  'util',
  'package.json',
];

function newest(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

export async function builtPlay(): Promise<string> {
  const out = join(repoRoot, 'dist', 'play');
  const stamp = join(out, 'index.html');
  const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
  if (Math.max(...SOURCES.map((s) => newest(join(repoRoot, s)))) > built) await buildPlay(out);
  return out;
}
