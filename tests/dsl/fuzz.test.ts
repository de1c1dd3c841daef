import { describe, expect, it } from 'vitest';
import { BindError, bindParams, type CheckedRule, compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { LIBRARY_SOURCE } from '../../dsl/library.js';
import { CONSTANTS, KEYWORDS, LEAVES, PRIMITIVE_BY_NAME } from '../../primitives/registry.js';
import { pick, type Rng, rng } from '../helpers/gen.js';

/** The front door must never throw, and never fall into its internal-error path. */
function frontDoor(text: string): void {
  const r = compileRules(text, 'fuzz.nos');
  for (const d of r.diagnostics) {
    expect(d.code, `${JSON.stringify(text)}: ${d.message}`).not.toBe('internal');
    expect(d.span.line).toBeGreaterThanOrEqual(1);
    expect(d.span.col).toBeGreaterThanOrEqual(1);
  }
  if (r.ok) expect(r.rules.length).toBeGreaterThan(0);
}

const ALPHABET = [
  ...'gmvwt0123456789.eE+-*/^(){},;=@#_ \n\tabcxyz$',
  'rule',
  'ema',
  'prev',
  'sign',
  'adam',
  '@powersign-ld',
  'clip',
  '1e-8',
  'drop',
];

describe('front door fuzz', () => {
  it('survives random token soup', () => {
    const r = rng(11);
    for (let i = 0; i < 1500; i++) {
      const n = 1 + Math.floor(r() * 30);
      frontDoor(Array.from({ length: n }, () => pick(r, ALPHABET)).join(''));
    }
  });

  it('survives mutations of the library source', () => {
    const r = rng(12);
    const lines = LIBRARY_SOURCE.split('\n').filter((l) => l.trim() !== '');
    for (let i = 0; i < 800; i++) {
      const start = Math.floor(r() * lines.length);
      let text = lines.slice(start, start + 1 + Math.floor(r() * 6)).join('\n');
      const edits = 1 + Math.floor(r() * 4);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(r() * (text.length + 1));
        const op = Math.floor(r() * 3);
        if (op === 0) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 4));
        else if (op === 1) text = text.slice(0, at) + pick(r, ALPHABET) + text.slice(at);
        else text = text.slice(0, at) + text.slice(at).split('').reverse().join('').slice(0, 5) + text.slice(at + 5);
      }
      frontDoor(text);
    }
  });

  it('survives hostile inputs', () => {
    for (const text of [
      '\u0000',
      '\uFEFFg',
      'g'.repeat(100_000),
      `${'-'.repeat(10_000)}g`,
      `${'exp('.repeat(70)}g${')'.repeat(70)}`,
      'rule',
      'rule r(',
      'rule r(a=1e309) = g',
      'constructor',
      '__proto__',
      'toString(g)',
      'hasOwnProperty * g',
      'rule constructor = g',
      '1'.repeat(400),
      `${'g^'.repeat(3000)}g`,
      `${'-'.repeat(19_990)}g`,
      `${'(g)^'.repeat(4000)}g`,
      `${'g^-'.repeat(4000)}g`,
      Array.from({ length: 12 }, (_, i) => `rule r${i} = ${i === 0 ? 'g' : `r${i - 1} * 2`}`).join('\n'),
    ]) {
      frontDoor(text);
    }
  });
});

describe('limits', () => {
  it('rejects rule chains nested too deep with a located limit error', () => {
    // Listed top-down, so checking r11 must first check r10, which must check r9, ...
    const text = Array.from({ length: 12 }, (_, i) => `rule r${i} = ${i === 0 ? 'g' : `r${i - 1} * 2`}`)
      .reverse()
      .join('\n');
    const r = compileRules(text);
    expect(r.diagnostics.some((d) => d.code === 'limit' && /levels deep/.test(d.message))).toBe(true);
    // The rules below the limit still check.
    expect(r.rules.length).toBeGreaterThan(0);
  });

  it('rejects runaway minus and ^ chains before parsing', () => {
    for (const text of [`${'-'.repeat(19_990)}g`, `${'(g)^'.repeat(4000)}g`]) {
      const r = compileRules(text);
      expect(r.diagnostics[0]?.code).toBe('limit');
    }
  });
});

