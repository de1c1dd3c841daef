/** `nos bench`: the project's own measurements (docs/CONTRACT.md keys; unmeasured figures are null with a note). */
import { join } from 'node:path';
import { benchFidelity, type FidelityFigures, fidelityTable } from '../bench/fidelity.js';
import { benchHeldOutFidelity, heldOutTable } from '../bench/fidelity-heldout.js';
import { benchGpu, GPU_SIZES, type GpuFigures } from '../bench/gpu.js';
import { cacheLocation } from '../evaluator/data.js';
import { findTask } from '../evaluator/tasks.js';
import { hasVulkanDriver } from '../dsl/compile/webgpu.js';
import { benchKernels, type KernelFigures, type RuleFigures } from '../bench/kernels.js';
import { benchLoop, LOOP_WORKERS, type LoopFigure, loopTable } from '../bench/loop.js';
import { benchPool, type PoolFigures } from '../bench/pool.js';
import { benchQueue, type QueueFigures } from '../bench/queue.js';
import { benchScreen, type ScreenFigures } from '../bench/screen.js';
import { benchTraining, type TrainingFigures } from '../bench/training.js';
import { type FlagSpecs, flag, has, intFlag, parseArgs, UsageError } from './args.js';
import type { Io } from './io.js';
import { shown } from '../util/terminal.js';

/** Largest --params: 100 million float32 parameters, 400 MB per array. */
export const MAX_PARAMS = 100_000_000;

const PARTS = ['kernels', 'training', 'pool', 'screen', 'gpu', 'queue', 'fidelity', 'loop'] as const;

/** Parts that are long studies rather than measurements: only run when asked for by name. */
const ON_REQUEST: readonly string[] = ['fidelity', 'loop'];

/** The text table of `nos bench --only kernels` (exported so a --json run can be printed as text too). */
export function kernelTable(k: KernelFigures): string {
  const f2 = (x: number | null | undefined) => (x == null ? '-' : x.toFixed(2)).padStart(10);
  const { torchNsPerParam: torch, torchForeachNsPerParam: foreach, torchVersion } = k.adam;
  const row = (name: string, f: RuleFigures, builtin?: number | null) => {
    const floor = (x: number | null) => (x === null ? '-' : `${(x / f.memoryFloorNsPerParam).toFixed(1)}x`);
    const vsTf = (x: number | null) => (builtin && x !== null ? `${(builtin / x).toFixed(2)}x` : '-');
    const ratios = `floor: fused ${floor(f.fusedNsPerParam)}, wasm ${floor(f.wasmNsPerParam)}${builtin ? `; faster than tf.train.adam: fused ${vsTf(f.fusedNsPerParam)}, wasm ${vsTf(f.wasmNsPerParam)}` : ''}`;
    return `${name.padEnd(10)}${f2(f.fusedNsPerParam)}${f2(f.wasmNsPerParam)}${f2(f.wasmCopyingNsPerParam)}${f2(f.tfOpsNsPerParam)}${f2(builtin)}${f2(f.memoryFloorNsPerParam)}   ${ratios}`;
  };
  return [
    `kernels: one update of ${k.params.toLocaleString('en-US')} float32 parameters, ns/param (tf on ${k.tfBackend}; medians, run side by side)`,
    `copy floor ${k.copyFloorNsPerParam.toFixed(2)} ns/float copied (${k.copyGBps.toFixed(1)} GB/s read+write); floor = a rule's bytes at that (DRAM) bandwidth`,
    'wasm: SIMD kernel, weights resident in its memory; wasm+copy: through step(w, g, lr), copying w and g in and w out',
    `${'rule'.padEnd(10)}${['fused', 'wasm', 'wasm+copy', 'tf ops', 'tf.train', 'floor'].map((h) => h.padStart(10)).join('')}`,
    row('adam', k.adam, k.adam.tfBuiltinNsPerParam),
    row('lion', k.lion),
    row('powersign', k.powersign),
    torch === null
      ? 'torch.optim.Adam: not measured (see the note)'
      : `torch ${torchVersion} torch.optim.Adam, 1 thread: ${torch.toFixed(2)} ns/param foreach=False, ${foreach?.toFixed(2) ?? '-'} foreach=True`,
  ].join('\n');
}

function trainingTable(t: TrainingFigures): string {
  const ratio = (a: number, b: number | null) => (b === null ? '' : `  (${(a / b).toFixed(1)}x PyTorch)`);
  const gpu = (x: number | null) => (x === null ? '' : `  GPU ${x.toFixed(2)}`);
  return [
    `training step (gradients + Adam), ms; PyTorch ${t.torchVersion ?? 'not measured'} on 1 thread beside it; GPU: tfjs-webgpu + the WGSL rule`,
    `mlp      ${t.mlp.msPerStep.toFixed(2)}  torch ${t.mlp.torchMsPerStep?.toFixed(2) ?? '-'}${ratio(t.mlp.msPerStep, t.mlp.torchMsPerStep)}${gpu(t.mlp.gpuMsPerStep)}`,
    `convnet  ${t.convnet.msPerStep.toFixed(1)}  torch ${t.convnet.torchMsPerStep?.toFixed(1) ?? '-'}${ratio(t.convnet.msPerStep, t.convnet.torchMsPerStep)}${gpu(t.convnet.gpuMsPerStep)}`,
  ].join('\n');
}

