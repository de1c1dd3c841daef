import { describe, expect, it } from 'vitest';
import { compileRules, library } from '../../dsl/index.js';
import { ColumnInterpreter, Interpreter, traceInterp } from '../../dsl/interp.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { maxAbsDiff, signCaseRule, signReference, torchGolden } from '../helpers/reference.js';
import { stream } from '../helpers/traces.js';

const rule = (text: string) => {
  const r = compileRules(text);
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.rules[0]!;
};
const lib = (name: string) => library().get(name)!;

describe('reference interpreter vs golden trajectories', () => {
  const ref = signReference();
  for (const c of ref.cases) {
    it(`reproduces TensorFlow's ${c.name} to 1e-6 (float32) and 1e-12 (float64)`, () => {
      const { rule: name, params, lr } = signCaseRule(c);
      expect(maxAbsDiff(traceInterp(lib(name), ref, lr, { params }), c.weights_after_each_step)).toBeLessThan(1e-6);
      expect(
        maxAbsDiff(traceInterp(lib(name), ref, lr, { params, dtype: 'float64' }), c.weights_after_each_step),
      ).toBeLessThan(1e-12);
    });
  }

  const torch = torchGolden();
  for (const c of torch.cases) {
    it(`matches ${c.source.split(' ')[0]} for ${c.rule} ${JSON.stringify(c.params)}`, () => {
      expect(
        maxAbsDiff(traceInterp(lib(c.rule), torch, c.lr, { params: c.params, dtype: 'float64' }), c.weights),
      ).toBeLessThan(1e-12);
      expect(maxAbsDiff(traceInterp(lib(c.rule), torch, c.lr, { params: c.params }), c.weights)).toBeLessThan(2e-6);
    });
  }

  it('covers every built-in rule with a golden trajectory', () => {
    const covered = new Set([...torch.cases.map((c) => c.rule), ...ref.cases.map((c) => signCaseRule(c).rule)]);
    expect([...library().keys()].filter((n) => !covered.has(n))).toEqual([]);
  });
});

