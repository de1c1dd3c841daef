/**
 * Kernel benchmark: ns per parameter of one update on 1M float32 parameters, for the fused
 * JS kernel, the WebAssembly SIMD kernel, the tf-ops back end (RuleOptimizer on wasm) and
 * tf.train.adam, next to the machine's copy floor (TypedArray.set over 256 MB), and, where
 * /usr/bin/python3 has torch, torch.optim.Adam on one thread (bench/torch_adam.py, run in the
 * same command right after the JS figures). Everything else is measured side by side
 * (round-robin); report ratios, not absolute numbers, across machines.
 *
 * Floors: `memoryFloorNsPerParam` is the bytes a kernel must read and write per parameter at
 * the copy bandwidth of a 256 MB copy (DRAM). A kernel over 1M parameters touches 12-28 MB,
 * which partly stays in cache: it can beat that floor.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { compileRule } from '../dsl/compile/index.js';
import { WasmKernel } from '../dsl/compile/wasm.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { library } from '../dsl/index.js';
import { optimizer } from '../optimizer/rule-optimizer.js';

export interface RuleFigures {
  fusedNsPerParam: number;
  /** The wasm SIMD kernel with resident weights (gradient written into its memory, `stepResident`); null where it fell back. */
  wasmNsPerParam: number | null;
  /** The wasm SIMD kernel through `VectorKernel.step(w, g, lr)`: copies w and g in and w out. */
  wasmCopyingNsPerParam: number | null;
  tfOpsNsPerParam: number | null;
  /** Bytes the fused kernel reads and writes per parameter, at the copy bandwidth. */
  memoryFloorNsPerParam: number;
  fusedGBps: number;
}

