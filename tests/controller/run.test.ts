import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createRun,
  makeStrategy,
  nosVersion,
  planRun,
  type RunRequest,
  RunConfigError,
  resumeRun,
  searchRun,
} from '../../controller/run.js';
import { openStore } from '../../controller/config.js';
import { SqliteStore } from '../../search-results/store.js';
import { repoRoot } from '../helpers/reference.js';
import { FakeEvaluator } from '../helpers/fake-evaluator.js';
import { synchronousSearch } from '../helpers/synchronous-loop.js';
import { tfReady } from '../helpers/tf.js';

const root = () => mkdtempSync(join(tmpdir(), 'nos-run-'));
const rows = (store: SqliteStore) => store.candidates().map((c) => [c.rule, c.status, c.reward]);

function refusal(f: () => unknown): RunConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof RunConfigError) return e;
    throw e;
  }
  throw new Error('not refused');
}

/** Rewrite a run's stored config as an older nos wrote it (no groups, no warmStart). */
function makeLegacy(dir: string, run: string): void {
  const db = new Database(join(dir, 'search-results', 'runs', run, 'run.db'));
  const row = db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string };
  const { groups: _g, warmStart: _w, ...old } = JSON.parse(row.value) as Record<string, unknown>;
  db.prepare("UPDATE meta SET value = ? WHERE key = 'config'").run(JSON.stringify({ ...old, nosVersion: '0.1.0' }));
  db.close();
}

describe('planning a run', () => {
  it('stores every setting that changes results, and the version from package.json', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(nosVersion()).toBe(pkg.version);
    const c = planRun(
      {
        task: 'quadratic',
        strategy: 'evolution',
        budget: 40,
        seed: 3,
        batchSize: 5,
        steps: 20,
        groups: 3,
        warmStart: true,
        run: 'x',
      },
      new Date('2026-01-02T03:04:05Z'),
    );
    expect(c).toEqual({
      run: 'x',
      task: 'quadratic',
      strategy: 'evolution',
      budget: 40,
      budgetUnit: 'trained',
      seed: 3,
      workers: 0,
      batchSize: 5,
      staleness: 4,
      steps: 20,
      groups: 3,
      warmStart: true,
      // The funnel's defaults (an analytic task has no transfer task).
      funnel: {
        promote: 0.05,
        minPromoted: 5,
        longTop: 5,
        finalists: 2,
        seeds: [3, 5, 3],
        longFactor: 4,
        transfer: null,
        baseline: 'adam',
      },
      createdAt: '2026-01-02T03:04:05.000Z',
      nosVersion: pkg.version,
    });
    expect(planRun({}, new Date('2026-01-02T03:04:05Z'))).toMatchObject({
      run: 'rl-mlp-mnist-20260102-030405',
      strategy: 'rl',
      budget: 300,
      budgetUnit: 'trained',
      seed: 0,
      batchSize: 10,
      staleness: 4,
      groups: 2,
      warmStart: false,
      steps: null,
    });
  });

  it('refuses each bad setting with a message that names its flag', () => {
    const cases: [RunRequest, string, RegExp][] = [
      [{ task: 'mlp-mnis' }, 'task', /--task: unknown task 'mlp-mnis'; did you mean 'mlp-mnist'/],
      [
        { strategy: 'evolutoin' },
        'strategy',
        /--strategy must be one of rl, random, evolution, got 'evolutoin'; did you mean 'evolution'/,
      ],
      [{ groups: 0 }, 'groups', /--groups must be an integer from 1 to 8, got 0/],
      [{ groups: 9 }, 'groups', /--groups must be an integer from 1 to 8/],
      [{ batchSize: 1e6 }, 'batch', /--batch must be an integer from 1 to 10000/],
      [{ budget: 0.5 }, 'budget', /--budget must be an integer/],
      [{ steps: -1 }, 'steps', /--steps must be an integer/],
      [{ run: 'a/b' }, 'run', /--run: run name 'a\/b' must be/],
      [{ run: '' }, 'run', /--run: run name '' must be/],
      [{ warmStart: true }, 'warm-start', /--warm-start seeds evolution's population.*--strategy rl/],
      [{ warmStart: true, strategy: 'random' }, 'warm-start', /--strategy random/],
      [{ warmStart: true, strategy: 'evolution', groups: 1 }, 'warm-start', /no known rule fits --groups 1/],
      [
        { warmStart: true, strategy: 'evolution', space: { operands: ['g', 'm'] } },
        'warm-start',
        /no known rule fits this --space/,
      ],
      [{ space: { operands: 'g' } as unknown as RunRequest['space'] }, 'space', /--space operands: expected a list/],
    ];
    for (const [req, field, msg] of cases) {
      const e = refusal(() => planRun(req));
      expect(e.field, JSON.stringify(req)).toBe(field);
      expect(e.message, JSON.stringify(req)).toMatch(msg);
    }
    expect(planRun({ warmStart: true, strategy: 'evolution', groups: 3 }).warmStart).toBe(true);
  });

  it('creates nothing when a setting is wrong', () => {
    const dir = root();
    const prev = process.env.NOS_RUNS;
    delete process.env.NOS_RUNS;
    try {
      expect(() =>
        createRun({ run: 'bad', task: 'quadratic', space: { unary: ['id', 'tanh'] } }, { root: dir }),
      ).toThrow(/no unary entry 'tanh'/);
      expect(() => createRun({ run: 'bad', task: 'quadratic', groups: 0 }, { root: dir })).toThrow(RunConfigError);
      expect(existsSync(join(dir, 'search-results'))).toBe(false);
    } finally {
      if (prev !== undefined) process.env.NOS_RUNS = prev;
    }
  });
});

