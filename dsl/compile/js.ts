/**
 * Fused CPU kernels: one generated function per rule that updates the weights and all of
 * the rule's state in a single pass over typed arrays.
 *
 * Safety: the generated source is built only from fixed templates (below), generated local
 * names (`v12`, `s3`, ...) and array indices. Every number (constants, hyperparameters, and
 * the per-step scalars: bias corrections, schedules, noise scales) is computed on the host
 * by the lowering's `scalarValues` and passed in through the `K` array; nothing from rule
 * text is spliced into the source. `checkSource` enforces that on every kernel before
 * `new Function` sees it.
 *
 * With `exact: true` a kernel reproduces the interpreter bit for bit (same registry
 * semantics, state rounded to the dtype when stored). The default multiplies by hoisted
 * reciprocals instead of dividing by per-step scalars, which differs by an ulp or so.
 */
import { guardedPow, type StatePrim, type TensorPrim } from '../../primitives/registry.js';
import { DrawSource } from '../draws.js';
import { type Program, type Step, scalarValues } from '../lower.js';
import {
  allowedWordsOf,
  arg,
  INFIX,
  INFIX_STATE,
  JS_MATH,
  type StateTpl,
  type Tpl,
  templateWords,
} from './templates.js';

/** A primitive the back end cannot compile; callers fall back to the interpreter. */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
  constructor(
    readonly backend: string,
    readonly what: string,
  ) {
    super(`back end '${backend}' cannot compile ${what}`);
  }
}

/** Helpers the generated code may call, passed in as `H`. */
export const HELPERS = { pow: guardedPow, fround: Math.fround } as const;

/** Per-element templates; `a` holds generated names only. */
const EXPR = {
  ...INFIX,
  ...JS_MATH,
  pow: (a) => `H.pow(${arg(a, 0)}, ${arg(a, 1)})`,
  // sign(x): 0 for 0 (either sign), NaN for NaN.
  sign: (a) => `(${arg(a, 0)} > 0 ? 1 : ${arg(a, 0)} < 0 ? -1 : ${arg(a, 0)} === ${arg(a, 0)} ? 0 : ${arg(a, 0)})`,
  // drop(x, p, 1 - p, u): the lowering passes 1 - p and the draw.
  drop: (a) => `(${arg(a, 3)} < ${arg(a, 1)} ? 0 : ${arg(a, 0)} / ${arg(a, 2)})`,
} as const satisfies Record<TensorPrim, Tpl>;

/** New-state templates. */
const STATE = {
  ...INFIX_STATE,
  runmax: (s: string, a: readonly string[]) => `Math.max(${s}, ${arg(a, 0)})`,
} as const satisfies Record<StatePrim, StateTpl>;

/** The back end's template tables (per-element and new-state). */
export const JS_TEMPLATES = { expr: EXPR, state: STATE } as const;

/** Names of every per-element and state primitive this back end compiles. */
export const JS_PRIMITIVES: readonly string[] = [...Object.keys(EXPR), ...Object.keys(STATE)];

export type KernelFn = (
  w: Float32Array | Float64Array,
  g: Float32Array | Float64Array,
  S: readonly (Float32Array | Float64Array)[],
  D: readonly Float64Array[],
  K: Float64Array,
  H: typeof HELPERS,
  lr: number,
  n: number,
) => void;

export interface GeneratedKernel {
  readonly source: string;
  readonly fn: KernelFn;
}

/** Generated names: values, slots, old state, draws, hoisted scalars, the fround alias. */
const GENERATED = /^[vsodnrh]\d+$/;

interface KernelParts {
  /** Scalar steps the loop reads (from K). */
  readonly scalars: readonly number[];
  readonly slots: number;
  readonly draws: number;
  /** Round state to float32 (`h0 = H.fround`). */
  readonly fround: boolean;
  /** Per-step lines before the loop (hoisted reciprocals). */
  readonly pre: readonly string[];
  /** Slots whose old value the body reads. */
  readonly olds: readonly number[];
  readonly body: readonly string[];
  readonly slotSteps: readonly number[];
  /** The direction's name. */
  readonly d: string;
}

