/**
 * Builds the in-browser search page (dashboard/play/) into a static folder: `npm run build` puts
 * it in dist/play, which `nos dashboard` serves at /play and any static host can serve as it is.
 * Vite bundles the page and its two workers from the library's browser entry (browser.ts); the
 * build fails if any module asks for a Node built-in, and it ships tfjs-backend-wasm's .wasm
 * files beside the page (tfjs/), so the page needs nothing from elsewhere.
 *
 *   node dist/dashboard/build-play.js [OUT_DIR]
 */
import { readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { InlineConfig, Plugin } from 'vite';

/** The repository (or installed package) root: this file is dashboard/build-play.ts, or dist/dashboard/build-play.js. */
function packageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const up = resolve(here, '..');
  return basename(up) === 'dist' ? dirname(up) : up;
}

/** tfjs-backend-wasm's binaries, which the page loads at run time (`setWasmPaths('tfjs/')`). */
export const WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
];

/**
 * Refuses Node built-ins in nos's own modules: the build fails and names the importer. (Packages
 * such as tfjs and seedrandom name some in code for Node only, and map them away for browsers
 * through their package.json `browser` fields.)
 */
function noNodeBuiltins(root: string): Plugin {
  return {
    name: 'nos-no-node-builtins',
    enforce: 'pre',
    resolveId(id, importer) {
      if (isBuiltin(id) && (importer === undefined || !importer.includes(`${sep}node_modules${sep}`)))
        this.error(
          `the in-browser page must not use Node built-ins: '${id}' is imported by ${importer ? relative(root, importer) : 'the page'}`,
        );
      return null;
    },
  };
}

/** Emits tfjs-backend-wasm's .wasm files under tfjs/ in the output. */
function tfjsWasm(): Plugin {
  const require = createRequire(import.meta.url);
  return {
    name: 'nos-tfjs-wasm',
    apply: 'build',
    generateBundle() {
      const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
      for (const f of WASM_FILES)
        this.emitFile({ type: 'asset', fileName: `tfjs/${f}`, source: readFileSync(join(dist, f)) });
    },
  };
}

/** Vite's config for the page, written to `outDir`. */
export function playConfig(outDir: string): InlineConfig {
  const root = packageRoot();
  return {
    root: join(root, 'dashboard', 'play'),
    base: './',
    configFile: false,
    logLevel: 'warn',
    plugins: [noNodeBuiltins(root), tfjsWasm()],
    worker: { format: 'es', plugins: () => [noNodeBuiltins(root)] },
    build: {
      outDir,
      emptyOutDir: true,
      reportCompressedSize: false,
      chunkSizeWarningLimit: 10_000,
      target: 'es2022',
      // Bundling tfjs into a worker takes seconds on 2 cores: not worth a warning on every build.
      rolldownOptions: { checks: { bundlerTimings: false } },
    },
  };
}

/** Build the page into `outDir` (default: dist/play). */
export async function buildPlay(outDir = join(packageRoot(), 'dist', 'play')): Promise<string> {
  const { build } = await import('vite');
  await build(playConfig(outDir));
  return outDir;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildPlay(process.argv[2] === undefined ? undefined : resolve(process.argv[2])).then(
    (out) => process.stderr.write(`built the in-browser search page in ${out}\n`),
    (e: unknown) => {
      process.stderr.write(`cannot build the in-browser search page: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
