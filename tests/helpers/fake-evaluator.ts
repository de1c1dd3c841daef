/** A fast, deterministic stand-in for the evaluator pool: the reward is a hash of the rule text. */
import type { Evaluator } from '../../controller/search.js';
import type { EvalRequest } from '../../evaluator/protocol.js';
import type { EvalResult } from '../../evaluator/train.js';

export class FakeEvaluator implements Evaluator {
  calls: string[] = [];

  /**
   * `delays`: settle after 0-6 ms, so evaluations finish out of order as in the pool;
   * `diverge`: every fifth rule (by hash) diverges with reward 0.
   */
  constructor(private readonly options: { readonly delays?: boolean; readonly diverge?: boolean } = {}) {}

  async evaluate(req: EvalRequest): Promise<{ result: EvalResult }> {
    this.calls.push(req.rule);
    let h = 0;
    for (const ch of req.rule) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    if (this.options.delays) await new Promise((r) => setTimeout(r, h % 7));
    const reward = (h % 1000) / 1000;
    const diverged = this.options.diverge === true && h % 5 === 0;
    return {
      result: {
        rule: req.rule,
        hash: '',
        task: req.task,
        seed: req.seed,
        status: diverged ? 'diverged' : 'ok',
        reward: diverged ? 0 : reward,
        bestLr: 0.01,
        valAcc: reward,
        testAcc: null,
        finalLoss: this.options.diverge ? 1 - reward : 1,
        grid: [],
        curve: this.options.diverge ? [1, 0.5] : [1],
        curveEvery: 1,
        seconds: this.options.diverge ? 0.01 : 0,
      },
    };
  }
}
