/**
 * Damaged and crafted run.db files (issue 24, item 5). A real run (search and funnel on the
 * quadratic task) is copied and each copy damaged: tables dropped, columns renamed, values of
 * the wrong type or out of range, JSON that does not parse or has the wrong shape, huge values,
 * a corrupt file. `leaderboard`, `report`, `export` and `search --resume` each end with exit 0
 * (the damage does not touch what they read) or exit 1 with a message that names the run, never
 * an internal error (exit 2). The named cases first, then a fuzz over random damages.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRun, searchRun } from '../../controller/run.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import { findTask } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { nos } from '../helpers/cli.js';
import { pick, rng } from '../helpers/gen.js';
import { tfReady } from '../helpers/tf.js';

const runs = mkdtempSync(join(tmpdir(), 'nos-damaged-'));
const task = findTask('quadratic')!;
const inProcess = {
  evaluate: async (req: EvalRequest) => ({
    result: evaluateRule(req.rule, task, undefined, { seed: req.seed, ...(req.steps ? { steps: req.steps } : {}) }),
  }),
};
let prev: string | undefined;

beforeAll(async () => {
  await tfReady;
  prev = process.env.NOS_RUNS;
  process.env.NOS_RUNS = runs;
  const store = createRun({
    run: 'base',
    task: 'quadratic',
    strategy: 'random',
    budget: 6,
    batchSize: 3,
    // Staleness 1, not the default: the pipelined loop checkpoints a batch once it observes it,
    // and with the default (4) a 6-rule run ends before any batch is observed, leaving no
    // checkpoint to damage. With 1, batches 0 and 1 are checkpointed, each with the batch
    // proposed beyond it (the `pending` column, damaged below too).
    staleness: 1,
    seed: 3,
    funnel: { promote: 1, longTop: 2, finalists: 1, seeds: [2, 2, 2], transfer: 'none' },
  });
  try {
    await searchRun(store, { evaluator: inProcess });
  } finally {
    store.close();
  }
}, 60_000);

afterAll(() => {
  if (prev === undefined) delete process.env.NOS_RUNS;
  else process.env.NOS_RUNS = prev;
  rmSync(runs, { recursive: true, force: true });
});

let copies = 0;
/** A copy of the base run, damaged by `f` (SQL on its database, or the file itself). */
function damaged(f: (db: Database.Database, file: string) => void): string {
  const name = `d${copies++}`;
  cpSync(join(runs, 'base'), join(runs, name), { recursive: true });
  const file = join(runs, name, 'run.db');
  const db = new Database(file);
  try {
    f(db, file);
  } finally {
    db.close();
  }
  return name;
}

const COMMANDS = (run: string): string[][] => [
  ['leaderboard', '--run', run, '--json'],
  ['report', '--run', run, '--no-adam', '--out', join(runs, `${run}.html`)],
  ['export', '--run', run, '--rank', '1', '--format', 'ts'],
  ['search', '--resume', '--run', run, '--json', '--workers', '1'],
];

/** Every command on a damaged run: exit 0, or exit 1 naming the run; returns the exit codes. */
async function survey(run: string, commands = COMMANDS(run)): Promise<{ codes: number[]; errors: string[] }> {
  const codes: number[] = [];
  const errors: string[] = [];
  for (const argv of commands) {
    const r = await nos(...argv);
    const label = `${argv[0]} on ${run}: ${r.stderr.slice(0, 400)}`;
    expect(r.stderr, label).not.toMatch(/internal error/);
    expect([0, 1], label).toContain(r.code);
    if (r.code === 1) {
      expect(r.stderr, label).toMatch(new RegExp(`run '${run}'`));
      errors.push(r.stderr);
    }
    codes.push(r.code);
  }
  return { codes, errors };
}

