import { describe, expect, it } from 'vitest';
import {
  BindError,
  bindParams,
  compileRules,
  formatDiagnostics,
  library,
  MAX_DIAGNOSTICS,
  printNode,
  ruleHash,
} from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
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
    const texts = [
      ...[...library().values()].map((x) => x.canonical),
      ...Array.from({ length: 300 }, () => genNosRule(r, 1 + Math.floor(r() * 3))),
    ];
    for (const text of texts) {
      const a = compileRules(text);
      if (!a.ok) {
        // Random NOS rules may ignore g; nothing else may fail.
        expect(
          a.diagnostics.map((d) => d.code),
          text,
        ).toEqual(['no-gradient']);
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

  it('takes hyperparameters named like Object.prototype members (toString, constructor, ...)', () => {
    const r = one('rule r(toString = 0.5, constructor = 2) = toString * constructor * g');
    expect(r.params).toEqual([
      { name: 'toString', default: 0.5 },
      { name: 'constructor', default: 2 },
    ]);
    expect(r.canonical).toBe('rule r(toString = 0.5, constructor = 2) = constructor * toString * g');
    expect(printNode(bindParams(r, {}))).toBe('0.5 * 2 * g');
    expect(printNode(bindParams(r, { toString: 0.3 }))).toBe('0.3 * 2 * g');
    expect(printNode(bindParams(r, new Map([['constructor', 4]])))).toBe('0.5 * 4 * g');
    expect(ruleHash(r, { toString: 0.5 })).toBe(r.hash);
    expect(ruleHash(r, { toString: 0.3 })).not.toBe(r.hash);
    // The interpreter gets the same values: w - lr * constructor * toString * g.
    const input = { w0: [1, -1], grads: [[0.5, 0.25]] };
    expect(traceInterp(r, input, 1, { params: { toString: 0.3 }, dtype: 'float64' })).toEqual([
      [1 - 2 * 0.3 * 0.5, -1 - 2 * 0.3 * 0.25],
    ]);
    for (const name of ['valueOf', 'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString']) {
      const x = one(`rule r(${name} = 0.25) = ${name} * g`);
      expect(printNode(bindParams(x, {})), name).toBe('0.25 * g');
      expect(printNode(bindParams(x, { [name]: 3 })), name).toBe('3 * g');
    }
    // Used by another rule, by name and by position.
    expect(
      ok('rule r(toString = 0.5) = toString * g\nrule s = r(toString = 4) + r(8)').map((x) => x.canonical),
    ).toEqual(['rule r(toString = 0.5) = g * toString', 'rule s = 4 * g + 8 * g']);
    // A prototype name that is not a hyperparameter of the rule is an unknown one, not a value.
    expect(() => bindParams(library().get('adam')!, { toString: 1 })).toThrow(/unknown hyperparameter 'toString'/);
    expect(() => bindParams(r, JSON.parse('{"__proto__": 1}') as Record<string, number>)).toThrow(
      /unknown hyperparameter '__proto__'/,
    );
  });

  it('range-checks hyperparameter values bound from code: ranges of the primitives they reach, and the number limit', () => {
    const adam = library().get('adam')!;
    const err = (f: () => unknown): BindError => {
      try {
        f();
      } catch (e) {
        if (e instanceof BindError) return e;
        throw e;
      }
      throw new Error('no error');
    };
    const e1 = err(() => bindParams(adam, { beta1: 5 }));
    expect(e1.param).toBe('beta1');
    expect(e1.message).toBe("hyperparameter 'beta1' is 5; it must be in [0, 1] (argument 'beta' of 'ema')");
    expect(err(() => bindParams(adam, { beta2: -0.5 })).message).toMatch(/'beta2' is -0.5; it must be in \[0, 1\]/);
    expect(err(() => bindParams(adam, { eps: 1e300 })).message).toMatch(
      /'eps' is 1e\+300; values are limited to 1e\+30/,
    );
    expect(err(() => bindParams(adam, { eps: Number.POSITIVE_INFINITY })).message).toMatch(/finite number/);
    expect(err(() => bindParams(adam, { eps: '0.1' as unknown as number })).message).toMatch(
      /finite number, got "0.1"/,
    );
    expect(err(() => bindParams(library().get('powersign-ld')!, { T: 0 })).message).toMatch(
      /'T' is 0; it must be in \(0, inf\) \(argument 'steps' of 'lindecay'\)/,
    );
    expect(err(() => bindParams(one('rule r(p = 0.5) = drop(g, p)'), { p: 1 })).message).toMatch(/\[0, 1\)/);
    expect(err(() => bindParams(one('rule r(c = 1) = clip(g, c)'), { c: -0 })).message).toMatch(/\(0, inf\)/);
    // A value that reaches the argument through arithmetic is checked by what it computes.
    expect(err(() => bindParams(one('rule r(b = 0.5) = ema(g, 1 - b)'), { b: 2 })).message).toBe(
      "hyperparameter 'b' is 2, which makes argument 'beta' of 'ema' -1; it must be in [0, 1]",
    );
    // In range, at the edges, and values that reach no ranged argument are fine.
    expect(printNode(bindParams(adam, { beta1: 0, beta2: 1, eps: -0 }))).toContain('ema(g, 0)');
    expect(printNode(bindParams(adam, { eps: -1e30 }))).toContain('-1e+30');
  });

  it('clips long source lines and long names in diagnostics, and caps their number', () => {
    const long = `${'g + '.repeat(10)}${' '.repeat(90_000)}sigm(g)${' '.repeat(90_000)}`;
    const r = compileRules(long);
    const text = formatDiagnostics(r);
    const [head, line, caret] = text.split('\n');
    expect(head).toBe("<arg>:1:90041: error: unknown function 'sigm'; did you mean 'sign'?");
    expect(line!.length).toBeLessThanOrEqual(170);
    expect(line).toMatch(/^\.\.\. +sigm\(g\) +\.\.\.$/);
    expect(line!.slice(caret!.indexOf('^'), caret!.indexOf('^') + 4)).toBe('sigm');
    expect(caret).toMatch(/^ +\^~~~$/);
    const name = `x${'y'.repeat(100_000)}`;
    const named = compileRules(`${name} * g`);
    expect(named.diagnostics[0]?.message.length).toBeLessThan(200);
    expect(formatDiagnostics(named).length).toBeLessThan(600);
    const many = compileRules('$'.repeat(100).split('').join(' '));
    expect(many.diagnostics).toHaveLength(MAX_DIAGNOSTICS + 1);
    expect(many.diagnostics[MAX_DIAGNOSTICS]?.message).toBe('50 more problems not shown');
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
    // Hyperparameter values given to other rules reach the ranges of their primitives.
    [
      'adam(beta1 = 5)',
      'range',
      1,
      6,
      /^hyperparameter 'beta1' of 'adam' is 5; it must be in \[0, 1\] \(argument 'beta' of 'ema'\)$/,
    ],
    ['adam(0.9, 1.5)', 'range', 1, 11, /'beta2' of 'adam' is 1.5; it must be in \[0, 1\]/],
    ['signum(beta = -0.1) * 2', 'range', 1, 8, /'beta' of 'signum' is -0.1/],
    ['rule r(b = 5) = adam(beta1 = b)', 'range', 1, 22, /'beta1' of 'adam' is 5/],
    ['rule r(b = 0.5) = adam(beta1 = b * 4)', 'range', 1, 24, /'beta1' of 'adam' is 2; it must be in \[0, 1\]/],
    [
      '@powersign-ld(T = 0)',
      'range',
      1,
      15,
      /'T' of 'powersign-ld' is 0; it must be in \(0, inf\) \(argument 'steps' of 'lindecay'\)/,
    ],
    [
      'rule r(T = -5) = @powersign-ld',
      'range',
      1,
      18,
      /rule 'powersign-ld' makes argument 'steps' of 'lindecay' -5; it must be in \(0, inf\)/,
    ],
    ['rule r(k = 1) = drop(g, k)', 'range', 1, 25, /\[0, 1\)/],
    ['rule r(p = 0.5) = drop(g, p)\nrule s = r(p = 1)', 'range', 2, 12, /'p' of 'r' is 1; it must be in \[0, 1\)/],
    [
      'adam(beta1 = 1e30 * 1e30)',
      'number',
      1,
      14,
      /'beta1' of 'adam' is 1.0000000000000001e\+60; values must be finite and at most 1e\+30/,
    ],
    ['adam(eps = 0 / 0)', 'number', 1, 12, /'eps' of 'adam' is NaN/],
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
