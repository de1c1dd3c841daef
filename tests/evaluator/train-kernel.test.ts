import { beforeAll, describe, expect, it } from 'vitest';
import { compileRules, library } from '../../dsl/index.js';
import { loadDataset } from '../../evaluator/data.js';
import { findTask } from '../../evaluator/tasks.js';
import { trainOnce } from '../../evaluator/train.js';
import { tfReady } from '../helpers/tf.js';

const mlp = findTask('mlp-mnist')!;
const forever = Number.POSITIVE_INFINITY;

function closeCurves(a: readonly number[], b: readonly number[], rel: number): string | undefined {
  if (a.length !== b.length) return `lengths ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (!(Math.abs(x - y) <= rel * Math.abs(x))) return `point ${i}: ${x} vs ${y}`;
  }
  return undefined;
}

describe('child training applies the rule with the wasm SIMD kernel', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('the MLP on MNIST follows the same loss curve with the wasm kernel as with fused JS (float32 tolerance)', () => {
    const data = loadDataset('mnist');
    for (const name of ['adam', 'lion', 'powersign']) {
      const rule = library().get(name)!;
      const wasm = trainOnce(rule, mlp, data, 0.003, 24, { seed: 2, deadline: forever });
      const js = trainOnce(rule, mlp, data, 0.003, 24, { seed: 2, deadline: forever, kernel: 'js' });
      expect(wasm.ruleBackend, name).toBe('wasm');
      expect(js.ruleBackend, name).toBe('js');
      expect(wasm.status).toBe('ok');
      expect(wasm.curve.length).toBe(24);
      // The loss falls, and both back ends see the same curve (float32 roundings differ: the
      // wasm kernel multiplies by reciprocals and evaluates exp/log by polynomials).
      expect(wasm.curve[23]!).toBeLessThan(wasm.curve[0]!);
      expect(closeCurves(js.curve, wasm.curve, 2e-4), name).toBeUndefined();
      expect(Math.abs(wasm.valAcc - js.valAcc), name).toBeLessThanOrEqual(0.002);
    }
  });

  it('is deterministic per seed on the wasm kernel, noise included', () => {
    const rule = compileRules('rule noisy(beta = 0.9) = ema(g, beta) + 0.01 * noise').rules[0]!;
    const quadratic = findTask('quadratic')!;
    const a = trainOnce(rule, quadratic, undefined, 0.01, 30, { seed: 5, deadline: forever });
    const b = trainOnce(rule, quadratic, undefined, 0.01, 30, { seed: 5, deadline: forever });
    const c = trainOnce(rule, quadratic, undefined, 0.01, 30, { seed: 6, deadline: forever });
    expect(a.ruleBackend).toBe('wasm');
    expect(b.curve).toEqual(a.curve);
    expect(c.curve).not.toEqual(a.curve);
  });
});
