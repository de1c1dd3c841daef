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
  const { closeWebGpu, generateWgsl, initWebGpu, WgslKernel } = await import('./wgsl.js');
  const gpu = await initWebGpu();
  return {
    note: `WebGPU adapter: ${gpu.adapter}`,
    create: (program, values, size, seed): DeviceKernel =>
      new WgslKernel(gpu, program, generateWgsl(program), values, size, seed),
    release: closeWebGpu,
  };
});
