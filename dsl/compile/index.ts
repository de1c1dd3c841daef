/**
 * The back ends, one registered object each (`BACKENDS`): the list `compileRule`
 * dispatches through, that `nos trace --backend` accepts and that the CLI's help names.
 *
 * A back end compiles the shared lowering (`lowerRule`) of a checked rule into kernels bound
 * to a vector size. One that cannot compile a rule raises `UnsupportedError`; `compileRule`
 * then runs it on the back end's `fallback` (wasm -> fused JS), and finally on the
 * interpreter, and says so in the result. Host back ends (interp, js, wasm, tf) step
 * synchronously; a device back end (wgsl) resolves each step when the weights are back.
 *
 * tf and wgsl need loading (tfjs and its backend; a WebGPU device): `prepareBackend(name)`.
 * How they load is Node's business, installed by `./node-backends.js` (so a browser bundle of
 * this module never pulls in Dawn or Node built-ins); the tf kernels register themselves when
 * `./tf-kernel.js` is imported, as before.
 */
import { type CheckedRule, ruleHash } from '../check.js';
import { type Dtype, Interpreter, type Vec } from '../interp.js';
import { lowerRule, type Program, paramValues } from '../lower.js';
import { type GeneratedKernel, generateKernel, JsKernel, UnsupportedError } from './js.js';
import { generateWasm, WasmKernel, type WasmProgram } from './wasm.js';

export { UnsupportedError } from './js.js';

/** The back ends' names; `BACKENDS` holds one object per name (checked below). */
export type BackendName = 'js' | 'wasm' | 'tf' | 'wgsl' | 'interp';
/** Back ends whose kernels step synchronously. */
export type HostBackendName = Exclude<BackendName, DeviceBackendName>;
/** Back ends on a device queue. */
export type DeviceBackendName = 'wgsl';

/** A rule bound to a vector size, holding its state: `w <- w - lr * d_t` per call. */
export interface VectorKernel {
  readonly backend: BackendName;
  /** Updates applied so far. */
  readonly t: number;
  step(w: Vec, g: Vec, lr: number): void;
}

/** The same on a device queue: each step resolves once `w` holds the new weights. */
export interface DeviceKernel {
  readonly backend: BackendName;
  readonly t: number;
  step(w: Vec, g: Vec, lr: number): Promise<void>;
  dispose(): void;
}

/** What a back end makes of one rule. */
export interface BackendOutput<K> {
  /** A fresh kernel (new state) for vectors of this size. */
  create(size: number, seed: number): K;
  /** The fused JS kernel's source and function (js). */
  readonly kernel?: GeneratedKernel;
  /** The module's bytes, host scalars and lane-by-lane primitives (wasm). */
  readonly wasm?: WasmProgram;
}

export interface BackendInput {
  readonly rule: Pick<CheckedRule, 'params' | 'expr'>;
  readonly program: Program;
  /** Hyperparameter values, in the program's order. */
  readonly values: Float64Array;
  readonly params: Readonly<Record<string, number>>;
  readonly dtype: Dtype;
  readonly exact: boolean;
}

interface BackendBase<N extends string> {
  readonly name: N;
  /** One line for the CLI's help. */
  readonly summary: string;
  readonly dtypes: readonly Dtype[];
  /** Where a rule this back end cannot compile runs instead (after it, the interpreter). */
  readonly fallback?: BackendName;
  /** Whether it must be loaded first (`prepareBackend`). */
  readonly needsLoading: boolean;
}

export interface HostBackend<N extends string = string> extends BackendBase<N> {
  readonly device: false;
  compile(input: BackendInput): BackendOutput<VectorKernel>;
}

export interface DeviceBackend<N extends string = string> extends BackendBase<N> {
  readonly device: true;
  compile(input: BackendInput): BackendOutput<DeviceKernel>;
}

/** A loaded back end's kernels (tf, wgsl), installed by `installBackend`. */
export interface LoadedBackend<K> {
  /** What it runs on (the tfjs backend, the WebGPU adapter), for the user. */
  readonly note: string;
  create(program: Program, values: Float64Array, size: number, seed: number): K;
  /** Release what loading took (a WebGPU device); `prepareBackend` loads it again. */
  release?(): Promise<void>;
}

/** How a back end that needs loading loads in this environment (see ./node-backends.js). */
export type BackendLoader<K> = () => Promise<LoadedBackend<K>>;

