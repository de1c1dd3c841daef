/**
 * nos as a dependency of someone else's app, measured from the app's side. The test packs this
 * repository (`npm pack`), installs the tarball into a temporary app that depends on
 * `@tensorflow/tfjs@4.21.0` (another 4.x minor than ours), and checks that:
 * - the app has exactly one copy of every tfjs package (nos uses the app's tfjs, a peer),
 *   none of the CLI/search-only packages, and a node_modules far smaller than before;
 * - the app type-checks against nos's declarations under `strict`, and browser code (resolved
 *   with the `browser` condition, as bundlers do) is offered only the browser entry's names:
 *   `import { evaluate } from 'nos'` is a type error there, not a bundler error later;
 * - CommonJS code can `require('nos')` (Node >= 20.19, the package's engines), and the
 *   installed `nos` binary runs;
 * - it trains a layers model with a nos optimizer (a rule with dropout and noise), saves it
 *   with `includeOptimizer: true` through `nos.fileSystem`, and a fresh process (`import 'nos'`,
 *   `tf.loadLayersModel(nos.fileSystem(...))`) continues training to exactly the uninterrupted
 *   run's weights, with no tfjs warnings about kernels or platforms registered twice; without
 *   `import 'nos'` the load fails by name.
 *
 * It installs @tensorflow/tfjs@4.21.0 FROM THE NPM REGISTRY (about 80 packages, ~25 MB
 * download) on the first run; npm's cache (~/.npm, `--prefer-offline`) serves later runs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OPTIONAL_PACKAGES } from '../../util/optional-deps.js';
import { repoRoot } from '../helpers/reference.js';

const TFJS = '4.21.0';

const ourPackage = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as {
  version: string;
  engines: { node: string };
  devDependencies: Record<string, string>;
};

/** The environment without npm's own variables (`npm test` sets npm_config_*, which would steer the nested npm). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

function run(cmd: string, args: string[], cwd: string, timeout = 60_000): { out: string; code: number | null } {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout });
  return { out: `${r.stdout ?? ''}${r.stderr ?? ''}`, code: r.status };
}

/** Every installed package (name -> versions found), walking nested node_modules too. */
function installed(nodeModules: string, found = new Map<string, string[]>()): Map<string, string[]> {
  if (!existsSync(nodeModules)) return found;
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const dirs = entry.startsWith('@') ? readdirSync(join(nodeModules, entry)).map((e) => join(entry, e)) : [entry];
    for (const name of dirs) {
      const pj = join(nodeModules, name, 'package.json');
      if (!existsSync(pj)) continue;
      const version = (JSON.parse(readFileSync(pj, 'utf8')) as { version: string }).version;
      found.set(name, [...(found.get(name) ?? []), version]);
      installed(join(nodeModules, name, 'node_modules'), found);
    }
  }
  return found;
}

const megabytes = (dir: string): number =>
  Number(execFileSync('du', ['-sm', dir], { encoding: 'utf8' }).split('\t')[0]);

const temp: string[] = [];
// The app's node_modules is about 300 MB of small files: removing it took 24 s at a load of 9 on
// 2 cores (and timed out a 10 s hook before). A detached `rm -rf` removes this test's own
// folders after the hook, so no hook timeout depends on the machine's load; rmSync if it
// cannot start.
afterAll(() => {
  if (temp.length === 0) return;
  const removeHere = () => {
    for (const d of temp) rmSync(d, { recursive: true, force: true });
  };
  try {
    const rm = spawn('rm', ['-rf', '--', ...temp], { detached: true, stdio: 'ignore' });
    rm.on('error', removeHere);
    rm.unref();
  } catch {
    removeHere();
  }
}, 120_000);

