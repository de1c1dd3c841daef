import { describe, expect, it } from 'vitest';
import { stripRanges } from '../../dsl/ast.js';
import { parseNumberLiteral, parseSource } from '../../dsl/parser.js';
import { printFile } from '../../dsl/print.js';
import { genFile, rng } from '../helpers/gen.js';

const body = (text: string) => {
  const r = parseSource(text);
  expect(r.problems).toEqual([]);
  return stripRanges(r.file?.rules[0]?.body);
};

describe('parser', () => {
  it('follows the usual precedence: ^ over unary minus over * / over + -', () => {
    expect(body('1 + 2 * 3')).toEqual(body('1 + (2 * 3)'));
    expect(body('-g^2')).toEqual(body('-(g^2)'));
    expect(body('g^2^3')).toEqual(body('g^(2^3)'));
    expect(body('g - m - v')).toEqual(body('(g - m) - v'));
    expect(body('g / m * v')).toEqual(body('(g / m) * v'));
    expect(body('g^-1')).toEqual({
      type: 'binary',
      op: '^',
      left: { type: 'name', name: 'g' },
      right: { type: 'neg', arg: { type: 'num', value: 1 } },
    });
  });

  it('reads numbers in every notation', () => {
    for (const [text, v] of [
      ['1e-8', 1e-8],
      ['.5', 0.5],
      ['2.', 2],
      ['1.5E+3', 1500],
      ['0.999', 0.999],
    ] as const) {
      expect(body(text)).toEqual({ type: 'num', value: v });
    }
  });

  it('reads rule files: parameters, bodies with bindings, comments, hyphenated names', () => {
    const r = parseSource(`
      # Adam, in two lines
      rule adam2(beta1 = 0.9, eps = 1e-8) {
        m1 = ema(g, beta1)   // first moment
        m1 / (sqrt(v) + eps)
      }
      rule neg-lr(k = -2) = k * @powersign-ld(T = 10) * g
      rule e1(base = e) = base ^ sign(g)
    `);
    expect(r.problems).toEqual([]);
    const rules = r.file?.rules ?? [];
    expect(rules.map((x) => x.name)).toEqual(['adam2', 'neg-lr', 'e1']);
    expect(rules[0]?.params.map((p) => [p.name, p.value])).toEqual([
      ['beta1', 0.9],
      ['eps', 1e-8],
    ]);
    expect(rules[0]?.bindings.map((b) => b.name)).toEqual(['m1']);
    expect(rules[1]?.params[0]?.value).toBe(-2);
    expect(rules[2]?.params[0]?.value).toBe(Math.E);
    const call = stripRanges(rules[1]?.body);
    expect(JSON.stringify(call)).toContain('"callee":"powersign-ld"');
  });

  it('continues a statement over a newline inside brackets and after an operator, not before a minus', () => {
    expect(body('exp(\n  g,\n)'.replace(',\n)', '\n)'))).toEqual(body('exp(g)'));
    expect(body('g *\n m')).toEqual(body('g * m'));
    expect(body('g\n * m')).toEqual(body('g * m'));
    const two = parseSource('a = g\n-a');
    expect(two.problems).toEqual([]);
    expect(two.file?.rules[0]?.bindings).toHaveLength(1);
    expect(stripRanges(two.file?.rules[0]?.body)).toEqual({ type: 'neg', arg: { type: 'name', name: 'a' } });
  });

  it('keeps m-v a subtraction', () => {
    expect(body('m-v')).toEqual({
      type: 'binary',
      op: '-',
      left: { type: 'name', name: 'm' },
      right: { type: 'name', name: 'v' },
    });
  });

  it('records source ranges', () => {
    const r = parseSource('g + exp(m)');
    const b = r.file?.rules[0]?.body;
    expect(b?.type).toBe('binary');
    if (b?.type === 'binary') {
      expect(b.right.range).toEqual({ start: 4, end: 10 });
      expect(b.left.range).toEqual({ start: 0, end: 1 });
    }
  });

  it('reports syntax errors with offsets', () => {
    const cases: [string, number, RegExp][] = [
      ['g +', 3, /expected an expression but found the end of the text/],
      ['sign(g', 6, /expected '\)' but found the end of the text/],
      ['g $ m', 2, /unexpected character '\$'/],
      ['g m', 2, /unexpected 'm'/],
      ['rule = g', 5, /expected/],
      ['rule x(a = b c) = g', 13, /expected/],
      ['beta_1 * g', 0, /underscores/],
      ['1e400 * g', 0, /too large/],
      ['', 0, /empty/],
    ];
    for (const [text, offset, msg] of cases) {
      const r = parseSource(text);
      expect(r.file, text).toBeUndefined();
      expect(r.problems[0]?.message, text).toMatch(msg);
      expect(r.problems[0]?.offset, text).toBe(offset);
    }
  });

  it('parseNumberLiteral reads numbers given outside rule text by the rules of the language', () => {
    const good: [string, number][] = [
      ['0.9', 0.9],
      ['-2', -2],
      ['+3', 3],
      ['1e-8', 1e-8],
      ['.5', 0.5],
      ['2.', 2],
      [' 7 ', 7],
      ['1E+3', 1000],
      ['-0', -0],
      ['1e30', 1e30],
      ['-1e30', -1e30],
      ['1e-400', 0],
    ];
    for (const [text, v] of good) expect(parseNumberLiteral(text), text).toEqual({ ok: true, value: v });
    expect(Object.is((parseNumberLiteral('-0') as { value: number }).value, -0)).toBe(true);
    const bad: [string, RegExp][] = [
      ['', /required/],
      ['  ', /required/],
      ['0x1', /not a decimal number/],
      ['0b1', /not a decimal number/],
      ['0o7', /not a decimal number/],
      ['Infinity', /not a decimal number/],
      ['-Infinity', /not a decimal number/],
      ['NaN', /not a decimal number/],
      ['1_000', /not a decimal number/],
      ['1e', /not a decimal number/],
      ['e', /not a decimal number/],
      ['--1', /not a decimal number/],
      ['1.2.3', /not a decimal number/],
      ['1e300', /too large \(numbers are limited to 1e\+30 in magnitude\)/],
      ['-1.1e30', /too large/],
      ['1e999', /too large/],
      [`${'9'.repeat(500)}`, /too large/],
    ];
    for (const [text, msg] of bad) {
      const r = parseNumberLiteral(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) {
        expect(r.message, text).toMatch(msg);
        expect(r.message.length, text).toBeLessThan(120);
      }
    }
  });

  it('keeps long numbers out of messages', () => {
    const r = parseSource(`${'9'.repeat(5000)} * g`);
    expect(r.problems[0]?.message).toMatch(/^number 9{40}\.\.\. is too large/);
  });

  it('limits nesting depth and size instead of overflowing the stack', () => {
    const deep = `${'('.repeat(5000)}g${')'.repeat(5000)}`;
    expect(parseSource(deep).problems[0]?.message).toMatch(/nests deeper/);
    const long = Array.from({ length: 30_000 }, () => 'g').join('+');
    expect(parseSource(long).problems[0]?.message).toMatch(/tokens/);
  });

  it('property: parse(print(ast)) == ast over many generated files', () => {
    const r = rng(1);
    for (let i = 0; i < 600; i++) {
      const file = genFile(r);
      const text = printFile(file);
      const parsed = parseSource(text);
      expect(parsed.problems, text).toEqual([]);
      expect(stripRanges(parsed.file), text).toEqual(stripRanges(file));
    }
  });
});
