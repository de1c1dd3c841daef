/**
 * How the back ends that need loading load in Node: tf picks its tfjs backend
 * (`initTf`: tensorflow, else wasm, else cpu), wgsl asks Dawn for a WebGPU device. Importing
 * this module installs both loaders; `prepareBackend(name)` then runs them. Node only: the
 * browser entry never imports it, so bundles never see Dawn or Node built-ins.
 */
import { type DeviceKernel, installBackendLoader, type VectorKernel } from './index.js';

installBackendLoader('tf', async () => {
  const { initTf } = await import('./tf-backend.js');
  const { TfKernel } = await import('./tf-kernel.js');
  const choice = await initTf();
  return {
    note: `tfjs backend: ${choice.name}`,
    create: (program, values, size, seed): VectorKernel => new TfKernel(program, values, size, seed),
  };
});

installBackendLoader('wgsl', async () => {
  const { closeWebGpu, initWebGpu, WgslKernel } = await import('./webgpu.js');
  const gpu = await initWebGpu();
  return {
    note: `WebGPU adapter: ${gpu.adapter}`,
    // WGSL kernels are made asynchronously (pipeline, buffers): the first step waits for it, and
    // a size the device refuses is that step's error.
    create: (program, values, size, seed): DeviceKernel => {
      const pending = WgslKernel.create(gpu, program, values, size, seed, { own: true });
      pending.catch(() => {}); // reported by the first step
      let kernel: Awaited<typeof pending> | undefined;
      return {
        backend: 'wgsl',
        get t() {
          return kernel?.t ?? 0;
        },
        async step(w, g, lr) {
          kernel ??= await pending;
          await kernel.step(w, g, lr);
        },
        dispose() {
          void pending.then(
            (k) => k.dispose(),
            () => {},
          );
        },
      };
    },
    release: closeWebGpu,
  };
});
