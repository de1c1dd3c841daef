/**
 * Running the WGSL back end's shaders (wgsl.ts generates them) through WebGPU: the npm `webgpu`
 * package (Dawn). Where it runs: a real adapter when one exists (Vulkan on an NVIDIA GPU), else
 * Mesa's software adapter (llvmpipe, through OpenGL ES with EGL_PLATFORM=surfaceless), which is
 * slow but compiles and runs the shaders for real.
 *
 * Lifetime (the abort of issue 21): Dawn's instance, the object `create()` returns, owns the
 * threads and the event loop integration every device of it uses. Once nothing references it,
 * V8 may collect it, and its finalizer tears Dawn down under a device still in use: the process
 * aborts (`std::system_error: Invalid argument`, "The futex facility returned an unexpected
 * error code") or segfaults. The more the process allocates, the sooner the collector runs,
 * hence "at 100k parameters always, at 4k never". So the instance lives in `alive` (and in
 * `navigator.gpu`, where tfjs-webgpu looks) until `closeWebGpu` has destroyed the device.
 *
 * Sizes: the device is requested with the adapter's own maxima (`requiredLimits`), dispatches
 * are two-dimensional past 65,535 workgroups, and a vector too large for one storage binding is
 * split into chunks, each with its own state; only what no chunking can fix is an error
 * (`GpuSizeError`).
 */
import { readdirSync } from 'node:fs';
import { importOptional, MissingDependencyError } from '../../util/optional-deps.js';
import { DrawSource } from '../draws.js';
import type { Vec } from '../interp.js';
import { type Program, scalarValues } from '../lower.js';
import { type GeneratedShader, generateWgsl } from './wgsl.js';

/** The device limits the kernels depend on. */
export interface GpuLimits {
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly minStorageBufferOffsetAlignment: number;
}

/** A WebGPU device and what it runs on. */
export interface Gpu {
  readonly device: GPUDevice;
  /** The adapter in words (vendor, architecture, device, description, and the Dawn back end). */
  readonly adapter: string;
  readonly info: GPUAdapterInfo;
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader): its timings are CPU figures. */
  readonly software: boolean;
  readonly limits: GpuLimits;
}

/** A size no chunking can fit on this device, or an allocation the device refused. */
export class GpuSizeError extends Error {
  override readonly name = 'GpuSizeError';
}

/**
 * Limits requested from the adapter at their maxima: the sizes our kernels need, and the
 * compute limits tfjs-webgpu asks for when it makes its own device (so it can share ours).
 */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupsPerDimension',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupSizeX',
  'maxComputeInvocationsPerWorkgroup',
] as const;

