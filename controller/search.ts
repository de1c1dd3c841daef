/**
 * The search loop: propose -> canonicalise -> skip what the store or the fingerprint cache
 * already knows -> evaluate in the pool -> reward -> update the strategy -> persist, batch by
 * batch, until the budget is spent: rules actually trained (the budget unit `trained`, new
 * runs' default; cache hits, fingerprint twins and rejected rules are free, up to a hard cap of
 * SAMPLE_CAP_FACTOR x the budget in samples, so a strategy that keeps proposing known rules
 * still ends) or rules sampled (`sampled`, what runs made before the unit existed count).
 *
 * Deterministic for a seed (and independent of the worker count): proposals come from the
 * strategy's own RNG, rewards are fed back in proposal order, and evaluations are seeded.
 * Each evaluation is stored as it finishes and each batch ends with a checkpoint, so a
 * `kill -9` loses only evaluations in flight: on resume the strategy is restored from the
 * last checkpoint, regenerates the same batch, and reuses what the store already holds.
 */
import { lookupRule } from '../dsl/index.js';
import type { Evaluator } from '../evaluator/protocol.js';
import { screenRule } from '../evaluator/screen.js';
import { SCREEN_LR_TOP } from '../evaluator/tasks.js';
import { sampleCounts, sampleKind } from '../search-results/samples.js';
import type { Candidate, ResultsStore } from '../search-results/store.js';
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

/** The budget unit of a stored config: runs made before the unit existed count samples. */
export function budgetUnitOf(config: object): BudgetUnit {
  const unit = (config as { readonly budgetUnit?: unknown }).budgetUnit;
  if (unit === undefined) return 'sampled';
  if (unit === 'trained' || unit === 'sampled') return unit;
  throw new Error(`the stored budget unit '${String(unit)}' is not one of ${BUDGET_UNITS.join(', ')}`);
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
  readonly elapsedMs: number;
}