const loaded: { tf?: LoadedBackend<VectorKernel>; wgsl?: LoadedBackend<DeviceKernel> } = {};
/** The tf kernels, registered by ./tf-kernel.js when it is imported. */
let tfFactory: TfFactory | undefined;
const loaders: { tf?: BackendLoader<VectorKernel>; wgsl?: BackendLoader<DeviceKernel> } = {};

const notLoaded = (name: 'tf' | 'wgsl'): UnsupportedError =>
  new UnsupportedError(name, `anything until it is loaded (await prepareBackend('${name}'))`);

const interpBackend = {
  name: 'interp',
  summary: 'the reference interpreter (registry semantics, one element at a time; slow)',
  dtypes: ['float32', 'float64'],
  needsLoading: false,
  device: false,
  compile: ({ rule, params, dtype }) => ({
    create: (size, seed) => {
      const it = new Interpreter(rule, { size, params, seed, dtype });
      return {
        backend: 'interp',
        get t() {
          return it.t;
        },
        step: (w, g, lr) => it.step(w, g, lr),
      };
    },
  }),
} as const satisfies HostBackend<'interp'>;

const jsBackend = {
  name: 'js',
  summary: 'one fused JavaScript loop per rule (float32 or float64)',
  dtypes: ['float32', 'float64'],
  needsLoading: false,
  device: false,
  compile: ({ program, values, dtype, exact }) => {
    const kernel = generateKernel(program, dtype, { exact });
    return { kernel, create: (size, seed) => new JsKernel(program, kernel, values, size, seed, dtype) };
  },
} as const satisfies HostBackend<'js'>;

const wasmBackend = {
  name: 'wasm',
  summary: 'one WebAssembly SIMD module per rule (float32; the default for training)',
  dtypes: ['float32'],
  fallback: 'js',
  needsLoading: false,
  device: false,
  compile: ({ program, values }) => {
    const wasm = generateWasm(program);
    return { wasm, create: (size, seed) => new WasmKernel(wasm, program, values, size, seed) };
  },
} as const satisfies HostBackend<'wasm'>;

const tfBackend = {
  name: 'tf',
  summary: 'tfjs ops (float32; the tensorflow, wasm or cpu tfjs backend)',
  dtypes: ['float32'],
  needsLoading: true,
  device: false,
  compile: ({ program, values }) => {
    const create = loaded.tf?.create ?? tfFactory;
    if (create === undefined) throw notLoaded('tf');
    return { create: (size, seed) => create(program, values, size, seed) };
  },
} as const satisfies HostBackend<'tf'>;

const wgslBackend = {
  name: 'wgsl',
  summary: 'one WGSL compute shader per rule on WebGPU (Dawn: a GPU, else Mesa software; float32)',
  dtypes: ['float32'],
  needsLoading: true,
  device: true,
  compile: ({ program, values }) => {
    const impl = loaded.wgsl;
    if (impl === undefined) throw notLoaded('wgsl');
    return { create: (size, seed) => impl.create(program, values, size, seed) };
  },
} as const satisfies DeviceBackend<'wgsl'>;

export type Backend = HostBackend<BackendName> | DeviceBackend<BackendName>;

const LIST = [jsBackend, wasmBackend, tfBackend, wgslBackend, interpBackend] as const;
/** Every back end, in the order the CLI lists them. */
export const BACKENDS: readonly Backend[] = LIST;

type AnyBackend = (typeof LIST)[number];
// Each name has its object, and each object's kind matches its name's (a compile error otherwise).
const complete: Record<Exclude<BackendName, AnyBackend['name']>, never> = {};
const kinds: Record<Extract<AnyBackend, { readonly device: true }>['name'], DeviceBackendName> = { wgsl: 'wgsl' };
void complete;
void kinds;

export const BACKEND_NAMES: readonly BackendName[] = BACKENDS.map((b) => b.name);

export function backendByName(name: string): Backend | undefined {
  return BACKENDS.find((b) => b.name === name);
}

/** Install how a back end loads in this environment (./node-backends.js does it for Node). */
export function installBackendLoader(name: 'tf', loader: BackendLoader<VectorKernel>): void;
export function installBackendLoader(name: 'wgsl', loader: BackendLoader<DeviceKernel>): void;
export function installBackendLoader(
  name: 'tf' | 'wgsl',
  loader: BackendLoader<VectorKernel> | BackendLoader<DeviceKernel>,
): void {
  if (name === 'tf') loaders.tf = loader as BackendLoader<VectorKernel>;
  else loaders.wgsl = loader as BackendLoader<DeviceKernel>;
}

