import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RlController } from '../../controller/rl.js';
import { parseSpaceConfig, readSpaceFile, SpaceError } from '../../controller/space.js';
import { Evolution, RandomSearch } from '../../controller/strategy.js';
import { tfReady } from '../helpers/tf.js';

function refusal(raw: unknown): string {
  try {
    parseSpaceConfig(raw);
  } catch (e) {
    if (e instanceof SpaceError) return e.message;
    throw e;
  }
  throw new Error(`accepted ${JSON.stringify(raw)}`);
}

describe('--space files', () => {
  it('refuses what is not a space, saying where and what was expected', () => {
    const cases: [unknown, RegExp][] = [
      [[1, 2, 3], /^the file: expected a JSON object with lists "operands", "unary" and\/or "binary", got a list$/],
      [{ foo: 1 }, /^the file: unknown key 'foo' \(expected operands, unary, binary\)$/],
      [
        { operands: 'g' },
        /^operands: expected a list of NOS ids \(strings\) or \{"id", "text"\} entries, got the string "g"$/,
      ],
      [null, /got null/],
      [{}, /names no list/],
      [{ operands: [] }, /^operands: the list is empty/],
      [
        { unary: ['id', 7] },
        /^unary\[1\]: expected a NOS id \(a string\) or an \{"id", "text"\} entry, got the number 7$/,
      ],
      [{ binary: [{ id: 'b' }] }, /^binary\[0\]\.text: missing/],
      [
        { binary: [{ id: 'b', text: '$1 * $2', extra: true }] },
        /^binary\[0\]: unknown key 'extra' \(expected id, text\)$/,
      ],
      [{ operands: [{ id: '', text: 'g' }] }, /^operands\[0\]\.id: expected an id of 1-64/],
      [{ unary: ['id', 'tanh'] }, /^unary\[1\]: no unary entry 'tanh' in the NOS space/],
      [{ unary: ['idd'] }, /did you mean 'id'\?/],
      [{ operands: ['g', 'm', 'g'] }, /^operands\[2\]: duplicate id 'g' \(also operands\[0\]\)$/],
      [
        { operands: [{ id: 'x', text: 'g +' }] },
        /^operands\[0\] \(id 'x'\): 'g \+' is not valid rule text as an operand, in \(operand\) \* g:\noperands\[0\]:1:5: error:/,
      ],
      [
        { operands: [{ id: 'x', text: 'g) + (m' }] },
        /^operands\[0\] \(id 'x'\): 'g\) \+ \(m' has unbalanced brackets$/,
      ],
      [{ unary: [{ id: 'u', text: 'sqrt($1))' }] }, /unbalanced brackets/],
      [
        { unary: [{ id: 'u', text: '$2' }] },
        /^unary\[0\] \(id 'u'\): '\$2' is not allowed in a unary entry \(use \$1\)$/,
      ],
      [{ unary: [{ id: 'u', text: 'g' }] }, /^unary\[0\] \(id 'u'\): a unary entry must use its argument \$1$/],
      [{ operands: [{ id: 'o', text: '$1' }] }, /operands take no arguments/],
      [{ operands: [{ id: 'o', text: 'rule a = g\nrule b = m' }] }, /operands\[0\] \(id 'o'\)/],
    ];
    for (const [raw, msg] of cases) expect(refusal(raw), JSON.stringify(raw)).toMatch(msg);
  });

  it('accepts operands that are no rule on their own (constants, noise, weight decay)', () => {
    // Found by the CLI fuzz test: each entry is checked as the search uses it, (operand) * g.
    const { space } = parseSpaceConfig({
      operands: ['one', 'two', 'noise', 'wd4', { id: 'half', text: '0.5' }],
      unary: [{ id: 'neg2', text: '-2 * $1' }],
    });
    expect(space.operands.map((e) => e.text)).toEqual(['1', '2', 'noise', '1e-4 * w', '0.5']);
  });

  it('accepts ids, new entries, and one-entry lists', () => {
    const { space, config } = parseSpaceConfig({
      operands: ['g', { id: 'lion', text: 'lion' }],
      unary: ['sign'],
      binary: [{ id: 'avg', text: '($1 + $2) / 2' }],
    });
    expect(space.operands.map((e) => e.text)).toEqual(['g', 'lion']);
    expect(space.unary).toHaveLength(1);
    expect(space.binary[0]?.id).toBe('avg');
    expect(config.unary).toEqual(['sign']);
  });

  it('reads files: missing, a folder, a FIFO, bad JSON with its line and column', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nos-space-'));
    const read = (path: string) => {
      try {
        readSpaceFile(path);
      } catch (e) {
        if (e instanceof SpaceError) return e.message;
        throw e;
      }
      return 'accepted';
    };
    expect(read(join(dir, 'nope.json'))).toMatch(/nope\.json: cannot read it \(no such file\)/);
    expect(read(dir)).toMatch(/cannot read it \(it is a folder, not a file\)/);
    const fifo = join(dir, 'space.fifo');
    execFileSync('mkfifo', [fifo]);
    expect(read(fifo)).toMatch(/not a regular file/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{\n  "operands": ["g"],\n}');
    expect(read(bad)).toMatch(/bad\.json: not valid JSON at line 3, column 1 /);
    writeFileSync(bad, '{"operands": ["g",]}');
    expect(read(bad)).toMatch(/bad\.json: not valid JSON \(Unexpected token/);
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ unary: ['id', 'foo'] }));
    expect(read(good)).toMatch(/good\.json: unary\[1\]: no unary entry 'foo'/);
  });
});

describe('one-entry spaces', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('every strategy searches a space with one operand, one unary and one binary entry (RL: a softmax over one choice)', () => {
    const { space } = parseSpaceConfig({ operands: ['g'], unary: ['sign'], binary: ['mul'] });
    for (const groups of [1, 2]) {
      const rl = new RlController({ seed: 1, groups, space });
      const proposals = rl.propose(4);
      if (groups === 1) expect(new Set(proposals.map((p) => p.text))).toEqual(new Set(['(sign(g)) * (sign(g))']));
      for (const p of proposals) expect(p.text).toMatch(/^\(sign\(/);
      const stats = rl.observe(proposals, [0.1, 0.2, 0.3, 0.4], [0, 1, 2, 3]);
      expect(Number.isFinite(stats.entropy)).toBe(true);
      rl.dispose();
      for (const s of [
        new RandomSearch({ seed: 1, groups, space }),
        new Evolution({ seed: 1, groups, space, population: 2, tournament: 1 }),
      ]) {
        const ps = s.propose(3);
        s.observe(ps, [0.1, 0.2, 0.3], [0, 1, 2]);
        expect(s.propose(3).every((p) => p.text.includes('sign(g)'))).toBe(true);
      }
    }
  });
});
