import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { nosBin, tempFile } from '../helpers/cli.js';
import { repoRoot } from '../helpers/reference.js';

function env(runs: string): NodeJS.ProcessEnv {
  return { ...process.env, NOS_RUNS: runs };
}

function run(argv: string[], runs: string) {
  const prev = process.env.NOS_RUNS;
  process.env.NOS_RUNS = runs;
  try {
    return nosBin(argv, { timeoutMs: 240_000 });
  } finally {
    if (prev === undefined) delete process.env.NOS_RUNS;
    else process.env.NOS_RUNS = prev;
  }
}

function rows(runs: string, name: string): { idx: number; rule: string; status: string; reward: number }[] {
  const db = new Database(join(runs, name, 'run.db'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT idx, rule, status, reward FROM candidates ORDER BY idx').all() as {
      idx: number;
      rule: string;
      status: string;
      reward: number;
    }[];
  } finally {
    db.close();
  }
}

function count(runs: string, name: string): number {
  try {
    return rows(runs, name).length;
  } catch {
    return 0;
  }
}

describe('nos search', () => {
  it('survives kill -9: --resume finishes the run without re-evaluating, and matches an uninterrupted run', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-kill-'));
    const args = [
      'search',
      '--task',
      'quadratic',
      '--budget',
      '70',
      '--seed',
      '3',
      '--workers',
      '1',
      '--strategy',
      'rl',
    ];
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'nos.js'), ...args, '--run', 'killed'], {
      env: env(runs),
      stdio: 'ignore',
    });
    const deadline = Date.now() + 120_000;
    while (count(runs, 'killed') < 25 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const before = rows(runs, 'killed');
    expect(before.length).toBeGreaterThanOrEqual(25);
    expect(before.length).toBeLessThan(70);

    const resumed = run(['search', '--resume', '--run', 'killed', '--json'], runs);
    expect(resumed.code, resumed.stderr).toBe(0);
    const doc = JSON.parse(resumed.stdout) as {
      run: string;
      evaluated: number;
      cached: number;
      rejected: number;
      best: { rule: string; reward: number }[];
    };
    expect(doc.run).toBe('killed');
    expect(doc.evaluated).toBe(70); // the budget counts rules trained; cache hits come on top
    const after = rows(runs, 'killed');
    // What finished before the kill is kept as it was (in-flight ones leave gaps: compare by index).
    const byIdx = new Map(after.map((r) => [r.idx, r]));
    for (const r of before) expect(byIdx.get(r.idx)).toEqual(r);

    const straight = run([...args, '--run', 'straight', '--json'], runs);
    expect(straight.code, straight.stderr).toBe(0);
    expect(after.map(({ rule, status, reward }) => [rule, status, reward])).toEqual(
      rows(runs, 'straight').map(({ rule, status, reward }) => [rule, status, reward]),
    );
    expect(JSON.parse(straight.stdout).best).toEqual(doc.best);

    // The leaderboard and export read the run.
    const lb = run(['leaderboard', '--run', 'killed', '--top', '3', '--json'], runs);
    expect(lb.code).toBe(0);
    const board = JSON.parse(lb.stdout) as { rank: number; rule: string; reward: number; status: string }[];
    expect(board.map((b) => b.rank)).toEqual([1, 2, 3]);
    expect(board[0]!.reward).toBe(doc.best[0]!.reward);
    expect(board[0]!.reward).toBeGreaterThanOrEqual(board[1]!.reward);
    const out = tempFile('best.py', '');
    const ex = run(['export', '--run', 'killed', '--rank', '1', '--format', 'pytorch', '--out', out], runs);
    expect(ex.code, ex.stderr).toBe(0);
  }, 300_000);

  it('reports user errors: an existing run, a missing run, --resume without --run, a bad strategy', () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-err-'));
    const ok = run(
      ['search', '--task', 'rosenbrock', '--budget', '10', '--run', 'r', '--workers', '1', '--json'],
      runs,
    );
    expect(ok.code, ok.stderr).toBe(0);
    for (const [argv, msg] of [
      [['search', '--task', 'rosenbrock', '--budget', '10', '--run', 'r'], /already exists/],
      [['search', '--resume', '--run', 'nope'], /no run 'nope'/],
      [['search', '--resume'], /--resume needs --run/],
      [['search', '--strategy', 'annealing'], /--strategy must be one of rl, random, evolution/],
      [['leaderboard', '--run', 'nope'], /no run 'nope'/],
      [['export', '--run', 'r', '--rank', '99', '--format', 'ts'], /ranked rule/],
    ] as [string[], RegExp][]) {
      const r = run(argv, runs);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  }, 120_000);
});

