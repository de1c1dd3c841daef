import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { RlController } from '../../controller/rl.js';
import { type Evaluator, leaderboard, runSearch } from '../../controller/search.js';
import { Evolution, RandomSearch, type Strategy } from '../../controller/strategy.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import type { EvalResult } from '../../evaluator/train.js';
import { type Candidate, type ResultsStore, type RunConfig, SqliteStore, type StrategyCheckpoint } from '../../search-results/store.js';
import { tfReady } from '../helpers/tf.js';

/** A fast, deterministic stand-in for the pool: reward from the rule text, random delays. */
class FakeEvaluator implements Evaluator {
  calls: string[] = [];
  async evaluate(req: EvalRequest): Promise<{ result: EvalResult }> {
    this.calls.push(req.rule);
    let h = 0;
    for (const ch of req.rule) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    await new Promise((r) => setTimeout(r, h % 7));
    const reward = (h % 1000) / 1000;
    return {
      result: {
        rule: req.rule,
        hash: '',
        task: req.task,
        seed: req.seed,
        status: h % 5 === 0 ? 'diverged' : 'ok',
        reward: h % 5 === 0 ? 0 : reward,
        bestLr: 0.01,
        valAcc: reward,
        testAcc: null,
        finalLoss: 1 - reward,
        grid: [],
        curve: [1, 0.5],
        curveEvery: 1,
        seconds: 0.01,
      },
    };
  }
}

function config(run: string, strategy: string, budget = 60): RunConfig {
  return { run, task: 'quadratic', strategy, budget, seed: 7, workers: 1, batchSize: 10, steps: null, groups: 2, warmStart: false, createdAt: 'test', nosVersion: 'test' };
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
      const ev = new FakeEvaluator();
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
      await runSearch(store, makeStrategy('rl'), new FakeEvaluator());
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
    const first = await runSearch(store, makeStrategy('rl'), new FakeEvaluator(), { shouldStop: () => seen >= 25, onCandidate: () => void seen++ });
    expect(first.stopped).toBe(true);
    store.close();
    const reopened = SqliteStore.open('d', dir);
    const ev = new FakeEvaluator();
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
    const store: ResultsStore = {
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
      runSearch(store, makeStrategy('random'), new FakeEvaluator()).finally(() => {
        rejectedAt = adds;
      }),
    ).rejects.toThrow(/disk full/);
    await new Promise((r) => setTimeout(r, 50));
    expect(late).toEqual([]);
    expect(rejectedAt).toBe(10); // the whole first batch was settled before the error came out
    expect(inner.checkpoints()).toEqual([]);
    inner.close();
  });

  it('refuses to create a run twice and reports a missing one', () => {
    const dir = root();
    SqliteStore.create(config('x', 'random'), dir).close();
    expect(() => SqliteStore.create(config('x', 'random'), dir)).toThrow(/already exists/);
    expect(() => SqliteStore.open('nope', dir)).toThrow(/no run 'nope'/);
    expect(() => SqliteStore.create(config('bad name!', 'random'), dir)).toThrow(/run name/);
  });
});
