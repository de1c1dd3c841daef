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
 * NaN and Inf are implementation-defined in WGSL. This file generates the shader; running it
 * (the device, buffers, dispatch) is in webgpu.ts.
 */
import type { StatePrim, TensorPrim } from '../../primitives/registry.js';
import type { Program, Step } from '../lower.js';
import { arg, INFIX, INFIX_STATE, type Tpl } from './templates.js';

const EXPR = {
  ...INFIX,
  pow: (a) => `gpow(${arg(a, 0)}, ${arg(a, 1)})`,
  exp: (a) => `exp(${arg(a, 0)})`,
  log: (a) => `log(abs(${arg(a, 0)}))`,
  sqrt: (a) => `sqrt(abs(${arg(a, 0)}))`,
  abs: (a) => `abs(${arg(a, 0)})`,
  cos: (a) => `cos(${arg(a, 0)})`,
  floor: (a) => `floor(${arg(a, 0)})`,
  sign: (a) => `sign(${arg(a, 0)})`,
  clip: (a) => `min(max(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `min(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `max(${arg(a, 0)}, ${arg(a, 1)})`,
  drop: (a) => `select(${arg(a, 0)} / (1.0 - ${arg(a, 1)}), 0.0, ${arg(a, 2)} < ${arg(a, 1)})`,
} as const satisfies Record<TensorPrim, Tpl>;

const STATE = {
  ...INFIX_STATE,
  runmax: (s: string, a: readonly string[]) => `max(${s}, ${arg(a, 0)})`,
} as const satisfies Record<StatePrim, (s: string, a: readonly string[], oneMinus: (x: string) => string) => string>;

/** Names of every per-element and state primitive this back end compiles. */
export const WGSL_PRIMITIVES: readonly string[] = [...Object.keys(EXPR), ...Object.keys(STATE)];

/** Every token of the shader: known words, generated names, operators, small literals. */
const WORDS = new Set([
  'struct',
  'Params',
  'var',
  'uniform',
  'storage',
  'read',
  'read_write',
  'array',
  'f32',
  'u32',
  'vec3u',
  'vec2',
  'vec4',
  'fn',
  'm',
  'let',
  'if',
  'return',
  'select',
  'main',
  'group',
  'binding',
  'compute',
  'workgroup_size',
  'builtin',
  'global_invocation_id',
  'num_workgroups',
  'nw',
  'id',
  'x',
  'n',
  'lr',
  'pad',
  'k',
  'u',
  'w',
  'g',
  'st',
  'dr',
  'i',
  'y',
  'gpow',
  'floor',
  'abs',
  'pow',
  'exp',
  'log',
  'sqrt',
  'cos',
  'sign',
  'min',
  'max',
  'wi',
  'gi',
  'true',
  'false',
]);

export function checkWgsl(source: string): void {
  for (const m of source.matchAll(/[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?u?|\S/g)) {
    const tok = m[0];
    if (/^[A-Za-z_]/.test(tok)) {
      if (!WORDS.has(tok) && !/^[vso]\d+$/.test(tok))
        throw new Error(`generated shader contains unexpected name '${tok}'`);
    } else if (/^\d/.test(tok)) {
      if (!/^(?:\d{1,7}u?|\d\.\d)$/.test(tok)) throw new Error(`generated shader contains unexpected number '${tok}'`);
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
        body.push(`let v${k} = ${STATE[s.prim](`o${s.slot}`, s.args.map(name), (x) => `(1.0 - ${x})`)};`);
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
  const lines = [
    `struct Params { n: u32, lr: f32, pad: vec2<f32>, k: array<vec4<f32>, ${kvec}> };`,
    '@group(0) @binding(0) var<storage, read_write> w: array<f32>;',
    '@group(0) @binding(1) var<storage, read> g: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> st: array<f32>;',
    '@group(0) @binding(3) var<storage, read> dr: array<f32>;',
    '@group(0) @binding(4) var<uniform> u: Params;',
    'fn gpow(x: f32, y: f32) -> f32 {',
    '  if (y == 2.0) { return x * x; }',
    '  if (y == 0.0) { return 1.0; }',
    '  if (x == 0.0) { if (y > 0.0) { return 0.0; } return 1.0 / x; }',
    '  if (x < 0.0) { let m = pow(abs(x), y); if (floor(y) == y) { if (floor(y * 0.5) * 2.0 == y) { return m; } return -m; } return -m; }',
    '  return pow(x, y);',
    '}',
    // Two-dimensional dispatch past 65,535 workgroups: rows of nw.x workgroups (webgpu.ts).
    `@compute @workgroup_size(${workgroup}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {`,
    `  let i = id.x + id.y * nw.x * ${workgroup}u;`,
    '  if (i >= u.n) { return; }',
    '  let gi = g[i];',
    '  let wi = w[i];',
    ...[...usedOld].map((k) => `  let o${k} = st[${k}u * u.n + i];`),
    ...body.map((l) => `  ${l}`),
    ...program.slotSteps.map((step, k) => `  st[${k}u * u.n + i] = v${step};`),
    `  w[i] = wi - u.lr * ${d};`,
    '}',
  ];
  const source = lines.join('\n');
  checkWgsl(source);
  return { source, uniforms, slots: nslots, draws: program.draws.length, workgroup };
}
