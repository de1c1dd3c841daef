import { describe, expect, it } from 'vitest';
import { BindError, compileRules, library } from '../../dsl/index.js';
import { screenRule } from '../../evaluator/screen.js';

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
});
