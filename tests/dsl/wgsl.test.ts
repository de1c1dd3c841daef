import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  dispatchGeometry,
  GpuSizeError,
  type GpuLimits,
  hasVulkanDriver,
  planChunks,
  REQUESTED_LIMITS,
  requiredLimits,
} from '../../dsl/compile/webgpu.js';
import { checkWgsl, generateWgsl, WGSL_PRIMITIVES } from '../../dsl/compile/wgsl.js';
import { type CheckedRule, compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { lowerRule } from '../../dsl/lower.js';
import { PRIMITIVES } from '../../primitives/registry.js';
import { nosBin, tempFile } from '../helpers/cli.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { repoRoot, torchGolden } from '../helpers/reference.js';

const golden = torchGolden();

/** Relative agreement where the float32 reference is finite, within the rule's own float32 sensitivity. */
function agree(ref64: number[][], ref32: number[][], got: number[][], rel: number): string | undefined {
  for (let i = 0; i < ref32.length; i++) {
    for (let j = 0; j < ref32[i]!.length; j++) {
      const x = ref32[i]![j]!;
      const y = got[i]![j]!;
      if (!Number.isFinite(x) || Math.abs(x) > 1e6) return undefined; // past here WGSL's NaN/Inf rules differ
      const slack = 4 * Math.abs(ref64[i]![j]! - x);
      if (!(Math.abs(x - y) <= rel * (1 + Math.abs(x)) + slack)) return `step ${i} [${j}]: ${x} vs ${y}`;
    }
  }
  return undefined;
}

/**
 * Trace rules on the GPU back end in a child process (tests/fixtures/wgsl-trace.mjs), all in one:
 * the tests run in vitest's worker threads, and a native abort there would take the runner down.
 */
function gpuTrace(
  w0: number[],
  grads: number[][],
  lr: number,
  items: { rule: string; params?: Record<string, number>; seed?: number }[],
) {
  const file = tempFile('wgsl-spec.json', JSON.stringify({ w0, grads, lr, items }));
  const r = spawnSync(process.execPath, [join(repoRoot, 'tests', 'fixtures', 'wgsl-trace.mjs'), file], {
    encoding: 'utf8',
    env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`wgsl-trace failed (${r.status ?? r.signal}): ${stderrOf(r.stderr)}`);
  const doc = JSON.parse(r.stdout) as { adapter: string; weights: (number | string)[][][] };
  const weights = doc.weights.map((t) => t.map((row) => row.map((x) => (typeof x === 'number' ? x : Number(x)))));
  return { adapter: doc.adapter, weights };
}

/** Dawn's stderr without its warnings about limits. */
function stderrOf(s: string): string {
  return s
    .split('\n')
    .filter((l) => !l.startsWith('Warning'))
    .join('\n');
}

describe('WGSL back end (WebGPU via Dawn; Mesa llvmpipe here)', () => {
  it('has a WGSL template for every per-element and state primitive (scalars are computed on the host)', () => {
    const perElement = PRIMITIVES.filter((p) => p.category !== 'schedule' && !('scale' in (p.stochastic ?? {})));
    expect([...WGSL_PRIMITIVES].sort()).toEqual(perElement.map((p) => p.name).sort());
  });

  it('keeps rule text out of the shader: numbers and hyperparameters go through the uniform buffer', () => {
    const r = compileRules('rule r(secret = 0.123456789) = secret * g + 31337 * sign(m) + exp(0.25 * w)').rules[0]!;
    const shader = generateWgsl(lowerRule(r));
    for (const bad of ['secret', '31337', '0.123456789', '0.25', 'ema']) expect(shader.source).not.toContain(bad);
    expect(shader.uniforms.length).toBeGreaterThanOrEqual(3);
    expect(() => checkWgsl(`${shader.source}\nfn evil() {}`)).toThrow(/unexpected name 'evil'/);
  });

  it('matches the interpreter for every built-in rule and for random NOS rules, noise included', () => {
    const items: { rule: string; params: Record<string, number>; seed: number; text: CheckedRule }[] = [];
    for (const [name, rule] of library())
      items.push({ rule: rule.canonical, params: name.includes('-') ? { T: 12 } : {}, seed: 0, text: rule });
    const r = rng(31);
    while (items.length < library().size + 30) {
      const c = compileRules(genNosRule(r, 1 + Math.floor(r() * 2)));
      if (c.ok) items.push({ rule: c.rules[0]!.canonical, params: {}, seed: items.length, text: c.rules[0]! });
    }
    const grads = golden.grads.slice(0, 10);
    const { adapter, weights } = gpuTrace(golden.w0, grads, 0.01, items);
    expect(adapter.length).toBeGreaterThan(3);
    items.forEach((item, k) => {
      const input = { w0: golden.w0, grads };
      const ref32 = traceInterp(item.text, input, 0.01, {
        params: item.params,
        seed: item.seed,
        float32Intermediates: true,
      });
      const ref64 = traceInterp(item.text, input, 0.01, { params: item.params, seed: item.seed });
      expect(agree(ref64, ref32, weights[k]!, k < library().size ? 1e-5 : 1e-4), item.rule).toBeUndefined();
    });
  }, 200_000);

  it('nos trace --backend wgsl gives the same weights as the fused kernel, to float32 tolerance', () => {
    const input = tempFile('g.json', JSON.stringify({ w0: golden.w0, grads: golden.grads.slice(0, 6) }));
    const gpu = nosBin(['trace', '--rule', 'lion', '--lr', '0.01', '--input', input, '--backend', 'wgsl', '--json']);
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/WebGPU adapter: /);
    const cpu = nosBin(['trace', '--rule', 'lion', '--lr', '0.01', '--input', input, '--json']);
    const a = (JSON.parse(gpu.stdout) as { weights: number[][] }).weights;
    const b = (JSON.parse(cpu.stdout) as { weights: number[][] }).weights;
    a.forEach((row, i) => {
      row.forEach((x, j) => {
        expect(Math.abs(x - b[i]![j]!)).toBeLessThan(1e-5);
      });
    });
  }, 60_000);

  it('nos bench --only gpu --json: null without a hardware adapter; --params N runs N here, labelled as CPU figures', () => {
    const none = nosBin(['bench', '--only', 'gpu', '--json']);
    expect(none.code, none.stderr).toBe(0);
    const a = JSON.parse(none.stdout) as { gpu: unknown; notes: string[] };
    // Here and in CI there is no Vulkan driver, so no hardware adapter (where there is one, it measures).
    const vulkan = hasVulkanDriver();
    if (!vulkan) {
      expect(a.gpu).toBeNull();
      expect(a.notes.join('\n')).toMatch(/gpu: not measured: no Vulkan driver/);
    }
    const some = nosBin(['bench', '--only', 'gpu', '--params', '5000', '--json']);
    expect(some.code, some.stderr).toBe(0);
    const b = JSON.parse(some.stdout) as {
      gpu: {
        adapter: string;
        software: boolean;
        deviceCopyGBps: number;
        sizes: { params: number; nsPerParam: number; GBps: number; chunks: number; maxAbsDiff: number }[];
      };
      notes: string[];
    };
    if (!vulkan) expect(b.gpu.software).toBe(true);
    expect(b.gpu.deviceCopyGBps).toBeGreaterThan(0);
    expect(b.gpu.sizes).toHaveLength(1);
    const [size] = b.gpu.sizes;
    expect(size!.params).toBe(5000);
    expect(size!.chunks).toBe(1);
    expect(size!.maxAbsDiff).toBeLessThan(1e-5);
    expect(size!.GBps).toBeCloseTo((28 * 5000) / (size!.nsPerParam * 5000), 6);
    expect(/software adapter .*CPU figures, not a GPU's/.test(b.notes.join('\n'))).toBe(b.gpu.software);
  }, 120_000);

  it('survives 20 traces of 100k parameters in one process with the collector forced; 2-D dispatch and chunks compute what one pass does', () => {
    // The abort of issue 21 (Dawn's instance collected under a live device): 3 of 3 runs of this
    // fixture aborted or segfaulted before the fix. One process, 20 make-trace-release cycles.
    const r = spawnSync(
      process.execPath,
      ['--expose-gc', join(repoRoot, 'tests', 'fixtures', 'wgsl-repeat.mjs'), '20'],
      { encoding: 'utf8', env: { ...process.env, EGL_PLATFORM: 'surfaceless' }, timeout: 120_000 },
    );
    expect(r.status, `${r.signal ?? ''} ${stderrOf(r.stderr)}`).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      reps: number;
      maxDiff: number;
      big: number;
      bigDiff: number;
      groups: [number, number][];
      chunks: [number, number];
      chunkDiff: number;
      tooBig: string;
      after: number[];
    };
    expect(doc.reps).toBe(20);
    expect(doc.maxDiff).toBeLessThan(1e-5);
    // 65,535 x 2 workgroups of 64 for 4,195,240 elements: the second row covers the last 1,000.
    expect(doc.groups).toEqual([[65_535, 2]]);
    expect(doc.bigDiff).toBeLessThan(1e-5);
    // Chunks of 320: same weights to the bit, noise and state included (draws follow the element).
    expect(doc.chunks).toEqual([1, 4]);
    expect(doc.chunkDiff).toBe(0);
    // Twice the device's largest buffer: an error that says what did not fit; the device goes on.
    expect(doc.tooBig).toMatch(
      /^GpuSizeError: the GPU could not allocate two copy buffers of \d+ bytes: .*max buffer size/i,
    );
    expect(doc.after.map((x) => Math.round(x * 1000) / 1000)).toEqual([0.99, 1.99]);
  }, 150_000);
});

describe('WGSL sizes: requested limits, chunks and dispatch geometry (no device needed)', () => {
  // Limits Dawn reported: Mesa llvmpipe here, and the H200's adapter (maxBufferSize 1 TiB when
  // requested; its storage binding limit was not recorded, so both a large and a small one are tried).
  const llvmpipe: GpuLimits = {
    maxBufferSize: 2 ** 31,
    maxStorageBufferBindingSize: 2 ** 27,
    maxComputeWorkgroupsPerDimension: 65_535,
    minStorageBufferOffsetAlignment: 16,
  };
  const h200 = (binding: number): GpuLimits => ({
    maxBufferSize: 2 ** 40,
    maxStorageBufferBindingSize: binding,
    maxComputeWorkgroupsPerDimension: 65_535,
    minStorageBufferOffsetAlignment: 256,
  });
  const adam = generateWgsl(lowerRule(library().get('adam')!));

  it("asks requestDevice for the adapter's maxima of the size and compute limits", () => {
    const adapter = {
      maxBufferSize: 2 ** 40,
      maxStorageBufferBindingSize: 2 ** 32 - 4,
      maxComputeWorkgroupsPerDimension: 65_535,
      maxComputeWorkgroupStorageSize: 49_152,
      maxComputeWorkgroupSizeX: 1024,
      maxComputeInvocationsPerWorkgroup: 1024,
      maxTextureDimension2D: 32_768,
    };
    const req = requiredLimits(adapter);
    expect(Object.keys(req).sort()).toEqual([...REQUESTED_LIMITS].sort());
    expect(req.maxBufferSize).toBe(2 ** 40);
    expect(req.maxStorageBufferBindingSize).toBe(2 ** 32 - 4);
    expect(req).not.toHaveProperty('maxTextureDimension2D');
  });

  it('does not refuse Adam at 100M parameters: one 2-D dispatch under a 4 GiB binding, aligned chunks under 128 MiB', () => {
    const one = planChunks(100_000_000, adam, h200(2 ** 32 - 4));
    expect(one).toEqual([{ start: 0, length: 100_000_000, groups: [65_535, 24] }]);
    expect(65_535 * 24 * 64).toBeGreaterThanOrEqual(100_000_000);
    for (const limits of [h200(2 ** 27), llvmpipe]) {
      const chunks = planChunks(100_000_000, adam, limits);
      // Two state slots per element: 2^27 / 8 bytes = 16,777,216 elements per chunk, 6 chunks.
      expect(chunks.length).toBe(6);
      let next = 0;
      for (const c of chunks) {
        expect(c.start).toBe(next);
        expect((4 * c.start) % limits.minStorageBufferOffsetAlignment).toBe(0);
        expect(8 * c.length).toBeLessThanOrEqual(limits.maxStorageBufferBindingSize);
        expect(c.groups[0] * c.groups[1] * 64).toBeGreaterThanOrEqual(c.length);
        expect(c.groups[0]).toBeLessThanOrEqual(65_535);
        next += c.length;
      }
      expect(next).toBe(100_000_000);
    }
  });

  it('one row up to 65,535 workgroups, then rows; a clear error past 65,535 x 65,535', () => {
    expect(dispatchGeometry(64 * 65_535, 64, 65_535)).toEqual([65_535, 1]);
    expect(dispatchGeometry(64 * 65_535 + 1, 64, 65_535)).toEqual([65_535, 2]);
    expect(dispatchGeometry(10_000_000, 64, 65_535)).toEqual([65_535, 3]);
    expect(dispatchGeometry(1, 64, 65_535)).toEqual([1, 1]);
    expect(() => dispatchGeometry(64 * 65_535 * 65_535 + 1, 64, 65_535)).toThrow(GpuSizeError);
    expect(() => planChunks(0, adam, llvmpipe)).toThrow(/at least one element/);
    const tiny = { ...llvmpipe, maxStorageBufferBindingSize: 64 };
    expect(() => planChunks(1000, adam, { ...tiny, minStorageBufferOffsetAlignment: 256 })).toThrow(
      /cannot fit one aligned chunk in a storage binding of 64 bytes/,
    );
  });
});