/** Names a user might pick for hyperparameters: prototype members, JS and Python builtins, language names. */
const HOSTILE_NAMES = [
  'toString',
  'constructor',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  'propertyIsEnumerable',
  'toLocaleString',
  '__proto__',
  '__defineGetter__',
  'prototype',
  'length',
  'name',
  'caller',
  'arguments',
  'then',
  'apply',
  'call',
  'bind',
  'this',
  'super',
  'class',
  'new',
  'delete',
  'typeof',
  'Infinity',
  'NaN',
  'undefined',
  'null',
  'Object',
  'Array',
  'Map',
  'self',
  'def',
  'lambda',
  'None',
  'True',
  'False',
  'print',
  'len',
  'dict',
  'object',
  'type',
  'eval',
  'float',
  'int',
  'g',
  'w',
  't',
  'T',
  'e',
  'pi',
  'm',
  'v',
  'ld',
  'exp',
  'ema',
  'prev',
  'rule',
  'adam',
  'lion',
  'beta1',
  'eps',
  'k',
  'x2',
];

/** Values: in and out of every range, at the number limit and past it, tiny, negative, -0. */
const VALUES = [
  0, -0, 0.5, 1, -1, 2, 0.999, 1.0000001, 1e-8, 1e-300, 5e-324, 1e30, -1e30, 1.5e30, 1e31, 5e300, 3.25, -0.25, 1000,
];

/** Rule bodies over two hyperparameters A and B, with the one-step direction from g (t = 1, fresh state) and the values' ranges. */
const TEMPLATES: {
  body: string;
  d: (g: number, a: number, b: number) => number;
  ok: (a: number, b: number) => boolean;
}[] = [
  { body: 'A * g + B', d: (g, a, b) => a * g + b, ok: () => true },
  { body: 'ema(g, A) * B', d: (g, a, b) => (1 - a) * g * b, ok: (a) => a >= 0 && a <= 1 },
  { body: 'clip(g, B) + A * g', d: (g, a, b) => Math.min(Math.max(g, -b), b) + a * g, ok: (_a, b) => b > 0 },
  { body: 'lindecay(A) * g * B', d: (g, _a, b) => g * b, ok: (a) => a > 0 },
  { body: 'ema(g, 1 - A) + B * g', d: (g, a, b) => a * g + b * g, ok: (a) => 1 - a >= 0 && 1 - a <= 1 },
  { body: 'accum(g, A) / B', d: (g, _a, b) => g / b, ok: () => true },
];

const IDENT = /^[A-Za-z][A-Za-z0-9]*$/;
/** A name a rule may declare as a hyperparameter. */
function declarable(name: string): boolean {
  if (!IDENT.test(name)) return false;
  const taken = new Set<string>([
    ...LEAVES.map((l) => l.name),
    ...CONSTANTS.keys(),
    ...PRIMITIVE_BY_NAME.keys(),
    'prev',
    ...KEYWORDS,
    ...library().keys(),
  ]);
  return !taken.has(name);
}

function numberText(v: number): string {
  return Object.is(v, -0) ? '-0' : String(v);
}

const within = (x: number): boolean => Number.isFinite(x) && Math.abs(x) <= 1e30;

/** One step of the rule from w0 with gradient g, lr 1, in float64. */
function step(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  g: number,
  params: Readonly<Record<string, number>> = {},
): number {
  return (traceInterp(rule, { w0: [1], grads: [[g]] }, 1, { params, dtype: 'float64' })[0] as number[])[0] as number;
}

function expectClose(actual: number, expected: number, what: string): void {
  if (!Number.isFinite(expected)) expect(actual, what).toBe(expected);
  else
    expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(
      1e-12 * Math.max(1, Math.abs(expected)),
    );
}

function located(
  text: string,
  diagnostics: readonly { code: string; message: string; span: { line: number; col: number } }[],
): void {
  expect(diagnostics.length, text).toBeGreaterThan(0);
  for (const d of diagnostics) {
    expect(d.code, `${text}: ${d.message}`).not.toBe('internal');
    expect(d.span.line, text).toBeGreaterThanOrEqual(1);
    expect(d.span.col, text).toBeGreaterThanOrEqual(1);
  }
}

function randomName(r: Rng): string {
  if (r() < 0.7) return pick(r, HOSTILE_NAMES);
  const chars = 'abcXYZ019_';
  return Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick(r, [...chars])).join('');
}

