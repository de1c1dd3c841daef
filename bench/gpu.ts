/**
 * The WGSL kernel on the WebGPU adapter: Adam at each size, ns/param and GB/s, next to the
 * device's copy bandwidth. Each size is also checked once against the fused JS kernel (one step,
 * every element), so a figure is never that of a kernel that skipped part of the vector.
 */
import { compileRule } from '../dsl/compile/index.js';
import { closeWebGpu, deviceCopyGBps, type Gpu, initWebGpu, WgslKernel } from '../dsl/compile/webgpu.js';
import { library } from '../dsl/index.js';
import { lowerRule, paramValues } from '../dsl/lower.js';

export interface GpuSize {
  params: number;
  nsPerParam: number;
  /** Bytes the kernel moves (weights, gradient and state read; weights and state written) per second, 1e9. */
  GBps: number;
  /** Chunks the vector was split into (1 unless it exceeds one storage binding). */
  chunks: number;
  /** Largest |GPU - fused JS| after one step, over every element. */
  maxAbsDiff: number;
}

export interface GpuFigures {
  adapter: string;
  /** A CPU rasteriser (llvmpipe): its figures are CPU figures, for correctness only. */
  software: boolean;
  deviceCopyGBps: number;
  sizes: GpuSize[];
}

export const GPU_SIZES = [1_000_000, 10_000_000, 100_000_000] as const;

/** Thrown when the adapter is a software one and a hardware figure was asked for. */
export class SoftwareAdapterError extends Error {}

async function benchSize(gpu: Gpu, params: number, log: (s: string) => void): Promise<GpuSize> {
  const rule = library().get('adam');
  if (rule === undefined) throw new Error('no adam');
  const program = lowerRule(rule);
  const kernel = await WgslKernel.create(gpu, program, paramValues(rule), params, 0, { own: true });
  try {
    const w = new Float32Array(params);
    const g = new Float32Array(params);
    for (let i = 0; i < params; i++) {
      w[i] = 0.5 - ((i * 7919) % 1000) * 1e-3;
      g[i] = (((i * 104729) % 2001) - 1000) * 1e-5;
    }
    const ref = Float32Array.from(w);
    await kernel.step(w, g, 1e-3); // uploads w and g, runs one step, reads w back
    compileRule(rule, { backend: 'js' }).create(params).step(ref, g, 1e-3);
    let maxAbsDiff = 0;
    for (let i = 0; i < params; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs((w[i] as number) - (ref[i] as number)));
    if (!(maxAbsDiff < 1e-5))
      throw new Error(`the WGSL Adam at ${params} parameters differs from the fused JS kernel by ${maxAbsDiff}`);
    const ms = await kernel.timeDispatches(gpu.software ? 5 : 20);
    const bytes = 4 * (3 + 2 * program.slots.length) * params;
    const out = {
      params,
      nsPerParam: (ms * 1e6) / params,
      GBps: bytes / (ms * 1e6),
      chunks: kernel.chunks.length,
      maxAbsDiff,
    };
    log(
      `gpu: adam at ${params} parameters: ${out.nsPerParam.toFixed(4)} ns/param, ${out.GBps.toFixed(1)} GB/s (${out.chunks} chunk(s))`,
    );
    return out;
  } finally {
    kernel.dispose();
  }
}

/**
 * Adam on the GPU at each size (default 1M, 10M, 100M), next to the device's copy bandwidth.
 * `hardware`: refuse a software adapter before measuring anything (SoftwareAdapterError).
 */
export async function benchGpu(
  sizes: readonly number[] = GPU_SIZES,
  options: { hardware?: boolean; log?: (s: string) => void } = {},
): Promise<GpuFigures> {
  const log = options.log ?? (() => {});
  try {
    const gpu = await initWebGpu();
    if (options.hardware && gpu.software)
      throw new SoftwareAdapterError(`the only WebGPU adapter is a software one (${gpu.adapter})`);
    log(
      `gpu: ${gpu.adapter}; max buffer ${gpu.limits.maxBufferSize} bytes, max storage binding ${gpu.limits.maxStorageBufferBindingSize}`,
    );
    const out: GpuSize[] = [];
    for (const n of sizes) out.push(await benchSize(gpu, n, log));
    const copyBytes = Math.min(gpu.software ? 64 << 20 : 1 << 30, gpu.limits.maxBufferSize);
    const copy = await deviceCopyGBps(copyBytes, gpu.software ? 5 : 20);
    log(`gpu: device copy of ${copyBytes} bytes: ${copy.toFixed(1)} GB/s`);
    return { adapter: gpu.adapter, software: gpu.software, deviceCopyGBps: copy, sizes: out };
  } finally {
    await closeWebGpu();
  }
}