export interface KernelFigures {
  params: number;
  copyFloorNsPerParam: number;
  copyGBps: number;
  adam: RuleFigures & {
    tfBuiltinNsPerParam: number | null;
    /** torch.optim.Adam, 1 thread, foreach=False (the contract's key; null with a note where PyTorch is not there). */
    torchNsPerParam: number | null;
    /** The same with foreach=True, and the torch version. */
    torchForeachNsPerParam: number | null;
    torchVersion: string | null;
  };
  lion: RuleFigures;
  powersign: RuleFigures;
  tfBackend: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Median ms of each contender, run round-robin (side by side) after warm-up rounds. */
async function race(contenders: readonly (() => void | Promise<void>)[], reps: number, warm = 3): Promise<number[]> {
  const times = contenders.map(() => [] as number[]);
  for (let r = 0; r < warm + reps; r++) {
    for (const [i, fn] of contenders.entries()) {
      const t0 = performance.now();
      await fn();
      if (r >= warm) (times[i] as number[]).push(performance.now() - t0);
    }
  }
  return times.map(median);
}

/** torch.optim.Adam on n parameters, one thread (bench/torch_adam.py); null with a note where it cannot run. */
export function torchAdam(n: number, notes: string[]): { forLoop: number; foreach: number; version: string } | null {
  const here = dirname(fileURLToPath(import.meta.url));
  const path = [join(here, '..', '..', 'bench', 'torch_adam.py'), join(here, 'torch_adam.py')].find((p) =>
    existsSync(p),
  );
  if (path === undefined) {
    notes.push('kernels: torch.optim.Adam not measured: bench/torch_adam.py is not in this installation');
    return null;
  }
  try {
    const out = execFileSync('/usr/bin/python3', [path, String(n)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 300_000,
    });
    const r = JSON.parse(out) as { forLoop: number; foreach: number; torch: string };
    return { forLoop: r.forLoop, foreach: r.foreach, version: r.torch };
  } catch (e) {
    notes.push(
      `kernels: torch.optim.Adam not measured (Debian python3-torch at /usr/bin/python3 is needed): ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
    );
    return null;
  }
}

export async function benchKernels(
  options: {
    params?: number;
    reps?: number;
    log?: (s: string) => void /** What was not measured, and why. */;
    notes?: string[];
  } = {},
): Promise<KernelFigures> {
  const n = options.params ?? 1_000_000;
  const reps = options.reps ?? 21;
  const log = options.log ?? (() => {});
  // Copy floor: 256 MB of float32, copied with TypedArray.set (4 bytes read + 4 written per float).
  const big = 64 * 1024 * 1024;
  const src = new Float32Array(big).fill(1);
  const dst = new Float32Array(big);
  const [copyMs] = await race([() => dst.set(src)], 7, 1);
  const copyFloorNsPerParam = ((copyMs as number) * 1e6) / big;
  const copyGBps = (big * 8) / ((copyMs as number) * 1e6);
  log(`copy floor: ${copyFloorNsPerParam.toFixed(2)} ns/float (${copyGBps.toFixed(1)} GB/s read+write)`);

  const choice = await initTf();
  const g = new Float32Array(n);
  for (let i = 0; i < n; i++) g[i] = Math.sin(i) * 0.01;
  const notes = options.notes ?? [];
  const result: Record<string, RuleFigures & { tfBuiltinNsPerParam?: number | null }> = {};
  for (const name of ['adam', 'lion', 'powersign']) {
    const rule = library().get(name);
    if (rule === undefined) throw new Error(`no built-in ${name}`);
    const compiled = compileRule(rule, { backend: 'js' });
    const kernel = compiled.create(n);
    const w = new Float32Array(n).fill(0.5);
    const wasmCompiled = compileRule(rule, { backend: 'wasm' });
    const wasm = wasmCompiled.backend === 'wasm' ? wasmCompiled.create(n) : undefined;
    if (!(wasm instanceof WasmKernel))
      notes.push(
        `kernels: ${name}: the wasm kernel was not measured: ${wasmCompiled.fallbackReason ?? 'not a wasm kernel'}`,
      );
    const wCopy = new Float32Array(n).fill(0.5);
    if (wasm instanceof WasmKernel) {
      wasm.weights.fill(0.5);
      wasm.grads.set(g); // resident: the gradient's producer writes here
    }
    const v = tf.variable(tf.tensor1d(new Float32Array(n).fill(0.5)));
    const vb = tf.variable(tf.tensor1d(new Float32Array(n).fill(0.5)));
    const gt = tf.tensor1d(g);
    const opt = optimizer(name, { learningRate: 1e-3 });
    const builtin = name === 'adam' ? tf.train.adam(1e-3) : undefined;
    const contenders: (() => void | Promise<void>)[] = [
      () => kernel.step(w, g, 1e-3),
      async () => {
        opt.applyGradients({ [v.name]: gt });
        await v.data();
      },
    ];
    const wasmAt = contenders.length;
    if (wasm instanceof WasmKernel)
      contenders.push(
        () => wasm.stepResident(1e-3),
        () => wasm.step(wCopy, g, 1e-3),
      );
    const builtinAt = contenders.length;
    if (builtin) {
      contenders.push(async () => {
        builtin.applyGradients([{ name: vb.name, tensor: gt }]);
        await vb.data();
      });
    }
    const ms = await race(contenders, reps);
    const [fusedMs, tfMs] = ms;
    const wasmMs = wasm instanceof WasmKernel ? ms[wasmAt] : undefined;
    const wasmCopyMs = wasm instanceof WasmKernel ? ms[wasmAt + 1] : undefined;
    const builtinMs = builtin ? ms[builtinAt] : undefined;
    opt.dispose();
    builtin?.dispose();
    tf.dispose([v, vb, gt]);
    const bytes = 4 * (3 + 2 * compiled.program.slots.length); // w read+write, g read, each slot read+write
    const perParam = (ms: number | undefined) => ((ms as number) * 1e6) / n;
    result[name] = {
      fusedNsPerParam: perParam(fusedMs),
      wasmNsPerParam: wasmMs === undefined ? null : perParam(wasmMs),
      wasmCopyingNsPerParam: wasmCopyMs === undefined ? null : perParam(wasmCopyMs),
      tfOpsNsPerParam: perParam(tfMs),
      memoryFloorNsPerParam: bytes / copyGBps,
      fusedGBps: (bytes * n) / ((fusedMs as number) * 1e6),
      ...(builtinMs === undefined ? {} : { tfBuiltinNsPerParam: perParam(builtinMs) }),
    };
    log(
      `${name}: fused ${perParam(fusedMs).toFixed(2)} ns/param, wasm ${wasmMs === undefined ? '-' : perParam(wasmMs).toFixed(2)} (copying ${wasmCopyMs === undefined ? '-' : perParam(wasmCopyMs).toFixed(2)}), tf ops ${perParam(tfMs).toFixed(2)}${builtinMs ? `, tf.train.adam ${perParam(builtinMs).toFixed(2)}` : ''}`,
    );
  }
  const adam = result.adam as RuleFigures & { tfBuiltinNsPerParam?: number | null };
  // PyTorch after the JS figures (its own process; running it alongside would share the cores).
  const torch = torchAdam(n, notes);
  if (torch)
    log(
      `torch ${torch.version} Adam (1 thread): ${torch.forLoop.toFixed(2)} ns/param foreach=False, ${torch.foreach.toFixed(2)} foreach=True`,
    );
  return {
    params: n,
    copyFloorNsPerParam,
    copyGBps,
    adam: {
      ...adam,
      tfBuiltinNsPerParam: adam.tfBuiltinNsPerParam ?? null,
      torchNsPerParam: torch?.forLoop ?? null,
      torchForeachNsPerParam: torch?.foreach ?? null,
      torchVersion: torch?.version ?? null,
    },
    lion: result.lion as RuleFigures,
    powersign: result.powersign as RuleFigures,
    tfBackend: choice.name,
  };
}