/** The kernel around the templates: bindings of its inputs, the loop, the stores. */
function kernelSource(p: KernelParts): string {
  const range = (n: number) => Array.from({ length: n }, (_x, k) => k);
  return [
    ...p.scalars.map((k) => `const v${k} = K[${k}];`),
    ...range(p.slots).map((k) => `const s${k} = S[${k}];`),
    ...range(p.draws).map((j) => `const d${j} = D[${j}];`),
    ...(p.fround ? ['const h0 = H.fround;'] : []),
    ...p.pre,
    'for (let i = 0; i < n; i++) {',
    'const gi = g[i];',
    'const wi = w[i];',
    ...p.olds.map((k) => `const o${k} = s${k}[i];`),
    ...p.body,
    ...p.slotSteps.map((step, k) => `s${k}[i] = v${step};`),
    `w[i] = wi - lr * ${p.d};`,
    '}',
  ].join('\n');
}

/** The words of the skeleton (`kernelSource` with sample parts): derived, never listed by hand. */
const SKELETON_WORDS = templateWords(
  [
    kernelSource({
      scalars: [1],
      slots: 1,
      draws: 1,
      fround: true,
      pre: [],
      olds: [0],
      body: ['const v2 = h0(v1 + d0[i]);'],
      slotSteps: [2],
      d: 'v2',
    }),
  ],
  GENERATED,
);

/** Every word a kernel may contain: the skeleton's and those the given templates emit. */
export function allowedWords(templates: {
  readonly expr: Readonly<Record<string, Tpl>>;
  readonly state: Readonly<Record<string, StateTpl>>;
}): ReadonlySet<string> {
  return allowedWordsOf(templates, SKELETON_WORDS, GENERATED);
}

const ALLOWED_WORDS = allowedWords(JS_TEMPLATES);

/**
 * Every token of generated source must be a known word (the skeleton's, or one a template
 * emits), a generated name, an operator or a small integer literal (indices, and the fixed
 * numbers of the templates).
 */
export function checkSource(source: string, words: ReadonlySet<string> = ALLOWED_WORDS): void {
  for (const m of source.matchAll(/[A-Za-z_$][A-Za-z0-9_$]*|\d+(?:\.\d+)?|\S/g)) {
    const tok = m[0];
    if (/^[A-Za-z_$]/.test(tok)) {
      if (!words.has(tok) && !GENERATED.test(tok))
        throw new Error(`generated kernel contains unexpected name '${tok}'`);
    } else if (/^\d/.test(tok)) {
      if (!/^\d{1,6}$/.test(tok)) throw new Error(`generated kernel contains unexpected number '${tok}'`);
    } else if (!'+-*/%()[]{};,.=<>?:!'.includes(tok))
      throw new Error(`generated kernel contains unexpected character '${tok}'`);
  }
}

export interface KernelOptions {
  /**
   * Reproduce the interpreter bit for bit. Off by default: a division by a value that is the
   * same for every element becomes a multiplication by its reciprocal, computed once per step
   * (Adam: 1.45x faster; results differ from the interpreter by at most an ulp or so).
   */
  readonly exact?: boolean;
}

