/**
 * Spellings that several source back ends share: the C-like infix forms of arithmetic work
 * unchanged in JavaScript, WGSL, TypeScript and Python. Each back end spreads this table into
 * its own and adds what its language spells differently; its table is then checked complete
 * against the registry (`satisfies Record<TensorPrim, Tpl>`).
 */
import type { TensorPrim } from '../../primitives/registry.js';

/** A template: generated argument names in, an expression out. */
export type Tpl = (a: readonly string[]) => string;

export const arg = (a: readonly string[], i: number): string => {
  const s = a[i];
  if (s === undefined) throw new Error(`template argument ${i} missing`);
  return s;
};

export const INFIX = {
  add: (a) => `(${arg(a, 0)} + ${arg(a, 1)})`,
  sub: (a) => `(${arg(a, 0)} - ${arg(a, 1)})`,
  mul: (a) => `(${arg(a, 0)} * ${arg(a, 1)})`,
  div: (a) => `(${arg(a, 0)} / ${arg(a, 1)})`,
  neg: (a) => `(-${arg(a, 0)})`,
  square: (a) => `(${arg(a, 0)} * ${arg(a, 0)})`,
  lerp: (a) => `(${arg(a, 0)} + ${arg(a, 2)} * (${arg(a, 1)} - ${arg(a, 0)}))`,
  keep: (a) => arg(a, 0),
} as const satisfies Partial<Record<TensorPrim, Tpl>>;

/** JavaScript's spellings on numbers (`Math.*`): the fused kernels and emitted TypeScript's scalar code. */
export const JS_MATH = {
  exp: (a) => `Math.exp(${arg(a, 0)})`,
  log: (a) => `Math.log(Math.abs(${arg(a, 0)}))`,
  sqrt: (a) => `Math.sqrt(Math.abs(${arg(a, 0)}))`,
  abs: (a) => `Math.abs(${arg(a, 0)})`,
  cos: (a) => `Math.cos(${arg(a, 0)})`,
  floor: (a) => `Math.floor(${arg(a, 0)})`,
  clip: (a) => `Math.min(Math.max(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `Math.min(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `Math.max(${arg(a, 0)}, ${arg(a, 1)})`,
} as const satisfies Partial<Record<TensorPrim, Tpl>>;

/** A new-state template: the old state's name and the arguments' names in, an expression out. */
export type StateTpl = (s: string, a: readonly string[]) => string;

/**
 * The moving-average family's new-state formulas, as infix source (s: the old state). ema's
 * third argument is 1 - beta, computed by the lowering (on the host in float64 for a scalar beta).
 */
export const INFIX_STATE = {
  ema: (s: string, a: readonly string[]) => `(${arg(a, 1)} * ${s} + ${arg(a, 2)} * ${arg(a, 0)})`,
  accum: (s: string, a: readonly string[]) => `(${arg(a, 1)} * ${s} + ${arg(a, 0)})`,
  sum: (s: string, a: readonly string[]) => `(${s} + ${arg(a, 0)})`,
} as const;

/** Generated names to call templates with when collecting the words they emit. */
export const SAMPLE_ARGS: readonly string[] = ['v1', 'v2', 'v3', 'v4'];

/**
 * The words (identifiers) the given template outputs contain, other than generated names: what
 * a back end's source check must allow besides its skeleton. Derived by calling the templates
 * (they are pure functions of generated names), so a new template's words are allowed with it.
 */
export function templateWords(outputs: Iterable<string>, generated: RegExp): Set<string> {
  const words = new Set<string>();
  for (const text of outputs)
    for (const w of text.match(/[A-Za-z_$][A-Za-z0-9_$]*/g) ?? []) if (!generated.test(w)) words.add(w);
  return words;
}

/**
 * Every word a back end's generated source may contain: its skeleton's, and those its
 * templates emit (called on sample names; see `templateWords`).
 */
export function allowedWordsOf(
  templates: { readonly expr: Readonly<Record<string, Tpl>>; readonly state: Readonly<Record<string, StateTpl>> },
  skeleton: Iterable<string>,
  generated: RegExp,
): ReadonlySet<string> {
  const outputs = [
    ...Object.values(templates.expr).map((t) => t(SAMPLE_ARGS)),
    ...Object.values(templates.state).map((t) => t('o0', SAMPLE_ARGS)),
  ];
  return new Set([...skeleton, ...templateWords(outputs, generated)]);
}
