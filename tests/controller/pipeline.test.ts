/**
 * The pipelined loop: results independent of the number of workers and of the order in which
 * evaluations finish, for any staleness; runs made before the staleness was stored still match
 * the synchronous loop they were made with (tests/helpers/synchronous-loop.ts, the loop this one
 * replaced); a stop and a resume give the same run as an uninterrupted one; an abort rejects
 * with an AbortError and leaves a resumable run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore, type RunConfig } from '../../controller/config.js';
import { runFunnel } from '../../controller/funnel.js';
import { rankedLeaderboard } from '../../controller/funnel-plan.js';
import { RlController } from '../../controller/rl.js';
import { runSearch, type SearchHooks } from '../../controller/search.js';
import { parseSpaceConfig } from '../../controller/space.js';
import { Evolution, RandomSearch, type Strategy } from '../../controller/strategy.js';
import { ThreadChecker } from '../../controller/thread-checker.js';
import type { EvalRequest, EvaluateOptions, Evaluator } from '../../evaluator/protocol.js';
import { SleepingEvaluator, standInResult } from '../../evaluator/stand-in.js';
import type { EvalResult } from '../../evaluator/train.js';
import { type Candidate, RunDamagedError, SqliteStore } from '../../search-results/store.js';
import { abortError } from '../../util/abort.js';
import { FakeEvaluator } from '../helpers/fake-evaluator.js';
import { synchronousSearch } from '../helpers/synchronous-loop.js';
import { tfReady } from '../helpers/tf.js';

/** A small space, so that a run holds same-batch duplicates and rules that act alike. */
const SMALL = parseSpaceConfig({
  operands: ['g', 'm', 'sign-g', 'sign-m', 'one'],
  unary: ['id', 'neg', 'sign'],
  binary: ['mul', 'add', 'sub'],
});

interface Settings {
  readonly strategy: string;
  readonly budget: number;
  readonly unit?: 'trained' | 'sampled';
  readonly staleness?: number;
  readonly batch?: number;
  readonly small?: boolean;
  readonly funnel?: boolean;
}

function config(run: string, s: Settings): RunConfig {
  return {
    run,
    task: 'quadratic',
    strategy: s.strategy,
    budget: s.budget,
    ...(s.unit === undefined ? {} : { budgetUnit: s.unit }),
    ...(s.staleness === undefined ? {} : { staleness: s.staleness }),
    seed: 11,
    workers: 1,
    batchSize: s.batch ?? 10,
    steps: null,
    groups: s.small ? 1 : 2,
    warmStart: false,
    ...(s.small ? { space: SMALL.config } : {}),
    funnel: s.funnel
      ? {
          promote: 0.1,
          minPromoted: 3,
          longTop: 3,
          finalists: 2,
          seeds: [2, 5, 2],
          longFactor: 2,
          transfer: null,
          baseline: 'adam',
        }
      : null,
    createdAt: 'test',
    nosVersion: 'test',
  } as RunConfig;
}

function strategyFor(s: Settings): Strategy {
  const options = { seed: 11, groups: s.small ? 1 : 2, ...(s.small ? { space: SMALL.space } : {}) };
  if (s.strategy === 'rl') return new RlController(options);
  if (s.strategy === 'evolution') return new Evolution({ ...options, population: 8, tournament: 3 });
  return new RandomSearch(options);
}

const root = () => mkdtempSync(join(tmpdir(), 'nos-pipeline-'));

/** Everything a run stored: candidates (all fields), checkpoints (with the strategy's state), funnel rows. */
function stored(store: SqliteStore<RunConfig>) {
  return {
    candidates: store.candidates(),
    checkpoints: store.checkpoints(),
    evaluations: store.evaluations(),
  };
}

/** The stand-in's result after a delay of 0-6 ms drawn from the rule: evaluations finish out of order. */
const jittered: Evaluator = {
  async evaluate(req) {
    let h = 0;
    for (const ch of req.rule) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    await new Promise((r) => setTimeout(r, h % 7));
    return { result: standInResult(req, 0) };
  },
};

