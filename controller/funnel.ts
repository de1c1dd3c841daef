/**
 * The funnel: after the search has trained its rules once on the proxy (rung 0, one seed), the
 * best of them climb rungs of rising fidelity, as in Lion's funnel and successive halving
 * (Optuna, Ray Tune): rung 1 re-runs the proxy with more seeds for the top fraction, rung 2
 * trains the best of those longer, rung 3 trains the finalists on a transfer task. The baseline
 * (Adam) runs on the same rungs and seeds, so every comparison with it is paired by seed.
 *
 * Each rung's promotions depend only on the rows of the rungs below, which are complete before
 * a rung starts, so the plan is a pure function of what the store holds: after a kill -9 a
 * resume recomputes the same plan and trains only the rows that are missing. Every evaluation
 * is stored as it finishes (one row per rule x rung x seed) and never recomputed.
 *
 * The controller learns from rung 0 only: its rewards arrive with the batch that proposed the
 * rules, for every rule, at one fidelity. Higher rungs arrive later and for a few rules; feeding
 * them back would mix fidelities in REINFORCE's baseline. The funnel decides what is reported.
 */
import type { EvalRequest, Evaluator } from '../evaluator/protocol.js';
import type { EvalResult } from '../evaluator/train.js';
import type { Evaluation, FunnelStore, ResultsStore } from '../search-results/store.js';
import { AbortFanOut, abortError, isAbortError } from '../util/abort.js';
import type { RunConfig } from './config.js';
import {
  baselineRule,
  indexEvaluations,
  planFunnel,
  type Rung,
  rowAt,
  rungSteps,
  rungsOf,
  rungZero,
  type Verdicts,
  verdicts,
} from './funnel-plan.js';

export {
  baselineScores,
  defaultTransfer,
  FUNNEL_DEFAULTS,
  planFunnel,
  type Rung,
  type RungScore,
  rungsOf,
  type Standing,
  standings,
  type Verdicts,
  verdicts,
} from './funnel-plan.js';

export interface FunnelHooks {
  onRung?(rung: Rung, rules: number, evaluations: number): void;
  onEvaluation?(e: Evaluation, left: number): void;
  /**
   * Checked before each rung and after each evaluation: true stops the funnel. Evaluations no
   * worker has started are dropped (the pool, the queue), those running are awaited and stored.
   */
  shouldStop?(): boolean;
  /** Aborts the funnel as `shouldStop` stops it, then rejects with an AbortError. */
  readonly signal?: AbortSignal;
  /** With `signal`: its abort also stops the evaluations that run, unstored (SearchHooks.interrupt). */
  readonly interrupt?: boolean;
  /** Evaluations handed to the evaluator at once (default: all of a rung's, so every worker has one). */
  readonly concurrency?: number;
}

export interface FunnelSummary {
  readonly rungs: readonly (Rung & { readonly rules: number })[];
  readonly baseline: string;
  readonly stopped: boolean;
  /** The finalists' (or the top rules') verdicts against the baseline. */
  readonly verdicts: readonly Verdicts[];
  readonly evaluated: number;
}

/**
 * Climb the funnel: for each rung, evaluate its members and the baseline at its seeds (those
 * already stored are reused), then promote. Stops early, with what it has stored, when
 * `shouldStop` says so; rejects with an AbortError when `signal` aborts.
 */
