/** The WGSL kernel on the WebGPU adapter: ns/param and GB/s for Adam on 1M parameters, next to the device's copy bandwidth. */
import { closeWebGpu, deviceCopyGBps, initWebGpu, WgslKernel } from '../dsl/compile/webgpu.js';
import { generateWgsl } from '../dsl/compile/wgsl.js';
import { library } from '../dsl/index.js';
import { lowerRule, paramValues } from '../dsl/lower.js';

export interface GpuFigures {
  adapter: string;
  params: number;
  adamNsPerParam: number;
  adamGBps: number;
  deviceCopyGBps: number;
}

export async function benchGpu(params = 1_000_000): Promise<GpuFigures> {
  const gpu = await initWebGpu();
  try {
    const rule = library().get('adam');
    if (rule === undefined) throw new Error('no adam');
    const program = lowerRule(rule);
    const kernel = new WgslKernel(gpu, program, generateWgsl(program), paramValues(rule), params, 0);
    try {
      const w = new Float32Array(params).fill(0.5);
      const g = Float32Array.from({ length: params }, (_, i) => Math.sin(i) * 0.01);
      await kernel.step(w, g, 1e-3); // uploads w and g once
      const ms = await kernel.timeDispatches(20);
      const bytes = 4 * (3 + 2 * program.slots.length) * params;
      return {
        adapter: gpu.adapter,
        params,
        adamNsPerParam: (ms * 1e6) / params,
        adamGBps: bytes / (ms * 1e6),
        deviceCopyGBps: await deviceCopyGBps(),
      };
    } finally {
      kernel.dispose();
    }
  } finally {
    await closeWebGpu();
  }
}