describe('nos search --space', () => {
  it('searches a restricted space, records it with the run, and rejects a bad one', () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-space-'));
    const good = tempFile(
      'space.json',
      JSON.stringify({
        operands: ['g', 'm', 'sign-g', 'sign-m'],
        unary: ['id', 'exp', 'sign'],
        binary: ['mul', 'add'],
      }),
    );
    const r = run(
      ['search', '--task', 'quadratic', '--budget', '20', '--run', 's', '--workers', '1', '--space', good, '--json'],
      runs,
    );
    expect(r.code, r.stderr).toBe(0);
    for (const row of rows(runs, 's')) expect(row.rule).not.toMatch(/sqrt|clip|drop|noise|keep|\^|\//);
    const db = new Database(join(runs, 's', 'run.db'), { readonly: true });
    const config = JSON.parse(
      (db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
    ) as { space: { binary: string[] } };
    db.close();
    expect(config.space.binary).toEqual(['mul', 'add']);
    const bad = tempFile('bad.json', JSON.stringify({ unary: ['id', 'tanh'] }));
    const b = run(['search', '--task', 'quadratic', '--budget', '5', '--run', 'b', '--space', bad], runs);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/no unary entry 'tanh'/);
    const broken = tempFile('broken.json', JSON.stringify({ operands: [{ id: 'x', text: 'g +' }] }));
    expect(
      run(['search', '--task', 'quadratic', '--budget', '5', '--run', 'c', '--space', broken], runs).stderr,
    ).toMatch(/operands\[0\] \(id 'x'\): 'g \+' is not valid rule text/);
  }, 120_000);
});

describe('Ctrl-C', () => {
  it('stops cleanly after the evaluations in flight (exit 130), and --resume finishes the run', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-int-'));
    const child = spawn(
      process.execPath,
      [
        join(repoRoot, 'bin', 'nos.js'),
        'search',
        '--task',
        'quadratic',
        '--budget',
        '200',
        '--seed',
        '5',
        '--workers',
        '1',
        '--run',
        'int',
      ],
      {
        env: env(runs),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const deadline = Date.now() + 120_000;
    while (count(runs, 'int') < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/stopping after the evaluations in flight/);
    const stopped = count(runs, 'int');
    expect(stopped).toBeLessThan(200);
    const resumed = run(['search', '--resume', '--run', 'int', '--json'], runs);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(rows(runs, 'int').filter((r) => r.status !== 'cached' && r.status !== 'rejected')).toHaveLength(200);
  }, 200_000);
});

describe('nos search --budget-unit', () => {
  it('counts trained rules by default, sampled ones when asked, and refuses another unit', () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-unit-'));
    const common = [
      '--task',
      'quadratic',
      '--strategy',
      'random',
      '--budget',
      '6',
      '--batch',
      '3',
      '--steps',
      '20',
      '--workers',
      '1',
      '--json',
    ];
    const trained = run(['search', ...common, '--run', 'u-trained'], runs);
    expect(trained.code, trained.stderr).toBe(0);
    const t = JSON.parse(trained.stdout) as { evaluated: number; sampled: number; budgetUnit: string; capped: boolean };
    expect(t.budgetUnit).toBe('trained');
    if (!t.capped) expect(t.evaluated).toBe(6);
    expect(t.sampled).toBeGreaterThanOrEqual(6);
    const sampled = run(['search', ...common, '--run', 'u-sampled', '--budget-unit', 'sampled'], runs);
    expect(sampled.code, sampled.stderr).toBe(0);
    const s = JSON.parse(sampled.stdout) as { sampled: number; budgetUnit: string };
    expect(s).toMatchObject({ sampled: 6, budgetUnit: 'sampled' });
    expect(rows(runs, 'u-sampled')).toHaveLength(6);
    const bad = run(['search', ...common, '--run', 'u-bad', '--budget-unit', 'seconds'], runs);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/budget-unit/);
  }, 240_000);
});

function evaluations(
  runs: string,
  name: string,
): { hash: string; rung: number; seed: number; task: string; reward: number; seconds: number }[] {
  try {
    const db = new Database(join(runs, name, 'run.db'), { readonly: true, fileMustExist: true });
    try {
      return db
        .prepare('SELECT hash, rung, seed, task, reward, seconds FROM evaluations ORDER BY rung, hash, seed')
        .all() as {
        hash: string;
        rung: number;
        seed: number;
        task: string;
        reward: number;
        seconds: number;
      }[];
    } finally {
      db.close();
    }
  } catch {
    return [];
  }
}