/**
 * Load a back end (tfjs and its backend; a WebGPU device). Resolves to a note on what it runs
 * on; rejects with the reason it cannot run here. Host back ends that need nothing resolve ''.
 */
export async function prepareBackend(name: BackendName): Promise<string> {
  if (name !== 'tf' && name !== 'wgsl') return '';
  const have = loaded[name];
  if (have !== undefined) return have.note;
  if (name === 'tf') {
    const loader = loaders.tf;
    if (loader !== undefined) loaded.tf = await loader();
    else if (tfFactory !== undefined) loaded.tf = { note: 'tfjs', create: tfFactory };
    else throw new Error("the tf back end is not loaded (import 'dsl/compile/tf-kernel.js')");
    return loaded.tf.note;
  }
  const loader = loaders.wgsl;
  if (loader === undefined) throw new Error('the wgsl back end loads only in Node (dsl/compile/node-backends.js)');
  loaded.wgsl = await loader();
  return loaded.wgsl.note;
}

/** Release what `prepareBackend` took (the WebGPU device); a later prepare loads it again. */
export async function releaseBackend(name: BackendName): Promise<void> {
  if (name !== 'tf' && name !== 'wgsl') return;
  const have = loaded[name];
  delete loaded[name];
  for (const key of [...cache.keys()]) if (key.includes(`|${name}|`)) cache.delete(key);
  await have?.release?.();
}

/**
 * The tf back end's kernels, registered by `./tf-kernel.js` when it is imported (kept out of
 * this module so the dsl does not load tfjs).
 */
export type TfFactory = (program: Program, values: Float64Array, size: number, seed: number) => VectorKernel;
export function registerTfBackend(factory: TfFactory): void {
  tfFactory = factory;
}

export interface CompiledRule<K extends VectorKernel | DeviceKernel = VectorKernel> {
  /** The back end asked for. */
  readonly requested: BackendName;
  /** The back end that runs the rule (a fallback when the requested one could not). */
  readonly backend: BackendName;
  readonly fallbackReason?: string;
  readonly hash: string;
  readonly program: Program;
  readonly kernel?: GeneratedKernel;
  /** The wasm back end's module (its bytes, host scalars, lane-by-lane primitives). */
  readonly wasm?: WasmProgram;
  /** A fresh kernel (new state) for vectors of this size. */
  create(size: number, seed?: number): K;
}

export interface CompileOptions {
  readonly backend?: BackendName;
  readonly params?: Readonly<Record<string, number>>;
  readonly dtype?: Dtype;
  /** Fused JS only: reproduce the interpreter bit for bit (slower; see KernelOptions). */
  readonly exact?: boolean;
}

/**
 * Compiled rules by hash, back end, dtype and mode, the most recently used last. Bounded: a
 * search compiles a new rule for almost every sample (its checking thread, its evaluator
 * threads), for hours; kept without a bound, they would all stay in memory.
 */
const cache = new Map<string, CompiledRule<VectorKernel> | CompiledRule<DeviceKernel>>();
/** The most compiled rules kept; the least recently used goes first. */
export const COMPILE_CACHE_SIZE = 512;
export const cacheStats = { hits: 0, misses: 0, evictions: 0 };

/** Compiled rules held now (at most COMPILE_CACHE_SIZE). */
export function compileCacheSize(): number {
  return cache.size;
}

/** A host kernel as a device kernel (a device back end's fallback). */
function onDevice(k: VectorKernel): DeviceKernel {
  return {
    get backend() {
      return k.backend;
    },
    get t() {
      return k.t;
    },
    step: async (w, g, lr) => k.step(w, g, lr),
    dispose: () => (k as { dispose?: () => void }).dispose?.(),
  };
}

