import { describe, expect, it } from 'vitest';
import { curveBand, jsonStat, stat, summarize } from '../../evaluator/stats.js';
import type { EvalResult } from '../../evaluator/train.js';

function result(over: Partial<EvalResult>): EvalResult {
  return {
    rule: 'g',
    hash: '',
    task: 't',
    seed: 0,
    status: 'ok',
    reward: 0.5,
    bestLr: 0.1,
    valAcc: 0.5,
    testAcc: 0.4,
    finalLoss: 1,
    grid: [],
    curve: [2, 1],
    curveEvery: 10,
    seconds: 1,
    ...over,
  };
}

describe('statistics over seeds', () => {
  it('mean and sample std of the finite values', () => {
    expect(stat([1, 2, 3])).toEqual({ mean: 2, std: 1 });
    expect(stat([4])).toEqual({ mean: 4, std: 0 });
    expect(stat([1, Number.NaN, 3, Number.POSITIVE_INFINITY])).toEqual({ mean: 2, std: Math.SQRT2 });
    const none = stat([Number.NaN]);
    expect(Number.isNaN(none.mean) && Number.isNaN(none.std)).toBe(true);
    expect(jsonStat(none)).toEqual({ mean: null, std: null });
  });

  it('a rule summary: the learning rate most seeds chose, the worst status, summed time, curves of the successful seeds', () => {
    const seeds = [
      result({ seed: 0, bestLr: 0.1, valAcc: 0.6, curve: [3, 1] }),
      result({ seed: 1, bestLr: 0.01, valAcc: 0.4, curve: [1, 1] }),
      result({
        seed: 2,
        bestLr: 0.01,
        valAcc: Number.NaN,
        status: 'diverged',
        testAcc: null,
        finalLoss: Number.NaN,
        curve: [9, 9],
      }),
    ];
    const s = summarize('mine', seeds);
    expect(s).toMatchObject({ rule: 'g', label: 'mine', bestLr: 0.01, status: 'diverged', seconds: 3 });
    expect(s.valAcc.mean).toBeCloseTo(0.5);
    expect(s.testAcc.mean).toBeCloseTo(0.4);
    expect(curveBand(seeds)).toEqual({ x: [10, 20], mean: [2, 1], lo: [2 - Math.SQRT2, 1], hi: [2 + Math.SQRT2, 1] });
    expect(summarize('x', []).status).toBe('invalid');
    // Ties between learning rates go to the smaller.
    expect(summarize('t', [result({ bestLr: 0.1 }), result({ bestLr: 0.01 })]).bestLr).toBe(0.01);
  });
});