describe('nos search: the funnel', () => {
  it('survives kill -9 inside a rung: --resume keeps every stored row, adds the missing ones, and matches an uninterrupted run', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-funnel-'));
    const args = [
      'search',
      '--task',
      'quadratic',
      '--budget',
      '30',
      '--seed',
      '2',
      '--workers',
      '1',
      '--strategy',
      'random',
      '--rung-seeds',
      '4,10,2',
      '--long-factor',
      '40',
      '--transfer',
      'rosenbrock',
    ];
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'nos.js'), ...args, '--run', 'fk'], {
      env: env(runs),
      stdio: 'ignore',
    });
    const deadline = Date.now() + 120_000;
    while (evaluations(runs, 'fk').filter((e) => e.rung === 2).length < 5 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 30));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const before = evaluations(runs, 'fk');
    expect(before.filter((e) => e.rung === 2).length).toBeGreaterThanOrEqual(5);
    expect(before.filter((e) => e.rung === 3)).toHaveLength(0);

    const resumed = run(['search', '--resume', '--run', 'fk', '--json'], runs);
    expect(resumed.code, resumed.stderr).toBe(0);
    const after = evaluations(runs, 'fk');
    const key = (e: { hash: string; rung: number; seed: number }) => `${e.hash}/${e.rung}/${e.seed}`;
    const byKey = new Map(after.map((e) => [key(e), e]));
    for (const e of before) expect(byKey.get(key(e))).toEqual(e); // kept as they were, never recomputed
    // Rungs 1 (5 rules + the baseline, 4 seeds), 2 (the same 6, 10 seeds) and 3 (2 finalists + the baseline, 2 seeds).
    expect(after.filter((e) => e.rung > 0)).toHaveLength(6 * 4 + 6 * 10 + 3 * 2);
    expect(after.filter((e) => e.rung === 3).every((e) => e.task === 'rosenbrock')).toBe(true);

    const straight = run([...args, '--run', 'fs', '--json'], runs);
    expect(straight.code, straight.stderr).toBe(0);
    const strip = (es: typeof after) =>
      es.map(({ hash, rung, seed, task, reward }) => [hash, rung, seed, task, reward]);
    expect(strip(after)).toEqual(strip(evaluations(runs, 'fs')));
    const doc = JSON.parse(resumed.stdout) as {
      best: { rung: number; seeds: number; ci95: [number, number] | null }[];
      funnel: { verdicts: { proxy: { verdict: string; seeds: number } }[] };
    };
    expect(JSON.parse(straight.stdout).best).toEqual(doc.best);
    expect(doc.best[0]).toMatchObject({ rung: 3, seeds: 2 });
    expect(doc.funnel.verdicts[0]?.proxy.seeds).toBe(10);
    expect(['better', 'worse', 'tied']).toContain(doc.funnel.verdicts[0]?.proxy.verdict);

    // The leaderboard carries the rung, the seeds and the interval.
    const lb = run(['leaderboard', '--run', 'fk', '--top', '30', '--json'], runs);
    const board = JSON.parse(lb.stdout) as {
      rank: number;
      rung: number;
      seeds: number;
      ci95: [number, number] | null;
      reward: number;
    }[];
    expect(board.map((b) => b.rung).slice(0, 3)).toEqual([3, 3, 2]); // two finalists (the baseline is not a sampled rule)
    expect(board.at(-1)).toMatchObject({ rung: 0, seeds: 1, ci95: null });
    for (const b of board.filter((x) => x.seeds > 1)) expect(b.ci95![0]).toBeLessThanOrEqual(b.reward);
  }, 300_000);

  it('refuses bad funnel flags, naming them, and a resume that changes the funnel', () => {
    const runs = mkdtempSync(join(tmpdir(), 'nos-funnel-err-'));
    for (const [extra, msg] of [
      [['--promote', '0'], /--promote is the fraction/],
      [['--rung-seeds', '3,x,2'], /--rung-seeds takes three integers/],
      [['--rung-seeds', '3,5'], /--rung-seeds takes three integers/],
      [['--transfer', 'convnet-fashon'], /did you mean 'convnet-fashion'/],
      [['--funnel', 'maybe'], /--funnel must be on or off/],
      [['--funnel', 'off', '--finalists', '3'], /--funnel off takes no funnel settings/],
      [['--baseline', 'adamm'], /--baseline: 'adamm' is not a built-in rule/],
    ] as [string[], RegExp][]) {
      const r = run(['search', '--task', 'quadratic', '--budget', '5', '--run', 'e', ...extra], runs);
      expect(r.code, extra.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
    }
    const ok = run(
      ['search', '--task', 'quadratic', '--budget', '5', '--run', 'o', '--workers', '1', '--funnel', 'off', '--json'],
      runs,
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).funnel).toBeUndefined();
    const again = run(['search', '--resume', '--run', 'o', '--finalists', '1'], runs);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/--funnel conflicts with run 'o', which was made with no funnel/);
  }, 120_000);
});
