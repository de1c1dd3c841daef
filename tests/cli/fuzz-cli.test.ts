/**
 * Property test: random run names, flag values and --space files. `nos search` either accepts
 * them and makes exactly the run asked for, or refuses them with exit 1 and a message that names
 * one of the flags given; never an internal error (exit 2), never a half-made run folder.
 */
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import seedrandom from 'seedrandom';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOS_SPACE } from '../../primitives/nos-space.js';
import { nos } from '../helpers/cli.js';

type Rng = () => number;
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));

const CHARS = 'abcXYZ019.-_ /\\:*?"<>|\u00e9\u4e2d\u{1F600}\t\n\0=';
function randomString(rng: Rng, max = 12): string {
  return Array.from({ length: int(rng, 0, max) }, () => pick(rng, [...CHARS])).join('');
}

/** A value that is not valid for a flag that takes a positive integer. */
const badInt = (rng: Rng) =>
  pick(rng, ['0', '-3', '1.5', 'abc', '', ' ', 'NaN', 'Infinity', '1e400', String(2 ** 60), '--', '½']);

type Verdict = 'valid' | 'invalid' | 'either';

interface Case {
  argv: string[];
  verdict: Verdict;
  /** The values a run made from it must store. */
  expect: Record<string, unknown>;
  run?: string;
}

