/**
 * The dependency direction of DESIGN.md, checked on the import statements:
 * primitives <- dsl <- evaluator <- controller <- cli, search-results beside controller (it may
 * read evaluator, never controller or cli), the dashboard (a web app over runs) under cli, bench
 * never imports cli, and no module imports cli except cli itself. And no import cycles at all.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/reference.js';

const FOLDERS = [
  'primitives',
  'dsl',
  'learned',
  'evaluator',
  'controller',
  'search-results',
  'optimizer',
  'dashboard',
  'cli',
  'bench',
];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

/** Module (repo-relative, .ts) -> the repo modules it imports (type-only and dynamic imports included). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of FOLDERS.flatMap((f) => sources(join(repoRoot, f)))) {
    const text = readFileSync(file, 'utf8');
    const statics = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)];
    const dynamics = [...text.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)];
    const deps = [...statics, ...dynamics].map((m) =>
      relative(repoRoot, resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))),
    );
    g.set(relative(repoRoot, file), deps);
  }
  return g;
}

const top = (m: string) => m.split('/')[0] as string;

describe('layers', () => {
  const g = graph();

  it('dependencies point one way', () => {
    expect(g.get('cli/search.ts')).toContain('controller/run.ts');
    expect(g.get('controller/search.ts')).toContain('evaluator/protocol.ts');
    const allowed: Record<string, readonly string[]> = {
      primitives: ['primitives'],
      dsl: ['primitives', 'dsl'],
      // The learned optimizer: its kernels sit beside the compiled rules', under the evaluator.
      learned: ['primitives', 'dsl', 'learned'],
      evaluator: ['primitives', 'dsl', 'optimizer', 'learned', 'evaluator'],
      'search-results': ['primitives', 'dsl', 'optimizer', 'learned', 'evaluator', 'search-results'],
      controller: ['primitives', 'dsl', 'optimizer', 'learned', 'evaluator', 'search-results', 'controller'],
      // The dashboard reads runs through the store and the funnel; only the CLI starts it.
      dashboard: FOLDERS.filter((f) => f !== 'cli' && f !== 'bench'),
      cli: FOLDERS.filter((f) => f !== 'bench').concat(['bench']),
      bench: FOLDERS.filter((f) => f !== 'cli'),
    };
    const wrong: string[] = [];
    for (const [m, deps] of g) {
      const ok = allowed[top(m)];
      if (ok === undefined) continue;
      for (const d of deps) if (FOLDERS.includes(top(d)) && !ok.includes(top(d))) wrong.push(`${m} -> ${d}`);
    }
    expect(wrong).toEqual([]);
  });

  it('no import cycles', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (m: string, path: string[]): void => {
      if (state.get(m) === 'done') return;
      if (state.get(m) === 'open') {
        cycles.push([...path.slice(path.indexOf(m)), m].join(' -> '));
        return;
      }
      state.set(m, 'open');
      for (const d of g.get(m) ?? []) if (g.has(d)) visit(d, [...path, m]);
      state.set(m, 'done');
    };
    for (const m of g.keys()) visit(m, []);
    expect(cycles).toEqual([]);
  });
});