export function generateKernel(
  program: Program,
  dtype: 'float32' | 'float64' = 'float32',
  options: KernelOptions = {},
): GeneratedKernel {
  const pre: string[] = []; // once per step
  const body: string[] = []; // per element
  const usedScalars = new Set<number>();
  const usesOld = new Set<number>();
  let counter = 0;
  const round = (e: string): string => (dtype === 'float32' ? `h0(${e})` : e);
  const name = (k: number): string => {
    const s = program.steps[k] as Step;
    if (s.kind === 'scalar') {
      usedScalars.add(k);
      return `v${k}`;
    }
    if (s.op === 'leaf') return s.leaf === 'g' ? 'gi' : 'wi';
    if (s.op === 'prev') {
      usesOld.add(s.slot);
      return `o${s.slot}`;
    }
    return `v${k}`;
  };
  const hoist = (expr: string): string => {
    const r = `r${counter++}`;
    pre.push(`const ${r} = ${expr};`);
    return r;
  };
  program.steps.forEach((s, k) => {
    switch (s.op) {
      case 'state': {
        const args = s.args.map(name);
        usesOld.add(s.slot);
        const tpl: StateTpl | undefined = STATE[s.prim];
        if (tpl === undefined) throw new UnsupportedError('js', `state primitive '${s.prim}'`);
        body.push(`const v${k} = ${round(tpl(`o${s.slot}`, args))};`);
        break;
      }
      case 'draw':
        body.push(`const v${k} = d${s.draw}[i];`);
        break;
      case 'tensor': {
        const args = s.args.map(name);
        const divisor = s.args[1] === undefined ? undefined : (program.steps[s.args[1]] as Step);
        if (!options.exact && s.prim === 'div' && divisor?.kind === 'scalar')
          body.push(`const v${k} = (${arg(args, 0)} * ${hoist(`(1 / ${arg(args, 1)})`)});`);
        // x^2 with a constant exponent: the registry's guardedPow computes it as x * x; inline it.
        else if (s.prim === 'pow' && divisor?.op === 'const' && divisor.value === 2)
          body.push(`const v${k} = (${arg(args, 0)} * ${arg(args, 0)});`);
        else {
          const tpl: Tpl | undefined = EXPR[s.prim];
          if (tpl === undefined) throw new UnsupportedError('js', `primitive '${s.prim}'`);
          body.push(`const v${k} = ${tpl(args)};`);
        }
        break;
      }
      default:
        break; // scalars come in through K; leaves and prev are read in the loop
    }
  });
  const source = kernelSource({
    scalars: [...usedScalars].sort((a, b) => a - b),
    slots: program.slots.length,
    draws: program.draws.length,
    fround: dtype === 'float32',
    pre,
    olds: [...usesOld],
    body,
    slotSteps: program.slotSteps,
    d: name(program.result),
  });
  checkSource(source);
  const fn = new Function('w', 'g', 'S', 'D', 'K', 'H', 'lr', 'n', source) as KernelFn;
  return { source, fn };
}

/** A compiled rule bound to a vector size: holds its state and draws. */
export class JsKernel {
  readonly backend = 'js' as const;
  readonly state: (Float32Array | Float64Array)[];
  t = 0;
  private readonly draws: Float64Array[];
  private readonly source: DrawSource;

  private readonly scalars: Float64Array;

  constructor(
    readonly program: Program,
    readonly kernel: GeneratedKernel,
    private readonly params: Float64Array,
    readonly size: number,
    seed: number,
    readonly dtype: 'float32' | 'float64' = 'float32',
  ) {
    this.scalars = new Float64Array(program.steps.length);
    const make = (n: number) => (dtype === 'float32' ? new Float32Array(n) : new Float64Array(n));
    this.state = program.slots.map((s) => make(size).fill(s.init));
    this.draws = program.draws.map(() => new Float64Array(size));
    this.source = new DrawSource(seed);
  }

  /** w <- w - lr * d_t, in place; advances the state. */
  step(w: Float32Array | Float64Array, g: Float32Array | Float64Array, lr: number): void {
    if (w.length !== this.size || g.length !== this.size)
      throw new Error(`expected vectors of length ${this.size}, got w ${w.length} and g ${g.length}`);
    const t = ++this.t;
    this.program.draws.forEach((kind, j) => {
      this.source.fill(kind, this.draws[j] as Float64Array);
    });
    scalarValues(this.program, this.params, t, this.scalars);
    this.kernel.fn(w, g, this.state, this.draws, this.scalars, HELPERS, lr, this.size);
  }
}