export function compileRule(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  options: CompileOptions & { readonly backend: DeviceBackendName },
): CompiledRule<DeviceKernel>;
export function compileRule(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  options?: CompileOptions & { readonly backend?: HostBackendName },
): CompiledRule<VectorKernel>;
export function compileRule(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  options?: CompileOptions,
): CompiledRule<VectorKernel> | CompiledRule<DeviceKernel>;
export function compileRule(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  options: CompileOptions = {},
): CompiledRule<VectorKernel> | CompiledRule<DeviceKernel> {
  const requested = options.backend ?? 'js';
  const target = backendByName(requested);
  if (target === undefined) throw new Error(`unknown back end '${requested}' (back ends: ${BACKEND_NAMES.join(', ')})`);
  const dtype = options.dtype ?? 'float32';
  const params = options.params ?? {};
  const hash = ruleHash(rule, params);
  const exact = options.exact ?? false;
  const key = `${hash}|${requested}|${dtype}|${exact ? 'exact' : 'fast'}`;
  const hit = cache.get(key);
  if (hit) {
    cacheStats.hits++;
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  cacheStats.misses++;
  const input: BackendInput = {
    rule,
    program: lowerRule(rule),
    values: paramValues(rule, params),
    params,
    dtype,
    exact,
  };
  const reasons: string[] = [];
  let result: CompiledRule<VectorKernel> | CompiledRule<DeviceKernel> | undefined;
  // The requested back end, then its fallbacks, then the interpreter (which compiles everything).
  for (let b: Backend | undefined = target; b !== undefined && result === undefined; ) {
    const next: Backend = b.fallback === undefined ? interpBackend : (backendByName(b.fallback) ?? interpBackend);
    if (!b.dtypes.includes(dtype)) reasons.push(`the ${b.name} back end computes in float32 only`);
    else {
      try {
        const out = b.compile(input);
        const base = {
          requested,
          backend: b.name,
          ...(reasons.length > 0 ? { fallbackReason: reasons.join('; ') } : {}),
          hash,
          program: input.program,
          ...(out.kernel ? { kernel: out.kernel } : {}),
          ...(out.wasm ? { wasm: out.wasm } : {}),
        };
        const create = out.create as (size: number, seed: number) => VectorKernel | DeviceKernel;
        if (target.device && !b.device)
          result = { ...base, create: (size, seed = 0) => onDevice(create(size, seed) as VectorKernel) };
        else result = { ...base, create: (size: number, seed = 0) => create(size, seed) } as CompiledRule<VectorKernel>;
      } catch (e) {
        if (!(e instanceof UnsupportedError)) throw e;
        reasons.push(e.message);
      }
    }
    b = b === interpBackend ? undefined : next;
  }
  if (result === undefined) throw new Error(`no back end compiled the rule: ${reasons.join('; ')}`);
  cache.set(key, result);
  while (cache.size > COMPILE_CACHE_SIZE) {
    cache.delete(cache.keys().next().value as string);
    cacheStats.evictions++;
  }
  return result;
}

/** Weights after each step, on the chosen (host) back end. */
export function traceCompiled(
  compiled: CompiledRule<VectorKernel>,
  input: { readonly w0: readonly number[]; readonly grads: readonly (readonly number[])[] },
  lr: number,
  options: { seed?: number; dtype?: Dtype } = {},
): number[][] {
  const dtype = options.dtype ?? 'float32';
  const kernel = compiled.create(input.w0.length, options.seed ?? 0);
  const w = dtype === 'float32' ? Float32Array.from(input.w0) : Float64Array.from(input.w0);
  const out: number[][] = [];
  for (const row of input.grads) {
    kernel.step(w, dtype === 'float32' ? Float32Array.from(row) : Float64Array.from(row), lr);
    out.push(Array.from(w));
  }
  return out;
}

/** Weights after each step, on any back end (a device back end's steps are awaited). */
export async function traceCompiledAsync(
  compiled: CompiledRule<VectorKernel> | CompiledRule<DeviceKernel>,
  input: { readonly w0: readonly number[]; readonly grads: readonly (readonly number[])[] },
  lr: number,
  options: { seed?: number; dtype?: Dtype } = {},
): Promise<number[][]> {
  const dtype = options.dtype ?? 'float32';
  const kernel: VectorKernel | DeviceKernel = compiled.create(input.w0.length, options.seed ?? 0);
  const w = dtype === 'float32' ? Float32Array.from(input.w0) : Float64Array.from(input.w0);
  const out: number[][] = [];
  try {
    for (const row of input.grads) {
      await kernel.step(w, dtype === 'float32' ? Float32Array.from(row) : Float64Array.from(row), lr);
      out.push(Array.from(w));
    }
  } finally {
    if ('dispose' in kernel && typeof kernel.dispose === 'function') kernel.dispose();
  }
  return out;
}
