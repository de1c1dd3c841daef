import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { compileRule } from '../../dsl/compile/index.js';
import { BindError, compileRules, library } from '../../dsl/index.js';
import { sha256Hex } from '../../dsl/sha256.js';
import { screenRule } from '../../evaluator/screen.js';
import { genNosRule, rng } from '../helpers/gen.js';

const rule = (t: string) => library().get(t) ?? compileRules(t).rules[0]!;

describe('pre-screen and fingerprint', () => {
  it('rejects constant, NaN and gradient-blind rules', () => {
    expect(screenRule(rule('g - g + 1e-3 * w')).reason).toMatch(/does not depend on the gradient/);
    // keep(w, g) is exactly w: the checker's canonical form sees that and refuses it before any screen.
    expect(
      compileRules('keep(w, g)')
        .diagnostics.map((d) => d.message)
        .join(),
    ).toMatch(/does not depend on g|gradient/);
    expect(screenRule(rule('log(g - g) * g')).reason).toMatch(/NaN/);
    expect(screenRule(rule('0 * g + 1')).reason).toMatch(/constant/);
    expect(screenRule(rule('g / (g - g)')).ok).toBe(false);
  });

  it('passes every built-in rule', () => {
    for (const [name, r] of library()) expect(screenRule(r).ok, name).toBe(true);
  });

  it('gives rules that act the same one fingerprint, and different rules different ones', () => {
    const fp = (t: string) => screenRule(rule(t)).fingerprint;
    expect(fp('(1 + sign(g) * sign(m)) * g')).toBe(fp('g + sign(g) * sign(m) * g'));
    expect(fp('addsign')).toBe(fp('(1 + sign(g) * sign(m)) * g'));
    expect(fp('2 * g')).toBe(fp('g + g'));
    expect(fp('sign(g) * sign(m) * g')).not.toBe(fp('sign(g) * g'));
    const all = [...library().keys()].filter((n) => !n.endsWith('-rd')).map((n) => fp(n));
    expect(new Set(all).size).toBeGreaterThan(all.length - 3);
  });

  it('says exactly why it rejects a rule, and gives no reason for one it passes', () => {
    const fingerprint = expect.stringMatching(/^[0-9a-f]{16}$/);
    expect(screenRule(rule('log(g - g) * g'))).toEqual({
      ok: false,
      reason: 'the update is NaN or infinite on the probe',
      fingerprint,
    });
    expect(screenRule(rule('g / (g - g)'))).toEqual({
      ok: false,
      reason: 'the update is NaN or infinite on the probe',
      fingerprint,
    });
    expect(screenRule(rule('0 * g + 1'))).toEqual({ ok: false, reason: 'the update is constant', fingerprint });
    expect(screenRule(rule('min(abs(g), 0) + 1'))).toEqual({
      ok: false,
      reason: 'the update is constant',
      fingerprint,
    });
    expect(screenRule(rule('g - g + 1e-3 * w'))).toEqual({
      ok: false,
      reason: 'the update does not depend on the gradient',
      fingerprint,
    });
    expect(screenRule(rule('exp(sign(g) * sign(m)) * g'))).toEqual({ ok: true, fingerprint });
  });

  it('fingerprints behaviour under the given hyperparameters: same values, same print; other values, another', () => {
    const adam = rule('adam');
    const base = screenRule(adam).fingerprint;
    expect(screenRule(adam).fingerprint).toBe(base);
    expect(screenRule(adam, { beta1: 0.9 }).fingerprint).toBe(base);
    const slower = screenRule(adam, { beta1: 0.5 }).fingerprint;
    expect(slower).not.toBe(base);
    // Bound by a rule reference or by parameters: the same behaviour, the same fingerprint.
    expect(screenRule(rule('adam(beta1 = 0.5)')).fingerprint).toBe(slower);
    // Values out of range are refused before any probe runs.
    expect(() => screenRule(adam, { beta1: 5 })).toThrow(BindError);
  });

  it('keeps the fingerprints runs stored: golden values, and the compiled exact kernel it used to run, on random rules', () => {
    // Computed by the screen of before (the rule compiled to an exact float64 kernel): stored
    // runs hold such fingerprints, and a resumed run must match new samples against them.
    const golden: [string, boolean, string][] = [
      ['adam', true, 'f6e966263223d5c6'],
      ['powersign', true, '60ca9286e90efcef'],
      ['lion', true, 'b69a97cad3b6f6bb'],
      ['sgd', true, '4d3f6a7ca584646a'],
      ['drop(g, 0.5) * sign(ema(g, 0.9))', true, '8d75e5584e4beece'],
      ['noise + g', true, '727b0f85da820e26'],
      ['log(g - g) * g', false, '3ef16a1217f13453'],
      ['clip(g, 0.001) / (1e-8 + sqrt(ema(g^2, 0.999)))', true, '056722c3a07cc4ff'],
    ];
    for (const [text, ok, fingerprint] of golden)
      expect(screenRule(rule(text)), text).toMatchObject({ ok, fingerprint });
    // The screen of before, written out: three runs of a compiled exact kernel (seed 7).
    const compiledScreen = (r: ReturnType<typeof rule>) => {
      const compiled = compileRule(r, { backend: 'js', exact: true, dtype: 'float64' });
      const run = (seed: string, scale: number, w0From?: string) => {
        const probe = (s: string) => {
          const g = seedrandom.alea(s);
          const w0 = Float32Array.from({ length: 12 }, () => (g() - 0.5) * 2);
          const grads = Array.from({ length: 8 }, (_, st) =>
            Float32Array.from({ length: 12 }, (_, i) => {
              if (i === 0 && st % 3 === 1) return 0;
              const mag = 10 ** (((i % 4) - 2) * 1.0) * scale;
              return (g() - 0.4) * mag * (st % 4 === 3 ? -1 : 1);
            }),
          );
          return { w0, grads };
        };
        const p = probe(seed);
        const w = Float64Array.from(w0From === undefined ? p.w0 : probe(w0From).w0);
        const kernel = compiled.create(12, 7);
        const out: number[] = [];
        for (const g of p.grads) {
          const before = Float64Array.from(w);
          kernel.step(w, Float64Array.from(g), 1);
          for (let i = 0; i < 12; i++) out.push((before[i] as number) - (w[i] as number));
        }
        return out;
      };
      const a = run('nos:probe:a', 1);
      const b = run('nos:probe:b', 0.3);
      const print = [a, b].map((o) => o.map((x) => (x === 0 ? '0' : x.toPrecision(4))).join(',')).join('');
      return { fingerprint: sha256Hex(print).slice(0, 16), other: run('nos:probe:c', 1, 'nos:probe:a'), a, b };
    };
    const r = rng(77);
    let checked = 0;
    for (let k = 0; k < 120; k++) {
      const found = compileRules(genNosRule(r, 2 + (k % 2)));
      if (!found.ok) continue;
      const checkedRule = found.rules[0]!;
      const before = compiledScreen(checkedRule);
      const now = screenRule(checkedRule);
      expect(now.fingerprint, checkedRule.canonical).toBe(before.fingerprint);
      const all = [...before.a, ...before.b];
      const ignoresG = before.other.every((x, i) => x === before.a[i]);
      if (now.ok) expect(all.every(Number.isFinite) && !ignoresG, checkedRule.canonical).toBe(true);
      checked++;
    }
    expect(checked).toBeGreaterThan(60);
  });
});
