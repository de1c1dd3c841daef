/**
 * `nos export --format ts`: a standalone TypeScript module (it imports @tensorflow/tfjs and
 * nothing else) that defines the rule as a `tf.Optimizer` subclass, with an optax-style doc
 * comment giving the equations, hyperparameters and provenance. Generated from the shared
 * lowering; only the helpers the rule uses are emitted, so the module passes
 * `noUnusedLocals` / `noUnusedParameters`.
 */
import {
  CONTEXT_PARAMS,
  type NoisePrim,
  type ScalarPrim,
  type StatePrim,
  type TensorPrim,
} from '../../primitives/registry.js';
import type { CheckedRule } from '../check.js';
import { printNode } from '../ir.js';
import { lowerRule, type Program, type Step } from '../lower.js';
import {
  checkedParamNames,
  className,
  commentText,
  numberLiteral,
  readableLine,
  ruleComment,
  stringLiteral,
} from './names.js';
import { arg, INFIX, JS_MATH, type Tpl } from './templates.js';

const JS_RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await arguments eval learningRate seed constructor prototype toString valueOf hasOwnProperty'.split(
    ' ',
  ),
);

/**
 * The option name for a hyperparameter in emitted TypeScript: the name itself, or `hp` + the
 * name capitalised when it is reserved (`seed` -> `hpSeed`). Names that already look escaped
 * (`hpX...`) are escaped again, so two hyperparameters never get the same option name. (No
 * underscores: tfjs camel-cases saved optimizer configs on load.)
 */
export function tsOptionName(name: string): string {
  return JS_RESERVED.has(name) || /^hp[A-Z0-9]/.test(name)
    ? `hp${(name[0] as string).toUpperCase()}${name.slice(1)}`
    : name;
}

export interface Provenance {
  /** Where the rule came from: "built-in", "search run X, rank R", ... */
  readonly source: string;
  readonly detail?: string;
}

export interface EmitOptions {
  readonly provenance?: Provenance;
  /** The exported class name (default: from the rule's name, else its hash). */
  readonly className?: string;
  /**
   * The decay steps `T` of a rule that reads it (lindecay(T), powersign-ld, ...), fixed as the
   * class's default. Without it such a class requires `T` from its user: no silent default.
   */
  readonly decaySteps?: number;
}

const SCALAR = {
  ...INFIX,
  ...JS_MATH,
  pow: (a) => `nosPow(${arg(a, 0)}, ${arg(a, 1)})`,
  sign: (a) => `nosSign(${arg(a, 0)})`,
  lindecay: (a) => `linearDecay(t, ${arg(a, 0)})`,
  cosdecay: (a) => `cosineDecay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
  restartdecay: (a) => `restartDecay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
} as const satisfies Record<ScalarPrim, Tpl>;

const TENSOR = {
  add: (a) => `tf.add(${arg(a, 0)}, ${arg(a, 1)})`,
  sub: (a) => `tf.sub(${arg(a, 0)}, ${arg(a, 1)})`,
  mul: (a) => `tf.mul(${arg(a, 0)}, ${arg(a, 1)})`,
  div: (a) => `tf.div(${arg(a, 0)}, ${arg(a, 1)})`,
  pow: (a) => `tPow(${arg(a, 0)}, ${arg(a, 1)}, w)`,
  neg: (a) => `tf.neg(${arg(a, 0)})`,
  exp: (a) => `tf.exp(${arg(a, 0)})`,
  log: (a) => `tf.log(tf.abs(${arg(a, 0)}))`,
  sqrt: (a) => `tf.sqrt(tf.abs(${arg(a, 0)}))`,
  abs: (a) => `tf.abs(${arg(a, 0)})`,
  cos: (a) => `tf.cos(${arg(a, 0)})`,
  floor: (a) => `tf.floor(${arg(a, 0)})`,
  square: (a) => `tf.mul(${arg(a, 0)}, ${arg(a, 0)})`,
  sign: (a) => `tSign(${arg(a, 0)})`,
  clip: (a) => `tMinMax('min', tMinMax('max', ${arg(a, 0)}, -${arg(a, 1)}, w), ${arg(a, 1)}, w)`,
  min: (a) => `tMinMax('min', ${arg(a, 0)}, ${arg(a, 1)}, w)`,
  max: (a) => `tMinMax('max', ${arg(a, 0)}, ${arg(a, 1)}, w)`,
  lerp: (a) => `tf.add(${arg(a, 0)}, tf.mul(${arg(a, 2)}, tf.sub(${arg(a, 1)}, ${arg(a, 0)})))`,
  keep: (a) => arg(a, 0),
  drop: (a) =>
    `tf.where(tf.less(${arg(a, 3)}, ${arg(a, 1)}), tf.zerosLike(w), full(tf.div(${arg(a, 0)}, ${arg(a, 2)}), w))`,
} as const satisfies Record<TensorPrim, Tpl>;