export async function runFunnel(
  store: ResultsStore<RunConfig> & FunnelStore,
  evaluator: Evaluator,
  hooks: FunnelHooks = {},
): Promise<FunnelSummary> {
  const config = store.config;
  const { signal } = hooks;
  if (signal?.aborted) throw abortError(signal, 'the funnel');
  const f = config.funnel;
  if (!f) return { rungs: [], baseline: '', stopped: false, verdicts: [], evaluated: 0 };
  // Stopping: nothing new is handed out; the evaluator drops what no worker has started.
  const halt = new AbortController();
  const stop = () => halt.abort(signal?.aborted ? signal.reason : undefined);
  signal?.addEventListener('abort', stop, { once: true });
  const stopRequested = () => halt.signal.aborted || signal?.aborted === true || hooks.shouldStop?.() === true;
  let summary: FunnelSummary;
  try {
    summary = await climb(store, evaluator, hooks, halt, stopRequested);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
  if (signal?.aborted) throw abortError(signal, 'the funnel');
  return summary;
}

async function climb(
  store: ResultsStore<RunConfig> & FunnelStore,
  evaluator: Evaluator,
  hooks: FunnelHooks,
  halt: AbortController,
  stopRequested: () => boolean,
): Promise<FunnelSummary> {
  const config = store.config;
  const f = config.funnel as NonNullable<typeof config.funnel>;
  // Each evaluation in flight listens to a signal of its own.
  const fan = new AbortFanOut(halt.signal);
  const cut = hooks.interrupt === true && hooks.signal !== undefined ? new AbortFanOut(hooks.signal) : undefined;
  const base = baselineRule(f.baseline);
  const cs = store.candidates();
  // Rung 0 rows, from the search's candidates (idempotent).
  store.addEvaluations(rungZero(config, cs));
  let evaluated = 0;
  let stopped = false;
  const rungs = rungsOf(config);
  for (let r = 0; r < rungs.length; r++) {
    const plan = planFunnel(config, cs, store.evaluations());
    const rung = rungs[r] as Rung;
    const rules = r === 0 ? [] : (plan.members[r] as string[]);
    const ruleText = new Map(
      store
        .evaluations()
        .filter((e) => e.rung === 0)
        .map((e) => [e.hash, e.rule]),
    );
    ruleText.set(base.hash, base.rule);
    const stored = indexEvaluations([...rungZero(config, cs), ...store.evaluations()]);
    const jobs: { hash: string; rule: string; task: string; seed: number }[] = [];
    for (const hash of r === 0 ? [base.hash] : [...rules, base.hash]) {
      const rule = ruleText.get(hash);
      if (rule === undefined) continue;
      for (const task of rung.tasks)
        for (const seed of rung.seeds) {
          if (rowAt(stored, hash, r, task, seed)) continue;
          // Rung 1 repeats rung 0's protocol: its first seed is rung 0's row, reused.
          const zero = rowAt(stored, hash, 0, task, seed);
          if (r === 1 && zero) {
            store.addEvaluation({ ...zero, rung: 1 });
            continue;
          }
          if (jobs.some((j) => j.hash === hash && j.task === task && j.seed === seed)) continue;
          jobs.push({ hash, rule, task, seed });
        }
    }
    hooks.onRung?.(rung, rules.length, jobs.length);
    if (stopRequested()) {
      stopped = true;
      break;
    }
    let left = jobs.length;
    let next = 0;
    // All of a rung's evaluations go to the evaluator at once (or `concurrency` at a time), in
    // order, so every worker has one; a stop drops those no worker has started.
    const runOne = async (): Promise<void> => {
      for (;;) {
        const j = jobs[next++];
        if (j === undefined) return;
        if (stopRequested()) {
          stopped = true;
          halt.abort();
          return;
        }
        const steps = rungSteps(rung, j.task);
        const req: EvalRequest = {
          rule: j.rule,
          task: j.task,
          seed: j.seed,
          ...(steps === undefined ? {} : { steps }),
          ...(rung.lrTop === undefined ? {} : { lrTop: rung.lrTop }),
          test: true,
          ...(config.standIn === undefined ? {} : { standInMs: config.standIn }),
        };
        let result: EvalResult;
        const one = fan.child();
        const hard = cut?.child();
        try {
          ({ result } = await evaluator.evaluate(req, {
            signal: one.signal,
            ...(hard ? { interrupt: hard.signal } : {}),
          }));
        } catch (e) {
          if (halt.signal.aborted && isAbortError(e)) {
            stopped = true;
            return;
          }
          throw e;
        } finally {
          one.release();
          hard?.release();
        }
        const e: Evaluation = {
          hash: j.hash,
          rung: r,
          seed: j.seed,
          rule: j.rule,
          task: j.task,
          status: result.status,
          reward: result.reward,
          bestLr: result.bestLr,
          valAcc: Number.isFinite(result.valAcc) ? result.valAcc : null,
          testAcc: result.testAcc,
          seconds: result.seconds,
        };
        store.addEvaluation(e);
        evaluated++;
        hooks.onEvaluation?.(e, --left);
        if (stopRequested()) halt.abort();
      }
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: Math.min(hooks.concurrency ?? jobs.length, jobs.length) }, async () => {
        try {
          await runOne();
        } catch (e) {
          // One failure stops the rest; every evaluation in flight is still awaited and stored.
          halt.abort();
          throw e;
        }
      }),
    );
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
    if (stopped || halt.signal.aborted) {
      stopped = true;
      break;
    }
  }
  const plan = planFunnel(config, cs, store.evaluations());
  return {
    rungs: plan.rungs.map((g, i) => ({ ...g, rules: (plan.members[i] ?? []).length })),
    baseline: f.baseline,
    stopped,
    verdicts: verdicts(config, cs, store.evaluations()),
    evaluated,
  };
}