/** The `requiredLimits` of `requestDevice`: the adapter's own maxima of `REQUESTED_LIMITS`. */
export function requiredLimits(adapterLimits: Readonly<Record<string, unknown>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of REQUESTED_LIMITS) {
    const v = adapterLimits[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[k] = v;
  }
  return out;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader/i;

let gpuPromise: Promise<Gpu> | undefined;
/** Every Dawn instance this process made, referenced until `closeWebGpu` (see the file's comment). */
let alive: GPU[] = [];

export function hasVulkanDriver(): boolean {
  const dirs = [
    '/usr/share/vulkan/icd.d',
    '/etc/vulkan/icd.d',
    '/usr/local/share/vulkan/icd.d',
    '/usr/local/nvidia/share/vulkan/icd.d', // the H200 machine's driver mount
  ];
  if (process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES) return true;
  return dirs.some((d) => {
    try {
      return readdirSync(d).some((f) => f.endsWith('.json'));
    } catch {
      return false;
    }
  });
}

interface NavigatorHolder {
  navigator?: { gpu?: GPU };
}

/**
 * The process's WebGPU device (made once): a real adapter if there is one, else Mesa's
 * software adapter through OpenGL ES (surfaceless EGL). Rejects with the reason when neither
 * is available. tfjs-webgpu shares this device (evaluator/gpu-train.ts).
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
        const instance = mod.create(flags);
        alive.push(instance);
        const adapter = await instance.requestAdapter(options);
        if (!adapter) {
          notes.push(`${label}: no adapter`);
          continue;
        }
        const device = await adapter.requestDevice({ requiredLimits: requiredLimits(adapter.limits as never) });
        const info = adapter.info;
        const desc =
          [info?.vendor, info?.architecture, info?.device, info?.description].filter((x) => x).join(' ') || label;
        // Where tfjs-webgpu looks for WebGPU (Node 20 has no navigator), and one more reference.
        const holder = globalThis as NavigatorHolder;
        holder.navigator ??= {};
        holder.navigator.gpu = instance;
        const l = device.limits;
        return {
          device,
          adapter: `${desc} (${label})`,
          info,
          software: SOFTWARE.test(desc),
          limits: {
            maxBufferSize: l.maxBufferSize,
            maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
            maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
            minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
          },
        };
      } catch (e) {
        notes.push(`${label}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    throw new Error(`no WebGPU adapter: ${notes.join('; ')}`);
  })();
  return gpuPromise;
}

/**
 * Release the WebGPU device, then Dawn's instances, in that order. Call before the process
 * exits (and after every kernel is disposed): an instance collected or torn down under a live
 * device is the abort this file's comment describes.
 */
export async function closeWebGpu(): Promise<void> {
  const pending = gpuPromise;
  gpuPromise = undefined;
  if (pending !== undefined) {
    try {
      const gpu = await pending;
      gpu.device.destroy();
    } catch {
      // no device was made: nothing to release
    }
  }
  const holder = globalThis as NavigatorHolder;
  if (holder.navigator?.gpu !== undefined && alive.includes(holder.navigator.gpu)) delete holder.navigator.gpu;
  alive = [];
}

// ------------------------------------------------------------------------------------------
// Sizes: chunks and dispatch geometry.

/** One chunk of a vector: elements [start, start + length), dispatched as x by y workgroups. */
export interface Chunk {
  readonly start: number;
  readonly length: number;
  readonly groups: readonly [number, number];
}

/** Workgroups for `length` elements: rows of at most `maxPerDim`, enough rows to cover them. */
export function dispatchGeometry(length: number, workgroup: number, maxPerDim: number): [number, number] {
  const groups = Math.max(1, Math.ceil(length / workgroup));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  if (y > maxPerDim)
    throw new GpuSizeError(
      `${length} elements need ${groups} workgroups of ${workgroup}, more than ${maxPerDim} x ${maxPerDim}`,
    );
  return [x, y];
}

/**
 * Split n elements into chunks whose largest binding (the packed state, or the draws) fits one
 * storage binding and one buffer, with chunk starts aligned for binding offsets and every
 * shader index (slot * length + i) within u32. `maxChunk` caps a chunk (tests use it to
 * exercise several chunks on small vectors).
 */
export function planChunks(
  n: number,
  shader: Pick<GeneratedShader, 'slots' | 'draws' | 'workgroup'>,
  limits: GpuLimits,
  maxChunk = Number.POSITIVE_INFINITY,
): Chunk[] {
  if (!(Number.isInteger(n) && n > 0)) throw new GpuSizeError(`a vector needs at least one element, got ${n}`);
  const per = Math.max(1, shader.slots, shader.draws);
  const bindBytes = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const align = Math.max(1, Math.ceil(limits.minStorageBufferOffsetAlignment / 4));
  const maxGroups = limits.maxComputeWorkgroupsPerDimension ** 2;
  let c = Math.min(
    Math.floor(bindBytes / (4 * per)),
    Math.floor((2 ** 32 - 1) / per),
    maxGroups * shader.workgroup,
    maxChunk,
  );
  if (c < n) c -= c % align;
  if (c < 1)
    throw new GpuSizeError(
      `a rule with ${per} state slot(s) or draw(s) per element cannot fit one aligned chunk in a storage binding of ${limits.maxStorageBufferBindingSize} bytes`,
    );
  const chunks: Chunk[] = [];
  for (let start = 0; start < n; start += c) {
    const length = Math.min(c, n - start);
    chunks.push({
      start,
      length,
      groups: dispatchGeometry(length, shader.workgroup, limits.maxComputeWorkgroupsPerDimension),
    });
  }
  return chunks;
}

// ------------------------------------------------------------------------------------------
// Kernels.

const STORAGE = 0x0080;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;
const UNIFORM = 0x0040;
const COMPUTE = 0x4;

/** The weights and gradient a chunk binds: our own buffers, or ranges of someone else's (tfjs tensors). */
export interface Operands {
  readonly w: GPUBuffer;
  readonly g: GPUBuffer;
  /** Byte offset of the chunk's first element in w and g (0 for per-chunk buffers). */
  readonly offset: number;
}

interface OwnBuffers {
  readonly w: GPUBuffer;
  readonly g: GPUBuffer;
  readonly read: GPUBuffer;
  readonly bind: GPUBindGroup;
}

interface ChunkState {
  readonly chunk: Chunk;
  readonly st: GPUBuffer;
  readonly dr: GPUBuffer;
  readonly u: GPUBuffer;
}

/** Allocate buffers under an error scope, so a refused allocation is a clear error, not a lost device. */
async function allocating<T>(device: GPUDevice, what: string, make: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const out = make();
  const validation = await device.popErrorScope();
  const oom = await device.popErrorScope();
  const err = oom ?? validation;
  if (err) throw new GpuSizeError(`the GPU could not allocate ${what}: ${err.message}`);
  return out;
}

/** Pipelines by shader source, per device: a training run makes a kernel per weight tensor, each run anew. */
const pipelines = new WeakMap<
  GPUDevice,
  Map<string, Promise<{ pipeline: GPUComputePipeline; layout: GPUBindGroupLayout }>>
>();

function compiled(device: GPUDevice, source: string) {
  let byDevice = pipelines.get(device);
  if (byDevice === undefined) {
    byDevice = new Map();
    pipelines.set(device, byDevice);
  }
  let hit = byDevice.get(source);
  if (hit === undefined) {
    hit = (async () => {
      device.pushErrorScope('validation');
      const module = device.createShaderModule({ code: source });
      // An explicit layout: 'auto' would drop the bindings a rule does not use (state, draws).
      const layout = device.createBindGroupLayout({
        entries: (['storage', 'read-only-storage', 'storage', 'read-only-storage', 'uniform'] as const).map(
          (type, binding) => ({ binding, visibility: COMPUTE, buffer: { type } }),
        ),
      });
      const pipeline = device.createComputePipeline({
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module, entryPoint: 'main' },
      });
      const invalid = await device.popErrorScope();
      if (invalid) throw new Error(`the WGSL shader did not compile: ${invalid.message}`);
      return { pipeline, layout };
    })();
    byDevice.set(source, hit);
    hit.catch(() => byDevice.delete(source));
  }
  return hit;
}

