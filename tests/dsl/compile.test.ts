import { beforeAll, describe, expect, it } from 'vitest';
import {
  COMPILE_CACHE_SIZE,
  cacheStats,
  compileCacheSize,
  compileRule,
  traceCompiled,
  UnsupportedError,
} from '../../dsl/compile/index.js';
import { checkSource, generateKernel, JS_PRIMITIVES } from '../../dsl/compile/js.js';
import { TF_PRIMITIVES } from '../../dsl/compile/tf.js';
import { compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { lowerRule, paramValues, scalarValues } from '../../dsl/lower.js';
import { PRIMITIVES } from '../../primitives/registry.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { torchGolden } from '../helpers/reference.js';
import { tfReady } from '../helpers/tf.js';
import { close, rule, stream } from '../helpers/traces.js';

describe('compiled back ends == reference interpreter', () => {
  beforeAll(async () => {
    expect((await tfReady).name).toBe('wasm');
  });

  it('every per-element and state primitive has a fused-JS and a tf implementation (scalars are computed on the host)', () => {
    const names = PRIMITIVES.filter((p) => p.category !== 'schedule' && !('scale' in (p.stochastic ?? {})))
      .map((p) => p.name)
      .sort();
    expect([...JS_PRIMITIVES].sort()).toEqual(names);
    expect([...TF_PRIMITIVES].sort()).toEqual(names);
  });

  const golden = torchGolden();
  for (const [name, r] of library()) {
    it(`${name}: exact fused JS is bit-exact, fast fused JS and tf ops within float32 tolerance`, () => {
      const params: Record<string, number> = name.includes('-') ? { T: 12 } : {};
      const ref = traceInterp(r, golden, 0.01, { params });
      const exact = compileRule(r, { backend: 'js', params, exact: true });
      expect(exact.backend).toBe('js');
      expect(exact.kernel?.source).toContain('for (let i = 0; i < n; i++)');
      expect(traceCompiled(exact, golden, 0.01)).toEqual(ref);
      const js = compileRule(r, { backend: 'js', params });
      expect(js.backend).toBe('js');
      expect(close(ref, traceCompiled(js, golden, 0.01), 1e-6)).toBeUndefined();
      const tf = compileRule(r, { backend: 'tf', params });
      expect(tf.backend).toBe('tf');
      expect(close(ref, traceCompiled(tf, golden, 0.01), 2e-5)).toBeUndefined();
    });
  }

  it('agrees on 150 random rules from the NOS search space over 12 steps', () => {
    const r = rng(21);
    let compiled = 0;
    const mismatches: string[] = [];
    let illConditioned = 0;
    for (let i = 0; i < 150; i++) {
      const text = genNosRule(r, 1 + Math.floor(r() * 3));
      const c = compileRules(text);
      if (!c.ok) continue;
      const rr = c.rules[0]!;
      const input = stream(i, 9, 12);
      const ref = traceInterp(rr, input, 0.01, { seed: i });
      const exact = compileRule(rr, { backend: 'js', exact: true });
      expect(exact.backend).toBe('js');
      expect(close(ref, traceCompiled(exact, input, 0.01, { seed: i }), 0), text).toBeUndefined();
      const js = compileRule(rr, { backend: 'js' });
      expect(js.backend).toBe('js');
      const ref32 = traceInterp(rr, input, 0.01, { seed: i, float32Intermediates: true });
      const slack = ref.map((row, s) => row.map((x, j) => Math.abs(x - ref32[s]![j]!) || 0));
      const tf = compileRule(rr, { backend: 'tf' });
      expect(tf.backend).toBe('tf');
      // The fast kernel multiplies by reciprocals: float32 tolerance, within the rule's own sensitivity.
      const fastProblem = close(ref, traceCompiled(js, input, 0.01, { seed: i }), 1e-6, slack);
      if (fastProblem) mismatches.push(`fast js: ${text}: ${fastProblem}`);
      // tf computes every op in float32: compare with the interpreter rounding the same way,
      // within the rule's own float32 sensitivity (|float64 - float32 intermediates|).
      if (close(ref, ref32, 1e-4)) illConditioned++;
      const problem = close(ref32, traceCompiled(tf, input, 0.01, { seed: i }), 1e-4, slack);
      if (problem) mismatches.push(`${text}: ${problem}`);
      compiled++;
    }
    expect(compiled).toBeGreaterThan(100);
    expect(mismatches).toEqual([]);
    // The slack is the exception, not the rule.
    expect(illConditioned).toBeLessThan(compiled / 10);
  });

  it('NaN and Inf behave the same in all three', () => {
    const input = {
      w0: [1, 2, 3, 4, 5, 6],
      grads: [
        [Number.NaN, 1, Number.POSITIVE_INFINITY, -1, 0, Number.NEGATIVE_INFINITY],
        [1, Number.NaN, 1, Number.POSITIVE_INFINITY, 0, 1],
        [0, 0, 0, 0, 0, 0],
      ],
    };
    for (const text of [
      'sign(g) * g',
      'max(g, m)',
      'min(g, 0) + runmax(g)',
      'clip(g, 1e-3)',
      'g / (sqrt(v) + 1e-8)',
      'log(g) * g',
      'exp(g) - g^2',
      'adam',
      'lion',
    ]) {
      const rr = rule(text);
      const ref = traceInterp(rr, input, 0.1);
      expect(traceCompiled(compileRule(rr, { backend: 'js', exact: true }), input, 0.1), text).toEqual(ref);
      expect(close(ref, traceCompiled(compileRule(rr, { backend: 'js' }), input, 0.1), 1e-6), text).toBeUndefined();
      expect(close(ref, traceCompiled(compileRule(rr, { backend: 'tf' }), input, 0.1), 1e-5), text).toBeUndefined();
    }
  });

  it('seeded noise gives the same draws on every back end', () => {
    const input = stream(5, 16, 6);
    const rr = rule('g + noise * drop(m, 0.3) + anoise');
    const ref = traceInterp(rr, input, 0.1, { seed: 77 });
    expect(traceCompiled(compileRule(rr, { backend: 'js', exact: true }), input, 0.1, { seed: 77 })).toEqual(ref);
    expect(
      close(ref, traceCompiled(compileRule(rr, { backend: 'js' }), input, 0.1, { seed: 77 }), 1e-6),
    ).toBeUndefined();
    expect(
      close(ref, traceCompiled(compileRule(rr, { backend: 'tf' }), input, 0.1, { seed: 77 }), 1e-5),
    ).toBeUndefined();
    expect(traceCompiled(compileRule(rr, { backend: 'js' }), input, 0.1, { seed: 78 })).not.toEqual(ref);
  });

  it('float64 kernels match the float64 interpreter exactly', () => {
    const rr = library().get('adam')!;
    const js = compileRule(rr, { backend: 'js', dtype: 'float64', exact: true });
    expect(traceCompiled(js, golden, 0.01, { dtype: 'float64' })).toEqual(
      traceInterp(rr, golden, 0.01, { dtype: 'float64' }),
    );
  });
});

describe('fused kernel generation', () => {
  it('turns a division by a per-step scalar into a multiplication by its reciprocal, unless exact', () => {
    const program = lowerRule(rule('g / (1 - 0.9^t)'));
    const fast = generateKernel(program).source.split('for (let i')[1]!;
    const exact = generateKernel(program, 'float32', { exact: true }).source.split('for (let i')[1]!;
    expect(fast).not.toContain('/');
    expect(exact).toContain('/');
  });

  it('computes scalar work once per step on the host and shares equal subexpressions', () => {
    const k = generateKernel(lowerRule(rule('m / (1 - 0.9^t) + m * sign(g) * sign(g)')));
    const [before, loop] = k.source.split('for (let i');
    expect(before).toMatch(/= K\[\d+\];/);
    expect(k.source).not.toContain('H.pow(');
    expect(loop).not.toContain('K[');
    expect(loop?.match(/ > 0 \? 1 :/g)).toHaveLength(1); // sign(g) computed once
    expect(loop?.match(/h0\(/g)).toHaveLength(1); // one state slot, rounded once
  });

  it('never splices rule text into the source: numbers come in through K', () => {
    const hostile = rule(
      'rule r(alert = 1e-7, constructor1 = 0.123456789) = alert * g + constructor1 * sign(m) - 31337 * w',
    );
    const compiled = compileRule(hostile, { backend: 'js' });
    const src = compiled.kernel!.source;
    for (const bad of ['alert', 'constructor', '31337', '0.123456789', '1e-7', 'ema']) expect(src).not.toContain(bad);
    const k = scalarValues(compiled.program, paramValues(hostile), 1);
    expect([...k]).toEqual(expect.arrayContaining([1e-7, 0.123456789, 31337, 0.9]));
  });

  it('checkSource rejects anything outside the generated alphabet', () => {
    expect(() => checkSource('const v1 = gi * v0;')).not.toThrow();
    for (const evil of ['process.exit(1)', 'const v1 = "x";', 'require', 'v1 = 1e-7', 'globalThis', '`x`']) {
      expect(() => checkSource(evil), evil).toThrow(/unexpected/);
    }
  });

  it('raises a typed UnsupportedError for a primitive it has no template for (a program built by hand)', () => {
    const program = lowerRule(rule('exp(g)'));
    const steps = program.steps.map((s) => (s.op === 'tensor' && s.prim === 'exp' ? { ...s, prim: 'mystery' } : s));
    expect(() => generateKernel({ ...program, steps } as unknown as typeof program)).toThrow(UnsupportedError);
  });

  it('falls back to the interpreter when a back end cannot run the rule, and says why', () => {
    const c = compileRule(rule('sign(g) * 3'), { backend: 'tf', dtype: 'float64' });
    expect(c.backend).toBe('interp');
    expect(c.requested).toBe('tf');
    expect(c.fallbackReason).toMatch(/float32/);
    expect(traceCompiled(c, { w0: [1], grads: [[2]] }, 0.5, { dtype: 'float64' })).toEqual([[-0.5]]);
  });

  it('caches compiled rules by hash: written differently, compiled once', () => {
    const before = { ...cacheStats };
    const a = compileRule(rule('sign(g) * sign(m) * g * 0.25'), { backend: 'js' });
    const b = compileRule(rule('sign(ema(g, 0.9)) * sign(g) * g * 0.25'), { backend: 'js' });
    expect(b).toBe(a);
    expect(cacheStats.hits).toBe(before.hits + 1);
    expect(compileRule(rule('sign(g) * sign(m) * g * 0.25'), { backend: 'js', params: {} })).toBe(a);
  });

  it('keeps at most COMPILE_CACHE_SIZE compiled rules, the least recently used going first', () => {
    const kept = compileRule(rule('g * 0.123'), { backend: 'js' });
    const evicted = compileRule(rule('g * 0.456'), { backend: 'js' });
    const before = { ...cacheStats };
    for (let k = 0; k < COMPILE_CACHE_SIZE + 10; k++) {
      compileRule(rule(`g * ${k + 1}e-3 + w * 1e-4`), { backend: 'js' });
      // Used again now and then: the most recently used stays.
      if (k % 100 === 0) expect(compileRule(rule('g * 0.123'), { backend: 'js' })).toBe(kept);
    }
    expect(compileCacheSize()).toBe(COMPILE_CACHE_SIZE);
    expect(cacheStats.evictions).toBeGreaterThanOrEqual(before.evictions + 10);
    expect(compileRule(rule('g * 0.123'), { backend: 'js' })).toBe(kept);
    const again = compileRule(rule('g * 0.456'), { backend: 'js' });
    expect(again).not.toBe(evicted);
    // Compiled again, it computes the same.
    const input = { w0: [1, -2], grads: [[0.5, -3]] };
    expect(traceCompiled(again, input, 0.1)).toEqual(traceCompiled(evicted, input, 0.1));
  });
});