function randomSpace(rng: Rng, dir: string, i: number): { file: string; verdict: Verdict } {
  const file = join(dir, `space-${i}.json`);
  const kind = rng();
  let body: string;
  let verdict: Verdict;
  if (kind < 0.4) {
    // Valid: NOS ids (no repeats), maybe with a custom entry of valid rule text.
    const doc: Record<string, unknown[]> = {};
    for (const k of ['operands', 'unary', 'binary'] as const) {
      if (rng() < 0.5) continue;
      const ids = NOS_SPACE[k].map((e) => e.id).filter(() => rng() < 0.4);
      const list: unknown[] = ids.length > 0 ? ids : [NOS_SPACE[k][0]?.id];
      if (rng() < 0.3)
        list.push(
          k === 'operands'
            ? { id: `own${i}`, text: 'g * 2' }
            : k === 'unary'
              ? { id: `own${i}`, text: 'abs($1)' }
              : { id: `own${i}`, text: '$1 - 0.5 * $2' },
        );
      doc[k] = list;
    }
    if (Object.keys(doc).length === 0) doc.unary = ['id', 'sign'];
    body = JSON.stringify(doc);
    verdict = 'valid';
  } else if (kind < 0.8) {
    // Clearly not a space.
    body = pick(rng, [
      '[1,2,3]',
      '{"foo":1}',
      '{"operands":"g"}',
      '{}',
      'null',
      '{"operands": []}',
      JSON.stringify({ [`${randomString(rng, 6)}x`]: ['g'] }),
      `{"unary": ["id", ${JSON.stringify(`${randomString(rng, 8)}~`)}]}`,
      `{"binary": [{"id": "b", "text": "$1 + $3"}]}`,
      '{"operands": [{"id": "x", "text": "g +"}]}',
      '{"operands": ["g", "g"]}',
      '{"operands": [',
      randomString(rng, 20).replace(/[{["\d-]/g, 'x'),
    ]);
    verdict = 'invalid';
  } else {
    // Random structure, random names: either answer is fine, as long as it is a clean one.
    const entry = () =>
      rng() < 0.5 ? randomString(rng, 6) : { id: randomString(rng, 6), text: randomString(rng, 10) };
    const doc: Record<string, unknown> = {};
    for (const k of ['operands', 'unary', 'binary', randomString(rng, 5)])
      if (rng() < 0.5) doc[k] = rng() < 0.8 ? Array.from({ length: int(rng, 0, 3) }, entry) : randomString(rng, 4);
    body = JSON.stringify(doc);
    verdict = 'either';
  }
  writeFileSync(file, body);
  return { file, verdict };
}

function randomCase(rng: Rng, dir: string, i: number): Case {
  const argv = ['search', '--json', '--workers', '1'];
  const verdicts: Verdict[] = [];
  const expect: Record<string, unknown> = {};
  const flagValue = (
    flag: string,
    good: () => string,
    bad: () => string,
    key?: string,
    parse: (s: string) => unknown = Number,
  ) => {
    const r = rng();
    if (r < 0.45) return;
    const v = r < 0.85 ? good() : bad();
    argv.push(`--${flag}`, v);
    verdicts.push(r < 0.85 ? 'valid' : 'invalid');
    if (r < 0.85 && key) expect[key] = parse(v);
  };
  let run: string | undefined;
  const r = rng();
  if (r < 0.7) {
    run = `f${i}-${Array.from({ length: int(rng, 0, 8) }, () => pick(rng, [...'abz09.-'])).join('')}`;
  } else {
    run = pick(rng, [
      randomString(rng, 10),
      '',
      '.hidden',
      '-x',
      'a/b',
      '../up',
      'x'.repeat(65),
      `f${i} space`,
      `f${i}\u00e9`,
    ]);
  }
  argv.push('--run', run);
  const validName = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(run);
  verdicts.push(validName ? 'valid' : 'invalid');
  // The task is always given: the default (MNIST) is too slow for a property test.
  if (rng() < 0.9) {
    const t = pick(rng, ['quadratic', 'rosenbrock']);
    argv.push('--task', t);
    expect.task = t;
    verdicts.push('valid');
  } else {
    argv.push('--task', pick(rng, [randomString(rng, 8), 'quadratc', 'mlp']));
    verdicts.push('invalid');
  }
  flagValue(
    'strategy',
    () => pick(rng, ['rl', 'random', 'evolution']),
    () => pick(rng, [randomString(rng, 6), 'evolutoin', 'RL']),
    'strategy',
    String,
  );
  if (!argv.includes('--budget')) {
    // Always a small budget (the default is 400 trained rules).
    if (rng() < 0.85) {
      const b = String(int(rng, 1, 12));
      argv.push('--budget', b);
      expect.budget = Number(b);
      verdicts.push('valid');
    } else {
      argv.push('--budget', badInt(rng));
      verdicts.push('invalid');
    }
  }
  flagValue(
    'seed',
    () => String(int(rng, 0, 1_000_000)),
    () => pick(rng, ['-1', 'x', String(2 ** 60), '1.5']),
    'seed',
  );
  flagValue(
    'groups',
    () => String(int(rng, 1, 3)),
    () => pick(rng, ['0', '9', 'two', '1.5', '-1']),
    'groups',
  );
  flagValue(
    'batch',
    () => String(int(rng, 1, 20)),
    () => pick(rng, ['0', '10001', 'x']),
    'batchSize',
  );
  flagValue(
    'steps',
    () => String(int(rng, 5, 50)),
    () => badInt(rng),
    'steps',
  );
  let space: Verdict | undefined;
  if (rng() < 0.35) {
    const s = randomSpace(rng, dir, i);
    argv.push('--space', s.file);
    verdicts.push(s.verdict);
    space = s.verdict;
  }
  if (rng() < 0.25) {
    argv.push('--warm-start');
    const strategy = argv[argv.indexOf('--strategy') + 1];
    const groups = argv.includes('--groups') ? argv[argv.indexOf('--groups') + 1] : '2';
    const fits = argv.includes('--strategy') && strategy === 'evolution' && (groups === '2' || groups === '3');
    verdicts.push(!fits ? 'invalid' : space === undefined ? 'valid' : 'either');
    if (fits) expect.warmStart = true;
  }
  const verdict: Verdict = verdicts.includes('invalid') ? 'invalid' : verdicts.includes('either') ? 'either' : 'valid';
  return { argv, verdict, expect, ...(validName ? { run } : {}) };
}

/** The flags a case gives (a refusal must name one of them). */
const flagsOf = (argv: readonly string[]) =>
  argv.filter((a) => a.startsWith('--') && a !== '--json' && a !== '--workers');

describe('random run configs and space files', () => {
  const prev = process.env.NOS_RUNS;
  const runs = mkdtempSync(join(tmpdir(), 'nos-fuzz-runs-'));
  const files = mkdtempSync(join(tmpdir(), 'nos-fuzz-files-'));
  beforeAll(() => {
    process.env.NOS_RUNS = runs;
  });
  afterAll(() => {
    if (prev === undefined) delete process.env.NOS_RUNS;
    else process.env.NOS_RUNS = prev;
  });

  it('are accepted as asked, or refused with exit 1 and a message naming a flag; no internal error, no half-made run', async () => {
    const rng = seedrandom('nos-fuzz-1');
    const made = new Set<string>();
    const tally = { accepted: 0, refused: 0 };
    for (let i = 0; i < 120; i++) {
      const c = randomCase(rng, files, i);
      const what = JSON.stringify(c.argv);
      const r = await nos(...c.argv);
      expect(r.stderr, what).not.toMatch(/internal error/);
      expect([0, 1], `${what}\n${r.stderr}`).toContain(r.code);
      if (c.verdict === 'valid') expect(r.code, `${what}\n${r.stderr}`).toBe(0);
      if (c.verdict === 'invalid') expect(r.code, `${what}\n${r.stderr}`).toBe(1);
      if (r.code === 1) {
        tally.refused++;
        const last = r.stderr.trim().split('\n')[0] as string;
        expect(last, what).toMatch(/^nos search: error: /);
        expect(
          flagsOf(c.argv).some((f) => last.includes(f)),
          `${what}: the message names none of the flags given:\n${r.stderr}`,
        ).toBe(true);
      } else {
        tally.accepted++;
        const run = c.run as string;
        made.add(run);
        const doc = JSON.parse(r.stdout) as {
          run: string;
          evaluated: number;
          cached: number;
          rejected: number;
          sampled: number;
          capped: boolean;
          budgetUnit: string;
        };
        expect(doc.run).toBe(run);
        const db = new Database(join(runs, run, 'run.db'), { readonly: true, fileMustExist: true });
        const config = JSON.parse(
          (db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
        ) as Record<string, unknown>;
        const n = (db.prepare('SELECT COUNT(*) AS n FROM candidates').get() as { n: number }).n;
        db.close();
        expect(config, what).toMatchObject(c.expect);
        // The budget counts trained rules: exactly that many, unless the sample cap (20x) ended the run.
        expect(doc.budgetUnit, what).toBe('trained');
        if (doc.capped) expect(n, what).toBe(20 * (config.budget as number));
        else expect(doc.evaluated, what).toBe(config.budget);
        expect(doc.sampled).toBe(n);
        expect(doc.evaluated + doc.cached + doc.rejected).toBe(n);
      }
      // Exactly the runs accepted so far, each whole, none locked.
      expect(readdirSync(runs).sort(), what).toEqual([...made].sort());
      for (const m of made) expect(readdirSync(join(runs, m)), what).toEqual(['run.db']);
    }
    // The generator reaches both outcomes.
    expect(tally.accepted).toBeGreaterThan(5);
    expect(tally.refused).toBeGreaterThan(20);

    // Resuming with random flags: the same rules (refusal names a flag, or it goes on).
    for (const [k, run] of [...made].slice(0, 6).entries()) {
      const argv = ['search', '--resume', '--run', run, '--json', '--workers', '1'];
      if (k % 2 === 0) argv.push('--seed', String(k));
      if (k % 3 === 0) argv.push('--budget', String(int(rng, 1, 14)));
      if (k % 4 === 1) argv.push('--groups', String(int(rng, 1, 3)));
      const r = await nos(...argv);
      expect([0, 1], `${JSON.stringify(argv)}\n${r.stderr}`).toContain(r.code);
      if (r.code === 1)
        expect(
          flagsOf(argv.slice(4)).some((f) => r.stderr.includes(f)),
          r.stderr,
        ).toBe(true);
      expect(readdirSync(join(runs, run))).toEqual(['run.db']);
    }
  }, 600_000);
});
