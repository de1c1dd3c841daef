/**
 * nos in a browser, as a user's app gets it: Vite bundles a page that imports `nos` (resolved
 * through the package's `browser` export condition to dist/browser.js) and `@tensorflow/tfjs`,
 * and headless Chromium runs it from a local server. The page trains a linear regression with
 * a nos optimizer on the cpu backend, saves and reloads the model with its optimizer, and
 * posts the result back.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { isBuiltin } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, relative, sep } from 'node:path';
import { build, type Plugin } from 'vite';
import { afterAll, describe, expect, it } from 'vitest';
import { library, lookupRule } from '../../dsl/index.js';
import { repoRoot } from '../helpers/reference.js';
import { scratchDir } from '../helpers/scratch.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

interface PageResult {
  error?: string;
  backend: string;
  lossFirst: number;
  lossLast: number;
  lossAfterReload: number;
  weights: number[][];
  reloadedIsRuleOptimizer: boolean;
  reloadedRule: string;
  reloadedIterations: number;
  powersignHash: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
};

/** Serve `dir` on 127.0.0.1 (a free port); resolves `result` with the first POST /result body. */
function serve(dir: string): Promise<{ server: Server; url: string; result: Promise<PageResult> }> {
  let deliver: (r: PageResult) => void = () => {};
  const result = new Promise<PageResult>((resolve) => {
    deliver = resolve;
  });
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/result') {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString('utf8');
      });
      req.on('end', () => {
        res.end('ok');
        deliver(JSON.parse(body) as PageResult);
      });
      return;
    }
    const path = join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!path.startsWith(dir + sep) || !existsSync(path)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('content-type', TYPES[extname(path)] ?? 'application/octet-stream');
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, url: `http://127.0.0.1:${port}/index.html`, result });
    });
  });
}

const cleanup: (() => void)[] = [];
afterAll(() => {
  for (const f of cleanup.reverse()) f();
});

describe('nos in a browser (Vite bundle, headless Chromium)', () => {
  it('bundles without Node built-ins and trains, saves and reloads a tfjs model with a nos optimizer in Chromium', async () => {
    expect(existsSync(CHROMIUM), 'Debian chromium is needed (apt-get install chromium); .ci/run installs it').toBe(
      true,
    );
    expect(existsSync(join(repoRoot, 'dist', 'browser.js')), 'dist/ is built by the test global setup').toBe(true);
    const app = scratchDir('browser-app');
    cpSync(join(repoRoot, 'tests', 'package', 'browser-app'), app, { recursive: true });
    // The app depends on nos as an installed package would: node_modules/nos -> this repository.
    mkdirSync(join(app, 'node_modules'));
    const link = join(app, 'node_modules', 'nos');
    symlinkSync(repoRoot, link, 'dir');
    // A link back to the repository inside its own node_modules: remove it when done, so nothing walks in circles.
    cleanup.push(() => rmSync(link));

    // Record every Node built-in that nos's own code asks for, and every nos module bundled.
    const builtins: string[] = [];
    const nosModules = new Set<string>();
    const watch: Plugin = {
      name: 'watch-nos-imports',
      enforce: 'pre',
      resolveId(id, importer) {
        if (importer?.startsWith(join(repoRoot, 'dist') + sep) && isBuiltin(id))
          builtins.push(`${id} <- ${relative(repoRoot, importer)}`);
        return null;
      },
      transform(_code, id) {
        if (id.startsWith(join(repoRoot, 'dist') + sep)) nosModules.add(relative(join(repoRoot, 'dist'), id));
        return null;
      },
    };
    const warnings: string[] = [];
    const outDir = join(app, 'out');
    await build({
      root: app,
      configFile: false,
      logLevel: 'silent',
      plugins: [watch],
      build: {
        outDir,
        emptyOutDir: true,
        reportCompressedSize: false,
        chunkSizeWarningLimit: 10_000,
        rollupOptions: {
          onwarn(w) {
            warnings.push(String(w.message));
          },
        },
      },
    });
    expect(builtins).toEqual([]);
    expect(warnings.filter((w) => /externalized for browser|node:/.test(w))).toEqual([]);
    expect(nosModules.has('browser.js')).toBe(true);
    for (const nodeOnly of ['index.js', 'util/optional-deps.js', 'dsl/compile/tf-backend.js'])
      expect(nosModules.has(nodeOnly), nodeOnly).toBe(false);
    const js = readdirSync(join(outDir, 'assets')).filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(0);
    for (const f of js)
      expect(readFileSync(join(outDir, 'assets', f), 'utf8')).not.toContain('__vite-browser-external');

    const { server, url, result } = await serve(outDir);
    cleanup.push(() => server.close());
    const profile = mkdtempSync(join(tmpdir(), 'nos-chromium-'));
    const chrome: ChildProcess = spawn(
      CHROMIUM,
      [...FLAGS, `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0', url],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    cleanup.push(() => chrome.kill('SIGKILL'));
    cleanup.push(() => rmSync(profile, { recursive: true, force: true, maxRetries: 5 }));
    let log = '';
    chrome.stderr?.on('data', (c: Buffer) => {
      log += c.toString('utf8');
    });
    const exited = new Promise<PageResult>((_, reject) => {
      chrome.on('exit', (code) =>
        reject(new Error(`chromium exited (${code}) before the page reported:\n${log.slice(-3000)}`)),
      );
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<PageResult>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no result from the page within 40 s; console:\n${log.slice(-3000)}`)),
        40_000,
      );
    });
    const r = await Promise.race([result, exited, timeout]);
    clearTimeout(timer);
    chrome.kill('SIGKILL');

    expect(r.error, log.slice(-3000)).toBeUndefined();
    expect(r.backend).toBe('cpu');
    expect(r.lossLast).toBeLessThan(r.lossFirst / 100);
    expect(r.lossAfterReload).toBeLessThan(r.lossLast);
    const [kernel, bias] = r.weights as [number[], number[]];
    expect(kernel[0]).toBeCloseTo(3, 0);
    expect(bias[0]).toBeCloseTo(-2, 0);
    expect(r.reloadedIsRuleOptimizer).toBe(true);
    expect(r.reloadedRule).toBe(library().get('adam')?.canonical);
    // 100 steps before the save, 20 after the reload.
    expect(r.reloadedIterations).toBe(120);
    // The browser's pure-TS SHA-256 gives the same rule hash as Node.
    const ps = lookupRule('exp(sign(g) * sign(m)) * g');
    if (!ps.ok) throw new Error(ps.message);
    expect(r.powersignHash).toBe(ps.rule.hash);
  }, 90_000);
});