function gpuTable(g: GpuFigures): string {
  return [
    `gpu (WGSL Adam, 28 bytes per parameter) on ${g.adapter}; device copy ${g.deviceCopyGBps.toFixed(1)} GB/s (read + write)`,
    ...g.sizes.map(
      (s) =>
        `${s.params.toLocaleString('en-US').padStart(12)} params  ${s.nsPerParam.toFixed(4)} ns/param  ${s.GBps.toFixed(1)} GB/s (${((100 * s.GBps) / g.deviceCopyGBps).toFixed(0)}% of copy)${s.chunks > 1 ? `, ${s.chunks} chunks` : ''}`,
    ),
  ].join('\n');
}

export const BENCH_FLAGS: FlagSpecs = {
  only: { type: 'string', value: 'PART', description: `measure one part: ${PARTS.join(', ')} (default: all)` },
  json: {
    type: 'bool',
    description: "print one JSON document in the contract's keys (null, with a note, for what was not measured)",
  },
  params: {
    type: 'string',
    value: 'N',
    description:
      'parameters per kernel measurement (default 1000000) and the one GPU size (default 1M, 10M and 100M on a hardware adapter)',
  },
  workers: {
    type: 'string',
    value: 'W,W,...',
    description: `the worker counts of --only loop (default ${LOOP_WORKERS.join(',')})`,
  },
  ms: {
    type: 'string',
    value: 'MS',
    description: 'each stand-in evaluation of --only loop sleeps MS ms (default 200)',
  },
  via: {
    type: 'string',
    value: 'pool|queue',
    description: '--only loop through the stand-in evaluator or the queue only (default: both)',
  },
  task: {
    type: 'string',
    value: 'ID',
    description:
      'the task of --only fidelity (default mlp-mnist; about 20 minutes on 2 cores, its high-fidelity half cached for reruns; then the held-out suite part, hours on 2 cores, cached)',
  },
};

