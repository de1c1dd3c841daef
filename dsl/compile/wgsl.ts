/**
 * The WGSL back end: each rule becomes one compute shader that updates the weights and all of
 * the rule's state in a single pass, run through WebGPU (the npm `webgpu` package, Dawn).
 *
 * Layout: binding 0 the weights (read-write), 1 the gradient, 2 all state slots packed
 * (slot k at k*n), 3 the random draws of this step (draw j at j*n), 4 a uniform buffer with
 * n, the learning rate and every number the rule needs: constants, hyperparameters and the
 * scalar subexpressions (bias corrections, schedules), computed on the CPU in float64 each
 * step. Like the fused JS kernels, the shader source is built only from fixed templates,
 * generated names and indices; nothing from rule text reaches it.
 *
 * Where it runs: a real adapter when one exists (Vulkan on an NVIDIA GPU), else Mesa's
 * software adapter (llvmpipe, through OpenGL ES with EGL_PLATFORM=surfaceless), which is slow
 * but compiles and runs the shaders for real. NaN and Inf are implementation-defined in WGSL.
 */
import { readdirSync } from 'node:fs';
import { importOptional, MissingDependencyError } from '../../util/optional-deps.js';
import type { StatePrim, TensorPrim } from '../../primitives/registry.js';
import { DrawSource } from '../draws.js';
import type { Vec } from '../interp.js';
import { type Program, scalarValues, type Step } from '../lower.js';
import { arg, INFIX, INFIX_STATE, SAMPLE_ARGS, type StateTpl, type Tpl, templateWords } from './templates.js';