const STATE = {
  ema: (s, a) => `tf.add(tf.mul(${arg(a, 1)}, ${s}), tf.mul(${arg(a, 2)}, ${arg(a, 0)}))`,
  accum: (s, a) => `tf.add(tf.mul(${arg(a, 1)}, ${s}), ${arg(a, 0)})`,
  sum: (s, a) => `tf.add(${s}, ${arg(a, 0)})`,
  runmax: (s, a) => `tMinMax('max', ${s}, ${arg(a, 0)}, w)`,
} as const satisfies Record<StatePrim, (s: string, a: readonly string[]) => string>;

/** The per-step scale of scaled noise, as a TypeScript expression of t. */
const SCALE = {
  noise: '0.1',
  anoise: 'Math.sqrt(1 / (1 + (t - 1)) ** 0.55)',
} as const satisfies Record<NoisePrim, string>;

/**
 * The scalar templates and the helpers they call, for tests that run the emitted scalar code
 * itself (every scalar primitive on special values).
 */
export function tsScalarCode(): { templates: Readonly<Record<ScalarPrim, Tpl>>; helpers: string } {
  return { templates: SCALAR, helpers: HELPERS.map((h) => h.source).join('\n') };
}

/** Helper functions the emitted code may call; each is emitted only when used. */
const HELPERS: readonly { readonly name: string; readonly uses: readonly string[]; readonly source: string }[] = [
  {
    name: 'nosSign',
    uses: [],
    source: 'function nosSign(x: number): number {\n  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;\n}',
  },
  {
    name: 'nosPow',
    uses: [],
    source:
      'function nosPow(x: number, y: number): number {\n  if (y === 2) return x * x;\n  if (x < 0 && Math.floor(y) !== y) return -nosPow(-x, y);\n  return x === 1 || (x === -1 && Math.abs(y) === Infinity) ? 1 : x ** y;\n}',
  },
  {
    name: 'linearDecay',
    uses: [],
    source:
      'function linearDecay(t: number, steps: number): number {\n  const s = Math.min(t - 1, steps);\n  return Math.max(0, (steps - s) / steps);\n}',
  },
  {
    name: 'cosineDecay',
    uses: [],
    source:
      'function cosineDecay(t: number, steps: number, periods: number): number {\n  const s = Math.min(t - 1, steps);\n  return 0.5 * (1 + Math.cos(Math.PI * 2 * periods * (s / steps)));\n}',
  },
  {
    name: 'restartDecay',
    uses: [],
    source:
      'function restartDecay(t: number, steps: number, periods: number): number {\n  const s = Math.min(t - 1, steps);\n  return 0.5 * (1 + Math.cos((Math.PI * ((periods * s) % steps)) / steps));\n}',
  },
  {
    name: 'full',
    uses: [],
    source:
      "function full(x: tf.Tensor | number, like: tf.Tensor): tf.Tensor {\n  return tf.broadcastTo(typeof x === 'number' ? tf.scalar(x) : x, like.shape);\n}",
  },
  {
    name: 'tSign',
    uses: [],
    source:
      "function tSign(x: tf.Tensor): tf.Tensor {\n  const s = tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32'));\n  return tf.where(tf.isNaN(x), x, s);\n}",
  },
  {
    name: 'tPow',
    uses: ['full'],
    source:
      'function tPow(x: tf.Tensor | number, y: tf.Tensor | number, like: tf.Tensor): tf.Tensor {\n  const xf = full(x, like);\n  const yf = full(y, like);\n  const odd = tf.logicalAnd(tf.less(xf, 0), tf.notEqual(tf.floor(yf), yf));\n  return tf.where(odd, tf.neg(tf.pow(tf.abs(xf), yf)), tf.pow(xf, yf));\n}',
  },
  {
    name: 'tMinMax',
    uses: ['full'],
    source:
      "function tMinMax(op: 'min' | 'max', a: tf.Tensor | number, b: tf.Tensor | number, like: tf.Tensor): tf.Tensor {\n  const af = full(a, like);\n  const bf = full(b, like);\n  const r = op === 'min' ? tf.minimum(af, bf) : tf.maximum(af, bf);\n  return tf.where(tf.logicalOr(tf.isNaN(af), tf.isNaN(bf)), tf.fill(like.shape, Number.NaN), r);\n}",
  },
];

/** The helpers a piece of code calls, with what they call in turn, in declaration order. */
export function helpersUsed<H extends { readonly name: string; readonly uses: readonly string[] }>(
  code: string,
  helpers: readonly H[],
): H[] {
  const need = new Set<string>();
  const add = (name: string): void => {
    if (need.has(name)) return;
    need.add(name);
    for (const u of helpers.find((h) => h.name === name)?.uses ?? []) add(u);
  };
  for (const h of helpers) if (new RegExp(`\\b${h.name}\\(`).test(code)) add(h.name);
  return helpers.filter((h) => need.has(h.name));
}