export async function benchCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, BENCH_FLAGS);
  const only = flag(args, 'only');
  if (only !== undefined && !(PARTS as readonly string[]).includes(only))
    throw new UsageError(`--only must be one of ${PARTS.join(', ')}`);
  const want = (p: (typeof PARTS)[number]) => only === p || (only === undefined && !ON_REQUEST.includes(p));
  const notes: string[] = [];
  // Every flag is checked before anything is measured.
  const params = intFlag(args, 'params', 1);
  if (params !== undefined && params > MAX_PARAMS)
    throw new UsageError(
      `--params ${params}: at most ${MAX_PARAMS} (each array of the kernel bench is 4 bytes a parameter, and it holds several)`,
    );
  if (params !== undefined && !want('kernels') && !want('gpu'))
    throw new UsageError('--params is for --only kernels or gpu (or the whole bench)');
  const taskId = flag(args, 'task');
  if (taskId !== undefined && !want('fidelity')) throw new UsageError('--task is for --only fidelity');
  if (taskId !== undefined && findTask(taskId) === undefined)
    throw new UsageError(`--task: unknown task '${shown(taskId)}' (nos tasks lists them)`);
  const loopFlags = ['workers', 'ms', 'via'].filter((f) => flag(args, f) !== undefined);
  if (loopFlags.length > 0 && !want('loop')) throw new UsageError(`--${loopFlags[0]} is for --only loop`);
  const list = flag(args, 'workers');
  const workers = list?.split(',').map((x) => (/^\s*\d+\s*$/.test(x) ? Number(x) : Number.NaN));
  if (workers?.some((w) => !(Number.isInteger(w) && w >= 1 && w <= 4096)))
    throw new UsageError(
      `--workers takes worker counts from 1 to 4096 separated by commas, got '${shown(list ?? '', 60)}'`,
    );
  const msText = flag(args, 'ms');
  const ms = msText === undefined ? 200 : Number(msText);
  if (!(Number.isInteger(ms) && ms >= 1 && ms <= 60_000))
    throw new UsageError(`--ms must be an integer from 1 to 60000, got '${shown(msText ?? '', 60)}'`);
  const viaText = flag(args, 'via');
  if (viaText !== undefined && viaText !== 'pool' && viaText !== 'queue')
    throw new UsageError(`--via must be pool or queue, got '${shown(viaText, 60)}'`);
  const via: ('pool' | 'queue')[] = viaText === undefined ? ['pool', 'queue'] : [viaText];
  let kernels: KernelFigures | null = null;
  if (want('kernels')) {
    try {
      kernels = await benchKernels({ ...(params === undefined ? {} : { params }), log: (s) => io.err(s), notes });
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      throw new UsageError(
        `--params ${params}: this machine could not allocate the kernel bench's arrays (${e.message}); try fewer`,
      );
    }
    if (!has(args, 'json')) io.out(kernelTable(kernels));
  }
  const log = (s: string) => io.err(s);
  let training: TrainingFigures | null = null;
  if (want('training')) {
    training = await benchTraining(notes, log);
    if (!has(args, 'json')) io.out(trainingTable(training));
  }
  let pool: PoolFigures | null = null;
  if (want('pool')) {
    pool = await benchPool(log);
    if (!has(args, 'json')) {
      io.out(
        `pool: ${pool.evalsPerMin1.toFixed(1)} evals/min with 1 worker, ${pool.evalsPerMin2.toFixed(1)} with 2 (${pool.speedup.toFixed(2)}x); peak ${pool.peakMbPerWorker.toFixed(0)} MB per worker`,
      );
    }
  }
  let screen: ScreenFigures | null = null;
  if (want('screen')) {
    screen = benchScreen();
    if (!has(args, 'json')) {
      io.out(
        `screen: of ${screen.sampled} random NOS rules, ${screen.rejected} rejected before training, ${screen.cached} matched an earlier rule's fingerprint, ${screen.trained} left to train (${screen.microsPerScreen.toFixed(0)} us per screen)`,
      );
    }
  }
  let gpu: GpuFigures | null = null;
  if (want('gpu')) {
    // The contract's sizes need a hardware adapter; --params N runs N anywhere (a software
    // adapter's figures are then labelled CPU figures: correctness, not speed).
    if (params === undefined && !hasVulkanDriver()) {
      notes.push(
        "gpu: not measured: no Vulkan driver, so no hardware WebGPU adapter (the WGSL back end runs on Mesa's software adapter here: its figures would be CPU figures; --params N runs it there anyway)",
      );
    } else {
      try {
        gpu = await benchGpu(params === undefined ? GPU_SIZES : [params], { hardware: params === undefined, log });
        if (!has(args, 'json')) io.out(gpuTable(gpu));
        if (gpu.software)
          notes.push(`gpu: measured on a software adapter (${gpu.adapter}): these are CPU figures, not a GPU's`);
      } catch (e) {
        notes.push(`gpu: not measured: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
  let queue: QueueFigures | null = null;
  if (want('queue')) {
    try {
      queue = await benchQueue(log);
      if (!has(args, 'json')) {
        io.out(
          `queue: ${queue.evalsPerMinQueue.toFixed(1)} evals/min through the queue (2 nos worker processes x 1 thread) vs ${queue.evalsPerMinLocal.toFixed(1)} through the local pool (2 threads) on mlp-mnist: ${(100 * queue.ratio).toFixed(1)}%; overhead ${queue.overheadMsPerJob.toFixed(1)} ms per job`,
        );
      }
    } catch (e) {
      notes.push(`queue: not measured: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  let fidelity: (FidelityFigures & { heldOut?: { spearman: number; rules: number; panelSeed: number } }) | null = null;
  if (want('fidelity')) {
    const cache = cacheLocation();
    fidelity = await benchFidelity({
      ...(flag(args, 'task') === undefined ? {} : { task: flag(args, 'task') as string }),
      ...(cache.dir ? { cacheFile: join(cache.dir, 'fidelity-high.json') } : {}),
      log,
    });
    if (!has(args, 'json')) io.out(fidelityTable(fidelity));
    // Against the truth that matters: the held-out suite, on a fresh panel (hours on 2 cores; cached).
    const held = await benchHeldOutFidelity({
      ...(cache.dir ? { cacheFile: join(cache.dir, 'fidelity-heldout.json') } : {}),
      log,
    });
    fidelity = {
      ...fidelity,
      heldOut: { spearman: held.spearman, rules: held.rules, panelSeed: held.panelSeed },
    };
    if (!has(args, 'json')) io.out(heldOutTable(held));
  }
  let loop: LoopFigure[] | null = null;
  if (want('loop')) {
    loop = [];
    for (const v of via) {
      try {
        loop.push(...(await benchLoop({ ...(workers ? { workers } : {}), ms, via: [v], log })));
      } catch (e) {
        notes.push(`loop: ${v}: not measured: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (!has(args, 'json')) io.out(loopTable(loop, ms));
  }
  const doc = {
    kernels,
    training,
    pool,
    screen,
    gpu,
    queue,
    ...(fidelity ? { fidelity } : {}),
    ...(loop
      ? {
          loop: loop.map((f) => ({
            workers: f.workers,
            via: f.via,
            utilisation: f.utilisation,
            controllerMsPerSample: f.controllerMsPerSample,
            funnelUtilisation: f.funnelUtilisation,
            trained: f.trained,
            sampled: f.sampled,
            seconds: f.seconds,
            batch: f.batch,
            staleness: f.staleness,
            ...(f.processes === undefined ? {} : { processes: f.processes, jobsPerProcess: f.jobsPerProcess }),
          })),
        }
      : {}),
    notes,
  };
  if (has(args, 'json')) io.out(JSON.stringify(doc));
  else for (const n of notes) io.out(`note: ${n}`);
  return 0;
}