describe('interpreter semantics', () => {
  const input = {
    w0: [0.5, -1, 2],
    grads: [
      [1, -2, 0],
      [0.5, 0.5, -1],
      [-1, 2, 3],
    ],
  };

  it('shares one slot between equal stateful subexpressions and keeps different ones apart', () => {
    const shared = new Interpreter(rule('ema(g, 0.9) + m'), { size: 1 });
    expect(shared.program.slots.map((s) => s.key)).toEqual(['ema(g, 0.9)']);
    const apart = new Interpreter(rule('ema(g, 0.9) + ema(g, 0.5)'), { size: 1 });
    expect(apart.program.slots).toHaveLength(2);
    // Sharing means the state advances once per step: ema + m == 2 m.
    expect(traceInterp(rule('ema(g, 0.9) + m'), input, 0.1, { dtype: 'float64' })).toEqual(
      traceInterp(rule('2 * m'), input, 0.1, { dtype: 'float64' }),
    );
  });

  it('prev() reads the state from before this step, and state read only through prev still advances', () => {
    const interp = new Interpreter(rule('prev(ema(g, 0.5)) + 0 * g'), { size: 1, dtype: 'float64' });
    const w = new Float64Array(1);
    const seen = [1, 3, 5].map((x) => interp.direction(w, Float64Array.of(x))[0]);
    // ema: 0 -> 0.5 -> 1.75 -> 3.375; prev lags one step.
    expect(seen).toEqual([0, 0.5, 1.75]);
  });

  it('counts t from 1 and applies w <- w - lr * d', () => {
    const out = traceInterp(rule('t * g'), { w0: [1], grads: [[1], [1], [1]] }, 0.5, { dtype: 'float64' });
    expect(out).toEqual([[0.5], [-0.5], [-2]]);
  });

  it('reads w before the update (decoupled weight decay)', () => {
    const out = traceInterp(rule('g + 0.5 * w'), { w0: [2], grads: [[0], [0]] }, 0.1, { dtype: 'float64' });
    expect(out[0]![0]).toBeCloseTo(2 - 0.1 * 1, 15);
    expect(out[1]![0]).toBeCloseTo(1.9 - 0.1 * 0.95, 15);
  });

  it('stores state in float32 by default and float64 on request', () => {
    const f32 = new Interpreter(rule('m'), { size: 1 });
    const f64 = new Interpreter(rule('m'), { size: 1, dtype: 'float64' });
    f32.direction(new Float32Array(1), Float32Array.of(0.3));
    f64.direction(new Float64Array(1), Float64Array.of(0.3));
    expect(f32.state[0]![0]).toBe(Math.fround((1 - 0.9) * Math.fround(0.3)));
    expect(f64.state[0]![0]).toBe((1 - 0.9) * 0.3);
    expect(f32.state[0]![0]).not.toBe(f64.state[0]![0]);
  });

  it('draws noise from the seed: same seed, same trajectory; other seed, other trajectory', () => {
    const r = rule('g + noise');
    const long = { w0: new Array(64).fill(0), grads: [new Array(64).fill(0)] };
    const a = traceInterp(r, long, 1, { seed: 3 });
    expect(traceInterp(r, long, 1, { seed: 3 })).toEqual(a);
    expect(traceInterp(r, long, 1, { seed: 4 })).not.toEqual(a);
  });

  it('noise is N(0, 0.01), anoise has variance 1/(1+s)^0.55, drop keeps 1-p scaled by 1/(1-p)', () => {
    const n = 20_000;
    const zero = new Float64Array(n);
    const stats = (text: string, steps: number) => {
      const it = new Interpreter(rule(text), { size: n, dtype: 'float64', seed: 9 });
      let d: Float64Array = new Float64Array(n);
      for (let s = 0; s < steps; s++) d = it.direction(zero, new Float64Array(n).fill(1));
      const mean = d.reduce((a, b) => a + b, 0) / n;
      const variance = d.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      return { mean, variance, zeros: d.filter((x) => x === 0).length / n, d };
    };
    const noise = stats('g * noise', 1);
    expect(Math.abs(noise.mean)).toBeLessThan(0.005);
    expect(noise.variance).toBeGreaterThan(0.0095);
    expect(noise.variance).toBeLessThan(0.0105);
    const an = stats('g * anoise', 4); // s = 3: variance 4^-0.55
    expect(an.variance / 4 ** -0.55).toBeGreaterThan(0.95);
    expect(an.variance / 4 ** -0.55).toBeLessThan(1.05);
    const drop = stats('drop(g, 0.3)', 1);
    expect(drop.zeros).toBeGreaterThan(0.28);
    expect(drop.zeros).toBeLessThan(0.32);
    expect(new Set(drop.d.filter((x) => x !== 0))).toEqual(new Set([1 / 0.7]));
  });

  it('defines x^y for a negative base and a fractional exponent, and sign(0) = 0', () => {
    const d = (text: string, g: number) =>
      new Interpreter(rule(text), { size: 1, dtype: 'float64' }).direction(new Float64Array(1), Float64Array.of(g))[0];
    expect(d('g^0.5', -4)).toBe(-2);
    expect(d('g^2', -3)).toBe(9);
    expect(d('g^3', -2)).toBe(-8);
    expect(d('sign(g)', 0)).toBe(0);
    expect(d('log(g)', -Math.E)).toBeCloseTo(1, 15);
    expect(d('sqrt(g)', -9)).toBe(3);
    expect(d('clip(g, 1e-3)', -5)).toBe(-1e-3);
    expect(d('keep(g, 2 * g)', 7)).toBe(7);
    expect(d('lerp(g, 1, 0.25)', 3)).toBe(2.5);
  });

  it('lets NaN and Inf through rather than hiding them', () => {
    const d = (text: string, g: number) =>
      new Interpreter(rule(text), { size: 1, dtype: 'float64' }).direction(new Float64Array(1), Float64Array.of(g))[0];
    expect(d('g / (g - g)', 1)).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(d('(g - g) / (g - g)', 1))).toBe(true);
    expect(d('log(g)', 0)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('the running max starts from the first value, negative values included', () => {
    const out = traceInterp(rule('runmax(g) + 0 * w'), { w0: [0], grads: [[-3], [-5], [-1]] }, 1, { dtype: 'float64' });
    expect(out.map((r) => r[0])).toEqual([3, 6, 7]);
  });

  it('rejects vectors of the wrong length', () => {
    const it = new Interpreter(rule('g'), { size: 2 });
    expect(() => it.direction(new Float32Array(3), new Float32Array(3))).toThrow(/length 2/);
  });
});

describe('the column interpreter (a step over all elements at a time)', () => {
  // The reference's trajectory, and the column interpreter's, on the same stream.
  const both = (r: ReturnType<typeof rule>, options: ConstructorParameters<typeof Interpreter>[1], steps: number) => {
    const s = stream(options.seed ?? 0, options.size, steps);
    const make = (w0: number[]) => (options.dtype === 'float64' ? Float64Array.from(w0) : Float32Array.from(w0));
    const a = new Interpreter(r, options);
    const b = new ColumnInterpreter(r, options);
    const wa = make(s.w0);
    const wb = make(s.w0);
    const out: { a: number[][]; b: number[][]; da: number[][]; db: number[][] } = { a: [], b: [], da: [], db: [] };
    for (const g of s.grads) {
      const gv = make(g);
      out.da.push(Array.from(a.direction(wa, gv)));
      out.db.push(Array.from(b.direction(wb, gv)));
      for (let i = 0; i < wa.length; i++) {
        wa[i] = (wa[i] as number) - 0.01 * (out.da.at(-1)?.[i] as number);
        wb[i] = (wb[i] as number) - 0.01 * (out.db.at(-1)?.[i] as number);
      }
      out.a.push(Array.from(wa));
      out.b.push(Array.from(wb));
    }
    expect(b.t).toBe(a.t);
    expect(b.state.map((x) => Array.from(x))).toEqual(a.state.map((x) => Array.from(x)));
    return out;
  };

  it('gives the reference bit for bit: every built-in, float32 and float64, float32 intermediates', () => {
    for (const [name, r] of library())
      for (const options of [
        { size: 7, seed: 3 },
        { size: 7, seed: 3, dtype: 'float64' as const },
        { size: 5, seed: 1, float32Intermediates: true },
      ]) {
        const o = both(r, options, 12);
        expect(o.db, name).toEqual(o.da);
        expect(o.b, name).toEqual(o.a);
      }
  });

  it('gives the reference bit for bit on random NOS rules (noise and dropout draws, NaN and Inf included)', () => {
    const r = rng(2026);
    let stochastic = 0;
    for (let k = 0; k < 150; k++) {
      const text = genNosRule(r, 1 + (k % 3));
      const found = compileRules(text);
      if (!found.ok) continue;
      const checked = found.rules[0]!;
      if (/noise|drop/.test(text)) stochastic++;
      const o = both(checked, { size: 6, seed: k, dtype: k % 2 === 0 ? 'float64' : 'float32' }, 6);
      // toEqual treats NaN as equal to NaN, and tells +0 from -0.
      expect(o.db, text).toEqual(o.da);
      expect(o.b, text).toEqual(o.a);
    }
    expect(stochastic).toBeGreaterThan(10);
  });

  it('runs a lowered program again from fresh state, and rejects vectors of the wrong length', () => {
    const r = rule('ema(g, 0.9) + drop(g, 0.5)');
    const program = new ColumnInterpreter(r, { size: 3 }).program;
    const a = new ColumnInterpreter(r, { size: 3, seed: 4 }, program);
    const b = new ColumnInterpreter(r, { size: 3, seed: 4 });
    const g = Float32Array.of(1, -2, 3);
    expect(Array.from(a.direction(new Float32Array(3), g))).toEqual(Array.from(b.direction(new Float32Array(3), g)));
    expect(() => a.direction(new Float32Array(2), new Float32Array(2))).toThrow(/length 3/);
  });
});