/** `v12`, or the leaf / slot a step reads. */
function stepName(program: Program, k: number): string {
  const s = program.steps[k] as Step;
  if (s.op === 'leaf') return s.leaf;
  if (s.op === 'prev') return `(slots[${s.slot}] as tf.Tensor)`;
  return `v${k}`;
}

function stepLine(program: Program, k: number, options: readonly string[]): string | undefined {
  const s = program.steps[k] as Step;
  const args = 'args' in s ? s.args.map((a) => stepName(program, a)) : [];
  switch (s.op) {
    case 'const':
      return `const v${k} = ${numberLiteral(s.value)};`;
    case 'param':
      return `const v${k} = hp.${options[s.param]};`;
    case 'leaf':
    case 'prev':
      return undefined; // read where used
    case 'scale':
      return `const v${k} = ${SCALE[s.prim]};`;
    case 'scalar':
      return `const v${k} = ${SCALAR[s.prim](args)};`;
    case 'state':
      return `const v${k} = full(${STATE[s.prim](`(slots[${s.slot}] as tf.Tensor)`, args)}, w);`;
    case 'draw':
      return `const v${k} = tf.${s.dist === 'normal' ? 'randomNormal(w.shape, 0, 1' : 'randomUniform(w.shape, 0, 1'}, 'float32', this.drawSeed(${s.draw}));`;
    case 'tensor':
      return `const v${k} = ${TENSOR[s.prim](args)};`;
  }
}

