import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hasVulkanDriver } from '../../dsl/compile/webgpu.js';
import { tfReady } from '../helpers/tf.js';

describe('backend selection', () => {
  it('tfjs: tensorflow (tfjs-node-gpu / tfjs-node) when installed, else wasm, and it says why', async () => {
    const choice = await tfReady;
    // These machines cannot install tfjs-node (it downloads libtensorflow): the choice falls to wasm.
    expect(choice.name).toBe('wasm');
    expect(choice.notes).toEqual(['tensorflow: @tensorflow/tfjs-node(-gpu) is not installed']);
  });

  it('WebGPU: a hardware adapter is tried only where a Vulkan driver is installed', () => {
    const saved = process.env.VK_ICD_FILENAMES;
    try {
      process.env.VK_ICD_FILENAMES = '/nonexistent/nvidia_icd.json';
      expect(hasVulkanDriver()).toBe(true);
      delete process.env.VK_ICD_FILENAMES;
      const icds = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'].some(
        (d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json')),
      );
      expect(hasVulkanDriver()).toBe(icds || process.env.VK_DRIVER_FILES !== undefined);
    } finally {
      if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    }
  });
});
