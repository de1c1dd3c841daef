/**
 * `nos export --format ts`: a standalone TypeScript module (it imports @tensorflow/tfjs and
 * nothing else) that defines the rule as a `tf.Optimizer` subclass, with an optax-style doc
 * comment giving the equations, hyperparameters and provenance.
 */
import type { CheckedRule } from '../check.js';
import { printNode } from '../ir.js';
import { classStem, numberLiteral, type Plan, planRule, type Step } from './plan.js';

const JS_RESERVED = new Set(
  'break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await learningRate seed'.split(' '),
);

/** The option name for a hyperparameter in emitted TypeScript. */
export function tsOptionName(name: string): string {
  return JS_RESERVED.has(name) ? `${name}Param` : name;
}

export interface Provenance {
  /** Where the rule came from: "built-in", "search run X, rank R", ... */
  readonly source: string;
  readonly detail?: string;
}

type A = readonly string[];
const arg = (a: A, i: number): string => a[i] as string;

const SCALAR: Readonly<Record<string, (a: A) => string>> = {
  add: (a) => `(${arg(a, 0)} + ${arg(a, 1)})`,
  sub: (a) => `(${arg(a, 0)} - ${arg(a, 1)})`,
  mul: (a) => `(${arg(a, 0)} * ${arg(a, 1)})`,
  div: (a) => `(${arg(a, 0)} / ${arg(a, 1)})`,
  pow: (a) => `nosPow(${arg(a, 0)}, ${arg(a, 1)})`,
  neg: (a) => `(-${arg(a, 0)})`,
  exp: (a) => `Math.exp(${arg(a, 0)})`,
  log: (a) => `Math.log(Math.abs(${arg(a, 0)}))`,
  sqrt: (a) => `Math.sqrt(Math.abs(${arg(a, 0)}))`,
  abs: (a) => `Math.abs(${arg(a, 0)})`,
  cos: (a) => `Math.cos(${arg(a, 0)})`,
  floor: (a) => `Math.floor(${arg(a, 0)})`,
  square: (a) => `(${arg(a, 0)} * ${arg(a, 0)})`,
  sign: (a) => `nosSign(${arg(a, 0)})`,
  clip: (a) => `Math.min(Math.max(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `Math.min(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `Math.max(${arg(a, 0)}, ${arg(a, 1)})`,
  lerp: (a) => `(${arg(a, 0)} + ${arg(a, 2)} * (${arg(a, 1)} - ${arg(a, 0)}))`,
  keep: (a) => arg(a, 0),
  lindecay: (a) => `linearDecay(t, ${arg(a, 0)})`,
  cosdecay: (a) => `cosineDecay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
  restartdecay: (a) => `restartDecay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
};

const TENSOR: Readonly<Record<string, (a: A) => string>> = {
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
  clip: (a) => `tMinMax('min', tMinMax('max', ${arg(a, 0)}, tf.neg(${arg(a, 1)}), w), ${arg(a, 1)}, w)`,
  min: (a) => `tMinMax('min', ${arg(a, 0)}, ${arg(a, 1)}, w)`,
  max: (a) => `tMinMax('max', ${arg(a, 0)}, ${arg(a, 1)}, w)`,
  lerp: (a) => `tf.add(${arg(a, 0)}, tf.mul(${arg(a, 2)}, tf.sub(${arg(a, 1)}, ${arg(a, 0)})))`,
  keep: (a) => arg(a, 0),
};

const STATE: Readonly<Record<string, (s: string, a: A) => string>> = {
  ema: (s, a) => `tf.add(tf.mul(${arg(a, 1)}, ${s}), tf.mul(tf.sub(1, ${arg(a, 1)}), ${arg(a, 0)}))`,
  accum: (s, a) => `tf.add(tf.mul(${arg(a, 1)}, ${s}), ${arg(a, 0)})`,
  sum: (s, a) => `tf.add(${s}, ${arg(a, 0)})`,
  runmax: (s, a) => `tMinMax('max', ${s}, ${arg(a, 0)}, w)`,
};

const DRAW: Readonly<Record<string, (draw: string, a: A) => string>> = {
  noise: (d) => `tf.mul(0.1, ${d})`,
  anoise: (d) => `tf.mul(Math.sqrt(1 / (1 + (t - 1)) ** 0.55), ${d})`,
  drop: (d, a) => `tf.where(tf.less(${d}, ${arg(a, 1)}), tf.zerosLike(w), tf.broadcastTo(tf.div(${arg(a, 0)}, tf.sub(1, ${arg(a, 1)})), w.shape))`,
};

function stepLine(s: Step, plan: Plan): string {
  switch (s.op) {
    case 'const':
      return `const ${s.name} = ${numberLiteral(s.value)};`;
    case 'param':
      return `const ${s.name} = hp.${tsOptionName((plan.params[s.param] as { name: string }).name)};`;
    case 'leaf':
      return `const ${s.name} = ${s.leaf === 'g' ? 'g' : s.leaf === 'w' ? 'w' : 't'};`;
    case 'prev':
      return `const ${s.name} = slots[${s.slot}] as tf.Tensor;`;
    case 'state': {
      const f = STATE[s.prim];
      if (f === undefined) throw new Error(`no TypeScript template for state primitive ${s.prim}`);
      return `const ${s.name} = tf.broadcastTo(${f(`(slots[${s.slot}] as tf.Tensor)`, s.args)}, w.shape);`;
    }
    case 'draw': {
      const f = DRAW[s.prim];
      if (f === undefined) throw new Error(`no TypeScript template for ${s.prim}`);
      const kind = plan.draws[s.draw] === 'normal' ? 'randomNormal(w.shape, 0, 1' : 'randomUniform(w.shape, 0, 1';
      return `const ${s.name} = ${f(`tf.${kind}, 'float32', this.drawSeed(${s.draw}))`, s.args)};`;
    }
    case 'prim': {
      const table = s.kind === 'scalar' ? SCALAR : TENSOR;
      const f = table[s.prim];
      if (f === undefined) throw new Error(`no TypeScript template for ${s.prim} on ${s.kind}s`);
      return `const ${s.name} = ${f(s.args)};`;
    }
  }
}

