/**
 * `nos search` runs from the command line: the stored config on --resume, the run lock between
 * real processes, runs a user can only read, and errors of the environment.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { nosBin, type RunResult, tempFile } from '../helpers/cli.js';
import { repoRoot } from '../helpers/reference.js';

const BIN = join(repoRoot, 'bin', 'nos.js');

function runs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nos-runcli-'));
  chmodSync(dir, 0o755);
  return dir;
}

/** The nos binary with $NOS_RUNS set. */
function nosIn(dir: string, argv: string[]): RunResult {
  const prev = process.env.NOS_RUNS;
  process.env.NOS_RUNS = dir;
  try {
    return nosBin(argv, { timeoutMs: 120_000 });
  } finally {
    if (prev === undefined) delete process.env.NOS_RUNS;
    else process.env.NOS_RUNS = prev;
  }
}

/** Candidates actually trained (not cache hits or rejected rules): what a new run's budget counts. */
function trainedCount(dir: string, run: string): number {
  const db = new Database(join(dir, run, 'run.db'), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare("SELECT COUNT(*) AS n FROM candidates WHERE status NOT IN ('cached', 'rejected')").get() as {
        n: number;
      }
    ).n;
  } finally {
    db.close();
  }
}

function count(dir: string, run: string): number {
  try {
    const db = new Database(join(dir, run, 'run.db'), { readonly: true, fileMustExist: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM candidates').get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

function storedConfig(dir: string, run: string): Record<string, unknown> {
  const db = new Database(join(dir, run, 'run.db'), { readonly: true, fileMustExist: true });
  try {
    return JSON.parse(
      (db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string }).value,
    ) as Record<string, unknown>;
  } finally {
    db.close();
  }
}

async function until(what: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => child.on('exit', (code) => r(code)));

describe('nos search --resume uses the stored config', () => {
  it('an RL run made with --groups 3 resumes without the flag (it used to fail: "offset is out of bounds")', () => {
    const dir = runs();
    const made = nosIn(dir, [
      'search',
      '--task',
      'quadratic',
      '--budget',
      '20',
      '--groups',
      '3',
      '--run',
      'g3',
      '--workers',
      '1',
      '--seed',
      '2',
      '--json',
    ]);
    expect(made.code, made.stderr).toBe(0);
    expect(storedConfig(dir, 'g3')).toMatchObject({ groups: 3, warmStart: false, strategy: 'rl' });
    const resumed = nosIn(dir, ['search', '--resume', '--run', 'g3', '--budget', '30', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/budget raised from 20 to 30 rules \(stored with the run\)/);
    expect(resumed.stderr).toMatch(/3 groups/);
    expect(trainedCount(dir, 'g3')).toBe(30); // the budget counts rules trained
    expect(storedConfig(dir, 'g3').budget).toBe(30);
    // The same as a run made with budget 30 from the start.
    const straight = nosIn(dir, [
      'search',
      '--task',
      'quadratic',
      '--budget',
      '30',
      '--groups',
      '3',
      '--run',
      'g3s',
      '--workers',
      '1',
      '--seed',
      '2',
      '--json',
    ]);
    expect(JSON.parse(straight.stdout).best).toEqual(JSON.parse(resumed.stdout).best);
  }, 120_000);

  it('refuses conflicting flags (naming the flag and the stored value) and --warm-start where it does nothing', () => {
    const dir = runs();
    expect(
      nosIn(dir, [
        'search',
        '--task',
        'quadratic',
        '--budget',
        '10',
        '--strategy',
        'random',
        '--run',
        'r',
        '--workers',
        '1',
        '--json',
      ]).code,
    ).toBe(0);
    const cases: [string[], RegExp][] = [
      [['--task', 'rosenbrock'], /--task rosenbrock conflicts with run 'r', which was made with --task quadratic/],
      [['--seed', '9'], /--seed 9 conflicts with run 'r', which was made with --seed 0/],
      [['--strategy', 'rl'], /--strategy rl conflicts with run 'r', which was made with --strategy random/],
      [['--groups', '3'], /--groups 3 conflicts with run 'r', which was made with --groups 2/],
      [
        ['--budget', '5'],
        /--budget 5 is below the budget of run 'r' \(10 trained rules, with 10 trained of \d+ sampled\)/,
      ],
      [
        ['--space', tempFile('s.json', '{"unary": ["id", "sign"]}')],
        /--space .*s\.json conflicts with run 'r', which was made with the full NOS space/,
      ],
    ];
    for (const [flags, msg] of cases) {
      const r = nosIn(dir, ['search', '--resume', '--run', 'r', ...flags]);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(r.stderr, flags.join(' ')).toMatch(msg);
      expect(r.stderr).not.toMatch(/internal error/);
    }
    for (const strategy of ['rl', 'random']) {
      const w = nosIn(dir, [
        'search',
        '--task',
        'quadratic',
        '--strategy',
        strategy,
        '--warm-start',
        '--run',
        `w-${strategy}`,
      ]);
      expect(w.code).toBe(1);
      expect(w.stderr).toMatch(
        new RegExp(
          `--warm-start seeds evolution's population with known rules: it does nothing with --strategy ${strategy}`,
        ),
      );
    }
    expect(readdirSync(dir)).toEqual(['r']);
  }, 120_000);

  it('--workers above the number of cores is capped, with a message', () => {
    const dir = runs();
    const r = nosIn(dir, [
      'search',
      '--task',
      'quadratic',
      '--budget',
      '5',
      '--workers',
      '1000',
      '--run',
      'w',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const cores = availableParallelism();
    expect(r.stderr).toContain(`--workers 1000: using ${cores}, the number of cores here`);
    expect(r.stderr).toMatch(new RegExp(`, ${cores} worker\\(s\\)`));
  }, 60_000);
});

describe('the run lock between real processes', () => {
  it('a second nos search on a running run exits 1 with a clear message; the first goes on', async () => {
    const dir = runs();
    const first = spawn(
      process.execPath,
      [BIN, 'search', '--task', 'quadratic', '--budget', '3000', '--steps', '3000', '--workers', '1', '--run', 'busy'],
      {
        env: { ...process.env, NOS_RUNS: dir },
        stdio: 'ignore',
      },
    );
    try {
      await until(() => count(dir, 'busy') >= 3);
      const second = nosIn(dir, ['search', '--resume', '--run', 'busy']);
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(
        new RegExp(
          `^nos search: error: run 'busy' is in use by another nos \\(pid ${first.pid} on .*\\): wait for it to finish or stop it\\n$`,
        ),
      );
      const again = nosIn(dir, ['search', '--task', 'quadratic', '--run', 'busy']);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/run 'busy' already exists/);
      // Readers are welcome meanwhile.
      const lb = nosIn(dir, ['leaderboard', '--run', 'busy', '--json']);
      expect(lb.code, lb.stderr).toBe(0);
      const n = count(dir, 'busy');
      await until(() => count(dir, 'busy') > n);
    } finally {
      first.kill('SIGINT');
    }
    expect(await exited(first)).toBe(130);
    expect(existsSync(join(dir, 'busy', 'run.lock'))).toBe(false);
  }, 180_000);

  it('a lock held by another process refuses --resume; once that process is killed (-9), its stale lock is taken over', async () => {
    const dir = runs();
    expect(
      nosIn(dir, ['search', '--task', 'quadratic', '--budget', '10', '--run', 'held', '--workers', '1', '--json']).code,
    ).toBe(0);
    const script = `import { SqliteStore } from ${JSON.stringify(join(repoRoot, 'dist', 'search-results', 'store.js'))};
SqliteStore.open('held');
process.stdout.write('locked\\n');
setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NOS_RUNS: dir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      holder.stdout.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await until(() => out.includes('locked'));
      const refused = nosIn(dir, ['search', '--resume', '--run', 'held', '--budget', '20']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`run 'held' is in use by another nos \\(pid ${holder.pid} on `));
      expect(trainedCount(dir, 'held')).toBe(10);
    } finally {
      holder.kill('SIGKILL');
    }
    await exited(holder);
    expect(existsSync(join(dir, 'held', 'run.lock'))).toBe(true);
    const resumed = nosIn(dir, ['search', '--resume', '--run', 'held', '--budget', '20', '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(trainedCount(dir, 'held')).toBe(20);
    expect(existsSync(join(dir, 'held', 'run.lock'))).toBe(false);
  }, 120_000);
});

/**
 * Run the nos binary as a user who may read the runs but not write them. As root (CI), the
 * process keeps its uid, so the checkout stays readable wherever it is (a mkdtemp folder is
 * 0700), but loses the capabilities that override file modes: read-only modes then hold.
 */
function asReader(dir: string, argv: string[]): RunResult {
  const root = process.getuid?.() === 0;
  const [cmd, args] = root
    ? ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search,-fowner', process.execPath, BIN, ...argv]]
    : [process.execPath, [BIN, ...argv]];
  const r = spawnSync(cmd, args, {
    cwd: repoRoot,
    env: { ...process.env, NOS_RUNS: dir },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Read-only modes (asReader cannot override them, root included). */
function readOnly(dir: string, run: string): void {
  chmodSync(join(dir, run, 'run.db'), 0o444);
  chmodSync(join(dir, run), 0o555);
}

describe('runs a user can only read', () => {
  it('leaderboard, report --out and export read them; nothing tries to write them', () => {
    const dir = runs();
    expect(
      nosIn(dir, ['search', '--task', 'quadratic', '--budget', '20', '--run', 'ro', '--workers', '1', '--json']).code,
    ).toBe(0);
    // A second run left in WAL mode, as a killed search leaves it.
    expect(
      nosIn(dir, ['search', '--task', 'quadratic', '--budget', '20', '--run', 'wal', '--workers', '1', '--json']).code,
    ).toBe(0);
    const db = new Database(join(dir, 'wal', 'run.db'));
    db.pragma('journal_mode = WAL');
    db.close();
    for (const run of ['ro', 'wal']) readOnly(dir, run);
    const outDir = mkdtempSync(join(tmpdir(), 'nos-ro-out-'));
    chmodSync(outDir, 0o777);
    try {
      for (const run of ['ro', 'wal']) {
        const lb = asReader(dir, ['leaderboard', '--run', run, '--json']);
        expect(lb.code, lb.stderr).toBe(0);
        expect((JSON.parse(lb.stdout) as unknown[]).length).toBeGreaterThan(0);
        const ex = asReader(dir, ['export', '--run', run, '--rank', '1', '--format', 'tfjs']);
        expect(ex.code, ex.stderr).toBe(0);
        const report = asReader(dir, ['report', '--run', run, '--no-adam', '--out', join(outDir, `${run}.html`)]);
        expect(report.code, report.stderr).toBe(0);
        expect(existsSync(join(outDir, `${run}.html`))).toBe(true);
        // Its own folder cannot take the report: said up front, with the way out.
        const here = asReader(dir, ['report', '--run', run, '--no-adam']);
        expect(here.code).toBe(1);
        expect(here.stderr).toMatch(
          /the report .*report\.html: cannot write in .*permission denied.*\(pass --out F\.html to write it elsewhere\)/,
        );
        // Resuming needs to write: a clear user error, not an internal one.
        const resume = asReader(dir, ['search', '--resume', '--run', run, '--budget', '30']);
        expect(resume.code, resume.stderr).toBe(1);
        expect(resume.stderr).toMatch(/cannot open run '.*' for writing in .*: permission denied \(EACCES\)/);
      }
      // The readers left nothing in the run's folder.
      expect(readdirSync(join(dir, 'ro'))).toEqual(['run.db']);
    } finally {
      for (const run of ['ro', 'wal']) chmodSync(join(dir, run), 0o755);
    }
  }, 180_000);
});

describe('errors of the environment are user errors', () => {
  it('a runs folder that cannot be created or written: exit 1 with what and where, no internal error', () => {
    const base = runs();
    const locked = join(base, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    chmodSync(locked, 0o555);
    try {
      const denied = asReader(join(locked, 'runs'), ['search', '--task', 'quadratic', '--budget', '3', '--run', 'x']);
      expect(denied.code, denied.stderr).toBe(1);
      expect(denied.stderr).toMatch(
        /^nos search: error: cannot create the runs folder .*locked\/runs: permission denied \(EACCES\)\n$/,
      );
    } finally {
      chmodSync(locked, 0o755);
    }
    const file = join(base, 'file');
    writeFileSync(file, '');
    const notDir = nosIn(join(file, 'runs'), ['search', '--task', 'quadratic', '--budget', '3', '--run', 'x']);
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toMatch(
      /cannot create the runs folder .*: a part of the path is a file, not a folder \(ENOTDIR\)/,
    );
    const proc = nosIn('/proc/nos-runs', ['search', '--task', 'quadratic', '--budget', '3', '--run', 'x']);
    expect(proc.code).toBe(1);
    expect(proc.stderr).toMatch(/is under \/proc, a system folder: pick another place/);
  }, 60_000);
});
