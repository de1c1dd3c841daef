/**
 * The search loop: propose -> canonicalise -> skip what the run already knows (same hash, or
 * the same behaviour on the screen's probe) or what the screen rejects -> evaluate -> reward ->
 * update the strategy -> persist, until the budget is spent: rules actually trained (the budget
 * unit `trained`, new runs' default; cache hits, fingerprint twins and rejected rules are free,
 * up to a hard cap of SAMPLE_CAP_FACTOR x the budget in samples, so a strategy that keeps
 * proposing known rules still ends) or rules sampled (`sampled`, what runs made before the unit
 * existed count).
 *
 * Pipelined, so that every worker always has work: batch k is proposed once the strategy has
 * observed batches 0..k-1-S, where S is the run's stored staleness. Up to S+1 batches are in
 * flight; their evaluations go to the evaluator in sample order as soon as they are proposed,
 * and each batch's cache hits and rejections are settled at once (a hit on a rule still being
 * trained waits for it). The strategy's calls come in one fixed order, whatever finishes first:
 *
 *   propose(0) .. propose(S), observe(0), propose(S+1), observe(1), propose(S+2), ...
 *
 * and each observe takes its batch's rewards in sample order, so a seed gives the same run with
 * 1 worker or 128, through the pool or the queue. S = 0 is the synchronous loop of runs made
 * before the staleness was stored (they resume with it).
 *
 * This thread hands every worker its next job, so it never holds on for long: a strategy that
 * can (the RL controller) proposes and learns in slices of a few ms (`proposing`/`observing`,
 * same results), texts are checked a chunk at a time in the checker's thread, and the hand-out
 * lets finished evaluations through every few ms.
 *
 * Durable: each evaluation is stored as it finishes; each observed batch checkpoints the
 * strategy together with the S batches it had already proposed beyond it, so a `kill -9` loses
 * only the evaluations in flight: on resume the strategy is restored from the last checkpoint,
 * the batches it had proposed come back from the checkpoint, later ones are proposed again in
 * the same order, and what the store holds is reused.
 */
import { z } from 'zod';
import type { Evaluator } from '../evaluator/protocol.js';
import type { ScreenResult } from '../evaluator/screen.js';
import { SCREEN_LR_TOP } from '../evaluator/tasks.js';
import type { EvalResult } from '../evaluator/train.js';
import { RunDamagedError } from '../search-results/errors.js';
import { sampleKind } from '../search-results/samples.js';
import type { Candidate, ResultsStore } from '../search-results/store.js';
import { AbortFanOut, abortError, isAbortError } from '../util/abort.js';
import { drive, yieldToEvents } from '../util/slices.js';
import { shown } from '../util/terminal.js';
import { type CheckedText, inlineChecker, type RuleChecker } from './checker.js';
import type { RunConfig } from './config.js';
import { leaderboard } from './funnel-plan.js';
import type { Proposal, Strategy, UpdateStats } from './strategy.js';
import { evaluateSuite, suiteBaselines } from './suite.js';

/** The evaluation back end the loop talks to (the local pool implements it; a queue can). */
export type { Evaluator } from '../evaluator/protocol.js';
export { leaderboard } from './funnel-plan.js';

/** What a run's budget counts: rules actually trained, or rules sampled (cache hits included). */
export type BudgetUnit = 'trained' | 'sampled';

export const BUDGET_UNITS: readonly BudgetUnit[] = ['trained', 'sampled'];

/** With the `trained` unit, a run ends after this many times its budget in samples, trained or not. */
export const SAMPLE_CAP_FACTOR = 20;

/** The longest stretch of handing out samples before the loop lets finished evaluations through, ms. */
const SLICE_MS = 3;

/** Texts checked per message to the checker: the first samples of a batch go out after one chunk's check. */
const CHECK_CHUNK = 16;

/** The most batches a run may propose ahead of what its strategy has observed. */
export const MAX_STALENESS = 1000;

