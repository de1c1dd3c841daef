import { describe, expect, it } from 'vitest';
import { compileRule, traceCompiled, UnsupportedError } from '../../dsl/compile/index.js';
import { generateWasm, WASM_LANE_PRIMITIVES, WASM_PRIMITIVES, WasmKernel } from '../../dsl/compile/wasm.js';
import { sleb, uleb } from '../../dsl/compile/wasm-encode.js';
import { compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { lowerRule, paramValues } from '../../dsl/lower.js';
import { PRIMITIVES } from '../../primitives/registry.js';
import { nos, tempFile } from '../helpers/cli.js';
import { close, rule, stream } from '../helpers/traces.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { torchGolden } from '../helpers/reference.js';

/** Distance in float32 units in the last place (NaN == NaN, equal infinities 0). */
function ulps(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Number.POSITIVE_INFINITY;
  if (a === b) return 0;
  const ia = new Int32Array(Float32Array.of(a).buffer)[0]!;
  const ib = new Int32Array(Float32Array.of(b).buffer)[0]!;
  const key = (i: number) => (i < 0 ? -(i & 0x7fffffff) : i);
  return Math.abs(key(ia) - key(ib));
}

const bytesOf = (xs: ArrayLike<number>) => Array.from(xs);
function containsBytes(hay: Uint8Array, needle: readonly number[]): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

describe('wasm SIMD back end == reference interpreter', () => {
  it('has a SIMD template for every per-element and state primitive (scalars are computed on the host)', () => {
    const names = PRIMITIVES.filter((p) => p.category !== 'schedule' && !('scale' in (p.stochastic ?? {})))
      .map((p) => p.name)
      .sort();
    expect([...WASM_PRIMITIVES].sort()).toEqual(names);
    // Only these go lane by lane through JS (float64, as the interpreter computes them).
    expect([...WASM_LANE_PRIMITIVES].sort()).toEqual(['cos', 'pow']);
  });

  const golden = torchGolden();
  for (const [name, r] of library()) {
    it(`${name}: the SIMD path runs (no fallback, nothing lane by lane) within float32 tolerance`, () => {
      const params: Record<string, number> = name.includes('-') ? { T: 12 } : {};
      const c = compileRule(r, { backend: 'wasm', params });
      expect(c.backend).toBe('wasm');
      expect(c.fallbackReason).toBeUndefined();
      expect(c.wasm?.laneOps.filter((op) => op.when === 'always')).toEqual([]);
      const kernel = c.create(golden.w0.length);
      expect(kernel).toBeInstanceOf(WasmKernel);
      const w = Float32Array.from(golden.w0);
      const out: number[][] = [];
      for (const g of golden.grads) {
        kernel.step(w, Float32Array.from(g), 0.01);
        out.push(Array.from(w));
      }
      expect((kernel as WasmKernel).calls).toBe(golden.grads.length);
      const ref32 = traceInterp(r, golden, 0.01, { params, float32Intermediates: true });
      expect(close(ref32, out, 2e-5)).toBeUndefined();
      expect(close(traceInterp(r, golden, 0.01, { params }), out, 2e-5)).toBeUndefined();
    });
  }

  it('agrees on 150 random rules from the NOS search space over 12 steps', () => {
    const r = rng(21);
    let compiled = 0;
    let lanes = 0;
    const mismatches: string[] = [];
    for (let i = 0; i < 150; i++) {
      const text = genNosRule(r, 1 + Math.floor(r() * 3));
      const c = compileRules(text);
      if (!c.ok) continue;
      const rr = c.rules[0]!;
      const input = stream(i, 9, 12); // 9: two full vectors and a tail lane
      const wasm = compileRule(rr, { backend: 'wasm' });
      expect(wasm.backend, text).toBe('wasm');
      if (wasm.wasm?.laneOps.some((op) => op.when === 'always')) lanes++;
      const ref = traceInterp(rr, input, 0.01, { seed: i });
      const ref32 = traceInterp(rr, input, 0.01, { seed: i, float32Intermediates: true });
      const slack = ref.map((row, s) => row.map((x, j) => Math.abs(x - ref32[s]![j]!) || 0));
      // The tf back end's comparison: float32 ops against the interpreter rounding the same way.
      const problem = close(ref32, traceCompiled(wasm, input, 0.01, { seed: i }), 1e-4, slack);
      if (problem) mismatches.push(`${text}: ${problem}`);
      compiled++;
    }
    expect(compiled).toBeGreaterThan(100);
    expect(mismatches).toEqual([]);
    expect(lanes).toBeGreaterThan(0); // the lane-by-lane path was exercised too
  });

  it('NaN and Inf behave as in the interpreter', () => {
    const input = {
      w0: [1, 2, 3, 4, 5, 6],
      grads: [
        [Number.NaN, 1, Number.POSITIVE_INFINITY, -1, 0, Number.NEGATIVE_INFINITY],
        [1, Number.NaN, 1, Number.POSITIVE_INFINITY, 0, 1],
        [0, 0, 0, 0, 0, 0],
      ],
    };
    const texts = [
      'sign(g) * g',
      'max(g, m)',
      'min(g, 0) + runmax(g)',
      'clip(g, 1e-3)',
      'g / (sqrt(v) + 1e-8)',
      'log(g) * g',
      'exp(g) - g^2',
      'adam',
      'lion',
      'cos(g) + g^w',
      'floor(g) + lerp(g, w, m)',
      '1 / sign(g)',
    ];
    for (const text of texts) {
      const rr = rule(text);
      const c = compileRule(rr, { backend: 'wasm' });
      expect(c.backend, text).toBe('wasm');
      const got = traceCompiled(c, input, 0.1);
      expect(close(traceInterp(rr, input, 0.1, { float32Intermediates: true }), got, 1e-5), text).toBeUndefined();
      expect(close(traceInterp(rr, input, 0.1), got, 1e-5), text).toBeUndefined();
    }
  });

  it('seeded noise and dropout take the same draws as every other back end', () => {
    const input = stream(5, 16, 6);
    const rr = rule('g + noise * drop(m, 0.3) + anoise + drop(g, 0.5)');
    const ref = traceInterp(rr, input, 0.1, { seed: 77, float32Intermediates: true });
    const c = compileRule(rr, { backend: 'wasm' });
    expect(c.backend).toBe('wasm');
    expect(close(ref, traceCompiled(c, input, 0.1, { seed: 77 }), 1e-5)).toBeUndefined();
    expect(
      close(
        traceCompiled(compileRule(rr, { backend: 'js' }), input, 0.1, { seed: 77 }),
        traceCompiled(c, input, 0.1, { seed: 77 }),
        1e-5,
      ),
    ).toBeUndefined();
    expect(traceCompiled(c, input, 0.1, { seed: 78 })).not.toEqual(traceCompiled(c, input, 0.1, { seed: 77 }));
  });

  it('exp and log are within 1 ulp of the correctly rounded float32 result, edges included', () => {
    const xs: number[] = [
      0,
      -0,
      1,
      -1,
      2 ** -149,
      -(2 ** -149),
      2 ** -126,
      1e-40,
      3e-39,
      1e-30,
      1e-7,
      0.5,
      Math.LN2,
      88.7,
      88.72,
      88.73,
      89,
      100,
      -87,
      -100,
      -103.9,
      -104,
      -110,
      1e30,
      3.4e38,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ];
    const r = rng(3);
    for (let i = 0; i < 20_000; i++) xs.push((r() - 0.5) * 2 * 10 ** Math.floor(r() * 6 - 3));
    for (let i = 0; i < 20_000; i++) xs.push((r() - 0.5) * 210);
    for (let i = 0; i < 5_000; i++) xs.push(Math.fround(1 + (r() - 0.5) * 1e-3)); // log near 1
    for (let i = 0; i < 5_000; i++) xs.push(2 ** (r() * 250 - 140) * (r() < 0.5 ? -1 : 1)); // log over every exponent, subnormals too
    const x32 = Float32Array.from(xs);
    for (const [text, f] of [
      ['exp(g)', Math.exp],
      ['log(g)', (x: number) => Math.log(Math.abs(x))],
    ] as const) {
      const c = compileRule(rule(text), { backend: 'wasm' });
      const k = c.create(x32.length) as WasmKernel;
      k.grads.set(x32);
      k.weights.fill(0);
      k.stepResident(1); // w = 0 - 1 * d = -d
      let worst = 0;
      let at = 0;
      for (let i = 0; i < x32.length; i++) {
        const u = ulps(-k.weights[i]!, Math.fround(f(x32[i]!)));
        if (u > worst) [worst, at] = [u, x32[i]!];
      }
      expect(worst, `${text}: worst at ${at}`).toBeLessThanOrEqual(1);
    }
  });

  it('sign(0) = 0 for either zero, sign(NaN) = NaN; min/max propagate NaN like Math.min/max', () => {
    const g = Float32Array.of(0, -0, Number.NaN, 1e-30, -1e-30, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3);
    const k = compileRule(rule('1 / sign(g)'), { backend: 'wasm' }).create(g.length) as WasmKernel;
    k.grads.set(g);
    k.stepResident(-1); // w = 0 + d
    expect(Array.from(k.weights)).toEqual([Infinity, Infinity, Number.NaN, 1, -1, 1, -1, 1]);
    const m = compileRule(rule('min(g, w) + max(w, g)'), { backend: 'wasm' }).create(4) as WasmKernel;
    m.grads.set([Number.NaN, 1, -0, 2]);
    m.weights.set([0, Number.NaN, 0, 1]);
    m.stepResident(-1);
    expect(Array.from(m.weights)).toEqual([Number.NaN, Number.NaN, 0, 4]);
  });

  it('works for every size: empty, shorter than a vector, and tails', () => {
    const rr = library().get('adamw')!;
    for (const n of [0, 1, 3, 4, 5, 17]) {
      const input = stream(n, n, 4);
      expect(
        close(
          traceInterp(rr, input, 0.01, { float32Intermediates: true }),
          traceCompiled(compileRule(rr, { backend: 'wasm' }), input, 0.01),
          2e-5,
        ),
        `n=${n}`,
      ).toBeUndefined();
    }
  });

  it('resident weights: stepResident on the module memory gives the same weights and state as step(w, g) with copies', () => {
    const rr = library().get('adam')!;
    const c = compileRule(rr, { backend: 'wasm' });
    const input = stream(9, 10, 5);
    const copying = c.create(10) as WasmKernel;
    const resident = c.create(10) as WasmKernel;
    const w = Float32Array.from(input.w0);
    resident.weights.set(input.w0);
    for (const g of input.grads) {
      copying.step(w, Float32Array.from(g), 0.01);
      resident.grads.set(g);
      resident.stepResident(0.01);
    }
    expect(Array.from(resident.weights)).toEqual(Array.from(w));
    expect(resident.state.map((s) => Array.from(s))).toEqual(copying.state.map((s) => Array.from(s)));
    expect(resident.t).toBe(5);
  });

  it('the module holds no bytes from rule text: numbers come in through the scalar block', () => {
    const text =
      'rule r(alert = 31337.125, constructor = 0.123456789) = alert * g + constructor * sign(m) - 2718.25 * w + g^alert';
    const hostile = rule(text);
    const c = compileRule(hostile, { backend: 'wasm' });
    expect(c.backend).toBe('wasm');
    const bytes = c.wasm!.bytes;
    for (const x of [31337.125, 0.123456789, 2718.25, 0.9]) {
      expect(containsBytes(bytes, bytesOf(new Uint8Array(Float32Array.of(x).buffer))), `f32 ${x}`).toBe(false);
      expect(containsBytes(bytes, bytesOf(new Uint8Array(Float64Array.of(x).buffer))), `f64 ${x}`).toBe(false);
    }
    for (const word of ['alert', 'constructor', 'ema', 'sign', '31337'])
      expect(
        containsBytes(
          bytes,
          [...word].map((ch) => ch.charCodeAt(0)),
        ),
        word,
      ).toBe(false);
    // The same module serves other values: they reach the kernel as data.
    const other = compileRule(hostile, { backend: 'wasm', params: { alert: 5 } });
    expect(Array.from(other.wasm!.bytes)).toEqual(Array.from(bytes));
    const k = c.create(4) as WasmKernel;
    k.stepResident(0.1);
    const scalarBlock = new Float32Array(k.weights.buffer, 0, c.wasm!.scalars.length);
    expect(Array.from(scalarBlock)).toEqual(expect.arrayContaining([31337.125, Math.fround(0.123456789), 2718.25]));
    expect(paramValues(hostile)[0]).toBe(31337.125);
  });

  it('falls back to the fused JS kernel (not the interpreter) where it cannot run, and says why', () => {
    const c = compileRule(rule('sign(g) * 5'), { backend: 'wasm', dtype: 'float64' });
    expect(c.requested).toBe('wasm');
    expect(c.backend).toBe('js');
    expect(c.fallbackReason).toMatch(/float32/);
    expect(traceCompiled(c, { w0: [1], grads: [[2]] }, 0.5, { dtype: 'float64' })).toEqual([[-1.5]]);
    // A primitive with no template (a program built by hand) is a typed UnsupportedError.
    const program = lowerRule(rule('exp(g)'));
    const steps = program.steps.map((s) => (s.op === 'tensor' && s.prim === 'exp' ? { ...s, prim: 'mystery' } : s));
    expect(() => generateWasm({ ...program, steps } as unknown as typeof program)).toThrow(UnsupportedError);
  });

  it('without WebAssembly in the engine, compileRule falls back to the fused JS kernel', () => {
    const saved = Reflect.get(globalThis, 'WebAssembly');
    Reflect.deleteProperty(globalThis, 'WebAssembly');
    try {
      const c = compileRule(rule('sign(g) * 6'), { backend: 'wasm' });
      expect(c.backend).toBe('js');
      expect(c.fallbackReason).toMatch(/no WebAssembly/);
    } finally {
      Reflect.set(globalThis, 'WebAssembly', saved);
    }
  });

  it('nos trace --backend wasm gives the fused JS weights to float32 tolerance', async () => {
    const input = tempFile('grads.json', JSON.stringify(stream(4, 6, 5)));
    const wasm = await nos('trace', '--rule', 'adam', '--lr', '0.01', '--input', input, '--backend', 'wasm', '--json');
    expect(wasm.code, wasm.stderr).toBe(0);
    const js = await nos('trace', '--rule', 'adam', '--lr', '0.01', '--input', input, '--json');
    const a = (JSON.parse(wasm.stdout) as { weights: number[][] }).weights;
    const b = (JSON.parse(js.stdout) as { weights: number[][] }).weights;
    expect(close(b, a, 2e-5)).toBeUndefined();
    const text = await nos('trace', '--rule', 'lion', '--lr', '0.01', '--input', input, '--backend', 'wasm');
    expect(text.stderr).toMatch(/back end: wasm/);
    const f64 = await nos(
      'trace',
      '--rule',
      'lion',
      '--lr',
      '0.01',
      '--input',
      input,
      '--backend',
      'wasm',
      '--dtype',
      'float64',
    );
    expect(f64.stderr).toMatch(/float32 only; using the js back end/);
  });
});

describe('wasm encoder', () => {
  it('LEB128', () => {
    expect(uleb(0)).toEqual([0]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(uleb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(sleb(0)).toEqual([0]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(() => uleb(-1)).toThrow(RangeError);
    expect(() => sleb(2 ** 31)).toThrow(RangeError);
  });
});
