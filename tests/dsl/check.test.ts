import { describe, expect, it } from 'vitest';
import { BindError, bindParams, compileRules, formatDiagnostics, library, printNode, ruleHash } from '../../dsl/index.js';
import { countNodes } from '../../dsl/ir.js';
import { genNosRule, rng } from '../helpers/gen.js';

const ok = (text: string) => {
  const r = compileRules(text);
  expect(r.diagnostics, formatDiagnostics(r)).toEqual([]);
  return r.rules;
};
const one = (text: string) => ok(text)[0]!;
const bad = (text: string) => {
  const r = compileRules(text);
  expect(r.ok, text).toBe(false);
  return r.diagnostics;
};

describe('checker', () => {
  it('expands aliases, so m and ema(g, 0.9) are the same rule', () => {
    expect(one('sign(m) * g').hash).toBe(one('g * sign(ema(g, 0.9))').hash);
    expect(one('sign(m) * g').canonical).toBe('g * sign(ema(g, 0.9))');
  });

  it('sorts commutative arguments, so g*m and m*g hash alike, but g-m and m-g do not', () => {
    expect(one('g * m').hash).toBe(one('m * g').hash);
    expect(one('max(g, w) + 1').hash).toBe(one('1 + max(w, g)').hash);
    expect(one('g - m').hash).not.toBe(one('m - g').hash);
  });

  it('inlines rules with their defaults or the given hyperparameters', () => {
    const r = one('adam(beta1 = 0.8) * exp(sign(g) * sign(m))');
    expect(r.canonical).toContain('ema(g, 0.8)');
    expect(r.canonical).toContain('ema(g^2, 0.999)');
    expect(r.params).toEqual([]);
    const positional = one('adam(0.8)');
    expect(positional.hash).toBe(one('adam(beta1 = 0.8)').hash);
    // A context hyperparameter stays one: the outer rule gets T.
    expect(one('@powersign-ld * 2').params).toEqual([{ name: 'T', default: 1000 }]);
    expect(one('@powersign-ld(T = 10)').params).toEqual([]);
  });

  it('lets rules in one file use each other, in any order', () => {
    const rules = ok('rule b(k = 2) = a * k\nrule a = sign(g)');
    expect(rules.map((r) => r.canonical)).toEqual(['rule b(k = 2) = k * sign(g)', 'rule a = sign(g)']);
  });

  it('canonical text is a fixed point: checking it again gives the same text and hash', () => {
    const r = rng(7);
    const texts = [...[...library().values()].map((x) => x.canonical), ...Array.from({ length: 300 }, () => genNosRule(r, 1 + Math.floor(r() * 3)))];
    for (const text of texts) {
      const a = compileRules(text);
      if (!a.ok) {
        // Random NOS rules may ignore g; nothing else may fail.
        expect(a.diagnostics.map((d) => d.code), text).toEqual(['no-gradient']);
        continue;
      }
      const first = a.rules[0]!;
      const again = one(first.canonical);
      expect(again.canonical, text).toBe(first.canonical);
      expect(again.hash, text).toBe(first.hash);
    }
  });

  it('binds hyperparameters and rejects unknown ones with a suggestion', () => {
    const adam = library().get('adam')!;
    expect(printNode(bindParams(adam, { beta1: 0.5 }))).toContain('ema(g, 0.5)');
    expect(ruleHash(adam, { beta1: 0.5 })).not.toBe(adam.hash);
    expect(ruleHash(adam, {})).toBe(adam.hash);
    expect(() => bindParams(adam, { beta: 0.5 })).toThrow(BindError);
    expect(() => bindParams(adam, { beta11: 0.5 })).toThrow(/did you mean 'beta1'/);
    expect(() => bindParams(adam, { eps: Number.NaN })).toThrow(/finite/);
  });

  const errors: [string, string, number, number, RegExp][] = [
    ['expp(g)', 'unknown-name', 1, 1, /unknown function 'expp'; did you mean 'exp'\?/],
    ['g * sigm(m)', 'unknown-name', 1, 5, /did you mean 'sign'/],
    ['g * mm', 'unknown-name', 1, 5, /unknown name 'mm'; did you mean 'm'\?/],
    ['adma * g', 'unknown-name', 1, 1, /did you mean 'adam'/],
    ['ema(g)', 'arity', 1, 1, /takes 2 arguments/],
    ['exp * g', 'arity', 1, 1, /is a function of 1 argument/],
    ['ema(g, g)', 'not-scalar', 1, 8, /must be the same for every weight/],
    ['ema(g, 1.5)', 'range', 1, 8, /must be in \[0, 1\]/],
    ['drop(g, 1)', 'range', 1, 9, /\[0, 1\)/],
    ['clip(g, 0)', 'range', 1, 9, /\(0, inf\)/],
    ['w * 1e-4', 'no-gradient', 1, 1, /does not depend on the gradient/],
    ['prev(g) * g', 'bad-prev', 1, 1, /stateful/],
    ['g(1)', 'bad-argument', 1, 1, /is a value, not a function/],
    ['adam(beta3 = 1) * g', 'unknown-param', 1, 6, /no hyperparameter 'beta3'/],
    ['adam(beta1 = g)', 'not-scalar', 1, 14, /must be the same for every weight/],
    ['exp(x = 1)', 'bad-argument', 1, 5, /positional/],
    ['powersign-ld', 'unknown-name', 1, 1, /write @powersign-ld/],
    ['rule a(k = 1, k = 2) = g', 'duplicate', 1, 15, /declared twice/],
    ['rule adam = g', 'duplicate', 1, 6, /built-in rule with a different definition/],
    ['rule r(g = 1) = g', 'reserved-name', 1, 8, /built-in name/],
    ['rule r(k = zz) = g', 'bad-argument', 1, 8, /must be a number/],
    ['rule a = b\nrule b = a * g', 'cycle', 2, 10, /refers to itself/],
    ['rule a = a', 'cycle', 1, 10, /refers to itself/],
  ];
  for (const [text, code, line, col, msg] of errors) {
    it(`reports ${code} for ${JSON.stringify(text)}`, () => {
      const ds = bad(text);
      const d = ds.find((x) => x.code === code);
      expect(d, JSON.stringify(ds)).toBeDefined();
      expect(d?.message).toMatch(msg);
      expect([d?.span.line, d?.span.col]).toEqual([line, col]);
    });
  }

  it('reports every bad rule in a file, and keeps the good ones checked', () => {
    const r = compileRules('rule a = sign(g)\nrule b = exp(q)\nrule c = g * 2\nrule d = w', 'f.nos');
    expect(r.ok).toBe(false);
    expect(r.rules.map((x) => x.name)).toEqual(['a', 'c']);
    expect(r.diagnostics.map((d) => [d.span.line, d.code])).toEqual([
      [2, 'unknown-name'],
      [4, 'no-gradient'],
    ]);
    const text = formatDiagnostics(r);
    expect(text).toContain('f.nos:2:14: error: unknown name');
    expect(text).toContain('rule b = exp(q)\n             ^');
  });

  it('limits the expanded size of a rule', () => {
    // Each level doubles the tree: 2^14 nodes after inlining.
    const lines = ['rule r0 = g'];
    for (let i = 1; i <= 14; i++) lines.push(`rule r${i} = r${i - 1} + r${i - 1} * 2`);
    const ds = bad(lines.join('\n'));
    expect(ds.some((d) => d.code === 'limit')).toBe(true);
    const fine = ok(lines.slice(0, 6).join('\n'));
    expect(countNodes(fine[5]!.expr)).toBeGreaterThan(100);
  });
});
