import { describe, expect, it } from 'vitest';
import { compileRules } from '../../dsl/index.js';
import { fill, NOS_SPACE } from '../../primitives/nos-space.js';
import {
  ALIASES,
  cosineDecay,
  FUNCTION_NAMES,
  guardedPow,
  linearDecay,
  PRIMITIVES,
  restartDecay,
} from '../../primitives/registry.js';
import { rng } from '../helpers/gen.js';

describe('primitives registry', () => {
  it('describes every primitive completely', () => {
    for (const p of PRIMITIVES) {
      expect(p.name).toMatch(/^[a-z][a-z0-9]*$/);
      expect(p.argKinds).toHaveLength(p.arity);
      expect(p.argNames).toHaveLength(p.arity);
      expect(p.doc.length).toBeGreaterThan(1);
      if (p.state) expect(p.category).toBe('state');
      if (p.stochastic) expect(p.category).toBe('stochastic');
    }
    expect(new Set(PRIMITIVES.map((p) => p.name)).size).toBe(PRIMITIVES.length);
  });

  it('marks as commutative only what is exactly commutative in IEEE arithmetic', () => {
    const r = rng(3);
    const values = [0, -0, 1, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e-300, 3.5];
    for (let i = 0; i < 200; i++) values.push((r() - 0.5) * 10 ** Math.floor(r() * 20 - 10));
    for (const p of PRIMITIVES.filter((x) => x.commutative)) {
      for (const a of values) {
        for (const b of values.slice(0, 20)) {
          expect(Object.is(p.ref([a, b], { t: 1 }, 0), p.ref([b, a], { t: 1 }, 0)), `${p.name}(${a}, ${b})`).toBe(true);
        }
      }
    }
  });

  it('every function primitive is callable in the language with its arity', () => {
    for (const name of FUNCTION_NAMES) {
      const p = PRIMITIVES.find((x) => x.name === name)!;
      const args = p.argKinds.map((k, i) => (k === 'scalar' ? (i === 0 ? '10' : '0.5') : 'g'));
      const text = `${name}${p.arity > 0 ? `(${args.join(', ')})` : ''} * g`;
      const r = compileRules(text);
      expect(r.diagnostics, text).toEqual([]);
    }
  });

  it('guards x^y for negative bases', () => {
    expect(guardedPow(-8, 1 / 3)).toBeCloseTo(-2, 12);
    expect(guardedPow(-2, 2)).toBe(4);
    expect(guardedPow(0, -1)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(guardedPow(-2, 0.5))).toBe(false);
  });

  it('computes x^y as IEEE 754 pow (as C, torch and TensorFlow do), the infinities counting as integers', () => {
    // JavaScript's ** gives NaN for these four.
    expect(guardedPow(1, Number.NaN)).toBe(1);
    expect(guardedPow(1, Number.POSITIVE_INFINITY)).toBe(1);
    expect(guardedPow(-1, Number.POSITIVE_INFINITY)).toBe(1);
    expect(guardedPow(-1, Number.NEGATIVE_INFINITY)).toBe(1);
    // An infinite exponent is an integer one: no odd extension.
    expect(guardedPow(-2, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(guardedPow(-0.5, Number.POSITIVE_INFINITY)).toBe(0);
    expect(guardedPow(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    // NaN is not an integer: a negative base keeps its sign, -(|x|^NaN).
    expect(guardedPow(-1, Number.NaN)).toBe(-1);
    expect(guardedPow(-2, Number.NaN)).toBeNaN();
    expect(guardedPow(Number.NaN, 0)).toBe(1);
    expect(Object.is(guardedPow(-0, -1), Number.NEGATIVE_INFINITY)).toBe(true);
  });

  it('decay schedules follow TF sign_decay.py, evaluated at s = t - 1', () => {
    // linear: (T - min(s, T)) / T
    expect([1, 6, 11, 50].map((t) => linearDecay(t, 10))).toEqual([1, 0.5, 0, 0]);
    // cosine with half a period: 0.5 * (1 + cos(pi * s / T))
    expect(cosineDecay(1, 10, 0.5)).toBe(1);
    expect(cosineDecay(6, 10, 0.5)).toBeCloseTo(0.5, 15);
    expect(cosineDecay(11, 10, 0.5)).toBeCloseTo(0, 15);
    expect(cosineDecay(99, 10, 0.5)).toBeCloseTo(0, 15);
    // restart: goes to ~0 at the end of each period and back to 1; TF jumps back to 1 at s >= T.
    expect(restartDecay(1, 10, 1)).toBe(1);
    expect(restartDecay(10, 10, 1)).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * 9) / 10)), 15);
    expect(restartDecay(11, 10, 1)).toBe(1);
    expect(restartDecay(5, 12, 3)).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * (12 % 12)) / 12)), 15);
  });
});

describe('the NOS search space (Bello et al. 2017, section 3)', () => {
  it('holds every operand, unary and binary function of the paper', () => {
    const operands = NOS_SPACE.operands.map((o) => o.text);
    for (const t of [
      'g',
      'g^2',
      'g^3',
      'm',
      'v',
      'gamma',
      'sign(g)',
      'sign(m)',
      '1',
      '2',
      'noise',
      '1e-4 * w',
      '1e-3 * w',
      '1e-2 * w',
      '1e-1 * w',
      'adam',
      'rmsprop',
      'ld',
      'cd',
      'rd',
      'anoise',
    ]) {
      expect(operands).toContain(t);
    }
    expect(NOS_SPACE.unary.map((u) => u.id)).toEqual([
      'id',
      'neg',
      'exp',
      'log',
      'sqrt',
      'clip5',
      'clip4',
      'clip3',
      'drop1',
      'drop3',
      'drop5',
      'sign',
    ]);
    expect(NOS_SPACE.binary.map((b) => b.id)).toEqual(['add', 'sub', 'mul', 'div', 'pow', 'keep']);
    expect(new Set(NOS_SPACE.operands.map((o) => o.id)).size).toBe(NOS_SPACE.operands.length);
  });

  it('every entry is valid rule text', () => {
    for (const o of NOS_SPACE.operands) {
      const r = compileRules(`(${o.text}) * g`);
      expect(r.diagnostics, o.text).toEqual([]);
    }
    for (const u of NOS_SPACE.unary) expect(compileRules(fill(u.text, ['g'])).diagnostics, u.text).toEqual([]);
    for (const b of NOS_SPACE.binary) expect(compileRules(fill(b.text, ['g', 'm'])).diagnostics, b.text).toEqual([]);
    for (const a of ALIASES) expect(compileRules(`(${a.text}) * g`).diagnostics, a.name).toEqual([]);
  });

  it('writes PowerSign and AddSign as the paper does', () => {
    const powersign = compileRules(
      fill(NOS_SPACE.binary.find((b) => b.id === 'mul')!.text, [fill('exp($1)', ['sign(g) * sign(m)']), 'g']),
    );
    const addsign = compileRules('(1 + sign(g) * sign(m)) * g');
    expect(powersign.rules[0]?.canonical).toBe('exp(sign(ema(g, 0.9)) * sign(g)) * g');
    expect(addsign.ok).toBe(true);
  });

  it('fill() refuses a template whose holes it cannot fill', () => {
    expect(() => fill('($1) + ($2)', ['g'])).toThrow(/needs argument \$2/);
  });
});
