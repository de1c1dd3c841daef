import { describe, expect, it } from 'vitest';
import { evaluateRules } from '../../controller/evaluate.js';
import { pairedTest } from '../../evaluator/paired.js';
import type { EvalRequest, Evaluator } from '../../evaluator/protocol.js';
import type { EvalResult } from '../../evaluator/train.js';

/** Accuracies by rule text and seed: [validation, test or null]. */
type Table = Readonly<Record<string, readonly (readonly [number, number | null])[]>>;

/** An evaluator that answers from a table, out of order, and records every request. */
class TableEvaluator implements Evaluator {
  readonly requests: EvalRequest[] = [];
  constructor(private readonly table: Table) {}
  async evaluate(req: EvalRequest): Promise<{ result: EvalResult }> {
    this.requests.push(req);
    await new Promise((r) => setTimeout(r, (7 * req.seed + req.rule.length) % 5));
    const [valAcc, testAcc] = this.table[req.rule]?.[req.seed] ?? [0, null];
    const result: EvalResult = {
      rule: req.rule,
      hash: '',
      task: req.task,
      seed: req.seed,
      status: 'ok',
      reward: valAcc,
      bestLr: 0.01,
      valAcc,
      testAcc,
      finalLoss: 1 - valAcc,
      grid: [],
      curve: [1],
      curveEvery: 1,
      seconds: 0,
    };
    return { result };
  }
}

const rules = [
  { label: 'a', rule: 'a' },
  { label: 'base', rule: 'base', params: { beta: 0.5 } },
];

describe('evaluateRules: what nos eval and evaluate() share', () => {
  it('trains every rule on the same seeds and compares on test accuracy when every seed of every rule has it', async () => {
    const ev = new TableEvaluator({
      a: [
        [0.9, 0.8],
        [0.7, 0.75],
        [0.8, 0.85],
      ],
      base: [
        [0.5, 0.6],
        [0.6, 0.7],
        [0.5, 0.65],
      ],
    });
    const progress: string[] = [];
    const e = await evaluateRules(
      { rules, task: 'quadratic', seeds: 3, baseline: 1, options: { test: true, steps: 7 } },
      ev,
      ({ rule, seed, done, total }) => progress.push(`${rule}/${seed} ${done}/${total}`),
    );
    expect(e.results.map((rs) => rs.map((r) => r.seed))).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(e.summaries.map((s) => s.label)).toEqual(['a', 'base']);
    expect(e.vsBaseline?.accuracy).toBe('test');
    expect(e.vsBaseline?.comparisons[0]).toEqual(pairedTest([0.8, 0.75, 0.85], [0.6, 0.7, 0.65]));
    expect(e.vsBaseline?.comparisons[1]).toBeUndefined();
    // Every request carries the shared options and the rule's own parameters, and nothing else of another rule.
    expect(ev.requests).toHaveLength(6);
    for (const r of ev.requests) {
      expect(r).toMatchObject({ task: 'quadratic', test: true, steps: 7 });
      expect(r.params).toEqual(r.rule === 'base' ? { beta: 0.5 } : undefined);
    }
    expect(progress.map((p) => p.split(' ')[1])).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']);
  });

  it('falls back to validation accuracy for every rule when any seed of any rule has no test accuracy', async () => {
    const ev = new TableEvaluator({
      a: [
        [0.9, 0.8],
        [0.7, null],
      ],
      base: [
        [0.5, 0.6],
        [0.6, 0.7],
      ],
    });
    const e = await evaluateRules({ rules, task: 'quadratic', seeds: 2, baseline: 1 }, ev);
    expect(e.vsBaseline?.accuracy).toBe('validation');
    expect(e.vsBaseline?.comparisons[0]).toEqual(pairedTest([0.9, 0.7], [0.5, 0.6]));
    // Without a baseline there is no comparison.
    expect((await evaluateRules({ rules, task: 'quadratic', seeds: 2 }, ev)).vsBaseline).toBeUndefined();
    await expect(evaluateRules({ rules, task: 'quadratic', seeds: 0 }, ev)).rejects.toThrow(
      /seeds must be a positive integer, got 0/,
    );
  });
});
