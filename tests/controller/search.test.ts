import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RlController } from '../../controller/rl.js';
import { leaderboard, runSearch, SAMPLE_CAP_FACTOR } from '../../controller/search.js';
import { Evolution, type Proposal, RandomSearch, type Strategy, type UpdateStats } from '../../controller/strategy.js';
import { openStore, type RunConfig } from '../../controller/config.js';
import { type Candidate, type ResultsStore, SqliteStore, type StrategyCheckpoint } from '../../search-results/store.js';
import { FakeEvaluator } from '../helpers/fake-evaluator.js';
import { tfReady } from '../helpers/tf.js';

function config(run: string, strategy: string, budget = 60): RunConfig {
  return {
    run,
    task: 'quadratic',
    strategy,
    budget,
    seed: 7,
    workers: 1,
    batchSize: 10,
    steps: null,
    groups: 2,
    warmStart: false,
    createdAt: 'test',
    nosVersion: 'test',
  };
}

/** A config whose budget counts trained rules (new runs' default). */
function trainedConfig(run: string, strategy: string, budget: number): RunConfig {
  const c = { ...config(run, strategy, budget), budgetUnit: 'trained' };
  return c;
}

const root = () => mkdtempSync(join(tmpdir(), 'nos-runs-'));

function makeStrategy(name: string): Strategy {
  if (name === 'rl') return new RlController({ seed: 7, groups: 2 });
  if (name === 'evolution') return new Evolution({ seed: 7, groups: 2 });
  return new RandomSearch({ seed: 7, groups: 2 });
}