describe('resuming a run', () => {
  const prev = process.env.NOS_RUNS;
  beforeAll(async () => {
    await tfReady;
    // These tests place runs with `root`, which $NOS_RUNS would override.
    delete process.env.NOS_RUNS;
    return () => {
      if (prev !== undefined) process.env.NOS_RUNS = prev;
    };
  });

  async function stoppedRun(dir: string, req: RunRequest, after: number): Promise<void> {
    const store = createRun({ run: 'r', task: 'quadratic', budget: 40, seed: 5, ...req }, { root: dir });
    let seen = 0;
    await searchRun(store, {
      evaluator: new FakeEvaluator(),
      shouldStop: () => seen >= after,
      onCandidate: () => void seen++,
    });
    store.close();
  }

  async function straight(req: RunRequest): Promise<(string | number)[][]> {
    const dir = root();
    const store = createRun({ run: 'r', task: 'quadratic', budget: 40, seed: 5, ...req }, { root: dir });
    await searchRun(store, { evaluator: new FakeEvaluator() });
    const out = rows(store);
    store.close();
    return out;
  }

  for (const strategy of ['rl', 'random', 'evolution']) {
    it(`${strategy} made with --groups 3 resumes with 3 groups without the flag, as if never stopped`, async () => {
      const dir = root();
      await stoppedRun(dir, { strategy, groups: 3, ...(strategy === 'evolution' ? { warmStart: true } : {}) }, 15);
      const { store, notes } = resumeRun('r', {}, { root: dir });
      expect(store.config.groups).toBe(3);
      expect(notes).toEqual([]);
      await searchRun(store, { evaluator: new FakeEvaluator() });
      expect(rows(store)).toEqual(
        await straight({ strategy, groups: 3, ...(strategy === 'evolution' ? { warmStart: true } : {}) }),
      );
      store.close();
    });
  }

  it('refuses each conflicting setting, naming the flag and the stored value; accepts equal ones', async () => {
    const dir = root();
    const space = join(dir, 'space.json');
    writeFileSync(space, JSON.stringify({ operands: ['g', 'm', 'sign-g', 'sign-m'] }));
    await stoppedRun(dir, { strategy: 'evolution', groups: 3, batchSize: 5, steps: 30 }, 10);
    const cases: [RunRequest, string, RegExp][] = [
      [
        { task: 'rosenbrock' },
        'task',
        /--task rosenbrock conflicts with run 'r', which was made with --task quadratic/,
      ],
      [{ strategy: 'rl' }, 'strategy', /--strategy rl conflicts .* made with --strategy evolution/],
      [{ seed: 6 }, 'seed', /--seed 6 conflicts .* made with --seed 5/],
      [{ groups: 2 }, 'groups', /--groups 2 conflicts .* made with --groups 3/],
      [{ batchSize: 10 }, 'batch', /--batch 10 conflicts .* made with --batch 5/],
      [{ staleness: 2 }, 'staleness', /--staleness 2 conflicts .* made with --staleness 4/],
      [{ steps: 31 }, 'steps', /--steps 31 conflicts .* made with --steps 30/],
      [{ warmStart: true }, 'warm-start', /--warm-start conflicts .* made with no --warm-start/],
      [{ spaceFile: space }, 'space', /--space .*space\.json conflicts .* made with the full NOS space/],
      [
        { budget: 39 },
        'budget',
        /--budget 39 is below the budget of run 'r' \(40 trained rules, with \d+ trained of \d+ sampled\): a resume may only raise the budget/,
      ],
      [{ task: 'nope' }, 'task', /unknown task 'nope'/],
    ];
    for (const [req, field, msg] of cases) {
      const e = refusal(() => resumeRun('r', req, { root: dir }));
      expect(e.field, JSON.stringify(req)).toBe(field);
      expect(e.message, JSON.stringify(req)).toMatch(msg);
    }
    // The refusals released the lock; the same values are fine.
    const { store, notes } = resumeRun(
      'r',
      { task: 'quadratic', strategy: 'evolution', seed: 5, groups: 3, batchSize: 5, steps: 30, budget: 40 },
      { root: dir },
    );
    expect(notes).toEqual([]);
    store.close();
  });

  it('raises the budget when asked, stores it, and says so', async () => {
    const dir = root();
    await stoppedRun(dir, { strategy: 'random' }, 40);
    const { store, notes } = resumeRun('r', { budget: 60 }, { root: dir });
    expect(notes).toEqual(['budget raised from 40 to 60 rules (stored with the run)']);
    const summary = await searchRun(store, { evaluator: new FakeEvaluator() });
    // The budget counts rules trained (new runs' unit): cache hits and rejections come on top.
    expect(summary.evaluated).toBe(60);
    expect(store.candidates()).toHaveLength(summary.sampled);
    store.close();
    const again = openStore('r', { root: dir, readonly: true });
    expect(again.config.budget).toBe(60);
    again.close();
  });

  it('resumes runs of older nos versions (no groups or warmStart stored) with their defaults: 2 groups, no warm start', async () => {
    const dir = root();
    await stoppedRun(dir, { strategy: 'rl' }, 15);
    makeLegacy(dir, 'r');
    const { store } = resumeRun('r', {}, { root: dir });
    expect(store.config).toMatchObject({ groups: 2, warmStart: false, nosVersion: '0.1.0' });
    await searchRun(store, { evaluator: new FakeEvaluator() });
    expect(rows(store)).toEqual(await straight({ strategy: 'rl' }));
    store.close();
    // And refuses a --groups that differs from the default they ran with.
    expect(refusal(() => resumeRun('r', { groups: 3 }, { root: dir })).message).toMatch(/made with --groups 2/);
  });

  it('runs of the synchronous loop (no staleness stored) resume with staleness 0, as the old loop would have continued them', async () => {
    const { staleness: _s, ...old } = planRun({
      run: 'r',
      task: 'quadratic',
      budget: 40,
      seed: 5,
      strategy: 'rl',
      batchSize: 6,
    });
    const whole = SqliteStore.create(old, root());
    await synchronousSearch(whole, makeStrategy(old), new FakeEvaluator({ delays: true }));
    const want = { candidates: whole.candidates(), checkpoints: whole.checkpoints() };
    whole.close();
    const dir = root();
    const stopped = SqliteStore.create(old, dir);
    let seen = 0;
    await synchronousSearch(stopped, makeStrategy(old), new FakeEvaluator({ delays: true }), {
      shouldStop: () => seen >= 20,
      onCandidate: () => void seen++,
    });
    stopped.close();
    // As an older nos left it: no column for the batches proposed ahead.
    const db = new Database(join(dir, 'search-results', 'runs', 'r', 'run.db'));
    db.exec('ALTER TABLE checkpoints DROP COLUMN pending');
    db.close();
    expect(refusal(() => resumeRun('r', { staleness: 4 }, { root: dir })).message).toMatch(
      /--staleness 4 conflicts with run 'r', which was made with --staleness 0 \(a run of the synchronous loop, made before the staleness was stored\)/,
    );
    const { store } = resumeRun('r', { staleness: 0 }, { root: dir });
    await searchRun(store, { evaluator: new FakeEvaluator({ delays: true }) });
    expect(store.candidates()).toEqual(want.candidates);
    expect(store.checkpoints()).toEqual(want.checkpoints);
    store.close();
  });

  it('stores the budget unit: resume keeps it, refuses another, and old runs without it count samples', async () => {
    expect(refusal(() => planRun({ budgetUnit: 'epochs' }))).toMatchObject({
      field: 'budget-unit',
      message: expect.stringMatching(/--budget-unit must be one of trained, sampled, got 'epochs'/),
    });
    const dir = root();
    await stoppedRun(dir, { strategy: 'random', budgetUnit: 'sampled' }, 15);
    expect(refusal(() => resumeRun('r', { budgetUnit: 'trained' }, { root: dir })).message).toMatch(
      /--budget-unit trained conflicts with run 'r', which was made with --budget-unit sampled/,
    );
    const { store } = resumeRun('r', { budgetUnit: 'sampled' }, { root: dir });
    const summary = await searchRun(store, { evaluator: new FakeEvaluator() });
    expect(summary).toMatchObject({ budgetUnit: 'sampled', sampled: 40 });
    store.close();
    // A run made before the unit existed has no budgetUnit in its stored config.
    const old = root();
    await stoppedRun(old, { strategy: 'random' }, 5);
    const db = new Database(join(old, 'search-results', 'runs', 'r', 'run.db'));
    const row = db.prepare("SELECT value FROM meta WHERE key = 'config'").get() as { value: string };
    const { budgetUnit, ...rest } = JSON.parse(row.value) as Record<string, unknown>;
    expect(budgetUnit).toBe('trained');
    db.prepare("UPDATE meta SET value = ? WHERE key = 'config'").run(JSON.stringify(rest));
    db.close();
    expect(refusal(() => resumeRun('r', { budgetUnit: 'trained' }, { root: old })).message).toMatch(
      /made with --budget-unit sampled \(a run made before the unit could be chosen\)/,
    );
    const resumed = resumeRun('r', {}, { root: old }).store;
    expect(await searchRun(resumed, { evaluator: new FakeEvaluator() })).toMatchObject({
      budgetUnit: 'sampled',
      sampled: 40,
    });
    resumed.close();
  });

  it('a copied run resumes into the folder it was opened from, under its new name', async () => {
    const dir = root();
    await stoppedRun(dir, { strategy: 'random' }, 15);
    const runs = join(dir, 'search-results', 'runs');
    cpSync(join(runs, 'r'), join(runs, 'copy'), { recursive: true });
    const peek = SqliteStore.open('r', { root: dir, readonly: true });
    const before = peek.candidates().length;
    peek.close();
    const { store } = resumeRun('copy', {}, { root: dir });
    expect(store.config.run).toBe('copy');
    expect(store.dir).toBe(join(runs, 'copy'));
    const summary = await searchRun(store, { evaluator: new FakeEvaluator() });
    expect(summary.run).toBe('copy');
    store.close();
    const copy = SqliteStore.open('copy', { root: dir, readonly: true });
    expect(copy.candidates().filter((c) => c.status !== 'cached' && c.status !== 'rejected')).toHaveLength(40);
    copy.close();
    // The original is untouched.
    const original = SqliteStore.open('r', { root: dir, readonly: true });
    expect(original.candidates()).toHaveLength(before);
    expect(original.config.run).toBe('r');
    original.close();
    expect(readdirSync(runs).sort()).toEqual(['copy', 'r']);
  });

  it('a new run that fails before its first rule leaves no folder behind', async () => {
    const dir = root();
    const store = createRun({ run: 'f', task: 'quadratic', budget: 5 }, { root: dir });
    // The setup fails (a back end that cannot start, a dataset that cannot load).
    const failing = () => {
      throw new Error('the back end is down');
    };
    await expect(searchRun(store, { evaluator: new FakeEvaluator(), onStart: failing })).rejects.toThrow(
      /back end is down/,
    );
    expect(existsSync(join(dir, 'search-results', 'runs', 'f'))).toBe(false);
    // The name is free again.
    createRun({ run: 'f', task: 'quadratic', budget: 5 }, { root: dir }).close();
  });

  it('makeStrategy builds what the config says', () => {
    const c = planRun({
      task: 'quadratic',
      strategy: 'random',
      groups: 1,
      seed: 2,
      space: { operands: ['g'], unary: ['sign'], binary: ['mul'] },
    });
    const s = makeStrategy(c);
    expect(s.name).toBe('random');
    expect(s.propose(3).map((p) => p.text)).toEqual([
      '(sign(g)) * (sign(g))',
      '(sign(g)) * (sign(g))',
      '(sign(g)) * (sign(g))',
    ]);
    expect(() => makeStrategy({ ...c, strategy: 'annealing' })).toThrow(
      /strategy 'annealing', which this nos does not know/,
    );
  });
});
