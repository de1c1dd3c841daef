/** `nos bench`: the project's own measurements (CONTRACT.md keys; unmeasured figures are null with a note). */
import { benchKernels, type KernelFigures, type RuleFigures } from '../bench/kernels.js';
import { flag, has, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';

const PARTS = ['kernels', 'training', 'pool', 'screen'] as const;

function kernelTable(k: KernelFigures): string {
  const f2 = (x: number | null | undefined) => (x == null ? '-' : x.toFixed(2)).padStart(9);
  const row = (name: string, f: RuleFigures, builtin?: number | null) =>
    `${name.padEnd(10)}${f2(f.fusedNsPerParam)}${f2(f.tfOpsNsPerParam)}${f2(builtin)}${f2(f.memoryFloorNsPerParam)}   ${(f.fusedNsPerParam / f.memoryFloorNsPerParam).toFixed(1)}x its floor${builtin ? `; ${(builtin / f.fusedNsPerParam).toFixed(2)}x faster than tf.train.adam` : ''}`;
  return [
    `kernels: one update of ${k.params.toLocaleString('en-US')} float32 parameters, ns/param (tf on ${k.tfBackend}; medians, run side by side)`,
    `copy floor ${k.copyFloorNsPerParam.toFixed(2)} ns/float copied (${k.copyGBps.toFixed(1)} GB/s read+write)`,
    'rule          fused   tf ops tf.train   floor',
    row('adam', k.adam, k.adam.tfBuiltinNsPerParam),
    row('lion', k.lion),
    row('powersign', k.powersign),
  ].join('\n');
}

export async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, { only: { type: 'string' }, json: { type: 'bool' }, params: { type: 'string' } });
  const only = flag(args, 'only');
  if (only !== undefined && !(PARTS as readonly string[]).includes(only)) throw new UsageError(`--only must be one of ${PARTS.join(', ')}`);
  const want = (p: (typeof PARTS)[number]) => only === undefined || only === p;
  const notes: string[] = [];
  const params = flag(args, 'params') === undefined ? undefined : Number(flag(args, 'params'));
  if (params !== undefined && !(Number.isInteger(params) && params > 0)) throw new UsageError('--params must be a positive integer');
  let kernels: KernelFigures | null = null;
  if (want('kernels')) {
    kernels = await benchKernels({ ...(params === undefined ? {} : { params }), log: (s) => io.err(s) });
    if (!has(args, 'json')) io.out(kernelTable(kernels));
  }
  if (want('training')) notes.push('training: not measured: the evaluator (child tasks) is not built yet');
  if (want('pool')) notes.push('pool: not measured: the evaluator pool is not built yet');
  if (want('screen')) notes.push('screen: not measured: the pre-screen is not built yet');
  const doc = {
    kernels: want('kernels') ? kernels : null,
    training: want('training') ? { mlp: null, convnet: null } : null,
    pool: want('pool') ? { evalsPerMin1: null, evalsPerMin2: null, peakMbPerWorker: null } : null,
    screen: want('screen') ? { sampled: null, rejected: null, cached: null } : null,
    notes,
  };
  if (has(args, 'json')) io.out(JSON.stringify(doc));
  else for (const n of notes) io.out(`note: ${n}`);
  return 0;
}