describe('search loop', () => {
  beforeAll(async () => {
    await tfReady;
  });

  for (const name of ['random', 'evolution', 'rl']) {
    it(`${name}: spends the budget, stores every candidate, never trains a rule twice`, async () => {
      const dir = root();
      const store = SqliteStore.create(config('t', name), dir);
      const ev = new FakeEvaluator({ delays: true, diverge: true });
      const summary = await runSearch(store, makeStrategy(name), ev);
      const cs = store.candidates();
      expect(cs.map((c) => c.index)).toEqual(Array.from({ length: 60 }, (_, i) => i));
      expect(summary.evaluated + summary.cached + summary.rejected).toBe(60);
      expect(new Set(ev.calls).size).toBe(ev.calls.length);
      expect(ev.calls.length).toBe(cs.filter((c) => c.status === 'ok' || c.status === 'diverged').length);
      for (const c of cs.filter((x) => x.status === 'cached')) {
        expect(c.parent).not.toBeNull();
        expect(c.reward).toBe(cs[c.parent!]!.reward);
      }
      expect(store.checkpoints()).toHaveLength(6);
      expect(summary.best[0]?.reward).toBe(leaderboard(cs, 1)[0]?.reward);
      store.close();
    });
  }

  it('is deterministic for a seed whatever the completion order, and resumes to the same result', async () => {
    const once = async (dir: string) => {
      const store = SqliteStore.create(config('d', 'rl'), dir);
      await runSearch(store, makeStrategy('rl'), new FakeEvaluator({ delays: true, diverge: true }));
      const out = store.candidates().map((c) => [c.rule, c.status, c.reward]);
      store.close();
      return out;
    };
    const a = await once(root());
    expect(await once(root())).toEqual(a);
    // Stop after 2 batches and a half, then resume in a new process' worth of objects.
    const dir = root();
    const store = SqliteStore.create(config('d', 'rl'), dir);
    let seen = 0;
    const first = await runSearch(store, makeStrategy('rl'), new FakeEvaluator({ delays: true, diverge: true }), {
      shouldStop: () => seen >= 25,
      onCandidate: () => void seen++,
    });
    expect(first.stopped).toBe(true);
    store.close();
    const reopened = openStore('d', dir);
    const ev = new FakeEvaluator({ delays: true, diverge: true });
    const second = await runSearch(reopened, makeStrategy('rl'), ev);
    expect(second.stopped).toBe(false);
    expect(reopened.candidates().map((c) => [c.rule, c.status, c.reward])).toEqual(a);
    // Nothing finished before the stop was evaluated again.
    const before = new Set(a.slice(0, 20).map((x) => x[0]));
    expect(ev.calls.filter((r) => before.has(r))).toEqual([]);
    reopened.close();
  });

  it('a store error (a full disk) ends the search only after the batch in flight has finished writing', async () => {
    const inner = SqliteStore.create(config('full', 'random'), root());
    let adds = 0;
    let rejectedAt: number | undefined;
    const late: number[] = [];
    const store: ResultsStore<RunConfig> = {
      get config() {
        return inner.config;
      },
      candidates: () => inner.candidates(),
      byHash: (h: string) => inner.byHash(h),
      byFingerprint: (f: string) => inner.byFingerprint(f),
      add: (c: Candidate) => {
        adds++;
        if (rejectedAt !== undefined) late.push(c.index);
        if (adds === 3) throw Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' });
        inner.add(c);
      },
      saveCheckpoint: (cp: StrategyCheckpoint) => inner.saveCheckpoint(cp),
      lastCheckpoint: () => inner.lastCheckpoint(),
      checkpoints: () => inner.checkpoints(),
      close: () => inner.close(),
    };
    await expect(
      runSearch(store, makeStrategy('random'), new FakeEvaluator({ delays: true, diverge: true })).finally(() => {
        rejectedAt = adds;
      }),
    ).rejects.toThrow(/disk full/);
    await new Promise((r) => setTimeout(r, 50));
    expect(late).toEqual([]);
    expect(rejectedAt).toBe(10); // the whole first batch was settled before the error came out
    expect(inner.checkpoints()).toEqual([]);
    inner.close();
  });

  it('a budget of trained rules ends with exactly that many trained, cache hits on top, deterministically', async () => {
    const once = async () => {
      const store = SqliteStore.create(trainedConfig('u', 'random', 45), root());
      const ev = new FakeEvaluator({ delays: true, diverge: true });
      const summary = await runSearch(store, makeStrategy('random'), ev);
      const rows = store.candidates().map((c) => [c.index, c.rule, c.status, c.reward]);
      store.close();
      return { summary, rows, calls: ev.calls.length };
    };
    const a = await once();
    expect(a.summary).toMatchObject({
      budgetUnit: 'trained',
      budget: 45,
      evaluated: 45,
      stopped: false,
      capped: false,
    });
    expect(a.calls).toBe(45);
    expect(a.summary.sampled).toBeGreaterThan(45); // this seed's random search hits the cache
    expect(a.summary.evaluated + a.summary.cached + a.summary.rejected).toBe(a.summary.sampled);
    expect(a.rows).toHaveLength(a.summary.sampled);
    expect(a.rows.map((r) => r[0])).toEqual(Array.from({ length: a.summary.sampled }, (_, i) => i));
    expect(await once()).toEqual(a);
  });

  it('a trained budget resumes after a stop to the same totals and rules as an uninterrupted run', async () => {
    const straight = SqliteStore.create(trainedConfig('s', 'rl', 30), root());
    const whole = await runSearch(straight, makeStrategy('rl'), new FakeEvaluator({ delays: true, diverge: true }));
    const want = straight.candidates().map((c) => [c.rule, c.status, c.reward]);
    straight.close();
    const dir = root();
    const store = SqliteStore.create(trainedConfig('s', 'rl', 30), dir);
    let seen = 0;
    const first = await runSearch(store, makeStrategy('rl'), new FakeEvaluator({ delays: true, diverge: true }), {
      shouldStop: () => seen >= 17,
      onCandidate: () => void seen++,
    });
    expect(first.stopped).toBe(true);
    expect(first.evaluated).toBeLessThan(30);
    store.close();
    const reopened = openStore('s', dir);
    expect(reopened.config).toMatchObject({ budgetUnit: 'trained' });
    const progress: [number, number][] = [];
    const second = await runSearch(reopened, makeStrategy('rl'), new FakeEvaluator({ delays: true, diverge: true }), {
      onCandidate: (_c, p) => void progress.push([p.spent, p.sampled]),
    });
    expect(second).toMatchObject({
      stopped: false,
      evaluated: 30,
      sampled: whole.sampled,
      cached: whole.cached,
      rejected: whole.rejected,
    });
    expect(reopened.candidates().map((c) => [c.rule, c.status, c.reward])).toEqual(want);
    // Progress reports the budget spent in its unit next to the samples.
    expect(progress.at(-1)).toEqual([30, whole.sampled]);
    reopened.close();
  });

  it('a trained budget raised after the run ended continues as if made with the larger budget', async () => {
    const straight = SqliteStore.create(trainedConfig('r', 'evolution', 33), root());
    await runSearch(straight, makeStrategy('evolution'), new FakeEvaluator({ delays: true, diverge: true }));
    const want = straight.candidates().map((c) => [c.rule, c.status, c.reward]);
    straight.close();
    const store = SqliteStore.create(trainedConfig('r', 'evolution', 17), root());
    const first = await runSearch(store, makeStrategy('evolution'), new FakeEvaluator({ delays: true, diverge: true }));
    expect(first.evaluated).toBe(17);
    expect(first.sampled % 10).not.toBe(0); // its last batch was cut after the 17th trained rule
    store.updateConfig({ ...store.config, budget: 33 });
    expect(
      (await runSearch(store, makeStrategy('evolution'), new FakeEvaluator({ delays: true, diverge: true }))).evaluated,
    ).toBe(33);
    expect(store.candidates().map((c) => [c.rule, c.status, c.reward])).toEqual(want);
    store.close();
  });

  it('a strategy that only re-proposes known rules still ends, at the sample cap', async () => {
    const same: Strategy = {
      name: 'same',
      propose: (n): Proposal[] =>
        Array.from({ length: n }, () => ({ choices: { groups: [] }, text: 'adam', parent: null })),
      observe: (): UpdateStats => ({ meanReward: 0, baseline: null, entropy: null }),
      save: () => '',
      restore: () => {},
    };
    const store = SqliteStore.create(trainedConfig('c', 'random', 3), root());
    const summary = await runSearch(store, same, new FakeEvaluator({ delays: true, diverge: true }));
    expect(summary).toMatchObject({ evaluated: 1, sampled: SAMPLE_CAP_FACTOR * 3, capped: true, stopped: false });
    store.close();
  });

  it('runs without a budget unit (made before it existed) count sampled rules', async () => {
    const store = SqliteStore.create(config('old', 'random', 25), root());
    const summary = await runSearch(store, makeStrategy('random'), new FakeEvaluator({ delays: true, diverge: true }));
    expect(summary).toMatchObject({ budgetUnit: 'sampled', sampled: 25 });
    expect(summary.evaluated).toBeLessThan(25);
    store.close();
  });

  it('refuses to create a run twice and reports a missing one', () => {
    const dir = root();
    SqliteStore.create(config('x', 'random'), dir).close();
    expect(() => SqliteStore.create(config('x', 'random'), dir)).toThrow(/already exists/);
    expect(() => SqliteStore.open('nope', dir)).toThrow(/no run 'nope'/);
    expect(() => SqliteStore.create(config('bad name!', 'random'), dir)).toThrow(/run name/);
  });
});