export interface SearchHooks {
  onCandidate?(c: Candidate, progress: SearchProgress): void;
  onUpdate?(batch: number, stats: UpdateStats, progress: SearchProgress): void;
  /** Checked between evaluations: true stops the search after what is in flight. */
  shouldStop?(): boolean;
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

function counts(cs: readonly Candidate[]): { evaluated: number; cached: number; rejected: number; best: number } {
  const { trained, ...rest } = sampleCounts(cs);
  return { evaluated: trained, ...rest };
}

/**
 * Whether the loop will train a proposal (not a stored or in-batch duplicate, a fingerprint match
 * or a rejected rule), decided before anything of the batch runs, as the loop decides it.
 */
function willTrain(
  p: Proposal,
  index: number,
  existing: ReadonlyMap<number, Candidate>,
  store: ResultsStore,
  seen: Set<string>,
): boolean {
  const known = existing.get(index);
  if (known) return sampleKind(known.status) === 'trained';
  const found = lookupRule(p.text);
  if (!found.ok) return false;
  const { hash } = found.rule;
  if (seen.has(hash) || store.byHash(hash)) return false;
  seen.add(hash);
  const screen = screenRule(found.rule);
  return screen.ok && store.byFingerprint(screen.fingerprint) === undefined;
}

/** How many of a batch's proposals to take so that at most `left` of them are trained. */
function trainingPrefix(
  proposals: readonly Proposal[],
  start: number,
  left: number,
  existing: ReadonlyMap<number, Candidate>,
  store: ResultsStore,
): number {
  const seen = new Set<string>();
  let trained = 0;
  for (const [i, p] of proposals.entries()) {
    if (willTrain(p, start + i, existing, store, seen)) trained++;
    if (trained >= left) return i + 1;
  }
  return proposals.length;
}

export async function runSearch(
  store: ResultsStore<RunConfig>,
  strategy: Strategy,
  evaluator: Evaluator,
  hooks: SearchHooks = {},
): Promise<SearchSummary> {
  const { config } = store;
  const t0 = performance.now();
  const existing = new Map(store.candidates().map((c) => [c.index, c]));
  const all: Candidate[] = [...existing.values()].sort((a, b) => a.index - b.index);
  const checkpoint = store.lastCheckpoint();
  const unit = budgetUnitOf(config);
  const cap = sampleCap(config.budget, unit);
  let batch = 0;
  // Where the next batch starts: the samples of the last checkpoint (batches may be short).
  let start = 0;
  if (checkpoint) {
    strategy.restore(checkpoint.state);
    batch = checkpoint.batch + 1;
    start = checkpoint.samples;
  }
  // A suite run normalises each workload's score against the baseline's (evaluated once, stored).
  const baselines = config.suite ? await suiteBaselines(store, evaluator, config) : {};
  let stopped = false;
  const progress = (): SearchProgress => {
    const c = counts(all);
    return {
      sampled: all.length,
      budget: config.budget,
      unit,
      spent: unit === 'trained' ? c.evaluated : all.length,
      sampleCap: cap,
      ...c,
      elapsedMs: performance.now() - t0,
    };
  };
  for (; ; batch++) {
    // What is left depends only on the batches before this one, so a resume regenerates it exactly.
    const left =
      unit === 'trained' ? config.budget - counts(all.filter((c) => c.index < start)).evaluated : config.budget - start;
    if (left <= 0 || start >= cap) break;
    if (hooks.shouldStop?.()) {
      stopped = true;
      break;
    }
    // With the trained unit every batch is proposed whole; the last one is cut after the rule
    // that spends the budget (or at the sample cap), and the strategy neither learns from nor
    // checkpoints a cut batch: a resume with a raised budget regenerates it whole, as a run made
    // with that budget from the start would have.
    const whole = strategy.propose(unit === 'trained' ? config.batchSize : Math.min(config.batchSize, left));
    const n =
      unit === 'trained'
        ? Math.min(whole.length, cap - start, trainingPrefix(whole, start, left, existing, store))
        : whole.length;
    const cut = n < whole.length;
    const proposals = whole.slice(0, n);
    const inBatch = new Map<string, Promise<Candidate>>();
    const settle = async (p: Proposal, i: number): Promise<Candidate> => {
      const index = start + i;
      const known = existing.get(index);
      if (known) return known;
      const base = {
        index,
        batch,
        strategy: strategy.name,
        bestLr: null,
        valAcc: null,
        testAcc: null,
        finalLoss: null,
        seconds: 0,
      };
      const found = lookupRule(p.text);
      if (!found.ok) {
        return {
          ...base,
          rule: p.text,
          hash: '',
          fingerprint: null,
          status: 'rejected',
          reward: 0,
          detail: JSON.stringify({ reason: found.message }),
          parent: p.parent,
        };
      }
      const rule = found.rule;
      const earlier = store.byHash(rule.hash);
      if (earlier)
        return {
          ...base,
          ...copyOf(earlier),
          rule: rule.canonical,
          hash: rule.hash,
          status: 'cached',
          parent: earlier.index,
        };
      const twin = inBatch.get(rule.hash);
      if (twin) {
        const t = await twin;
        return {
          ...base,
          ...copyOf(t),
          rule: rule.canonical,
          hash: rule.hash,
          status: t.status === 'rejected' ? 'rejected' : 'cached',
          parent: t.index,
        };
      }
      const pending = (async (): Promise<Candidate> => {
        const screen = screenRule(rule);
        if (!screen.ok) {
          return {
            ...base,
            rule: rule.canonical,
            hash: rule.hash,
            fingerprint: screen.fingerprint,
            status: 'rejected',
            reward: 0,
            detail: JSON.stringify({ reason: screen.reason }),
            parent: p.parent,
          };
        }
        const same = store.byFingerprint(screen.fingerprint);
        if (same)
          return {
            ...base,
            ...copyOf(same),
            rule: rule.canonical,
            hash: rule.hash,
            fingerprint: screen.fingerprint,
            status: 'cached',
            parent: same.index,
          };
        if (config.suite) {
          const out = await evaluateSuite(evaluator, rule.canonical, config, baselines);
          return {
            ...base,
            rule: rule.canonical,
            hash: rule.hash,
            fingerprint: screen.fingerprint,
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
        const { result } = await evaluator.evaluate({
          rule: rule.canonical,
          task: config.task,
          seed: config.seed,
          lrTop: SCREEN_LR_TOP,
          ...(config.steps ? { steps: config.steps } : {}),
        });
        return {
          ...base,
          rule: rule.canonical,
          hash: rule.hash,
          fingerprint: screen.fingerprint,
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
      inBatch.set(rule.hash, pending);
      return pending;
    };
    // Every evaluation of the batch finishes before an error (a full disk) ends the search:
    // nothing in flight is left to write into a store that is being closed.
    const outcomes = await Promise.allSettled(
      proposals.map(async (p, i) => {
        if (hooks.shouldStop?.() && !existing.has(start + i)) return undefined;
        const c = await settle(p, i);
        if (!existing.has(c.index)) {
          store.add(c);
          existing.set(c.index, c);
          all.push(c);
          hooks.onCandidate?.(c, progress());
        }
        return c;
      }),
    );
    const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failure) throw failure.reason;
    const settled = outcomes.map((o) => (o as PromiseFulfilledResult<Candidate | undefined>).value);
    if (settled.some((c) => c === undefined)) {
      stopped = true;
      break;
    }
    if (cut) break;
    const cands = settled as Candidate[];
    const stats = strategy.observe(
      proposals,
      cands.map((c) => c.reward),
      cands.map((c) => c.index),
      cands.map((c) => sampleKind(c.status) !== 'cached'),
    );
    store.saveCheckpoint({ batch, samples: start + n, state: strategy.save(), stats: JSON.stringify(stats) });
    hooks.onUpdate?.(batch, stats, progress());
    start += n;
  }
  all.sort((a, b) => a.index - b.index);
  const c = counts(all);
  return {
    run: config.run,
    budgetUnit: unit,
    budget: config.budget,
    sampled: all.length,
    capped: !stopped && unit === 'trained' && c.evaluated < config.budget && all.length >= cap,
    evaluated: c.evaluated,
    cached: c.cached,
    rejected: c.rejected,
    stopped,
    best: leaderboard(all, 5).map((x) => ({ rule: x.rule, reward: x.reward })),
  };
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
