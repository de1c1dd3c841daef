import { describe, expect, it } from 'vitest';
import { compileRules } from '../../dsl/index.js';
import { LIBRARY_SOURCE } from '../../dsl/library.js';
import { pick, rng } from '../helpers/gen.js';

/** The front door must never throw, and never fall into its internal-error path. */
function frontDoor(text: string): void {
  const r = compileRules(text, 'fuzz.nos');
  for (const d of r.diagnostics) {
    expect(d.code, `${JSON.stringify(text)}: ${d.message}`).not.toBe('internal');
    expect(d.span.line).toBeGreaterThanOrEqual(1);
    expect(d.span.col).toBeGreaterThanOrEqual(1);
  }
  if (r.ok) expect(r.rules.length).toBeGreaterThan(0);
}

const ALPHABET = [...'gmvwt0123456789.eE+-*/^(){},;=@#_ \n\tabcxyz$', 'rule', 'ema', 'prev', 'sign', 'adam', '@powersign-ld', 'clip', '1e-8', 'drop'];

describe('front door fuzz', () => {
  it('survives random token soup', () => {
    const r = rng(11);
    for (let i = 0; i < 1500; i++) {
      const n = 1 + Math.floor(r() * 30);
      frontDoor(Array.from({ length: n }, () => pick(r, ALPHABET)).join(''));
    }
  });

  it('survives mutations of the library source', () => {
    const r = rng(12);
    const lines = LIBRARY_SOURCE.split('\n').filter((l) => l.trim() !== '');
    for (let i = 0; i < 800; i++) {
      const start = Math.floor(r() * lines.length);
      let text = lines.slice(start, start + 1 + Math.floor(r() * 6)).join('\n');
      const edits = 1 + Math.floor(r() * 4);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(r() * (text.length + 1));
        const op = Math.floor(r() * 3);
        if (op === 0) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 4));
        else if (op === 1) text = text.slice(0, at) + pick(r, ALPHABET) + text.slice(at);
        else text = text.slice(0, at) + text.slice(at).split('').reverse().join('').slice(0, 5) + text.slice(at + 5);
      }
      frontDoor(text);
    }
  });

  it('survives hostile inputs', () => {
    for (const text of [
      '\u0000',
      '\uFEFFg',
      'g'.repeat(100_000),
      `${'-'.repeat(10_000)}g`,
      `${'exp('.repeat(70)}g${')'.repeat(70)}`,
      'rule',
      'rule r(',
      'rule r(a=1e309) = g',
      'constructor',
      '__proto__',
      'toString(g)',
      'hasOwnProperty * g',
      'rule constructor = g',
      '1'.repeat(400),
      `${'g^'.repeat(3000)}g`,
      `${'-'.repeat(19_990)}g`,
      `${'(g)^'.repeat(4000)}g`,
      `${'g^-'.repeat(4000)}g`,
      Array.from({ length: 12 }, (_, i) => `rule r${i} = ${i === 0 ? 'g' : `r${i - 1} * 2`}`).join('\n'),
    ]) {
      frontDoor(text);
    }
  });
});

describe('limits', () => {
  it('rejects rule chains nested too deep with a located limit error', () => {
    // Listed top-down, so checking r11 must first check r10, which must check r9, ...
    const text = Array.from({ length: 12 }, (_, i) => `rule r${i} = ${i === 0 ? 'g' : `r${i - 1} * 2`}`)
      .reverse()
      .join('\n');
    const r = compileRules(text);
    expect(r.diagnostics.some((d) => d.code === 'limit' && /levels deep/.test(d.message))).toBe(true);
    // The rules below the limit still check.
    expect(r.rules.length).toBeGreaterThan(0);
  });

  it('rejects runaway minus and ^ chains before parsing', () => {
    for (const text of [`${'-'.repeat(19_990)}g`, `${'(g)^'.repeat(4000)}g`]) {
      const r = compileRules(text);
      expect(r.diagnostics[0]?.code).toBe('limit');
    }
  });
});