/**
 * A compiled rule on the GPU for a vector of `size` elements; its state (and draws) stay on the
 * device, in chunks. `record` applies one step to any weights/gradient buffers (the training
 * path, where tfjs owns them); `step` is the host-array convenience of `nos trace`.
 */
export class WgslKernel {
  readonly backend = 'wgsl' as const;
  t = 0;
  readonly chunks: readonly Chunk[];
  private readonly pipeline: GPUComputePipeline;
  private readonly layout: GPUBindGroupLayout;
  private readonly state: ChunkState[];
  private readonly drawSource: DrawSource;
  private readonly drawHost: Float64Array;
  private readonly uniform: ArrayBuffer;
  /** Our own weight, gradient and read-back buffers per chunk (`create(..., {own: true})`). */
  private readonly own: OwnBuffers[] | undefined;

  private constructor(
    private readonly gpu: Gpu,
    readonly program: Program,
    readonly shader: GeneratedShader,
    private readonly params: Float64Array,
    readonly size: number,
    seed: number,
    parts: {
      chunks: Chunk[];
      pipeline: GPUComputePipeline;
      layout: GPUBindGroupLayout;
      state: ChunkState[];
      own: Omit<OwnBuffers, 'bind'>[] | undefined;
    },
  ) {
    this.chunks = parts.chunks;
    this.pipeline = parts.pipeline;
    this.layout = parts.layout;
    this.state = parts.state;
    this.own = parts.own?.map((o, c) => ({
      ...o,
      bind: this.bindGroup(parts.state[c] as ChunkState, { ...o, offset: 0 }),
    }));
    this.drawSource = new DrawSource(seed);
    this.drawHost = new Float64Array(shader.draws > 0 ? size : 0);
    this.uniform = new ArrayBuffer(16 + 16 * Math.max(1, Math.ceil(shader.uniforms.length / 4)));
  }