/** The damages the issue lists, each with what the message must say. */
const NAMED: [string, (db: Database.Database, file: string) => void, RegExp][] = [
  [
    'the candidates table dropped',
    (db) => db.exec('DROP TABLE candidates'),
    /is damaged: its candidates table is missing/,
  ],
  [
    'a column renamed',
    (db) => db.exec('ALTER TABLE candidates RENAME COLUMN reward TO score'),
    /its candidates table has no column reward/,
  ],
  [
    'reward stored as text',
    (db) => db.exec("UPDATE candidates SET reward = 'high'"),
    /candidates row 0: reward is text \('high'\), where a finite number belongs/,
  ],
  [
    'test_acc stored as text',
    (db) => db.exec("UPDATE candidates SET test_acc = 'n/a' WHERE status = 'ok'"),
    /test_acc is text/,
  ],
  [
    'best_lr holding a script',
    (db) => db.exec("UPDATE candidates SET best_lr = '<script>alert(1)</script>'"),
    /best_lr is text/,
  ],
  [
    'checkpoint stats not JSON',
    (db) => db.exec("UPDATE checkpoints SET stats = '{oops'"),
    /checkpoints row \d+: stats is text .*where JSON belongs/,
  ],
  [
    'checkpoint state not JSON',
    (db) => db.exec("UPDATE checkpoints SET state = 'garbage'"),
    /checkpoints row \d+: state is text/,
  ],
  [
    "checkpoint state JSON but not the strategy's",
    (db) => db.exec(`UPDATE checkpoints SET state = '{"rng": 5}'`),
    /checkpoint \d+: its state is not a random strategy's|is damaged/,
  ],
  [
    'checkpoint proposed batches not JSON',
    (db) => db.exec("UPDATE checkpoints SET pending = '[[{'"),
    /checkpoints row \d+: pending is text .*where JSON belongs/,
  ],
  [
    'checkpoint proposed batches JSON but not proposals',
    (db) => db.exec(`UPDATE checkpoints SET pending = '[[{"text": 5}]]'`),
    /the checkpoint after batch \d+ is damaged: its proposed batches are malformed/,
  ],
  ['a detail that is not JSON', (db) => db.exec("UPDATE candidates SET detail = 'nope'"), /detail is text/],
  [
    'a 1,500,000-point curve',
    (db) => db.prepare('UPDATE candidates SET detail = ?').run(JSON.stringify({ curve: new Array(1_500_000).fill(1) })),
    /holds a curve of 1500000 points; at most 1000000/,
  ],
  [
    'a funnel baseline that is not a rule',
    (db) => {
      const c = JSON.parse(
        (db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
      );
      c.funnel.baseline = 'not-a-rule';
      db.prepare("UPDATE meta SET value = ? WHERE key = 'config'").run(JSON.stringify(c));
    },
    /its stored config is not readable: funnel\.baseline: not a built-in rule/,
  ],
  [
    'a stored seed of 1e300',
    (db) => {
      const c = JSON.parse(
        (db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
      );
      c.seed = 1e300;
      db.prepare("UPDATE meta SET value = ? WHERE key = 'config'").run(JSON.stringify(c));
    },
    /its stored config is not readable: seed: Number must be less than or equal to 9007199254740991/,
  ],
  [
    'an evaluation with an invalid status',
    (db) => db.exec("UPDATE evaluations SET status = 'exploded'"),
    /evaluations row .*: status is text \('exploded'\), where one of ok, diverged, invalid, timeout belongs/,
  ],
  [
    'an evaluation seed of 1e300',
    (db) =>
      db.exec('UPDATE evaluations SET seed = 1e300 WHERE rowid = (SELECT min(rowid) FROM evaluations WHERE rung = 2)'),
    /evaluations row \(rung 2, quadratic, seed \(key the number 1e\+300\)\): seed is the number 1e\+300, where an integer from 0 to 2\^53-1 belongs/,
  ],
  [
    'schema 2',
    (db) => db.exec("UPDATE meta SET value = '2' WHERE key = 'schema'"),
    /has store schema 2; this nos reads schema 1/,
  ],
  [
    'a 300,000-character rule',
    (db) => db.prepare('UPDATE candidates SET rule = ? WHERE idx = 1').run('g'.repeat(300_000)),
    /candidates\.rule holds a value of 300000 characters; at most 200000/,
  ],
  [
    'a corrupt page',
    (_db, file) => {
      const bytes = readFileSync(file);
      bytes.fill(0xa5, 4096, Math.min(bytes.length, 4096 * 3));
      writeFileSync(file, bytes);
    },
    /cannot read run .*(corrupt|not a SQLite database)|is damaged/,
  ],
];

describe('damaged run databases', () => {
  it('the base run is whole: every command works on it', async () => {
    const { codes } = await survey('base');
    expect(codes).toEqual([0, 0, 0, 0]);
  }, 60_000);

  for (const [what, damage, message] of NAMED) {
    it(`${what}: a clear error naming the run, exit 1, never exit 2`, async () => {
      const run = damaged(damage);
      const { codes, errors } = await survey(run);
      expect(
        codes.some((c) => c === 1),
        `${what}: ${codes}`,
      ).toBe(true);
      expect(errors.join('\n'), what).toMatch(message);
    }, 60_000);
  }

  it('fuzz: random damage to random tables, columns and values; exit 0 or 1 naming the run, never 2', async () => {
    const r = rng(24);
    const TABLES = ['candidates', 'checkpoints', 'evaluations', 'meta'] as const;
    const VALUES: unknown[] = [
      'garbage',
      '',
      1e300,
      -1,
      -1e-300,
      1.5,
      null,
      Buffer.from([0, 255, 1]),
      '{"a":',
      '[]',
      'null',
      '{}',
      Number.MAX_SAFE_INTEGER + 2,
    ];
    const columns = (db: Database.Database, t: string) =>
      (db.prepare(`PRAGMA table_info(${t})`).all() as { name: string }[]).map((c) => c.name);
    let failed = 0;
    const n = 40;
    for (let k = 0; k < n; k++) {
      const kind = Math.floor(r() * 6);
      const run = damaged((db, file) => {
        const t = pick(r, TABLES);
        if (kind === 0) db.exec(`DROP TABLE ${t}`);
        else if (kind === 1) {
          const c = pick(r, columns(db, t));
          db.exec(`ALTER TABLE ${t} RENAME COLUMN ${c} TO ${c}_x`);
        } else if (kind === 2 || kind === 3) {
          // A value of another type (SQLite keeps what it is given, whatever the column says).
          const c = pick(r, columns(db, t));
          try {
            db.prepare(`UPDATE ${t} SET ${c} = ? WHERE rowid IN (SELECT rowid FROM ${t} ORDER BY rowid LIMIT 1)`).run(
              pick(r, VALUES) as string,
            );
          } catch {
            // NOT NULL or a primary key refused it: this copy stays whole
          }
        } else if (kind === 4) {
          // JSON columns: text that is not JSON, or JSON of another shape.
          const [table, col] = pick(r, [
            ['candidates', 'detail'],
            ['checkpoints', 'state'],
            ['checkpoints', 'stats'],
            ['meta', 'value'],
          ] as const);
          db.prepare(`UPDATE ${table} SET ${col} = ?`).run(
            pick(r, ['{', '[1,2]', '"text"', '{"curve": "x"}', '{"curve": [1, "a"]}', '1e999']),
          );
        } else {
          const size = statSync(file).size;
          const bytes = readFileSync(file);
          const at = 100 + Math.floor(r() * (size - 200));
          bytes.fill(Math.floor(r() * 256), at, Math.min(size, at + 1 + Math.floor(r() * 2048)));
          writeFileSync(file, bytes);
        }
      });
      const { codes } = await survey(run);
      if (codes.includes(1)) failed++;
    }
    // Not every damage matters (a free page, a number that is still a number, a NULL where one
    // is allowed): enough of it does, and none of it is an internal error (survey checks each).
    expect(failed).toBeGreaterThanOrEqual(n / 4);
  }, 240_000);
});
