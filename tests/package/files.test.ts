/**
 * What the published package holds, from `npm pack --dry-run` (no install): the license, the
 * README's images, the compiled code every shipped module imports (so `nos bench` and the
 * rest of the CLI run from an installed package), and none of the study scripts in bench/.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/reference.js';

/** The environment without npm's own variables (`npm test` sets npm_config_*, which would steer the nested npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

function packedFiles(): string[] {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: repoRoot,
    env: cleanEnv(),
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const [pack] = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { files: { path: string }[] }[];
  return (pack?.files ?? []).map((f) => f.path);
}

/** Relative modules a compiled file imports (static and dynamic imports of string literals). */
function relativeImports(file: string): string[] {
  const text = readFileSync(join(repoRoot, file), 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map(
    (m) => m[1] as string,
  );
  return specs.map((s) => normalize(join(dirname(file), s)));
}

/** Every file reachable from `roots` through relative imports. */
function reachable(roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...roots];
  for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
    if (seen.has(f)) continue;
    seen.add(f);
    if (f.endsWith('.js') && existsSync(join(repoRoot, f))) todo.push(...relativeImports(f));
  }
  return seen;
}

describe('the published files (npm pack --dry-run)', () => {
  const files = packedFiles();
  const shipped = new Set(files);

  it('hold the license and every image the README shows', () => {
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(repoRoot, 'LICENSE'), 'utf8')).toMatch(
      /^MIT License\n\nCopyright \(c\) \d{4} the nos authors\n/,
    );
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { license: string };
    expect(pkg.license).toBe('MIT');
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const images = [...readme.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)]
      .map((m) => m[1] as string)
      .filter((src) => !/^[a-z]+:/.test(src));
    expect(images.length).toBeGreaterThan(0);
    for (const src of images) expect(shipped.has(normalize(src)), src).toBe(true);
  });

  it('are closed under import: each shipped module finds what it imports, from bin/nos.js and both entries', () => {
    const roots = ['bin/nos.js', 'dist/cli/main.js', 'dist/index.js', 'dist/browser.js'];
    for (const r of roots) expect(shipped.has(r), r).toBe(true);
    const missing: string[] = [];
    for (const f of files.filter((x) => x.endsWith('.js')))
      for (const dep of relativeImports(f)) if (!shipped.has(dep)) missing.push(`${dep} <- ${f}`);
    expect(missing).toEqual([]);
    // The CLI's `nos bench` parts are in (bench/torch_*.py beside them, which they run).
    expect(files).toContain('dist/bench/kernels.js');
    expect(files).toContain('bench/torch_adam.py');
  });

  it('leave out the studies: every compiled bench/ module shipped is one the CLI or the library imports', () => {
    const used = reachable(['dist/cli/main.js', 'dist/index.js']);
    const bench = files.filter((f) => f.startsWith('dist/bench/') && f.endsWith('.js'));
    expect(bench.length).toBeGreaterThan(0);
    expect(bench.filter((f) => !used.has(f))).toEqual([]);
    expect(files.filter((f) => f.startsWith('dist/tests/') || f.endsWith('.map') || f.endsWith('.sh'))).toEqual([]);
    for (const study of [
      'dist/bench/cache-hits.js',
      'dist/bench/compare-strategies.js',
      'dist/bench/learned-study.js',
      'dist/bench/staleness-study.js',
    ])
      expect(shipped.has(study), study).toBe(false);
    // `nos bench --only loop` is the CLI's (it imports bench/loop.js).
    expect(files).toContain('dist/bench/loop.js');
  });
});

describe('a checkout without dist/ (npm ci --ignore-scripts, or a failed build)', () => {
  it('bin/nos.js says to build instead of failing with a module error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nos-unbuilt-'));
    try {
      mkdirSync(join(dir, 'bin'));
      copyFileSync(join(repoRoot, 'bin', 'nos.js'), join(dir, 'bin', 'nos.js'));
      const r = spawnSync(process.execPath, [join(dir, 'bin', 'nos.js'), '--version'], { encoding: 'utf8' });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe('nos: error: dist/ is not built in this checkout: run `npm run build` first\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    // The README's set-up is `npm ci && npx nos search`: npm ci builds a checkout (`prepare`,
    // which npm also runs before pack and publish). A tarball or registry install ships dist/ and
    // runs nothing. (npm 11 warns about `prepare` in folder and git dependencies; without it such
    // an install would have no dist/ at all.)
    expect(pkg.scripts.prepare).toBe('npm run build');
    expect(pkg.scripts.prepack).toBeUndefined();
  });
});