  static async create(
    gpu: Gpu,
    program: Program,
    params: Float64Array,
    size: number,
    seed: number,
    options: {
      shader?: GeneratedShader;
      maxChunk?: number;
      /** Weight, gradient and read-back buffers of its own, for `upload`, `step` and `timeDispatches`. */
      own?: boolean;
    } = {},
  ): Promise<WgslKernel> {
    const shader = options.shader ?? generateWgsl(program);
    const chunks = planChunks(size, shader, gpu.limits, options.maxChunk);
    const device = gpu.device;
    const { pipeline, layout } = await compiled(device, shader.source);
    const uniformBytes = 16 + 16 * Math.max(1, Math.ceil(shader.uniforms.length / 4));
    const state = await allocating(device, `the state of ${size} parameters`, () =>
      chunks.map((chunk) => ({
        chunk,
        st: device.createBuffer({
          size: Math.max(16, 4 * chunk.length * Math.max(1, shader.slots)),
          usage: STORAGE | COPY_DST,
        }),
        dr: device.createBuffer({
          size: Math.max(16, 4 * chunk.length * Math.max(1, shader.draws)),
          usage: STORAGE | COPY_DST,
        }),
        u: device.createBuffer({ size: uniformBytes, usage: UNIFORM | COPY_DST }),
      })),
    );
    const own = options.own
      ? await allocating(device, `the weights and gradient of ${size} parameters`, () =>
          chunks.map((chunk) => {
            const bytes = Math.max(16, 4 * chunk.length);
            return {
              w: device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST }),
              g: device.createBuffer({ size: bytes, usage: STORAGE | COPY_DST }),
              read: device.createBuffer({ size: bytes, usage: MAP_READ | COPY_DST }),
            };
          }),
        )
      : undefined;
    for (const s of state) {
      if (program.slots.length === 0) continue;
      const init = new Float32Array(program.slots.length * s.chunk.length);
      program.slots.forEach((slot, k) => {
        init.fill(slot.init, k * s.chunk.length, (k + 1) * s.chunk.length);
      });
      device.queue.writeBuffer(s.st, 0, init);
    }
    return new WgslKernel(gpu, program, shader, params, size, seed, { chunks, pipeline, layout, state, own });
  }

  /** Advance t, draw this step's random numbers and write each chunk's uniforms and draws. */
  private prepare(lr: number): void {
    const t = ++this.t;
    const device = this.gpu.device;
    const host = scalarValues(this.program, this.params, t);
    const k = new Float32Array(this.uniform, 16);
    this.shader.uniforms.forEach((step, j) => {
      k[j] = host[step] as number;
    });
    new Float32Array(this.uniform, 4, 1)[0] = lr;
    const draws = this.program.draws.map((kind) => {
      this.drawSource.fill(kind, this.drawHost);
      return Float32Array.from(this.drawHost);
    });
    for (const s of this.state) {
      new Uint32Array(this.uniform, 0, 1)[0] = s.chunk.length;
      device.queue.writeBuffer(s.u, 0, this.uniform);
      if (draws.length === 0) continue;
      const { start, length } = s.chunk;
      const dr = new Float32Array(draws.length * length);
      draws.forEach((d, j) => {
        dr.set(d.subarray(start, start + length), j * length);
      });
      device.queue.writeBuffer(s.dr, 0, dr);
    }
  }

  private bindGroup(s: ChunkState, ops: Operands): GPUBindGroup {
    const bytes = 4 * s.chunk.length;
    return this.gpu.device.createBindGroup({
      layout: this.layout,
      entries: [
        { binding: 0, resource: { buffer: ops.w, offset: ops.offset, size: bytes } },
        { binding: 1, resource: { buffer: ops.g, offset: ops.offset, size: bytes } },
        { binding: 2, resource: { buffer: s.st } },
        { binding: 3, resource: { buffer: s.dr } },
        { binding: 4, resource: { buffer: s.u } },
      ],
    });
  }

  private dispatch(pass: GPUComputePassEncoder, s: ChunkState, bind: GPUBindGroup): void {
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(s.chunk.groups[0], s.chunk.groups[1]);
  }

  /**
   * One step, w <- w - lr * d_t, recorded into `enc` on buffers that hold the whole vector
   * (`w` and `g` from byte `offset`: a tfjs tensor's buffer). Submit `enc` after whatever
   * wrote g; nothing is read back.
   */
  record(enc: GPUCommandEncoder, w: GPUBuffer, g: GPUBuffer, lr: number, offset = 0): void {
    this.prepare(lr);
    const pass = enc.beginComputePass();
    for (const s of this.state) this.dispatch(pass, s, this.bindGroup(s, { w, g, offset: offset + 4 * s.chunk.start }));
    pass.end();
  }

  private ownBuffers(): OwnBuffers[] {
    if (this.own === undefined)
      throw new Error('this kernel has no buffers of its own: WgslKernel.create(..., {own: true})');
    return this.own;
  }

  /** Copy host weights and gradient into the kernel's own buffers. */
  upload(w: Vec, g: Vec): void {
    const n = this.size;
    if (w.length !== n || g.length !== n)
      throw new Error(`expected vectors of length ${n}, got w ${w.length} and g ${g.length}`);
    const device = this.gpu.device;
    const w32 = w instanceof Float32Array ? w : Float32Array.from(w);
    const g32 = g instanceof Float32Array ? g : Float32Array.from(g);
    this.ownBuffers().forEach((o, c) => {
      const { start, length } = (this.state[c] as ChunkState).chunk;
      device.queue.writeBuffer(o.w, 0, w32, start, length);
      device.queue.writeBuffer(o.g, 0, g32, start, length);
    });
  }

  /** w <- w - lr * d_t on the device; w is read back into the given array. */
  async step(w: Vec, g: Vec, lr: number): Promise<void> {
    this.upload(w, g);
    const device = this.gpu.device;
    const own = this.ownBuffers();
    this.prepare(lr);
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    own.forEach((o, c) => {
      this.dispatch(pass, this.state[c] as ChunkState, o.bind);
    });
    pass.end();
    for (const [c, o] of own.entries())
      enc.copyBufferToBuffer(o.w, 0, o.read, 0, 4 * (this.state[c] as ChunkState).chunk.length);
    device.queue.submit([enc.finish()]);
    await Promise.all(own.map((o) => o.read.mapAsync(MAP_READ)));
    own.forEach((o, c) => {
      const { start, length } = (this.state[c] as ChunkState).chunk;
      const read = o.read;
      const got = new Float32Array(read.getMappedRange(), 0, length);
      for (let i = 0; i < length; i++) w[start + i] = got[i] as number;
      read.unmap();
    });
  }

  /**
   * Time the kernel alone on the device, ms per step: `reps` steps of every chunk in one
   * submission (no uploads or read-backs) less one such step, over reps - 1, so the fixed cost
   * of a submission and its completion wait cancels. Uses the weights and gradient last
   * uploaded; the state advances as if the steps ran.
   */
  async timeDispatches(reps: number): Promise<number> {
    const device = this.gpu.device;
    const own = this.ownBuffers();
    const probe = device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST });
    const run = async (count: number) => {
      const enc = device.createCommandEncoder();
      for (let r = 0; r < count; r++) {
        const pass = enc.beginComputePass();
        own.forEach((o, c) => {
          this.dispatch(pass, this.state[c] as ChunkState, o.bind);
        });
        pass.end();
      }
      enc.copyBufferToBuffer((own[0] as { w: GPUBuffer }).w, 0, probe, 0, 4);
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      // Mapping waits for the queue (onSubmittedWorkDone crashes Mesa's GL backend here).
      await probe.mapAsync(MAP_READ, 0, 4);
      probe.unmap();
      return performance.now() - t0;
    };
    try {
      await run(1);
      const one = await run(1);
      const many = await run(reps);
      return Math.max(many - one, Number.EPSILON) / (reps - 1);
    } finally {
      probe.destroy();
    }
  }

  dispose(): void {
    for (const s of this.state) {
      s.st.destroy();
      s.dr.destroy();
      s.u.destroy();
    }
    for (const o of this.own ?? []) {
      o.w.destroy();
      o.g.destroy();
      o.read.destroy();
    }
  }
}