export function emitTypeScript(rule: CheckedRule, provenance: Provenance = { source: 'built-in' }): string {
  const plan = planRule(rule);
  const stem = classStem(rule.name);
  const cls = `${stem}Optimizer`;
  const opts = `${stem}Options`;
  const body = plan.steps.map((s) => `        ${stepLine(s, plan)}`).join('\n');
  const slotDocs = plan.slots.map((s, i) => ` *   ${s.name}  (slot ${i}, starts at ${s.init === Number.NEGATIVE_INFINITY ? '-inf' : s.init}): ${s.key}`);
  const paramDocs = plan.params.map((p) => ` *   ${tsOptionName(p.name)} = ${numberLiteral(p.default)}`);
  const optionFields = plan.params.map((p) => `  ${tsOptionName(p.name)}?: number;`).join('\n');
  const defaults = plan.params.map((p) => `  ${tsOptionName(p.name)}: ${numberLiteral(p.default)},`).join('\n');
  const slotNames = `[${plan.slots.map((s) => `'${s.name}'`).join(', ')}]`;
  const slotInits = `[${plan.slots.map((s) => (s.init === Number.NEGATIVE_INFINITY ? '-Infinity' : numberLiteral(s.init))).join(', ')}]`;
  return `// Generated by nos (neural optimizer search). Edit the rule, not this file.
import * as tf from '@tensorflow/tfjs';

/**
 * ${cls}: the update rule \`${rule.name ?? 'found rule'}\` as a tfjs optimizer.
 *
 * Update, per weight w with gradient g at step t = 1, 2, ...:
 *   w <- w - learningRate * d_t
 *   d_t = ${printNode(rule.expr)}
 * State (per weight, updated once per step; prev(s) reads it before the update):
${slotDocs.length > 0 ? slotDocs.join('\n') : ' *   none'}
 * Hyperparameters (defaults):
${paramDocs.length > 0 ? paramDocs.join('\n') : ' *   none'}
 * Semantics: ema(x, b) = b*s + (1-b)*x from s = 0 (no bias correction); log(x) = ln|x|;
 * sqrt(x) = sqrt(|x|); sign(0) = 0; x^y with x < 0 and non-integer y is -(|x|^y).
 * Provenance: ${provenance.source}${provenance.detail ? ` (${provenance.detail})` : ''}; rule hash ${rule.hash}.
 */
export interface ${opts} {
  learningRate: number;
  /** Seed for rules with noise or dropout. */
  seed?: number;
${optionFields}
}

const DEFAULTS = {
${defaults}
};

type Hyper = Required<Omit<${opts}, 'learningRate' | 'seed'>>;

function nosSign(x: number): number {
  return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;
}
function nosPow(x: number, y: number): number {
  return x < 0 && !Number.isInteger(y) ? -(Math.abs(x) ** y) : x ** y;
}
function linearDecay(t: number, steps: number): number {
  const s = Math.min(t - 1, steps);
  return Math.max(0, (steps - s) / steps);
}
function cosineDecay(t: number, steps: number, periods: number): number {
  const s = Math.min(t - 1, steps);
  return 0.5 * (1 + Math.cos(Math.PI * 2 * periods * (s / steps)));
}
function restartDecay(t: number, steps: number, periods: number): number {
  const s = Math.min(t - 1, steps);
  return 0.5 * (1 + Math.cos((Math.PI * ((periods * s) % steps)) / steps));
}
function full(x: tf.Tensor | number, like: tf.Tensor): tf.Tensor {
  return tf.broadcastTo(typeof x === 'number' ? tf.scalar(x) : x, like.shape);
}
function tSign(x: tf.Tensor): tf.Tensor {
  const s = tf.sub(tf.cast(tf.greater(x, 0), 'float32'), tf.cast(tf.less(x, 0), 'float32'));
  return tf.where(tf.isNaN(x), x, s);
}
function tPow(x: tf.Tensor | number, y: tf.Tensor | number, like: tf.Tensor): tf.Tensor {
  const xf = full(x, like);
  const yf = full(y, like);
  const odd = tf.logicalAnd(tf.less(xf, 0), tf.notEqual(tf.floor(yf), yf));
  return tf.where(odd, tf.neg(tf.pow(tf.abs(xf), yf)), tf.pow(xf, yf));
}
function tMinMax(op: 'min' | 'max', a: tf.Tensor | number, b: tf.Tensor | number, like: tf.Tensor): tf.Tensor {
  const af = full(a, like);
  const bf = full(b, like);
  const r = op === 'min' ? tf.minimum(af, bf) : tf.maximum(af, bf);
  return tf.where(tf.logicalOr(tf.isNaN(af), tf.isNaN(bf)), tf.fill(like.shape, Number.NaN), r);
}

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

  constructor(options: ${opts}) {
    super();
    this.learningRate = options.learningRate;
    this.seed = options.seed ?? 0;
    const { learningRate: _lr, seed: _seed, ...rest } = options;
    this.hp = { ...DEFAULTS, ...rest };
  }

  private drawSeed(k: number): number {
    return (this.seed * 1000003 + this.iterations * 9973 + k * 131) % 2147483647;
  }

  /** d_t for one weight; returns the direction and the new slot values. */
  private direction(w: tf.Tensor, g: tf.Tensor, t: number, slots: tf.Tensor[]): { d: tf.Tensor; next: tf.Tensor[] } {
    const hp = this.hp;
${body.replace(/^ {8}/gm, '    ')}
    const next: tf.Tensor[] = [${plan.slots.map((_s, i) => {
      const st = plan.steps.find((x) => x.op === 'state' && x.slot === i);
      return st ? st.name : `slots[${i}] as tf.Tensor`;
    }).join(', ')}];
    return { d: full(${plan.result}, w), next };
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