export function emitTypeScript(rule: CheckedRule, options: EmitOptions = {}): string {
  const provenance = options.provenance ?? { source: 'built-in' };
  const program = lowerRule(rule);
  const names = checkedParamNames(rule).map(tsOptionName);
  const cls = className(rule, options.className);
  const opts = `${cls}Options`;
  const lines = program.steps.map((_s, k) => stepLine(program, k, names)).filter((l): l is string => l !== undefined);
  const next = program.slotSteps.map((k) => `v${k}`);
  const result = stepName(program, program.result);
  const code = [...lines, result].join('\n');
  const usesT = /\bt\b/.test(code);
  const usesHp = /\bhp\./.test(code);
  const hasSlots = program.slots.length > 0;
  const hasDraws = program.draws.length > 0;
  const helpers = helpersUsed(`${code}\nfull(`, HELPERS);
  const slotDocs = program.slots.map(
    (s, i) =>
      ` *   ${s.name}  (slot ${i}, starts at ${s.init === Number.NEGATIVE_INFINITY ? '-inf' : s.init}): ${ruleComment(s.key)}`,
  );
  // A context hyperparameter (T) has no default unless the export fixed one: the user passes it.
  const defaultOf = (p: { name: string; default: number }): number | undefined =>
    CONTEXT_PARAMS.has(p.name) ? options.decaySteps : p.default;
  const required = rule.params.flatMap((p, i) => (defaultOf(p) === undefined ? [names[i] as string] : []));
  const paramDocs = rule.params.map((p, i) => {
    const d = defaultOf(p);
    return ` *   ${names[i]} = ${d === undefined ? `required (${CONTEXT_PARAMS.get(p.name)?.doc ?? 'no default'})` : numberLiteral(d)}`;
  });
  const optionFields = names.map((n) => `  ${n}${required.includes(n) ? '' : '?'}: number;`).join('\n');
  const defaults = rule.params
    .flatMap((p, i) => {
      const d = defaultOf(p);
      return d === undefined ? [] : [`  ${names[i]}: ${numberLiteral(d)},`];
    })
    .join('\n');
  const requiredChecks = required.map(
    (n) =>
      `    if (typeof options.${n} !== 'number') throw new Error(${stringLiteral(`${cls}: this rule decays over ${n} steps; pass { ${n}: <the number of steps the decay spans, usually the whole run> }`)});\n`,
  );
  const slotNames = `[${program.slots.map((s) => `'${s.name}'`).join(', ')}]`;
  const slotInits = `[${program.slots.map((s) => (s.init === Number.NEGATIVE_INFINITY ? '-Infinity' : numberLiteral(s.init))).join(', ')}]`;
  const provText = `${provenance.source}${provenance.detail ? ` (${provenance.detail})` : ''}`;
  const hyper =
    names.length > 0
      ? `type Hyper = Required<Omit<${opts}, 'learningRate' | 'seed'>>;`
      : 'type Hyper = Record<string, never>;';
  return `// Generated by nos (neural optimizer search). Edit the rule, not this file.
import * as tf from '@tensorflow/tfjs';

/**
 * ${cls}: the update rule ${ruleComment(rule.name ?? 'found by nos')} as a tfjs optimizer.
 *
 * Update, per weight w with gradient g at step t = 1, 2, ...:
 *   w <- w - learningRate * d_t
 *   d_t = ${ruleComment(printNode(rule.expr))}
${readableLine(rule, ' *       ')} * State (per weight, updated once per step; prev(s) reads it before the update):
${slotDocs.length > 0 ? slotDocs.join('\n') : ' *   none'}
 * Hyperparameters (defaults):
${paramDocs.length > 0 ? paramDocs.join('\n') : ' *   none'}
 * Semantics: ema(x, b) = b*s + (1-b)*x from s = 0 (no bias correction); log(x) = ln|x|;
 * sqrt(x) = sqrt(|x|); sign(0) = 0; x^y with x < 0 and non-integer y is -(|x|^y).
 * Provenance: ${commentText(provText)}; rule hash ${rule.hash.replace(/[^0-9a-f]/g, '')} (exact text in PROVENANCE).
 */
export const PROVENANCE: string = ${stringLiteral(provText)};

export interface ${opts} {
  /** Default 0.001. */
  learningRate?: number;
  /** Seed for rules with noise or dropout. */
  seed?: number;
${optionFields}
}

const DEFAULTS: ${required.length > 0 ? `Omit<Hyper, ${required.map((n) => `'${n}'`).join(' | ')}>` : 'Hyper'} = {
${defaults}
};

${hyper}
${helpers.map((h) => h.source).join('\n')}

const SLOT_NAMES: string[] = ${slotNames};
const SLOT_INITS: number[] = ${slotInits};

export class ${cls} extends tf.Optimizer {
  static get className(): string {
    return '${cls}';
  }

  readonly learningRate: number;
  readonly seed: number;
  readonly hp: Hyper;
  private slots: { originalName: string; variable: tf.Variable }[][] = [];

  constructor(options: ${opts}${required.length > 0 ? '' : ' = {}'}) {
    super();
${requiredChecks.join('')}
    this.learningRate = options.learningRate ?? 0.001;
    this.seed = options.seed ?? 0;
    const { learningRate: _lr, seed: _seed, ...rest } = options;
    this.hp = { ...DEFAULTS, ...rest };
  }
${
  hasDraws
    ? `
  /** Draws depend on the seed and the step count only, so a restored optimizer continues the same stream. */
  private drawSeed(k: number): number {
    return (this.seed * 1000003 + this.iterations * 9973 + k * 131) % 2147483647;
  }
`
    : ''
}
  /** d_t for one weight; returns the direction and the new slot values. */
  private direction(w: tf.Tensor, g: tf.Tensor, ${usesT ? 't' : '_t'}: number, ${hasSlots ? 'slots' : '_slots'}: tf.Tensor[]): { d: tf.Tensor; next: tf.Tensor[] } {
${usesHp ? '    const hp = this.hp;\n' : ''}${lines.map((l) => `    ${l}`).join('\n')}
    return { d: full(${result}, w), next: [${next.join(', ')}] };
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
    const t = this.iterations + 1;
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      const grad = Array.isArray(variableGradients) ? variableGradients[i]?.tensor : variableGradients[name];
      if (value === undefined || grad == null) return;
      if (this.slots[i] === undefined) {
        this.slots[i] = SLOT_NAMES.map((slot, k) => ({
          originalName: \`\${name}/\${slot}\`,
          variable: tf.tidy(() => tf.fill(value.shape, SLOT_INITS[k] as number).variable(false)),
        }));
      }
      const slots = this.slots[i] as { originalName: string; variable: tf.Variable }[];
      tf.tidy(() => {
        const r = this.direction(value, grad, t, slots.map((s) => s.variable));
        const updated = tf.sub(value, tf.mul(this.learningRate, r.d));
        slots.forEach((s, k) => {
          s.variable.assign(r.next[k] as tf.Tensor);
        });
        value.assign(updated);
      });
    });
    this.incrementIterations();
  }

  override async getWeights(): Promise<{ name: string; tensor: tf.Tensor }[]> {
    return [await this.saveIterations(), ...this.slots.flat().map((s) => ({ name: s.originalName, tensor: s.variable }))];
  }

  override async setWeights(weightValues: { name: string; tensor: tf.Tensor }[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    for (const s of this.slots.flat()) s.variable.dispose();
    this.slots = [];
    const per = SLOT_NAMES.length;
    if (per === 0) return;
    for (let i = 0; i < rest.length / per; i++) {
      this.slots.push(rest.slice(i * per, (i + 1) * per).map((v) => ({ originalName: v.name, variable: v.tensor.variable(false) })));
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, seed: this.seed, ...this.hp };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config);
  }

  override dispose(): void {
    super.dispose();
    for (const s of this.slots.flat()) s.variable.dispose();
    this.slots = [];
  }
}

tf.serialization.registerClass(${cls});
`;
}