/** The budget unit of a stored config: runs made before the unit existed count samples. */
export function budgetUnitOf(config: object): BudgetUnit {
  const unit = (config as { readonly budgetUnit?: unknown }).budgetUnit;
  if (unit === undefined) return 'sampled';
  if (unit === 'trained' || unit === 'sampled') return unit;
  throw new Error(`the stored budget unit '${String(unit)}' is not one of ${BUDGET_UNITS.join(', ')}`);
}

/**
 * The staleness of a stored config: batches proposed before the strategy has observed the one
 * S batches back. Runs made before it was stored ran the synchronous loop: 0.
 */
export function stalenessOf(config: object): number {
  const s = (config as { readonly staleness?: unknown }).staleness;
  if (s === undefined) return 0;
  if (typeof s === 'number' && Number.isSafeInteger(s) && s >= 0 && s <= MAX_STALENESS) return s;
  throw new Error(`the stored staleness '${String(s)}' is not an integer from 0 to ${MAX_STALENESS}`);
}

/**
 * Why a search ended short of its trained-rule budget, for the user: it hit its sample cap, and
 * what the strategy was proposing at the end (a strategy that converged re-proposes what it
 * knows; one that collapsed proposes one rejected text over and over). Undefined when it did not.
 * Rule text is shown as untrusted text (cut, control characters escaped).
 */
export function cappedNote(
  summary: Pick<SearchSummary, 'capped' | 'sampled' | 'evaluated' | 'budget'>,
  candidates: readonly Pick<Candidate, 'rule' | 'status'>[],
  window = 1000,
): string | undefined {
  if (!summary.capped) return undefined;
  const last = candidates.slice(-window);
  const counts = new Map<string, number>();
  for (const c of last) counts.set(c.rule, (counts.get(c.rule) ?? 0) + 1);
  let top = '';
  let most = 0;
  for (const [rule, n] of counts)
    if (n > most) {
      top = rule;
      most = n;
    }
  const rejected = last.filter((c) => c.status === 'rejected').length;
  const cached = last.filter((c) => c.status === 'cached').length;
  return (
    `the search ended at its sample cap (${summary.sampled} samples) with ${summary.evaluated} of ${summary.budget} rules trained: ` +
    `of the last ${last.length} samples, ${cached} re-proposed known rules and ${rejected} were rejected, ${counts.size} distinct text(s), ` +
    `the most frequent ${most} time(s): ${shown(top)}. The strategy stopped exploring: another --seed or --strategy may get further`
  );
}

/** The most rules a run may sample: its budget (`sampled`), or SAMPLE_CAP_FACTOR x it (`trained`). */
export function sampleCap(budget: number, unit: BudgetUnit): number {
  return unit === 'sampled' ? budget : SAMPLE_CAP_FACTOR * budget;
}

export interface SearchProgress {
  readonly sampled: number;
  readonly budget: number;
  /** What the budget counts. */
  readonly unit: BudgetUnit;
  /** Budget spent, in its unit (sampled rules, or trained ones: `evaluated`). */
  readonly spent: number;
  /** The most rules this run will sample. */
  readonly sampleCap: number;
  readonly evaluated: number;
  readonly cached: number;
  readonly rejected: number;
  readonly best: number;
  /** Evaluations handed to the evaluator and not finished yet (running, or waiting for a worker). */
  readonly inFlight: number;
  readonly elapsedMs: number;
}

