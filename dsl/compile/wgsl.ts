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
 * NaN and Inf are implementation-defined in WGSL: where the registry defines them the shader
 * tests for NaN itself (see PRELUDE). This file generates the shader; running it (the device,
 * buffers, dispatch) is in webgpu.ts.
 */
import type { StatePrim, TensorPrim } from '../../primitives/registry.js';
import type { Program, Step } from '../lower.js';
import { allowedWordsOf, arg, INFIX, INFIX_STATE, type StateTpl, type Tpl, templateWords } from './templates.js';

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
  'fn isInf(x: f32) -> bool { return (bitcast<u32>(x) & 2147483647u) == 2139095040u; }',
  'fn nmin(x: f32, y: f32) -> f32 { if (isNan(x) || isNan(y)) { return x + y; } return min(x, y); }',
  'fn nmax(x: f32, y: f32) -> f32 { if (isNan(x) || isNan(y)) { return x + y; } return max(x, y); }',
  'fn nsign(x: f32) -> f32 { if (isNan(x)) { return x; } return sign(x); }',
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
    // Two-dimensional dispatch past 65,535 workgroups: rows of nw.x workgroups (webgpu.ts).
    `@compute @workgroup_size(${p.workgroup}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {`,
    `  let i = id.x + id.y * nw.x * ${p.workgroup}u;`,
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
  return allowedWordsOf(templates, SKELETON_WORDS, GENERATED);
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