const EXPR = {
  ...INFIX,
  pow: (a) => `gpow(${arg(a, 0)}, ${arg(a, 1)})`,
  exp: (a) => `exp(${arg(a, 0)})`,
  log: (a) => `log(abs(${arg(a, 0)}))`,
  sqrt: (a) => `sqrt(abs(${arg(a, 0)}))`,
  abs: (a) => `abs(${arg(a, 0)})`,
  cos: (a) => `cos(${arg(a, 0)})`,
  floor: (a) => `floor(${arg(a, 0)})`,
  // NaN-aware forms (see PRELUDE): WGSL's own leave NaN implementation-defined.
  sign: (a) => `nsign(${arg(a, 0)})`,
  clip: (a) => `nmin(nmax(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `nmin(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `nmax(${arg(a, 0)}, ${arg(a, 1)})`,
  // drop(x, p, 1 - p, u): the lowering passes 1 - p and the draw.
  drop: (a) => `select(${arg(a, 0)} / ${arg(a, 2)}, 0.0, ${arg(a, 3)} < ${arg(a, 1)})`,
} as const satisfies Record<TensorPrim, Tpl>;

const STATE = {
  ...INFIX_STATE,
  runmax: (s: string, a: readonly string[]) => `nmax(${s}, ${arg(a, 0)})`,
} as const satisfies Record<StatePrim, StateTpl>;

/** The back end's template tables (per-element and new-state). */
export const WGSL_TEMPLATES = { expr: EXPR, state: STATE } as const;

/** Names of every per-element and state primitive this back end compiles. */
export const WGSL_PRIMITIVES: readonly string[] = [...Object.keys(EXPR), ...Object.keys(STATE)];

/** Generated names: values and old state. */
const GENERATED = /^[vso]\d+$/;

/**
 * Functions every shader carries. WGSL leaves NaN and infinity implementation-defined (Mesa's
 * llvmpipe: max(-inf, NaN) = -inf, sign(NaN) = 0, pow(NaN, y) = 0), so where the registry
 * defines them the shader tests for NaN itself, on the bits (`isNan`: a compiler that assumes
 * no NaN cannot fold an integer test away), and makes NaN at run time (x + y).
 */
const PRELUDE = [
  'fn isNan(x: f32) -> bool { return (bitcast<u32>(x) & 2147483647u) > 2139095040u; }',
  'fn nmin(x: f32, y: f32) -> f32 { if (isNan(x) || isNan(y)) { return x + y; } return min(x, y); }',
  'fn nmax(x: f32, y: f32) -> f32 { if (isNan(x) || isNan(y)) { return x + y; } return max(x, y); }',
  'fn nsign(x: f32) -> f32 { if (isNan(x)) { return x; } return sign(x); }',
  'fn isInf(x: f32) -> bool { return (bitcast<u32>(x) & 2147483647u) == 2139095040u; }',
  // The registry's guardedPow: IEEE 754 pow (an infinite y is an integer), and -(|x|^y) for
  // x < 0 with a non-integer y. WGSL's pow is exp2(y * log2(x)): its edges are spelled out.
  'fn gpow(x: f32, y: f32) -> f32 {',
  '  if (x == 1.0) { return 1.0; }',
  '  if (isNan(y)) { if (x == -1.0) { return -1.0; } return x + y; }',
  '  if (isNan(x)) { if (y == 0.0) { return 1.0; } return x + y; }',
  '  if (y == 2.0) { return x * x; }',
  '  if (y == 0.0) { return 1.0; }',
  '  let whole = floor(y) == y;',
  '  let odd = whole && floor(y * 0.5) * 2.0 != y;',
  '  if (x == -1.0 && isInf(y)) { return 1.0; }',
  '  if (x == 0.0) { if (y > 0.0) { if (odd) { return x; } return 0.0; } if (odd) { return 1.0 / x; } return 1.0 / abs(x); }',
  '  if (x < 0.0) { let m = pow(-x, y); if (odd || !whole) { return -m; } return m; }',
  '  return pow(x, y);',
  '}',
];

interface ShaderParts {
  readonly kvec: number;
  readonly workgroup: number;
  readonly olds: readonly number[];
  readonly body: readonly string[];
  readonly slotSteps: readonly number[];
  readonly d: string;
}

/** The shader around the templates: bindings, the prelude, main's loads, the body, the stores. */
function shaderSource(p: ShaderParts): string {
  return [
    `struct Params { n: u32, lr: f32, pad: vec2<f32>, k: array<vec4<f32>, ${p.kvec}> };`,
    '@group(0) @binding(0) var<storage, read_write> w: array<f32>;',
    '@group(0) @binding(1) var<storage, read> g: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> st: array<f32>;',
    '@group(0) @binding(3) var<storage, read> dr: array<f32>;',
    '@group(0) @binding(4) var<uniform> u: Params;',
    ...PRELUDE,
    `@compute @workgroup_size(${p.workgroup}) fn main(@builtin(global_invocation_id) id: vec3u) {`,
    '  let i = id.x;',
    '  if (i >= u.n) { return; }',
    '  let gi = g[i];',
    '  let wi = w[i];',
    ...p.olds.map((k) => `  let o${k} = st[${k}u * u.n + i];`),
    ...p.body.map((l) => `  ${l}`),
    ...p.slotSteps.map((step, k) => `  st[${k}u * u.n + i] = v${step};`),
    `  w[i] = wi - u.lr * ${p.d};`,
    '}',
  ].join('\n');
}

/** The words of the skeleton (`shaderSource` with sample parts): derived, never listed by hand. */
const SKELETON_WORDS = templateWords(
  [
    shaderSource({
      kvec: 1,
      workgroup: 64,
      olds: [0],
      body: ['let v1 = u.k[0][0];', 'let v2 = dr[0u * u.n + i];'],
      slotSteps: [1],
      d: 'v2',
    }),
  ],
  GENERATED,
);

/** Every word a shader may contain: the skeleton's and those the given templates emit. */
export function allowedWgslWords(templates: {
  readonly expr: Readonly<Record<string, Tpl>>;
  readonly state: Readonly<Record<string, StateTpl>>;
}): ReadonlySet<string> {
  const outputs = [
    ...Object.values(templates.expr).map((t) => t(SAMPLE_ARGS)),
    ...Object.values(templates.state).map((t) => t('o0', SAMPLE_ARGS)),
  ];
  return new Set([...SKELETON_WORDS, ...templateWords(outputs, GENERATED)]);
}

const WORDS = allowedWgslWords(WGSL_TEMPLATES);

/** Every token of the shader: known words (see `allowedWgslWords`), generated names, operators, small literals. */
export function checkWgsl(source: string, words: ReadonlySet<string> = WORDS): void {
  for (const m of source.matchAll(/[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?u?|\S/g)) {
    const tok = m[0];
    if (/^[A-Za-z_]/.test(tok)) {
      if (!words.has(tok) && !GENERATED.test(tok))
        throw new Error(`generated shader contains unexpected name '${tok}'`);
    } else if (/^\d/.test(tok)) {
      if (!/^(?:\d{1,10}u?|\d\.\d)$/.test(tok)) throw new Error(`generated shader contains unexpected number '${tok}'`);
    } else if (!'+-*/%()[]{};,.=<>?:!&|@'.includes(tok))
      throw new Error(`generated shader contains unexpected character '${tok}'`);
  }
}

export interface GeneratedShader {
  readonly source: string;
  /**
   * Program steps whose values (scalars, computed on the host in float64 each step by
   * `scalarValues`) fill the uniform slots: uniform j holds step `uniforms[j]`.
   */
  readonly uniforms: readonly number[];
  /** Number of state slots (packed in binding 2, slot k at k*n). */
  readonly slots: number;
  readonly draws: number;
  readonly workgroup: number;
}

export function generateWgsl(program: Program, workgroup = 64): GeneratedShader {
  const uniforms: number[] = [];
  const uniformOf = new Map<number, number>();
  const body: string[] = [];
  const usedOld = new Set<number>();
  const name = (k: number): string => {
    const s = program.steps[k] as Step;
    if (s.kind === 'scalar') {
      let j = uniformOf.get(k);
      if (j === undefined) {
        j = uniforms.push(k) - 1;
        uniformOf.set(k, j);
      }
      return `u.k[${j >> 2}][${j & 3}]`;
    }
    if (s.op === 'leaf') return s.leaf === 'g' ? 'gi' : 'wi';
    if (s.op === 'prev') {
      usedOld.add(s.slot);
      return `o${s.slot}`;
    }
    return `v${k}`;
  };
  program.steps.forEach((s, k) => {
    switch (s.op) {
      case 'state':
        usedOld.add(s.slot);
        body.push(`let v${k} = ${STATE[s.prim](`o${s.slot}`, s.args.map(name))};`);
        break;
      case 'draw':
        body.push(`let v${k} = dr[${s.draw}u * u.n + i];`);
        break;
      case 'tensor':
        body.push(`let v${k} = ${EXPR[s.prim](s.args.map(name))};`);
        break;
      default:
        break;
    }
  });
  const d = name(program.result);
  const nslots = program.slots.length;
  const kvec = Math.max(1, Math.ceil(uniforms.length / 4));
  const source = shaderSource({ kvec, workgroup, olds: [...usedOld], body, slotSteps: program.slotSteps, d });
  checkWgsl(source);
  return { source, uniforms, slots: nslots, draws: program.draws.length, workgroup };
}
// ------------------------------------------------------------------------------------------
// Running shaders.

/** Minimal WebGPU types we use (the `webgpu` package ships the DOM-style globals). */
interface Gpu {
  device: GPUDevice;
  adapter: string;
}

let gpuPromise: Promise<Gpu> | undefined;

export function hasVulkanDriver(): boolean {
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  return dirs.some((d) => {
    try {
      return readdirSync(d).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
}

/**
 * A WebGPU device: a real adapter if there is one, else Mesa's software adapter through
 * OpenGL ES (surfaceless EGL). Rejects with the reason when neither is available.
 */
export function initWebGpu(): Promise<Gpu> {
  gpuPromise ??= (async () => {
    let mod: { create: (flags: string[]) => GPU; globals: Record<string, unknown> };
    try {
      mod = await importOptional<typeof mod>('webgpu');
    } catch (e) {
      if (e instanceof MissingDependencyError) throw e;
      throw new Error(`the 'webgpu' package (Dawn) could not load: ${e instanceof Error ? e.message : String(e)}`);
    }
    Object.assign(globalThis, mod.globals);
    const tries: [string[], GPURequestAdapterOptions | undefined, string][] = [];
    const notes: string[] = [];
    // A real adapter first (Vulkan: NVIDIA, AMD, Intel), when a Vulkan driver is installed.
    if (hasVulkanDriver()) tries.push([[], { powerPreference: 'high-performance' }, 'default']);
    else notes.push('default: no Vulkan driver (ICD) installed');
    tries.push([['backend=opengles'], { featureLevel: 'compatibility' } as GPURequestAdapterOptions, 'opengles']);
    process.env.EGL_PLATFORM ??= 'surfaceless';
    for (const [flags, options, label] of tries) {
      try {
        const adapter = await mod.create(flags).requestAdapter(options);
        if (!adapter) {
          notes.push(`${label}: no adapter`);
          continue;
        }
        const device = await adapter.requestDevice();
        const info = adapter.info;
        const desc =
          [info?.vendor, info?.architecture, info?.device, info?.description].filter((x) => x).join(' ') || label;
        return { device, adapter: `${desc} (${label})` };
      } catch (e) {
        notes.push(`${label}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    throw new Error(`no WebGPU adapter: ${notes.join('; ')}`);
  })();
  return gpuPromise;
}

const STORAGE = 0x0080;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;
const UNIFORM = 0x0040;

/** A compiled rule on the GPU, bound to a vector size; state stays on the device. */
export class WgslKernel {
  readonly backend = 'wgsl' as const;
  t = 0;
  private readonly pipeline: GPUComputePipeline;
  private readonly layout: GPUBindGroupLayout;
  private readonly buffers: { w: GPUBuffer; g: GPUBuffer; st: GPUBuffer; dr: GPUBuffer; u: GPUBuffer; read: GPUBuffer };
  private readonly bind: GPUBindGroup;
  private readonly drawSource: DrawSource;
  private readonly drawHost: Float32Array;

  constructor(
    private readonly gpu: Gpu,
    readonly program: Program,
    readonly shader: GeneratedShader,
    private readonly params: Float64Array,
    readonly size: number,
    seed: number,
  ) {
    const device = gpu.device;
    const module = device.createShaderModule({ code: shader.source });
    // An explicit layout: 'auto' would drop the bindings a rule does not use (state, draws).
    const COMPUTE = 0x4;
    const layout = device.createBindGroupLayout({
      entries: (['storage', 'read-only-storage', 'storage', 'read-only-storage', 'uniform'] as const).map(
        (type, binding) => ({ binding, visibility: COMPUTE, buffer: { type } }),
      ),
    });
    this.layout = layout;
    this.pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    const bytes = 4 * size;
    const mk = (n: number, usage: number) => device.createBuffer({ size: Math.max(16, n), usage });
    const stBytes = bytes * Math.max(1, shader.slots);
    this.buffers = {
      w: mk(bytes, STORAGE | COPY_SRC | COPY_DST),
      g: mk(bytes, STORAGE | COPY_DST),
      st: mk(stBytes, STORAGE | COPY_DST),
      dr: mk(bytes * Math.max(1, shader.draws), STORAGE | COPY_DST),
      u: mk(16 + 16 * Math.max(1, Math.ceil(shader.uniforms.length / 4)), UNIFORM | COPY_DST),
      read: mk(bytes, MAP_READ | COPY_DST),
    };
    const init = new Float32Array(Math.max(1, shader.slots) * size);
    program.slots.forEach((s, k) => {
      init.fill(s.init, k * size, (k + 1) * size);
    });
    device.queue.writeBuffer(this.buffers.st, 0, init);
    this.bind = device.createBindGroup({
      layout: this.layout,
      entries: (['w', 'g', 'st', 'dr', 'u'] as const).map((k, binding) => ({
        binding,
        resource: { buffer: this.buffers[k] },
      })),
    });
    this.drawSource = new DrawSource(seed);
    this.drawHost = new Float32Array(Math.max(1, shader.draws) * size);
  }

  /** w <- w - lr * d_t on the device; w is read back into the given array. */
  async step(w: Vec, g: Vec, lr: number): Promise<void> {
    const n = this.size;
    if (w.length !== n || g.length !== n)
      throw new Error(`expected vectors of length ${n}, got w ${w.length} and g ${g.length}`);
    const t = ++this.t;
    const device = this.gpu.device;
    const buf = new Float64Array(n);
    this.program.draws.forEach((kind, j) => {
      this.drawSource.fill(kind, buf);
      this.drawHost.set(buf, j * n);
    });
    const uni = new ArrayBuffer(16 + 16 * Math.max(1, Math.ceil(this.shader.uniforms.length / 4)));
    new Uint32Array(uni, 0, 1)[0] = n;
    new Float32Array(uni, 4, 1)[0] = lr;
    const k = new Float32Array(uni, 16);
    const host = scalarValues(this.program, this.params, t);
    this.shader.uniforms.forEach((step, j) => {
      k[j] = host[step] as number;
    });
    device.queue.writeBuffer(this.buffers.u, 0, uni);
    device.queue.writeBuffer(this.buffers.w, 0, Float32Array.from(w));
    device.queue.writeBuffer(this.buffers.g, 0, Float32Array.from(g));
    if (this.shader.draws > 0) device.queue.writeBuffer(this.buffers.dr, 0, this.drawHost);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, this.bind);
    pass.dispatchWorkgroups(Math.ceil(n / this.shader.workgroup));
    pass.end();
    enc.copyBufferToBuffer(this.buffers.w, 0, this.buffers.read, 0, 4 * n);
    device.queue.submit([enc.finish()]);
    await this.buffers.read.mapAsync(MAP_READ);
    w.set(new Float32Array(this.buffers.read.getMappedRange().slice(0, 4 * n)));
    this.buffers.read.unmap();
  }

  /** See `timeDispatches`. */
  async timeDispatches(reps: number): Promise<number> {
    const device = this.gpu.device;
    const run = async (count: number) => {
      const enc = device.createCommandEncoder();
      for (let r = 0; r < count; r++) {
        const pass = enc.beginComputePass();
        pass.setPipeline(this.pipeline);
        pass.setBindGroup(0, this.bind);
        pass.dispatchWorkgroups(Math.ceil(this.size / this.shader.workgroup));
        pass.end();
      }
      enc.copyBufferToBuffer(this.buffers.w, 0, this.buffers.read, 0, 4);
      device.queue.submit([enc.finish()]);
      // Mapping waits for the queue (onSubmittedWorkDone crashes Mesa's GL backend here).
      await this.buffers.read.mapAsync(MAP_READ, 0, 4);
      this.buffers.read.unmap();
    };
    await run(1);
    const t0 = performance.now();
    await run(reps);
    return (performance.now() - t0) / reps;
  }

  dispose(): void {
    for (const b of Object.values(this.buffers)) b.destroy();
  }
}

/** Weights after each step on the GPU (the `nos trace --backend wgsl` path). */
export async function traceWgsl(
  program: Program,
  params: Float64Array,
  input: { readonly w0: readonly number[]; readonly grads: readonly (readonly number[])[] },
  lr: number,
  seed = 0,
): Promise<{ weights: number[][]; adapter: string }> {
  const gpu = await initWebGpu();
  const kernel = new WgslKernel(gpu, program, generateWgsl(program), params, input.w0.length, seed);
  try {
    const w = Float32Array.from(input.w0);
    const out: number[][] = [];
    for (const row of input.grads) {
      await kernel.step(w, Float32Array.from(row), lr);
      out.push(Array.from(w));
    }
    return { weights: out, adapter: gpu.adapter };
  } finally {
    kernel.dispose();
  }
}

/**
 * Release the WebGPU device. Call before the process exits: Mesa's software adapter can crash
 * at exit (seen: SIGSEGV, a pthread assertion) when its device is still alive.
 */
export async function closeWebGpu(): Promise<void> {
  const pending = gpuPromise;
  gpuPromise = undefined;
  if (pending === undefined) return;
  try {
    const gpu = await pending;
    gpu.device.destroy();
  } catch {
    // no device was made: nothing to release
  }
}

/**
 * Time the kernel alone on the device: `reps` dispatches in one submission (no uploads or
 * read-backs), ms per dispatch. The state advances as if `reps` steps ran with the last gradient.
 */
export async function timeDispatches(kernel: WgslKernel, reps: number): Promise<number> {
  return kernel.timeDispatches(reps);
}

/** Device copy bandwidth: a buffer-to-buffer copy of `bytes`, GB/s (read + write). */
export async function deviceCopyGBps(bytes = 64 * 1024 * 1024): Promise<number> {
  const { device } = await initWebGpu();
  const a = device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST });
  const b = device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST });
  const probe = device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
  try {
    const copy = async () => {
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(a, 0, b, 0, bytes);
      enc.copyBufferToBuffer(b, 0, probe, 0, 16);
      device.queue.submit([enc.finish()]);
      await probe.mapAsync(MAP_READ);
      probe.unmap();
    };
    await copy();
    const t0 = performance.now();
    await copy();
    return (2 * bytes) / ((performance.now() - t0) * 1e6);
  } finally {
    a.destroy();
    b.destroy();
    probe.destroy();
  }
}