describe('property: any hyperparameter name and value is computed correctly or refused with a located diagnostic', () => {
  it('in rule text: names, defaults, and values given to another rule', () => {
    const r = rng(21);
    let accepted = 0;
    for (let i = 0; i < 1500; i++) {
      const [a, b] = [randomName(r), randomName(r)];
      const [va, vb] = [pick(r, VALUES), pick(r, VALUES)];
      const tpl = pick(r, TEMPLATES);
      const body = tpl.body.replace(/\bA\b/g, a).replace(/\bB\b/g, b);
      const text = `rule r(${a} = ${numberText(va)}, ${b} = ${numberText(vb)}) = ${body}`;
      const res = compileRules(text, 'prop.nos');
      const expected = declarable(a) && declarable(b) && a !== b && within(va) && within(vb) && tpl.ok(va, vb);
      if (!res.ok) {
        located(text, res.diagnostics);
        expect(expected, `${text} was refused: ${res.diagnostics.map((d) => d.message).join('; ')}`).toBe(false);
        continue;
      }
      expect(expected, `${text} was accepted`).toBe(true);
      accepted++;
      const rule = res.rules[0] as CheckedRule;
      expect(rule.params.map((p) => p.name).slice(0, 2)).toEqual([a, b]);
      expectClose(step(rule, 0.75), 1 - tpl.d(0.75, va, vb), text);
      // The same values given to the rule from another one, by name and by position.
      const [ua, ub] = [pick(r, VALUES), pick(r, VALUES)];
      const byName = `${text}\nrule s = r(${b} = ${numberText(ub)}, ${a} = ${numberText(ua)})`;
      const byPos = `${text}\nrule s = r(${numberText(ua)}, ${numberText(ub)})`;
      const want = within(ua) && within(ub) && tpl.ok(ua, ub);
      for (const t of [byName, byPos]) {
        const res2 = compileRules(t, 'prop.nos');
        if (!res2.ok) {
          located(t, res2.diagnostics);
          expect(
            res2.diagnostics.every((d) => d.span.line === 2),
            t,
          ).toBe(true);
          expect(want, `${t} was refused: ${res2.diagnostics.map((d) => d.message).join('; ')}`).toBe(false);
          continue;
        }
        expect(want, `${t} was accepted`).toBe(true);
        expectClose(step(res2.rules[1] as CheckedRule, 0.75), 1 - tpl.d(0.75, ua, ub), t);
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('through bindParams: overrides by any name, with any value', () => {
    const r = rng(22);
    const names = HOSTILE_NAMES.filter(declarable);
    for (let i = 0; i < 800; i++) {
      const [a, b] = [pick(r, names), pick(r, names)];
      if (a === b) continue;
      const tpl = pick(r, TEMPLATES);
      const defaults = { a: 0.5, b: 2 };
      const rule = compileRules(
        `rule r(${a} = ${defaults.a}, ${b} = ${defaults.b}) = ${tpl.body.replace(/\bA\b/g, a).replace(/\bB\b/g, b)}`,
      ).rules[0] as CheckedRule;
      expect(rule, `${a}, ${b}`).toBeDefined();
      const overrides: Record<string, number> = Object.create(null) as Record<string, number>;
      const extra: unknown[] = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      const keyA = r() < 0.9 ? a : randomName(r);
      overrides[keyA] = pick(r, [...VALUES, ...(extra as number[])]);
      if (r() < 0.5) overrides[b] = pick(r, VALUES);
      const va = Object.hasOwn(overrides, a) ? (overrides[a] as number) : defaults.a;
      const vb = Object.hasOwn(overrides, b) ? (overrides[b] as number) : defaults.b;
      const known = Object.keys(overrides).every((k) => k === a || k === b);
      const want = known && within(va) && within(vb) && tpl.ok(va, vb);
      const what = `${rule.canonical} with ${JSON.stringify(Object.entries(overrides))}`;
      let bound = false;
      try {
        bindParams(rule, overrides);
        bound = true;
      } catch (e) {
        expect(e, what).toBeInstanceOf(BindError);
        expect((e as BindError).message.length, what).toBeLessThan(300);
        if (known) expect([a, b], what).toContain((e as BindError).param);
      }
      expect(bound, what).toBe(want);
      if (bound) expectClose(step(rule, -0.5, overrides), 1 - tpl.d(-0.5, va, vb), what);
    }
  });
});
