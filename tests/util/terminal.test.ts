/**
 * Terminal escaping (util/terminal.ts) and the CLI's use of it: control characters from rule
 * files, run databases, flags and jobs never reach the terminal raw, JSON output keeps its
 * meaning, and echoed values are cut.
 */
import { describe, expect, it } from 'vitest';
import { safeIo } from '../../cli/io.js';
import { cutLongLines, hasControlCharacters, shown, terminalSafe } from '../../util/terminal.js';
import { nos, tempFile } from '../helpers/cli.js';

/** Every character a terminal acts on: C0 but tab and newline, DEL, C1, bidi controls, separators. */
const CONTROLS = [
  ...Array.from({ length: 32 }, (_, i) => i).filter((i) => i !== 9 && i !== 10),
  0x7f,
  ...Array.from({ length: 32 }, (_, i) => 0x80 + i),
  0x2028,
  0x2029,
  0x202a,
  0x202e,
  0x2066,
  0x2069,
].map((c) => String.fromCharCode(c));

/** A deterministic stream of strings mixing controls, text, quotes and astral characters. */
function* samples(n: number): Generator<string> {
  let x = 12345;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x;
  };
  const alphabet = [...CONTROLS, 'a', 'Z', ' ', '"', '\\', '\t', '\n', 'é', '😀', '\u00a0', '{', '}'];
  for (let k = 0; k < n; k++) {
    const len = next() % 40;
    yield Array.from({ length: len }, () => alphabet[next() % alphabet.length]).join('');
  }
}

describe('terminalSafe', () => {
  it('escapes every terminal control character as \\uXXXX and leaves the rest alone', () => {
    for (const c of CONTROLS) {
      const out = terminalSafe(`a${c}b`);
      expect(out).toBe(`a\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}b`);
      expect(hasControlCharacters(out)).toBe(false);
    }
    expect(terminalSafe('plain text, tabs\tand\nnewlines, é 😀')).toBe('plain text, tabs\tand\nnewlines, é 😀');
    expect(terminalSafe('\u001b]0;pwned\u0007\u001b[2J')).toBe('\\u001b]0;pwned\\u0007\\u001b[2J');
  });

  it('keeps JSON meaning: the escaped document parses to the same value (property test)', () => {
    for (const s of samples(500)) {
      const doc = JSON.stringify({ rule: s, list: [s, 1] });
      const safe = terminalSafe(doc);
      expect(hasControlCharacters(safe)).toBe(false);
      expect(JSON.parse(safe)).toEqual({ rule: s, list: [s, 1] });
    }
  });

  it('shown() cuts long values and says how long they were; cutLongLines cuts what nobody cut', () => {
    expect(shown('x'.repeat(200))).toBe(`${'x'.repeat(80)}… (200 characters)`);
    expect(shown('short')).toBe('short');
    expect(shown('\u001b[31mred')).toBe('\\u001b[31mred');
    const line = `start ${'y'.repeat(100_000)} end`;
    const cut = cutLongLines(`first\n${line}\nlast`);
    expect(cut.length).toBeLessThan(2200);
    expect(cut).toMatch(/^first\nstart y+ …\(\d+ characters cut\)… y+ end\nlast$/);
  });

  it('safeIo escapes stdout and stderr, and cuts stderr lines only', () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = safeIo({ out: (t) => out.push(t), err: (t) => err.push(t) });
    io.out(`\u0007${'z'.repeat(5000)}`);
    io.err(`\u0000${'z'.repeat(5000)}`);
    expect(out[0]).toBe(`\\u0007${'z'.repeat(5000)}`);
    expect(err[0]?.length).toBeLessThan(2100);
    expect(err[0]?.startsWith('\\u0000zz')).toBe(true);
  });
});

describe('the CLI prints nothing raw', () => {
  const ESC = '\u001b]0;owned\u0007\u001b[2J\u0000';

  it('a rule file with ESC, BEL and NUL: check and its diagnostics show them escaped', async () => {
    const file = tempFile('evil.nos', `sign(g) * ${ESC}bogus`);
    const r = await nos('check', '--file', file);
    expect(r.code).toBe(1);
    expect(hasControlCharacters(r.stderr + r.stdout)).toBe(false);
    expect(r.stderr).toContain('\\u001b');
  });

  it('flags and unknown commands with control characters are escaped', async () => {
    for (const argv of [[`bad${ESC}`], ['eval', '--rules', `adam,${ESC}`], ['leaderboard', '--run', `x${ESC}`]]) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(hasControlCharacters(r.stderr), argv.join(' ')).toBe(false);
      expect(r.stderr, argv.join(' ')).toContain('\\u001b');
    }
  });

  it('command-line values are echoed cut, not in full (a 130,000-character value)', async () => {
    const big = 'x'.repeat(130_000);
    const cases = [
      [big],
      ['eval', '--rules', big],
      ['eval', '--rules', `adam,${big}(`],
      ['eval', '--rules', 'adam', '--task', big],
      ['search', '--run', big, '--budget', '1'],
      ['leaderboard', '--run', big],
      ['tasks', `--${big}`],
      ['check', big],
      ['eval', '--rules', 'adam', '--lrs', big],
      ['export', '--rule', 'adam', '--format', big],
    ];
    for (const argv of cases) {
      const r = await nos(...argv);
      const label = argv.map((a) => a.slice(0, 20)).join(' ');
      expect(r.code, label).toBe(1);
      expect(r.stderr.length, label).toBeLessThan(3000);
      expect(r.stderr, label).not.toMatch(/internal error/);
    }
  });
});
