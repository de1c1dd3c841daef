/**
 * The search loop as it was before the pipeline (main at 7aecde8, controller/search.ts): batch
 * by batch, each observed before the next is proposed. Kept as the reference that runs made
 * before the staleness was stored (which resume with staleness 0) must still match exactly.
 */
import { lookupRule } from '../../dsl/index.js';
import type { Evaluator } from '../../evaluator/protocol.js';
import { screenRule } from '../../evaluator/screen.js';
import type { RunConfig } from '../../controller/config.js';
import { leaderboard } from '../../controller/funnel-plan.js';
import type { Candidate, ResultsStore } from '../../search-results/store.js';
import {
  budgetUnitOf,
  sampleCap,
  type SearchHooks,
  type SearchProgress,
  type SearchSummary,
} from '../../controller/search.js';
import type { Proposal, Strategy } from '../../controller/strategy.js';

function counts(cs: readonly Candidate[]): { evaluated: number; cached: number; rejected: number; best: number } {
  let evaluated = 0;
  let cached = 0;
  let rejected = 0;
  let best = 0;
  for (const c of cs) {
    if (c.status === 'cached') cached++;
    else if (c.status === 'rejected') rejected++;
    else evaluated++;
    if (c.status === 'ok' && c.reward > best) best = c.reward;
  }
  return { evaluated, cached, rejected, best };
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
  if (known) return known.status !== 'cached' && known.status !== 'rejected';
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

export async function synchronousSearch(
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
  let stopped = false;
  const progress = (): SearchProgress => {
    const c = counts(all);
    return {
      sampled: all.length,
      budget: config.budget,
      unit,
      spent: unit === 'trained' ? c.evaluated : all.length,
      sampleCap: cap,
      inFlight: 0,
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
        const { result } = await evaluator.evaluate({
          rule: rule.canonical,
          task: config.task,
          seed: config.seed,
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
      cands.map((c) => c.status !== 'cached'),
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