export interface SearchHooks {
  onCandidate?(c: Candidate, progress: SearchProgress): void;
  onUpdate?(batch: number, stats: UpdateStats, progress: SearchProgress): void;
  /**
   * Checked before each batch and after each evaluation: true stops the search. Nothing new is
   * handed out, evaluations that no worker has started are dropped (by evaluators that take a
   * signal: the pool, the queue), those running are awaited and stored; the run can be resumed.
   */
  shouldStop?(): boolean;
  /**
   * Aborts the search as `shouldStop` stops it, then rejects with an AbortError (within one
   * evaluation's time, with the pool; at once through the queue, whose jobs stay with their
   * workers for a resumed run to collect).
   */
  readonly signal?: AbortSignal;
  /**
   * With `signal`: its abort also stops the evaluations that run (the pool stops their worker
   * threads; protocol.ts `interrupt`), and they are not stored: the library's `search()` rejects
   * within one evaluation without waiting for those running. `shouldStop` still lets them finish.
   */
  readonly interrupt?: boolean;
  /** Where proposed rules are parsed and screened (default: this thread; results are the same). */
  readonly checker?: RuleChecker;
}

export interface SearchSummary {
  readonly run: string;
  readonly budgetUnit: BudgetUnit;
  readonly budget: number;
  readonly sampled: number;
  /** True when a `trained` budget ended at the sample cap before its trained rules were reached. */
  readonly capped: boolean;
  readonly evaluated: number;
  readonly cached: number;
  readonly rejected: number;
  readonly stopped: boolean;
  readonly best: readonly { rule: string; reward: number }[];
}

/** Running counts of a run's candidates. */
class Counts {
  evaluated = 0;
  cached = 0;
  rejected = 0;
  best = 0;

  add(c: Candidate): void {
    const kind = sampleKind(c.status);
    if (kind === 'cached') this.cached++;
    else if (kind === 'rejected') this.rejected++;
    else this.evaluated++;
    if (c.status === 'ok' && c.reward > this.best) this.best = c.reward;
  }
}

/** A rule's first sample in the run (trained, or rejected by the screen): later duplicates copy it. */
interface Slot {
  readonly index: number;
  readonly batch: number;
  /** Its candidate, once known (undefined: it was dropped by a stop). */
  readonly settled: Promise<Candidate | undefined>;
}

/** A proposed batch, from its proposal until it is observed (or the search ends). */
interface Batch {
  readonly k: number;
  /** Run index of its first sample. */
  readonly start: number;
  /** The proposals as the strategy made them (a cut batch is stored whole with checkpoints). */
  readonly whole: readonly Proposal[];
  /** How many of them were taken (fewer when the budget or the sample cap cut the batch). */
  n: number;
  cut: boolean;
  readonly cands: (Candidate | undefined)[];
  /** Samples not settled yet. */
  left: number;
  /** Some sample was dropped (a stop): the batch is not whole, and is never observed. */
  dropped: boolean;
  readonly done: Promise<void>;
  finish(): void;
}

// Bounded as the run's settings are (controller/run.ts's LIMITS: groups 1-8, a batch at most
// 10000, the staleness at most MAX_STALENESS); rule text as the queue bounds it.
const choice = z.number().int().min(0).max(1_000_000);
const choicesSchema = z.object({
  groups: z
    .array(z.tuple([choice, choice, choice, choice, choice]))
    .min(1)
    .max(8),
});
const pendingSchema = z
  .array(
    z
      .array(
        z.object({
          choices: choicesSchema,
          text: z.string().max(100_000),
          parent: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable(),
        }),
      )
      .max(10_000),
  )
  .max(MAX_STALENESS);

/**
 * The batches a checkpoint says its strategy had proposed beyond it (a run.db is untrusted input:
 * the store checked that they are JSON lists; here, each proposal). Damage is a RunDamagedError
 * naming the run (a user error, exit 1).
 */
function pendingBatches(
  run: string,
  pending: string | null | undefined,
  batch: number,
  staleness: number,
): Proposal[][] {
  const damaged = (why: string) =>
    new RunDamagedError(
      `run '${run}': the checkpoint after batch ${batch} is damaged: ${why} (the run's staleness is ${staleness})`,
    );
  if (pending === null || pending === undefined || pending === '') {
    if (staleness === 0) return [];
    throw damaged('it holds no proposed batches');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(pending);
  } catch {
    throw damaged('its proposed batches are not JSON');
  }
  const r = pendingSchema.safeParse(parsed);
  if (!r.success) throw damaged(`its proposed batches are malformed (${r.error.issues[0]?.message ?? 'invalid'})`);
  if (r.data.length !== staleness) throw damaged(`it holds ${r.data.length} proposed batches`);
  return r.data as Proposal[][];
}