/**
 * Finishes evaluations in an adversarial order: it holds them until `window` are waiting (or
 * none has come for a few ms), then releases the newest first. Results: `inner`'s.
 */
class ReversingEvaluator implements Evaluator {
  private held: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly window: number,
    private readonly inner: Evaluator = new SleepingEvaluator(1_000_000, 0),
  ) {}
  async evaluate(req: EvalRequest, _o?: EvaluateOptions): Promise<{ result: EvalResult }> {
    await new Promise<void>((resolve) => {
      this.held.push(resolve);
      clearTimeout(this.timer);
      if (this.held.length >= this.window) this.release();
      else this.timer = setTimeout(() => this.release(), 3);
    });
    return await this.inner.evaluate(req);
  }
  private release(): void {
    const all = this.held.reverse();
    this.held = [];
    for (const r of all) r();
  }
}

async function search(s: Settings, evaluator: Evaluator, hooks: SearchHooks = {}, dir = root(), name = 'p') {
  const store = SqliteStore.create(config(name, s), dir);
  try {
    const summary = await runSearch(store, strategyFor(s), evaluator, hooks);
    if (s.funnel && !summary.stopped) await runFunnel(store, evaluator);
    return {
      summary,
      ...stored(store),
      board: rankedLeaderboard(store.config, store.candidates(), store.evaluations(), 10),
    };
  } finally {
    store.close();
  }
}

