/**
 * Compile a checked rule for a back end, with a cache keyed by the rule's hash. A back end
 * that cannot compile a rule raises `UnsupportedError`; `compileRule` then falls back to the
 * interpreter and says so in the result. The wasm back end falls back to the fused JS kernel
 * first (the interpreter only if that cannot compile the rule either).
 */
import { type CheckedRule, ruleHash } from '../check.js';
import { type Dtype, Interpreter, type Vec } from '../interp.js';
import { lowerRule, paramValues, type Program } from '../lower.js';
import { generateKernel, type GeneratedKernel, JsKernel, UnsupportedError } from './js.js';
import { generateWasm, WasmKernel, type WasmProgram } from './wasm.js';

export { UnsupportedError } from './js.js';

export type BackendName = 'interp' | 'js' | 'tf' | 'wasm';

/** A rule bound to a vector size, holding its state: `w <- w - lr * d_t` per call. */
export interface VectorKernel {
  readonly backend: BackendName;
  /** Updates applied so far. */
  readonly t: number;
  step(w: Vec, g: Vec, lr: number): void;
}

export interface CompiledRule {
  /** The back end asked for. */
  readonly requested: BackendName;
  /** The back end that runs the rule (the interpreter when the requested one could not). */
  readonly backend: BackendName;
  readonly fallbackReason?: string;
  readonly hash: string;
  readonly program: Program;
  readonly kernel?: GeneratedKernel;
  /** The wasm back end's module (its bytes, host scalars, lane-by-lane primitives). */
  readonly wasm?: WasmProgram;
  /** A fresh kernel (new state) for vectors of this size. */
  create(size: number, seed?: number): VectorKernel;
}

export interface CompileOptions {
  readonly backend?: BackendName;
  readonly params?: Readonly<Record<string, number>>;
  readonly dtype?: Dtype;
  /** Fused JS only: reproduce the interpreter bit for bit (slower; see KernelOptions). */
  readonly exact?: boolean;
}

const cache = new Map<string, CompiledRule>();
export const cacheStats = { hits: 0, misses: 0 };

/** Factory for the tf back end, installed by `./tf-kernel.js` (kept out of this module so the dsl does not load tfjs). */
export type TfFactory = (program: Program, params: Float64Array, size: number, seed: number) => VectorKernel;
let tfFactory: TfFactory | undefined;
export function registerTfBackend(factory: TfFactory): void {
  tfFactory = factory;
}

export function compileRule(rule: Pick<CheckedRule, 'params' | 'expr'>, options: CompileOptions = {}): CompiledRule {
  const requested = options.backend ?? 'js';
  const dtype = options.dtype ?? 'float32';
  const params = options.params ?? {};
  const hash = ruleHash(rule, params);
  const exact = options.exact ?? false;
  const key = `${hash}|${requested}|${dtype}|${exact ? 'exact' : 'fast'}`;
  const hit = cache.get(key);
  if (hit) {
    cacheStats.hits++;
    return hit;
  }
  cacheStats.misses++;
  const values = paramValues(rule, params);
  const program = lowerRule(rule);
  const interpreterFactory = (size: number, seed = 0): VectorKernel => {
    const it = new Interpreter(rule, { size, params, seed, dtype });
    return {
      backend: 'interp',
      get t() {
        return it.t;
      },
      step: (w, g, lr) => it.step(w, g, lr),
    };
  };
  let result: CompiledRule;
  const fallback = (reason: string): CompiledRule => ({
    requested,
    backend: 'interp',
    fallbackReason: reason,
    hash,
    program,
    create: interpreterFactory,
  });
  if (requested === 'interp') result = { requested, backend: 'interp', hash, program, create: interpreterFactory };
  else if (requested === 'js') {
    try {
      const kernel = generateKernel(program, dtype, { exact });
      result = {
        requested,
        backend: 'js',
        hash,
        program,
        kernel,
        create: (size, seed = 0) => new JsKernel(program, kernel, values, size, seed, dtype),
      };
    } catch (e) {
      if (!(e instanceof UnsupportedError)) throw e;
      result = fallback(e.message);
    }
  } else if (requested === 'wasm') {
    // Where the wasm back end cannot run a rule, the fused JS kernel does (then the interpreter).
    const jsFallback = (reason: string): CompiledRule => {
      try {
        const kernel = generateKernel(program, dtype, { exact });
        return {
          requested,
          backend: 'js',
          fallbackReason: reason,
          hash,
          program,
          kernel,
          create: (size, seed = 0) => new JsKernel(program, kernel, values, size, seed, dtype),
        };
      } catch (e) {
        if (!(e instanceof UnsupportedError)) throw e;
        return fallback(`${reason}; ${e.message}`);
      }
    };
    if (dtype !== 'float32') result = jsFallback('the wasm back end computes in float32 only');
    else {
      try {
        const wasm = generateWasm(program);
        result = {
          requested,
          backend: 'wasm',
          hash,
          program,
          wasm,
          create: (size, seed = 0) => new WasmKernel(wasm, program, values, size, seed),
        };
      } catch (e) {
        if (!(e instanceof UnsupportedError)) throw e;
        result = jsFallback(e.message);
      }
    }
  } else {
    const factory = tfFactory;
    if (factory === undefined) result = fallback("the tf back end is not loaded (import 'dsl/compile/tf-kernel.js')");
    else if (dtype !== 'float32') result = fallback('the tf back end computes in float32 only');
    else
      result = {
        requested,
        backend: 'tf',
        hash,
        program,
        create: (size, seed = 0) => factory(program, values, size, seed),
      };
  }
  cache.set(key, result);
  return result;
}

/** Weights after each step, on the chosen back end. */
export function traceCompiled(
  compiled: CompiledRule,
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