function copyOf(
  c: Candidate,
): Pick<Candidate, 'fingerprint' | 'reward' | 'bestLr' | 'valAcc' | 'testAcc' | 'finalLoss' | 'detail'> {
  return {
    fingerprint: c.fingerprint,
    reward: c.reward,
    bestLr: c.bestLr,
    valAcc: c.valAcc,
    testAcc: c.testAcc,
    finalLoss: c.finalLoss,
    detail: c.detail,
  };
}

const isTrained = (c: Candidate) => sampleKind(c.status) === 'trained';

export async function runSearch(
  store: ResultsStore<RunConfig>,
  strategy: Strategy,
  evaluator: Evaluator,
  hooks: SearchHooks = {},
): Promise<SearchSummary> {
  const { config } = store;
  const { signal } = hooks;
  if (signal?.aborted) throw abortError(signal, 'the search');
  const t0 = performance.now();
  const unit = budgetUnitOf(config);
  const staleness = stalenessOf(config);
  // Runs made before the staleness was stored keep the synchronous loop's cache rules: a rule
  // is known from earlier batches (a twin in its own batch mirrors it), and only an earlier
  // batch's rule can match by fingerprint. Newer runs know every earlier sample.
  const legacy = (config as { readonly staleness?: unknown }).staleness === undefined;
  const cap = sampleCap(config.budget, unit);
  const existing = new Map(store.candidates().map((c) => [c.index, c]));
  const all: Candidate[] = [...existing.values()].sort((a, b) => a.index - b.index);
  const counts = new Counts();
  for (const c of all) counts.add(c);

  const checkpoint = store.lastCheckpoint();
  let nextK = 0;
  let nextStart = 0;
  let lastObserved = -1;
  let preProposed: Proposal[][] = [];
  // The batches that come back from the checkpoint (untrusted: a run.db may be edited).
  const restored = new Set<number>();
  if (checkpoint) {
    preProposed = pendingBatches(config.run, checkpoint.pending, checkpoint.batch, staleness);
    for (let i = 0; i < preProposed.length; i++) restored.add(checkpoint.batch + 1 + i);
    try {
      strategy.restore(checkpoint.state);
    } catch (e) {
      // JSON (the store checked that) but not this strategy's state: an edited or damaged run.db.
      throw new RunDamagedError(
        `run '${config.run}' is damaged: checkpoint ${checkpoint.batch}: its state is not a ${config.strategy} strategy's (${e instanceof Error ? e.message : String(e)})`,
      );
    }
    nextK = checkpoint.batch + 1;
    nextStart = checkpoint.samples;
    lastObserved = checkpoint.batch;
  }

  // First samples of each rule (by hash: trained or rejected by the screen) and of each
  // behaviour (by fingerprint: trained), among the samples handed out so far.
  const byHash = new Map<string, Slot>();
  const byFingerprint = new Map<string, Slot>();
  let trainedSoFar = 0;
  const known = (c: Candidate): Slot => ({ index: c.index, batch: c.batch, settled: Promise.resolve(c) });
  const register = (hash: string, fingerprint: string | null, trained: boolean, slot: Slot) => {
    if (hash !== '' && !byHash.has(hash)) byHash.set(hash, slot);
    if (trained && fingerprint !== null && !byFingerprint.has(fingerprint)) byFingerprint.set(fingerprint, slot);
  };
  for (const c of all) {
    if (c.index >= nextStart) break;
    if (c.status === 'cached') continue;
    register(c.hash, c.fingerprint, isTrained(c), known(c));
    if (isTrained(c)) trainedSoFar++;
  }

  // With `interrupt`, each evaluation also gets a child of the caller's signal that stops it while it runs.
  const cut = hooks.interrupt === true && signal !== undefined ? new AbortFanOut(signal) : undefined;

  // A suite run normalises each workload's score against the baseline's (evaluated once, stored).
  const baselines = config.suite
    ? await suiteBaselines(store, evaluator, config, signal ? { signal, ...(cut ? { interrupt: signal } : {}) } : {})
    : {};

  // Each text is checked once (parse, canonical form, hash), each rule screened once.
  const checker = hooks.checker ?? inlineChecker;
  const checks = new Map<string, CheckedText>();
  const screens = new Map<string, ScreenResult>();
  const screen = (c: CheckedText & { ok: true }): ScreenResult => {
    let r = screens.get(c.hash);
    if (r === undefined) {
      r = c.screen();
      screens.set(c.hash, r);
    }
    return r;
  };

  // Waiting for the pipeline to move (a batch proposed or handed out, the end, a stop).
  let waiters: (() => void)[] = [];
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const changed = () => new Promise<void>((r) => waiters.push(r));

  // Stopping: no new batch or evaluation; the evaluator drops what has not started.
  const halt = new AbortController();
  // Each evaluation in flight listens to a signal of its own.
  const fan = new AbortFanOut(halt.signal);
  let stopping = false;
  let failure: { error: unknown } | undefined;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    halt.abort(signal?.aborted ? signal.reason : undefined);
    notify();
  };
  const fail = (e: unknown) => {
    failure ??= { error: e };
    stop();
  };
  const poll = () => {
    try {
      if (!stopping && (signal?.aborted || hooks.shouldStop?.())) stop();
    } catch (e) {
      fail(e);
    }
  };
  signal?.addEventListener('abort', stop, { once: true });

  let inFlight = 0;
  const progress = (): SearchProgress => ({
    sampled: all.length,
    budget: config.budget,
    unit,
    spent: unit === 'trained' ? counts.evaluated : all.length,
    sampleCap: cap,
    evaluated: counts.evaluated,
    cached: counts.cached,
    rejected: counts.rejected,
    best: counts.best,
    inFlight,
    elapsedMs: performance.now() - t0,
  });

  const settle = (b: Batch, i: number, c: Candidate | undefined) => {
    if (c === undefined) b.dropped = true;
    else {
      b.cands[i] = c;
      if (!existing.has(c.index)) {
        try {
          store.add(c);
          existing.set(c.index, c);
          all.push(c);
          counts.add(c);
          hooks.onCandidate?.(c, progress());
        } catch (e) {
          fail(e);
        }
      }
    }
    b.left--;
    if (b.left === 0) b.finish();
    poll();
  };

  /** Hand out sample `index` of batch `b`: settled at once, or when what it waits for is. */
  const dispatch = (b: Batch, i: number, p: Proposal, twins: Map<string, Slot>): boolean => {
    const index = b.start + i;
    const old = existing.get(index);
    if (old !== undefined) {
      if (old.status !== 'cached') register(old.hash, old.fingerprint, isTrained(old), known(old));
      if (legacy && old.hash !== '' && !twins.has(old.hash)) twins.set(old.hash, known(old));
      settle(b, i, old);
      return isTrained(old);
    }
    const base = {
      index,
      batch: b.k,
      strategy: strategy.name,
      bestLr: null,
      valAcc: null,
      testAcc: null,
      finalLoss: null,
      seconds: 0,
    };
    const found = checks.get(p.text) as CheckedText;
    if (!found.ok) {
      const reason = JSON.stringify({ reason: found.message });
      settle(b, i, {
        ...base,
        rule: p.text,
        hash: '',
        fingerprint: null,
        status: 'rejected',
        reward: 0,
        detail: reason,
        parent: p.parent,
      });
      return false;
    }
    const rule = found;
    const visible = (s: Slot | undefined) => (s !== undefined && (!legacy || s.batch < b.k) ? s : undefined);
    const copy = (s: Slot, make: (orig: Candidate) => Candidate) => {
      void s.settled.then((orig) => settle(b, i, orig === undefined ? undefined : make(orig)));
    };
    const earlier = visible(byHash.get(rule.hash));
    if (earlier !== undefined) {
      copy(earlier, (e) => ({
        ...base,
        ...copyOf(e),
        rule: rule.canonical,
        hash: rule.hash,
        status: 'cached',
        parent: e.index,
      }));
      return false;
    }
    const twin = legacy ? twins.get(rule.hash) : undefined;
    if (twin !== undefined) {
      copy(twin, (t) => ({
        ...base,
        ...copyOf(t),
        rule: rule.canonical,
        hash: rule.hash,
        status: t.status === 'rejected' ? 'rejected' : 'cached',
        parent: t.index,
      }));
      return false;
    }
    const s = screen(found);
    if (!s.ok) {
      const c: Candidate = {
        ...base,
        rule: rule.canonical,
        hash: rule.hash,
        fingerprint: s.fingerprint,
        status: 'rejected',
        reward: 0,
        detail: JSON.stringify({ reason: s.reason }),
        parent: p.parent,
      };
      const slot = known(c);
      register(rule.hash, s.fingerprint, false, slot);
      if (legacy) twins.set(rule.hash, slot);
      settle(b, i, c);
      return false;
    }
    const same = visible(byFingerprint.get(s.fingerprint));
    if (same !== undefined) {
      let resolve!: (c: Candidate | undefined) => void;
      const slot: Slot = { index, batch: b.k, settled: new Promise((r) => (resolve = r)) };
      if (legacy) twins.set(rule.hash, slot);
      void same.settled.then((orig) => {
        const c: Candidate | undefined =
          orig === undefined
            ? undefined
            : {
                ...base,
                ...copyOf(orig),
                rule: rule.canonical,
                hash: rule.hash,
                fingerprint: s.fingerprint,
                status: 'cached',
                parent: orig.index,
              };
        settle(b, i, c);
        resolve(c);
      });
      return false;
    }
    // Trained: handed to the evaluator now, in sample order.
    inFlight++;
    const settled = (async (): Promise<Candidate | undefined> => {
      let result: EvalResult;
      const one = fan.child();
      const hard = cut?.child();
      const stops = { signal: one.signal, ...(hard ? { interrupt: hard.signal } : {}) };
      try {
        if (config.suite) {
          const out = await evaluateSuite(evaluator, rule.canonical, config, baselines, stops);
          return {
            ...base,
            rule: rule.canonical,
            hash: rule.hash,
            fingerprint: s.fingerprint,
            status: out.status,
            reward: out.reward,
            valAcc: out.reward,
            detail: JSON.stringify({
              reason: out.reason,
              workloads: out.workloads,
              grids: Object.fromEntries(out.results.map((r) => [r.task, r.grid])),
              curve: out.results[0]?.curve ?? [],
              curveEvery: out.results[0]?.curveEvery ?? 1,
            }),
            seconds: out.seconds,
            parent: p.parent,
          };
        }
        ({ result } = await evaluator.evaluate(
          {
            rule: rule.canonical,
            task: config.task,
            seed: config.seed,
            lrTop: SCREEN_LR_TOP,
            ...(config.steps ? { steps: config.steps } : {}),
            ...(config.standIn === undefined ? {} : { standInMs: config.standIn }),
          },
          stops,
        ));
      } catch (e) {
        if (!(halt.signal.aborted && isAbortError(e))) fail(e);
        return undefined;
      } finally {
        one.release();
        hard?.release();
        inFlight--;
      }
      return {
        ...base,
        rule: rule.canonical,
        hash: rule.hash,
        fingerprint: s.fingerprint,
        status: result.status,
        reward: result.reward,
        bestLr: result.bestLr,
        valAcc: result.valAcc,
        testAcc: result.testAcc,
        finalLoss: Number.isFinite(result.finalLoss) ? result.finalLoss : null,
        detail: JSON.stringify({
          reason: result.reason ?? null,
          grid: result.grid,
          curve: result.curve,
          curveEvery: result.curveEvery,
        }),
        seconds: result.seconds,
        parent: p.parent,
      };
    })();
    const slot: Slot = { index, batch: b.k, settled };
    register(rule.hash, s.fingerprint, true, slot);
    if (legacy) twins.set(rule.hash, slot);
    void settled.then((c) => settle(b, i, c));
    return true;
  };

  const inflight: Batch[] = [];
  let lastProposed = nextK - 1;
  let ended = false;

  /**
   * Propose the next batch, check its texts (in the checker's thread, while this one goes on
   * observing), and hand its samples out in order. One batch at a time: the budget left for a
   * batch depends on the ones before it.
   */
  let handing = false;
  const handOut = async () => {
    // What is left depends only on the samples before this batch, so a resume regenerates it exactly.
    const left = unit === 'trained' ? config.budget - trainedSoFar : config.budget - nextStart;
    if (left <= 0 || nextStart >= cap) {
      ended = true;
      return;
    }
    // With the trained unit every batch is proposed whole; the last one is cut after the rule
    // that spends the budget (or at the sample cap), and the strategy neither learns from nor
    // checkpoints a cut batch: a resume with a raised budget regenerates it whole, as a run
    // made with that budget from the start would have.
    let whole: Proposal[];
    try {
      const size = unit === 'trained' ? config.batchSize : Math.min(config.batchSize, left);
      whole =
        preProposed.shift() ??
        (strategy.proposing ? await drive(strategy.proposing(size), SLICE_MS) : strategy.propose(size));
    } catch (e) {
      fail(e);
      return;
    }
    if (whole.length === 0) {
      fail(new Error(`the strategy '${strategy.name}' proposed no rule for batch ${nextK}`));
      return;
    }
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    const b: Batch = {
      k: nextK,
      start: nextStart,
      whole,
      n: 0,
      cut: false,
      cands: [],
      // One for the hand-out below: the batch is not done before all its samples are out.
      left: 1,
      dropped: false,
      done,
      finish,
    };
    inflight.push(b);
    lastProposed = b.k;
    nextK++;
    notify();
    try {
      const room = Math.min(whole.length, cap - nextStart);
      // The texts are checked a chunk at a time, the next chunk's check under way while this
      // one's samples are handed out: the first evaluations start after one chunk's check.
      const claimed = new Set<string>();
      const checkChunk = async (from: number): Promise<void> => {
        const fresh: string[] = [];
        for (const p of whole.slice(from, Math.min(room, from + CHECK_CHUNK)))
          if (!checks.has(p.text) && !claimed.has(p.text)) {
            claimed.add(p.text);
            fresh.push(p.text);
          }
        if (fresh.length === 0) return;
        const checked = await checker.check(fresh);
        for (const [i, t] of fresh.entries()) checks.set(t, checked[i] as CheckedText);
      };
      const twins = new Map<string, Slot>();
      let trained = 0;
      let slice = performance.now();
      let chunk = checkChunk(0);
      let full = false;
      for (let from = 0; from < room && !full; from += CHECK_CHUNK) {
        await chunk;
        // A stop before the batch's first sample drops it; once samples are out, the rest go out
        // too (the evaluator drops what no worker has started), as one batch's hand-out always has.
        if (from === 0 && stopping) {
          b.dropped = true;
          return;
        }
        chunk = from + CHECK_CHUNK < room ? checkChunk(from + CHECK_CHUNK) : Promise.resolve();
        // A check no one waits for (the budget ran out first) must not be an unhandled rejection.
        chunk.catch(() => {});
        for (let i = from; i < Math.min(room, from + CHECK_CHUNK); i++) {
          b.n = i + 1;
          b.left++;
          if (dispatch(b, i, whole[i] as Proposal, twins)) trained++;
          // The trained unit's last batch ends with the rule that spends the budget.
          if (unit === 'trained' && trained >= left) {
            full = true;
            break;
          }
          // Let finished evaluations through now and then (each waits for this thread to hand its
          // worker the next one); the order of decisions is unchanged.
          if (performance.now() - slice > SLICE_MS) {
            await yieldToEvents();
            slice = performance.now();
          }
        }
      }
      trainedSoFar += trained;
      nextStart += b.n;
      b.cut = b.n < whole.length;
      if (b.cut) ended = true;
    } catch (e) {
      b.dropped = true;
      fail(e);
    } finally {
      b.left--;
      if (b.left === 0) b.finish();
    }
  };
  /** Start handing out the next batch if the pipeline allows it (batch k waits for observe(k-1-S)). */
  const pump = () => {
    if (handing || ended || stopping) return;
    poll();
    if (stopping || nextK - 1 - staleness > lastObserved) return;
    handing = true;
    void handOut().finally(() => {
      handing = false;
      notify();
      pump();
    });
  };

  // Observe batches in order, each once it is whole and the S batches beyond it were proposed
  // (the strategy's calls keep their one order: propose(k+S) before observe(k) before propose(k+S+1)).
  let observing = true;
  try {
    pump();
    for (;;) {
      const b = inflight[0];
      if (b === undefined) {
        if (!handing) break;
        await changed();
        continue;
      }
      await b.done;
      while (!(lastProposed >= b.k + staleness || ended || stopping || failure !== undefined)) await changed();
      inflight.shift();
      if (!observing || failure !== undefined || b.dropped || b.cut || b.k + staleness > lastProposed) {
        observing = false;
        continue;
      }
      try {
        const taken = b.whole.slice(0, b.n);
        const cands = b.cands as Candidate[];
        let stats: UpdateStats;
        try {
          const args = [
            taken,
            cands.map((c) => c.reward),
            cands.map((c) => c.index),
            cands.map((c) => sampleKind(c.status) !== 'cached'),
          ] as const;
          stats = strategy.observing ? await drive(strategy.observing(...args), SLICE_MS) : strategy.observe(...args);
        } catch (e) {
          // A batch restored from the checkpoint whose choices the strategy cannot score (a
          // choice outside its vocabulary): the run.db was edited or damaged.
          if (!restored.has(b.k) || !(e instanceof RangeError)) throw e;
          throw new RunDamagedError(
            `run '${config.run}': the checkpoint after batch ${checkpoint?.batch ?? -1} is damaged: batch ${b.k}'s proposals cannot be scored (${e.message})`,
          );
        }
        store.saveCheckpoint({
          batch: b.k,
          samples: b.start + b.n,
          state: strategy.save(),
          stats: JSON.stringify(stats),
          pending: staleness === 0 ? null : JSON.stringify(inflight.slice(0, staleness).map((x) => x.whole)),
        });
        lastObserved = b.k;
        hooks.onUpdate?.(b.k, stats, progress());
      } catch (e) {
        fail(e);
        observing = false;
        continue;
      }
      pump();
    }
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  if (failure !== undefined) throw failure.error;
  if (signal?.aborted) throw abortError(signal, 'the search');
  all.sort((a, b) => a.index - b.index);
  return {
    run: config.run,
    budgetUnit: unit,
    budget: config.budget,
    sampled: all.length,
    capped: !stopping && unit === 'trained' && counts.evaluated < config.budget && all.length >= cap,
    evaluated: counts.evaluated,
    cached: counts.cached,
    rejected: counts.rejected,
    stopped: stopping,
    best: leaderboard(all, 5).map((x) => ({ rule: x.rule, reward: x.reward })),
  };
}
