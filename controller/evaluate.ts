/**
 * Rules trained side by side, each on the same seeds, and compared with a baseline paired by
 * seed: what `nos eval` and the library's `evaluate()` both do. The caller brings the evaluator
 * (the pool, the queue, or one that trains in this thread); the CLI only parses and formats.
 */
import { type PairedComparison, pairedTest } from '../evaluator/paired.js';
import type { EvalRequest, Evaluator } from '../evaluator/protocol.js';
import { jsonNumber, type RuleSummary, summarize } from '../evaluator/stats.js';
import type { EvalResult } from '../evaluator/train.js';

/** Which accuracy a baseline comparison uses: test accuracy when every seed of every rule measured it, else validation. */
export type ComparedAccuracy = 'test' | 'validation';

/** One rule to train: its label (as given), its text, and what is its own. */
export interface RuleToEvaluate {
  readonly label: string;
  /** Rule text, a built-in name, or a learned optimizer's `learned:FILE` label (with `learned`). */
  readonly rule: string;
  readonly learned?: EvalRequest['learned'];
  /** Hyperparameter overrides of this rule. */
  readonly params?: Readonly<Record<string, number>>;
}

export interface EvaluateRulesRequest {
  readonly rules: readonly RuleToEvaluate[];
  /** A task id. */
  readonly task: string;
  /** Seeds 0..seeds-1, for every rule. */
  readonly seeds: number;
  /** The rule (an index into `rules`) every other rule is compared with. */
  readonly baseline?: number;
  /** Everything else of each request (steps, the grid, schedules, test accuracy, ...). */
  readonly options?: Omit<EvalRequest, 'rule' | 'task' | 'seed' | 'learned' | 'params'>;
}

export interface RulesEvaluation {
  /** Every seed's result, by rule (in the order of `rules`), then by seed. */
  readonly results: readonly (readonly EvalResult[])[];
  /** Mean and spread over seeds, by rule. */
  readonly summaries: readonly RuleSummary[];
  /** With a baseline: the accuracy compared, and each rule minus the baseline (undefined for the baseline itself). */
  readonly vsBaseline?: {
    readonly index: number;
    readonly accuracy: ComparedAccuracy;
    readonly comparisons: readonly (PairedComparison | undefined)[];
  };
}

/**
 * A rule against the baseline, as `nos eval --json` writes it and `evaluate()` returns it (the
 * contract's shape): accuracy differences, rule minus baseline, paired by seed.
 */
export interface BaselineComparison {
  readonly baseline: string;
  /** Seeds paired. */
  readonly seeds: number;
  /** The accuracy compared. */
  readonly accuracy: ComparedAccuracy;
  /** Mean difference (null when no pair had both accuracies) and its 95% interval (null with fewer than 2 pairs). */
  readonly diff: { readonly mean: number | null; readonly ci95: readonly [number, number] | null };
  /** Two-sided p-value; null with fewer than 2 pairs. */
  readonly p: number | null;
  readonly test: PairedComparison['test'];
  readonly verdict: PairedComparison['verdict'];
}

/** A paired comparison in the contract's shape. */
export function baselineComparison(
  baseline: string,
  c: PairedComparison,
  accuracy: ComparedAccuracy,
): BaselineComparison {
  return {
    baseline,
    seeds: c.n,
    accuracy,
    diff: { mean: jsonNumber(c.mean), ci95: c.ci95 === null ? null : [c.ci95[0], c.ci95[1]] },
    p: c.p,
    test: c.test,
    verdict: c.verdict,
  };
}

/** Per-seed accuracy of a rule, the one `which` names (NaN where a seed has none). */
function seedAccuracies(r: RuleSummary, which: ComparedAccuracy): number[] {
  return r.seeds.map((s) => (which === 'test' ? (s.testAcc ?? Number.NaN) : s.valAcc));
}

/** Each rule minus the baseline, paired by seed, on test accuracy when every seed of every rule measured it, else validation. */
export function compareWithBaseline(
  summaries: readonly RuleSummary[],
  index: number,
): NonNullable<RulesEvaluation['vsBaseline']> {
  const base = summaries[index];
  if (base === undefined) throw new RangeError(`the baseline is rule ${index}, but there are ${summaries.length}`);
  const accuracy: ComparedAccuracy = summaries.every((r) =>
    r.seeds.every((s) => s.testAcc !== null && s.testAcc !== undefined),
  )
    ? 'test'
    : 'validation';
  const comparisons = summaries.map((r, i) =>
    i === index ? undefined : pairedTest(seedAccuracies(r, accuracy), seedAccuracies(base, accuracy)),
  );
  return { index, accuracy, comparisons };
}

/**
 * Train every rule on seeds 0..seeds-1 through `evaluator` (all requests at once: the evaluator
 * queues them for its workers), then summarise each rule and compare it with the baseline.
 */
export async function evaluateRules(
  req: EvaluateRulesRequest,
  evaluator: Evaluator,
  onResult?: (progress: {
    readonly rule: number;
    readonly seed: number;
    readonly result: EvalResult;
    readonly done: number;
    readonly total: number;
  }) => void,
): Promise<RulesEvaluation> {
  const { rules, seeds } = req;
  if (!Number.isInteger(seeds) || seeds < 1) throw new RangeError(`seeds must be a positive integer, got ${seeds}`);
  const results: EvalResult[][] = rules.map(() => []);
  const total = rules.length * seeds;
  let done = 0;
  await Promise.all(
    rules.flatMap((r, i) =>
      Array.from({ length: seeds }, async (_s, seed) => {
        const { result } = await evaluator.evaluate({
          ...req.options,
          rule: r.rule,
          ...(r.learned === undefined ? {} : { learned: r.learned }),
          task: req.task,
          seed,
          ...(r.params !== undefined && Object.keys(r.params).length > 0 ? { params: r.params } : {}),
        });
        (results[i] as EvalResult[])[seed] = result;
        onResult?.({ rule: i, seed, result, done: ++done, total });
      }),
    ),
  );
  const summaries = rules.map((r, i) => summarize(r.label, results[i] as EvalResult[]));
  return {
    results,
    summaries,
    ...(req.baseline === undefined ? {} : { vsBaseline: compareWithBaseline(summaries, req.baseline) }),
  };
}