describe('the pipelined search loop', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('runs made before the staleness was stored (staleness 0) match the synchronous loop exactly: candidates, checkpoints, strategy states', async () => {
    // The small space exercises the old loop's cache rules: twins in one batch (of a trained and
    // of a rejected rule), rules that act alike in an earlier batch (a hit) and in the same one (both trained).
    const seen = { twin: false, rejectedTwin: false, alike: false, alikeInBatch: false };
    for (const s of [
      { strategy: 'random', budget: 40, unit: 'trained', small: true },
      { strategy: 'evolution', budget: 33, unit: 'trained', small: true },
      { strategy: 'rl', budget: 25, unit: 'trained', small: true },
      { strategy: 'rl', budget: 37 },
      { strategy: 'random', budget: 45, unit: 'sampled', small: true },
      { strategy: 'random', budget: 60, unit: 'trained', small: true, batch: 40 },
    ] as const) {
      const store = SqliteStore.create(config('old', s), root());
      await synchronousSearch(store, strategyFor(s), new FakeEvaluator({ delays: true, diverge: true }));
      const want = stored(store);
      store.close();
      const got = await search(s, new ReversingEvaluator(4, new FakeEvaluator({ diverge: true })));
      expect(got.candidates, JSON.stringify(s)).toEqual(want.candidates);
      expect(got.checkpoints, JSON.stringify(s)).toEqual(want.checkpoints);
      expect(got.checkpoints.every((c) => c.pending === null)).toBe(true);
      if (s.small) {
        const cs = got.candidates;
        const trained = cs.filter((c) => c.status !== 'cached' && c.status !== 'rejected');
        seen.twin ||= cs.some(
          (c) =>
            c.parent !== null &&
            c.status === 'cached' &&
            cs[c.parent]?.batch === c.batch &&
            cs[c.parent]?.hash === c.hash,
        );
        seen.rejectedTwin ||= cs.some(
          (c) => c.status === 'rejected' && c.parent !== null && cs[c.parent]?.batch === c.batch,
        );
        seen.alike ||= cs.some((c) => c.status === 'cached' && c.parent !== null && cs[c.parent]?.hash !== c.hash);
        seen.alikeInBatch ||= trained.some((a) =>
          trained.some((b) => b.index > a.index && b.batch === a.batch && b.fingerprint === a.fingerprint),
        );
      }
    }
    expect(seen).toEqual({ twin: true, rejectedTwin: true, alike: true, alikeInBatch: true });
  }, 120_000);

  for (const strategy of ['rl', 'evolution', 'random'] as const) {
    it(`${strategy}, staleness 3: the same run with 1, 8 or 64 workers and whatever order evaluations finish in`, async () => {
      const s: Settings = {
        strategy,
        budget: 30,
        unit: 'trained',
        staleness: 3,
        batch: 6,
        small: strategy !== 'rl',
        funnel: true,
      };
      const one = await search(s, new SleepingEvaluator(1, 0));
      for (const evaluator of [
        new SleepingEvaluator(8, 0),
        new SleepingEvaluator(64, 0),
        jittered,
        new ReversingEvaluator(16),
      ])
        expect(await search(s, evaluator)).toEqual(one);
      // Rules checked in a thread of their own (the checks come back later, the order of decisions holds).
      const checker = new ThreadChecker();
      try {
        expect(await search(s, jittered, { checker })).toEqual(one);
      } finally {
        await checker.close();
      }
      // The budget is exact; batches are observed in order, each after the S batches beyond it were proposed.
      expect(one.summary.evaluated).toBe(30);
      const last = Math.max(...one.candidates.map((c) => c.batch));
      expect(one.checkpoints.map((c) => c.batch)).toEqual(Array.from({ length: last + 1 - 3 }, (_, k) => k));
      for (const c of one.checkpoints) expect(JSON.parse(c.pending as string)).toHaveLength(3);
      expect(one.evaluations.length).toBeGreaterThan(0);
      expect(one.board.length).toBeGreaterThan(0);
    }, 120_000);
  }

  it('the shared checking thread outlives a search, and a process that ran searches exits by itself', () => {
    // searchRun with stand-ins checks in the process's shared thread (sharedChecker), which stays,
    // warm, for the next search: idle, it must not keep the process alive (it did, for ever).
    const dist = join(process.cwd(), 'dist', 'controller', 'run.js');
    const script = `
      import { createRun, searchRun } from ${JSON.stringify(dist)};
      const root = ${JSON.stringify(mkdtempSync(join(tmpdir(), 'nos-exit-')))};
      for (const run of ['a', 'b']) {
        const store = createRun({ run, task: 'quadratic', strategy: 'random', budget: 12, standIn: 1, funnel: false }, { root });
        const s = await searchRun(store);
        store.close();
        console.log(run, s.evaluated);
      }`;
    const file = join(mkdtempSync(join(tmpdir(), 'nos-exit-script-')), 'two-searches.mjs');
    writeFileSync(file, script);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.stdout.trim().split('\n')).toEqual(['a 12', 'b 12']);
    expect(r.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
  }, 90_000);

  it('with staleness S, up to S+1 batches are in flight at once', async () => {
    let peak = 0;
    const ev = new SleepingEvaluator(1000, 5);
    const s: Settings = { strategy: 'random', budget: 200, unit: 'trained', staleness: 4, batch: 10 };
    await search(s, ev, {
      onCandidate: (_c, p) => {
        peak = Math.max(peak, p.inFlight);
      },
    });
    // Random rules in the full space: about half train, so 5 batches hold about 25 trainings.
    expect(ev.peak).toBeGreaterThan(10);
    expect(ev.peak).toBeLessThanOrEqual(50);
    const sync = new SleepingEvaluator(1000, 5);
    await search({ ...s, staleness: 0 }, sync);
    expect(sync.peak).toBeLessThanOrEqual(10);
    expect(peak).toBeGreaterThan(0);
  });

  it('a stop with batches in flight, then a resume, gives the uninterrupted run; nothing is evaluated twice', async () => {
    for (const strategy of ['rl', 'evolution'] as const) {
      const s: Settings = {
        strategy,
        budget: 40,
        unit: 'trained',
        staleness: 2,
        batch: 5,
        small: strategy === 'evolution',
      };
      const want = await search(s, new SleepingEvaluator(4, 0));
      for (const after of [3, 17, 31]) {
        const dir = root();
        let seen = 0;
        const first = await search(
          s,
          new SleepingEvaluator(6, 0),
          { shouldStop: () => seen >= after, onCandidate: () => void seen++ },
          dir,
        );
        expect(first.summary.stopped).toBe(true);
        const store = openStore('p', dir);
        const evaluated: string[] = [];
        const counting: Evaluator = {
          evaluate: (req, o) => {
            evaluated.push(req.rule);
            return new SleepingEvaluator(1, 0).evaluate(req, o);
          },
        };
        const second = await runSearch(store, strategyFor(s), counting);
        expect(second.stopped).toBe(false);
        expect(store.candidates()).toEqual(want.candidates);
        expect(store.checkpoints()).toEqual(want.checkpoints);
        const before = new Set(
          first.candidates.filter((c) => c.status !== 'cached' && c.status !== 'rejected').map((c) => c.rule),
        );
        expect(evaluated.filter((r) => before.has(r))).toEqual([]);
        store.close();
      }
    }
  }, 120_000);

  it('a budget raised after the run ended continues as a run made with the larger budget', async () => {
    const s: Settings = { strategy: 'rl', budget: 40, unit: 'trained', staleness: 2, batch: 7 };
    const want = await search(s, new SleepingEvaluator(5, 0));
    const dir = root();
    const first = await search({ ...s, budget: 23 }, new SleepingEvaluator(5, 0), {}, dir);
    expect(first.summary.evaluated).toBe(23);
    const store = openStore('p', dir);
    store.updateConfig({ ...store.config, budget: 40 });
    await runSearch(store, strategyFor(s), new SleepingEvaluator(3, 0));
    expect(store.candidates()).toEqual(want.candidates);
    expect(store.checkpoints()).toEqual(want.checkpoints);
    store.close();
  });

  it('an abort rejects with an AbortError within one evaluation, drops what has not started, and the run resumes to the same result', async () => {
    const s: Settings = { strategy: 'random', budget: 60, unit: 'trained', staleness: 3, batch: 10 };
    const want = await search(s, new SleepingEvaluator(60, 100));
    const dir = root();
    const store = SqliteStore.create(config('p', s), dir);
    const controller = new AbortController();
    const ev = new SleepingEvaluator(4, 100);
    let abortedAt = 0;
    const run = runSearch(store, strategyFor(s), ev, {
      signal: controller.signal,
      onCandidate: (_c, p) => {
        if (p.evaluated === 10 && abortedAt === 0) {
          abortedAt = performance.now();
          controller.abort();
        }
      },
    });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    // The 4 running evaluations were awaited (100 ms), not the dozens waiting for a worker.
    expect(performance.now() - abortedAt).toBeLessThan(400);
    expect(ev.evaluations).toBeLessThanOrEqual(14);
    const kept = store.candidates().length;
    expect(kept).toBeGreaterThan(10);
    // Already aborted: rejects at once, touching nothing.
    await expect(runSearch(store, strategyFor(s), ev, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(store.candidates().length).toBe(kept);
    await runSearch(store, strategyFor(s), new SleepingEvaluator(60, 100));
    expect(store.candidates()).toEqual(want.candidates);
    store.close();
  });

  it('the funnel hands a rung out at once; an abort rejects with an AbortError, and a resume climbs to the same rows', async () => {
    const s: Settings = { strategy: 'random', budget: 40, unit: 'trained', staleness: 2, funnel: true };
    const want = await search(s, new SleepingEvaluator(64, 0));
    const rows = (es: readonly { seconds: number }[]) => es.map(({ seconds: _s, ...e }) => e);
    const dir = root();
    const store = SqliteStore.create(config('p', s), dir);
    await runSearch(store, strategyFor(s), new SleepingEvaluator(64, 0));
    // 8 workers; the funnel hands them every evaluation of a rung at once (the old one: 8 at a time).
    const sleeping = new SleepingEvaluator(8, 50);
    let outstanding = 0;
    let handedOut = 0;
    const ev: Evaluator = {
      evaluate: async (req, o) => {
        outstanding++;
        handedOut = Math.max(handedOut, outstanding);
        try {
          return await sleeping.evaluate(req, o);
        } finally {
          outstanding--;
        }
      },
    };
    const controller = new AbortController();
    let seen = 0;
    let abortedAt = 0;
    await expect(
      runFunnel(store, ev, {
        signal: controller.signal,
        onEvaluation: (e) => {
          // Inside rung 2 (3 rules and the baseline on 5 seeds: 20 evaluations at once).
          if (e.rung === 2 && ++seen === 1) {
            abortedAt = performance.now();
            controller.abort();
          }
        },
      }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    // Within one evaluation: those running were awaited (the first 8, and the one that took the
    // first finished one's worker), the 11 waiting dropped.
    expect(performance.now() - abortedAt).toBeLessThan(200);
    expect(handedOut).toBe(20);
    expect(sleeping.peak).toBe(8);
    expect(store.evaluations().filter((e) => e.rung === 2)).toHaveLength(9);
    await runFunnel(store, new SleepingEvaluator(4, 0));
    expect(rows(store.evaluations())).toEqual(rows(want.evaluations));
    store.close();
  });

  it('interrupt: an abort stops the evaluations that run too (search and funnel), stores none of them, and a resume gives the same run', async () => {
    const s: Settings = { strategy: 'random', budget: 40, unit: 'trained', staleness: 2, funnel: true };
    const want = await search(s, new SleepingEvaluator(64, 0));
    const rows = (es: readonly { seconds: number }[]) => es.map(({ seconds: _s, ...e }) => e);
    // Sleeping workers that honour `interrupt` as the pool does: a running evaluation rejects at once.
    // `finished` counts the current phase's evaluator only: an interrupted one's sleep still ends
    // later, and must not count in the next phase (it did, when the phases ran fast enough).
    let finished = 0;
    let phase = 0;
    const interrupts = new Set<AbortSignal>();
    const calls = { all: 0, withInterrupt: 0 };
    const interruptible = (workers: number, ms: number): Evaluator => {
      const sleeping = new SleepingEvaluator(workers, ms);
      const mine = ++phase;
      return {
        evaluate: async (req, o = {}) => {
          calls.all++;
          const { interrupt } = o;
          if (interrupt !== undefined) {
            calls.withInterrupt++;
            interrupts.add(interrupt);
          }
          const running = sleeping.evaluate(req, o.signal ? { signal: o.signal } : {}).then((r) => {
            if (phase === mine) finished++;
            return r;
          });
          if (interrupt === undefined) return running;
          const stopped = new Promise<never>((_, reject) =>
            interrupt.addEventListener('abort', () => reject(abortError(interrupt)), { once: true }),
          );
          running.catch(() => {});
          return Promise.race([running, stopped]);
        },
      };
    };
    const dir = root();
    const store = SqliteStore.create(config('p', s), dir);
    // The search: 4 workers of 1 s each, aborted while the first 4 run.
    const search1 = new AbortController();
    setTimeout(() => search1.abort(), 150);
    let t0 = performance.now();
    await expect(
      runSearch(store, strategyFor(s), interruptible(4, 1000), { signal: search1.signal, interrupt: true }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - t0).toBeLessThan(900); // not after the running ones' second
    expect(calls.withInterrupt).toBe(calls.all);
    expect(interrupts.size).toBe(calls.all); // a signal of its own each (the caller's has one listener)
    expect(store.candidates().filter((c) => c.status !== 'rejected')).toEqual([]);
    // shouldStop with `interrupt` still lets the running ones finish, and stores them.
    let stop = false;
    setTimeout(() => {
      stop = true;
    }, 150);
    const summary = await runSearch(store, strategyFor(s), interruptible(4, 300), {
      signal: new AbortController().signal,
      interrupt: true,
      shouldStop: () => stop,
    });
    expect(summary.stopped).toBe(true);
    expect(finished).toBeGreaterThanOrEqual(4);
    expect(store.candidates().filter((c) => c.status !== 'rejected').length).toBe(finished);
    await runSearch(store, strategyFor(s), new SleepingEvaluator(64, 0));
    // (The stand-in's time shows in `seconds` and `detail`.)
    const same = (cs: readonly Candidate[]) => cs.map(({ seconds: _s, detail: _d, ...c }) => c);
    expect(same(store.candidates())).toEqual(same(want.candidates));
    // The funnel: the same, inside its first rung.
    finished = 0;
    const funnel = new AbortController();
    setTimeout(() => funnel.abort(), 150);
    t0 = performance.now();
    await expect(
      runFunnel(store, interruptible(8, 1000), { signal: funnel.signal, interrupt: true }),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - t0).toBeLessThan(900);
    expect(finished).toBe(0);
    // Only the rows the funnel takes from the search's candidates (rung 0), none it evaluated.
    const hashes = new Set(store.candidates().map((c) => c.hash));
    expect(store.evaluations().every((e) => e.rung === 0 && hashes.has(e.hash))).toBe(true);
    await runFunnel(store, new SleepingEvaluator(4, 0));
    expect(rows(store.evaluations())).toEqual(rows(want.evaluations));
    store.close();
  });

  it('a damaged checkpoint (its proposed batches missing or malformed) is an error that names it', async () => {
    const s: Settings = { strategy: 'random', budget: 30, unit: 'trained', staleness: 2, batch: 5 };
    const dir = root();
    await search(s, new SleepingEvaluator(3, 0), {}, dir);
    const store = openStore('p', dir);
    const last = store.lastCheckpoint()!;
    store.updateConfig({ ...store.config, budget: 50 });
    // Text that is not JSON is refused by the store as it reads the row (a run.db is untrusted:
    // search-results/store.ts checks every column), before the loop sees it; what parses but is
    // not the proposed batches is the loop's to refuse. Both are RunDamagedErrors naming the run.
    for (const [pending, why] of [
      [null, `run 'p': the checkpoint after batch ${last.batch} is damaged: it holds no proposed batches`],
      ['[[1]]', `run 'p': the checkpoint after batch ${last.batch} is damaged: its proposed batches are malformed`],
      ['{', `is damaged: checkpoints row ${last.batch}: pending is text ('{'), where JSON belongs`],
      ['{"a": 1}', `is damaged: checkpoints row ${last.batch}: pending is JSON but not a list of batches`],
      ['[]', `run 'p': the checkpoint after batch ${last.batch} is damaged: it holds 0 proposed batches`],
    ] as const) {
      store.saveCheckpoint({ ...last, pending });
      const search = runSearch(store, strategyFor(s), new SleepingEvaluator(3, 0));
      await expect(search).rejects.toThrow(why);
      await expect(search).rejects.toBeInstanceOf(RunDamagedError);
    }
    store.close();
  });

  it("an RL checkpoint's proposed choice outside the controller's vocabulary is a damaged run, not a crash", async () => {
    const s: Settings = { strategy: 'rl', budget: 30, unit: 'trained', staleness: 1, batch: 5 };
    const dir = root();
    await search(s, new SleepingEvaluator(3, 0), {}, dir);
    const store = openStore('p', dir);
    const last = store.lastCheckpoint()!;
    store.updateConfig({ ...store.config, budget: 50 });
    const batches = JSON.parse(last.pending as string) as { choices: { groups: number[][] } }[][];
    (batches[0]![0]!.choices.groups[0] as number[])[0] = 999_999;
    store.saveCheckpoint({ ...last, pending: JSON.stringify(batches) });
    const search2 = runSearch(store, strategyFor(s), new SleepingEvaluator(3, 0));
    await expect(search2).rejects.toBeInstanceOf(RunDamagedError);
    await expect(search2).rejects.toThrow(
      new RegExp(
        `run 'p': the checkpoint after batch ${last.batch} is damaged: batch ${last.batch + 1}'s proposals cannot be scored \\(choice 999999`,
      ),
    );
    store.close();
  });
});
