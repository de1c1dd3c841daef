/**
 * Kernel benchmark: ns per parameter of one update on 1M float32 parameters, for the fused
 * JS kernel, the tf-ops back end (RuleOptimizer on wasm) and tf.train.adam, next to the
 * machine's copy floor (TypedArray.set over 256 MB). Everything is measured in one run,
 * side by side; report ratios, not absolute numbers, across machines.
 */
import * as tf from '@tensorflow/tfjs';
import { compileRule } from '../dsl/compile/index.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { library } from '../dsl/index.js';
import { optimizer } from '../optimizer/rule-optimizer.js';

export interface RuleFigures {
  fusedNsPerParam: number;
  tfOpsNsPerParam: number | null;
  /** Bytes the fused kernel reads and writes per parameter, at the copy bandwidth. */
  memoryFloorNsPerParam: number;
  fusedGBps: number;
}

export interface KernelFigures {
  params: number;
  copyFloorNsPerParam: number;
  copyGBps: number;
  adam: RuleFigures & { tfBuiltinNsPerParam: number | null };
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

export async function benchKernels(options: { params?: number; reps?: number; log?: (s: string) => void } = {}): Promise<KernelFigures> {
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
  const result: Record<string, RuleFigures & { tfBuiltinNsPerParam?: number | null }> = {};
  for (const name of ['adam', 'lion', 'powersign']) {
    const rule = library().get(name);
    if (rule === undefined) throw new Error(`no built-in ${name}`);
    const compiled = compileRule(rule, { backend: 'js' });
    const kernel = compiled.create(n);
    const w = new Float32Array(n).fill(0.5);
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
    if (builtin) {
      contenders.push(async () => {
        builtin.applyGradients([{ name: vb.name, tensor: gt }]);
        await vb.data();
      });
    }
    const [fusedMs, tfMs, builtinMs] = await race(contenders, reps);
    opt.dispose();
    builtin?.dispose();
    tf.dispose([v, vb, gt]);
    const bytes = 4 * (3 + 2 * compiled.program.slots.length); // w read+write, g read, each slot read+write
    const perParam = (ms: number | undefined) => ((ms as number) * 1e6) / n;
    result[name] = {
      fusedNsPerParam: perParam(fusedMs),
      tfOpsNsPerParam: perParam(tfMs),
      memoryFloorNsPerParam: bytes / copyGBps,
      fusedGBps: (bytes * n) / ((fusedMs as number) * 1e6),
      ...(builtinMs === undefined ? {} : { tfBuiltinNsPerParam: perParam(builtinMs) }),
    };
    log(`${name}: fused ${perParam(fusedMs).toFixed(2)} ns/param, tf ops ${perParam(tfMs).toFixed(2)}${builtinMs ? `, tf.train.adam ${perParam(builtinMs).toFixed(2)}` : ''}`);
  }
  const adam = result.adam as RuleFigures & { tfBuiltinNsPerParam?: number | null };
  return {
    params: n,
    copyFloorNsPerParam,
    copyGBps,
    adam: { ...adam, tfBuiltinNsPerParam: adam.tfBuiltinNsPerParam ?? null },
    lion: result.lion as RuleFigures,
    powersign: result.powersign as RuleFigures,
    tfBackend: choice.name,
  };
}