/** Weights after each step on the GPU (the `nos trace --backend wgsl` path). */
export async function traceWgsl(
  program: Program,
  params: Float64Array,
  input: { readonly w0: readonly number[]; readonly grads: readonly (readonly number[])[] },
  lr: number,
  seed = 0,
  options: { maxChunk?: number } = {},
): Promise<{ weights: number[][]; adapter: string; chunks: number }> {
  const gpu = await initWebGpu();
  const kernel = await WgslKernel.create(gpu, program, params, input.w0.length, seed, { ...options, own: true });
  try {
    const w = Float32Array.from(input.w0);
    const out: number[][] = [];
    for (const row of input.grads) {
      await kernel.step(w, Float32Array.from(row), lr);
      out.push(Array.from(w));
    }
    return { weights: out, adapter: gpu.adapter, chunks: kernel.chunks.length };
  } finally {
    kernel.dispose();
  }
}

/**
 * Device copy bandwidth, GB/s (read + write): `reps` buffer-to-buffer copies of `bytes` in one
 * submission less one, as `timeDispatches` does.
 */
export async function deviceCopyGBps(bytes: number, reps = 20): Promise<number> {
  const { device } = await initWebGpu();
  const [a, b, probe] = await allocating(device, `two copy buffers of ${bytes} bytes`, () => [
    device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST }),
    device.createBuffer({ size: bytes, usage: STORAGE | COPY_SRC | COPY_DST }),
    device.createBuffer({ size: 16, usage: MAP_READ | COPY_DST }),
  ]);
  const copy = async (count: number) => {
    const enc = device.createCommandEncoder();
    for (let r = 0; r < count; r++) enc.copyBufferToBuffer(r % 2 ? b : a, 0, r % 2 ? a : b, 0, bytes);
    enc.copyBufferToBuffer(b, 0, probe, 0, 16);
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await probe.mapAsync(MAP_READ);
    probe.unmap();
    return performance.now() - t0;
  };
  try {
    await copy(1);
    const one = await copy(1);
    const many = await copy(reps);
    return (2 * bytes * (reps - 1)) / (Math.max(many - one, Number.EPSILON) * 1e6);
  } finally {
    a.destroy();
    b.destroy();
    probe.destroy();
  }
}