describe('a tfjs 4.21 app that depends on nos (npm pack + npm install; tfjs from the npm registry, cached)', () => {
  it('installs one tfjs and no CLI packages, type-checks, trains, saves, and reloads with its optimizer in a fresh process', async () => {
    const work = mkdtempSync(join(tmpdir(), 'nos-consumer-'));
    temp.push(work);
    // dist/ is built by the test global setup; pack it as it would be published.
    const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], repoRoot);
    expect(packed.code, packed.out).toBe(0);
    const pack = (
      JSON.parse(packed.out.slice(packed.out.indexOf('['))) as { filename: string; files: { path: string }[] }[]
    )[0]!;
    const files = pack.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/browser.js');
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => f.startsWith('tests/') || f.startsWith('dist/tests/'))).toEqual([]);

    const app = join(work, 'app');
    mkdirSync(app);
    cpSync(join(repoRoot, 'tests', 'package', 'consumer-app'), app, { recursive: true });
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'consumer',
        private: true,
        type: 'module',
        dependencies: { '@tensorflow/tfjs': TFJS, nos: `file:${join(work, pack.filename)}` },
        // A Node app's TypeScript has Node's types (AbortSignal, in evaluate()'s and search()'s options).
        devDependencies: { '@types/node': ourPackage.devDependencies['@types/node'] },
        allowScripts: { 'core-js': false },
      }),
    );
    const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], app, 200_000);
    expect(install.code, install.out).toBe(0);
    expect(install.out).not.toMatch(/ERESOLVE|peer dep|conflicting peer/i);

    const pkgs = installed(join(app, 'node_modules'));
    const tfjsPkgs = [...pkgs].filter(([name]) => name.startsWith('@tensorflow/'));
    expect(tfjsPkgs.length).toBeGreaterThanOrEqual(5);
    for (const [name, versions] of tfjsPkgs) expect(versions, name).toEqual([TFJS]);
    for (const name of Object.keys(OPTIONAL_PACKAGES)) expect(pkgs.has(name), `${name} installed`).toBe(false);
    const mb = megabytes(join(app, 'node_modules'));
    const nosOnly = mb - megabytes(join(app, 'node_modules', '@tensorflow'));
    console.log(`consumer app node_modules: ${mb} MB, of which outside @tensorflow: ${nosOnly} MB`);
    expect(mb).toBeLessThan(400); // it was 956 MB with nos 0.1.0's own tfjs and CLI packages
    expect(nosOnly).toBeLessThan(60);

    // The app's TypeScript sees nos's declarations (strict; tfjs's own .d.ts are not ours to check).
    writeFileSync(
      join(app, 'app.ts'),
      [
        "import * as tf from '@tensorflow/tfjs';",
        "import { BindError, DEFAULT_LEARNING_RATE, optimizer, RuleOptimizer, type RuleOptimizerConfig } from 'nos';",
        "import { evaluate, fileSystem, search, type SearchOptions } from 'nos';",
        "const options: SearchOptions = { task: 'quadratic', budget: 2, signal: AbortSignal.timeout(1000) };",
        'export const node = [evaluate, search, fileSystem, options];',
        "const config: RuleOptimizerConfig = { rule: 'powersign-ld', decaySteps: 100 };",
        "const opt: RuleOptimizer = optimizer('adam', { learningRate: DEFAULT_LEARNING_RATE });",
        'const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });',
        "model.compile({ optimizer: opt, loss: 'meanSquaredError' });",
        "const e: Error = new BindError('x');",
        'export const used = [config, e.name, new RuleOptimizer(config).getClassName()];',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          noEmit: true,
          types: ['node'],
        },
        files: ['app.ts'],
      }),
    );
    const tscBin = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const ourErrors = (project: string) =>
      run(process.execPath, [tscBin, '-p', project], app)
        .out.split('\n')
        .filter((l) => /error TS/.test(l) && !l.startsWith('node_modules/@tensorflow/'));
    expect(ourErrors('tsconfig.json')).toEqual([]);

    // Browser code, resolved as bundlers resolve it (the `browser` condition; no Node types):
    // the browser entry's names type-check, the Node-only ones are not there.
    writeFileSync(
      join(app, 'browser-ok.ts'),
      [
        "import { compileRule, emitTypeScript, lookupRule, optimizer, type RuleOptimizer } from 'nos';",
        "const opt: RuleOptimizer = optimizer('lion', { learningRate: 3e-4 });",
        "const found = lookupRule('adam');",
        'export const used = [opt, found.ok ? compileRule(found.rule) : null, emitTypeScript];',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'browser-node-only.ts'),
      [
        "import { evaluate, fileSystem, search } from 'nos';",
        'export const used = [evaluate, search, fileSystem];',
      ].join('\n'),
    );
    const browserOptions = {
      strict: true,
      module: 'esnext',
      moduleResolution: 'bundler',
      customConditions: ['browser'],
      target: 'es2022',
      lib: ['es2022', 'dom'],
      noEmit: true,
      types: [],
    };
    for (const f of ['browser-ok', 'browser-node-only'])
      writeFileSync(
        join(app, `tsconfig.${f}.json`),
        JSON.stringify({ compilerOptions: browserOptions, files: [`${f}.ts`] }),
      );
    expect(ourErrors('tsconfig.browser-ok.json')).toEqual([]);
    expect(ourErrors('tsconfig.browser-node-only.json')).toEqual(
      ['evaluate', 'fileSystem', 'search'].map((name) =>
        expect.stringMatching(
          // TS2305, or TS2724 when a browser name is close ("Did you mean 'Evaluator'?").
          new RegExp(
            `^browser-node-only\\.ts.*error TS(2305|2724): .*'"nos"' has no exported member (named )?'${name}'`,
          ),
        ),
      ),
    );

    // CommonJS: require('nos') (require of an ES module: Node >= 20.19, as engines says).
    writeFileSync(
      join(app, 'require.cjs'),
      [
        "const nos = require('nos');",
        "const { version } = require('nos/package.json');",
        'console.log(JSON.stringify({ version, names: [typeof nos.optimizer, typeof nos.evaluate, typeof nos.fileSystem] }));',
      ].join('\n'),
    );
    const required = run(process.execPath, ['require.cjs'], app);
    expect(required.code, required.out).toBe(0);
    expect(required.out).not.toMatch(/warn/i);
    const req = JSON.parse(required.out) as { version: string; names: string[] };
    expect(req.names).toEqual(['function', 'function', 'function']);
    expect(req.version).toBe(ourPackage.version);
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    const [needMajor, needMinor] = (/^>=(\d+)\.(\d+)\.\d+$/.exec(ourPackage.engines.node) ?? []).slice(1).map(Number);
    expect(major > needMajor! || (major === needMajor && minor >= needMinor!)).toBe(true);
    // The installed binary: its whole static import graph, `nos bench`'s parts included, is there.
    const bin = run(join(app, 'node_modules', '.bin', 'nos'), ['--version'], app);
    expect(bin.code, bin.out).toBe(0);
    expect(bin.out.trim()).toBe(ourPackage.version);

    // Train + save, then reload in a fresh process and continue.
    const out = join(work, 'out');
    mkdirSync(out);
    const train = run(process.execPath, ['train.mjs', out], app);
    expect(train.code, train.out).toBe(0);
    const reload = run(process.execPath, ['reload.mjs', out], app);
    expect(reload.code, reload.out).toBe(0);
    for (const output of [train.out, reload.out]) {
      expect(output).not.toMatch(/already registered|already been set|already been registered/i);
      expect(output).not.toMatch(/warn/i);
    }
    const first = JSON.parse(readFileSync(join(out, 'uninterrupted.json'), 'utf8')) as {
      tfjs: string;
      backend: string;
      loss: number[];
      iterations: number;
      weights: number[][];
    };
    const second = JSON.parse(readFileSync(join(out, 'reloaded.json'), 'utf8')) as {
      className: string;
      config: { rule: string; seed: number };
      restoredIterations: number;
      iterations: number;
      weights: number[][];
    };
    expect(first.tfjs).toBe(TFJS);
    expect(first.loss.at(-1)!).toBeLessThan(first.loss[0]!);
    expect(second.className).toBe('RuleOptimizer');
    expect(second.config.seed).toBe(7);
    expect(second.restoredIterations).toBe(first.iterations / 2);
    expect(second.iterations).toBe(first.iterations);
    expect(second.weights).toEqual(first.weights);

    // Without `import 'nos'` tfjs does not know the class: the README says to import it first.
    const bare = run(process.execPath, ['reload.mjs', out, '--without-nos'], app);
    expect(bare.code).not.toBe(0);
    expect(bare.out).toMatch(/Unknown layer: RuleOptimizer/);
  }, 240_000);
});
