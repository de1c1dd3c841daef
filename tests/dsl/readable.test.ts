import { describe, expect, it } from 'vitest';
import { bindParams, compileRules, library, lookupRule, printNode } from '../../dsl/index.js';
import { readableRule } from '../../dsl/readable.js';
import { genNosRule, rng } from '../helpers/gen.js';

const hash = (text: string): string => {
  const r = lookupRule(text);
  if (!r.ok) throw new Error(r.message);
  return r.rule.hash;
};

describe('canonical simplification', () => {
  it('gives provably equal rules one canonical form and hash', () => {
    for (const [a, b] of [
      ['sign(sign(g))', 'sign(g)'],
      ['g * 1', 'g'],
      ['1 * g', 'g'],
      ['g / 1', 'g'],
      ['g^1', 'g'],
      ['g - 0', 'g'],
      ['--g', 'g'],
      ['- -g', 'g'],
      ['g * -1', '-g'],
      ['abs(abs(g)) * g', 'abs(g) * g'],
      ['abs(-g) * g', 'abs(g) * g'],
      ['keep(g, m)', 'g'],
      ['min(m, m) + g', 'm + g'],
      ['drop(sign(ema(g, 0.9)), 0.3) + sign(sign(g))', 'drop(sign(m), 0.3) + sign(g)'],
    ]) {
      expect(hash(a as string), `${a} == ${b}`).toBe(hash(b as string));
    }
  });

  it('keeps what is not exactly equal for every input: x + 0 (-0 + 0 = +0), x - x, keep() dropping a draw', () => {
    for (const [a, b] of [
      ['g + 0', 'g'],
      ['g - g + g', 'g'],
      ['keep(g, noise)', 'g'],
      ['max(g + noise, g + noise)', 'g + noise'],
    ]) {
      expect(hash(a as string), `${a} != ${b}`).not.toBe(hash(b as string));
    }
  });
});

describe('readable rules', () => {
  it('names built-ins inside a rule and checks back to the same rule', () => {
    expect(readableRule('adam')).toBe('adam');
    expect(readableRule(printNode(bindParams(library().get('adam')!, {})))).toBe('adam');
    expect(readableRule('adam * exp(sign(g) * sign(m))')).toBe('adam * exp(sign(ema(g, 0.9)) * sign(g))');
    expect(readableRule('lion + 0.1 * g')).toMatch(/^(0\.1 \* g \+ lion|lion \+ 0\.1 \* g)$/);
    expect(readableRule('@powersign-ld(T = 500)')).not.toContain('@');
    expect(readableRule('g +')).toBe('g +'); // not rule text: left alone
  });

  it('is a round trip for random NOS rules and compositions of built-ins', () => {
    const r = rng(7);
    const names = [...library().keys()].filter((n) => !n.includes('-'));
    let checked = 0;
    for (let i = 0; i < 200; i++) {
      const a = names[Math.floor(r() * names.length)]!;
      const text = i % 2 === 0 ? genNosRule(r, 2) : `${a} * (${genNosRule(r, 1)})`;
      const c = compileRules(text);
      if (!c.ok) continue;
      const readable = readableRule(text);
      expect(hash(readable), `${text} -> ${readable}`).toBe(c.rules[0]!.hash);
      checked++;
    }
    expect(checked).toBeGreaterThan(120);
  });
});
