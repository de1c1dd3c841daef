import { describe, expect, it } from 'vitest';
import { lookupRule } from '../../dsl/index.js';
import { createRun, findTask, parameterCount, REDDI, reddiGradient, TASKS } from '../../evaluator/tasks.js';
import { evaluateRule, trainOnce } from '../../evaluator/train.js';

const task = findTask('reddi-amsgrad')!;
/** Theorem 1's hyperparameters: beta1 = 0, beta2 = 1/(1 + C^2). */
const theorem1 = { beta1: 0, beta2: 1 / (1 + REDDI.C ** 2) };
const finalX = (valAcc: number) => 1 - 2 * valAcc;

describe('Reddi et al. 2018 counterexample (reddi-amsgrad)', () => {
  it('is a listed analytic task with one parameter', () => {
    expect(TASKS.some((t) => t.id === 'reddi-amsgrad')).toBe(true);
    expect(task.dataset).toBeNull();
    expect(parameterCount(task)).toBe(1);
    expect(theorem1.beta2).toBe(0.1);
  });

  it('builds the losses: gradient C on steps t mod 3 = 1, else -1; the average loss favours x = -1', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(reddiGradient)).toEqual([3, -1, -1, 3, -1, -1, 3]);
    const run = createRun(task, 0, undefined);
    expect(Array.from(run.weights[0] as Float32Array)).toEqual([1]);
    for (let t = 1; t <= 6; t++) {
      const { loss, grads } = run.gradients(t);
      expect(grads[0]?.[0]).toBe(reddiGradient(t));
      expect(loss).toBe(reddiGradient(t) * 1);
    }
    // Average gradient (C - 2)/3 > 0: the sum over a period is minimised at -1.
    expect(run.fixedGradients().grads[0]?.[0]).toBeCloseTo((REDDI.C - 2) / 3, 6);
    expect(run.evaluate('val')).toEqual({ acc: 0, loss: (2 * (REDDI.C - 2)) / 3 });
    (run.weights[0] as Float32Array)[0] = -1;
    expect(run.evaluate('val')).toEqual({ acc: 1, loss: 0 });
  });

  it('projects onto [-1, 1] and leaves NaN for the divergence check', () => {
    const run = createRun(task, 0, undefined);
    const w = run.weights[0] as Float32Array;
    for (const [v, p] of [
      [5, 1],
      [-3.5, -1],
      [0.25, 0.25],
      [-1, -1],
    ] as const) {
      w[0] = v;
      run.project?.();
      expect(w[0]).toBe(p);
    }
    w[0] = Number.NaN;
    run.project?.();
    expect(Number.isNaN(w[0])).toBe(true);
  });

  it('the trainer keeps x in [-1, 1] after every step, even at a huge learning rate', () => {
    const sgd = lookupRule('sgd', '<rule>');
    if (!sgd.ok) throw new Error(sgd.message);
    for (const steps of [1, 2, 3, 10, 31]) {
      const r = trainOnce(sgd.rule, task, undefined, 100, steps, { seed: 0, deadline: Number.POSITIVE_INFINITY });
      expect(r.status).toBe('ok');
      const x = finalX(r.valAcc);
      expect(x).toBeGreaterThanOrEqual(-1);
      expect(x).toBeLessThanOrEqual(1);
      // sgd at lr 100 jumps to a bound every step: -1 after a step with gradient 3, +1 after -1.
      expect(x).toBe(reddiGradient(steps) > 0 ? -1 : 1);
    }
  });

  it('Adam (beta1 = 0, beta2 = 1/(1 + C^2)) ends at x = +1 at every grid rate: reward 0', () => {
    const r = evaluateRule('adam', task, undefined, { params: theorem1 });
    expect(r.status).toBe('ok');
    expect(r.grid.every((g) => g.status === 'ok' && g.valAcc < 0.01)).toBe(true);
    expect(finalX(r.valAcc)).toBeGreaterThan(0.98);
    expect(r.reward).toBeLessThan(0.01);
  });

  it('AMSGrad with the same hyperparameters converges to x = -1: reward near 1', () => {
    const r = evaluateRule('amsgrad', task, undefined, { params: theorem1 });
    expect(r.status).toBe('ok');
    expect(finalX(r.valAcc)).toBeLessThan(-0.9);
    expect(r.reward).toBeGreaterThan(0.95);
  });
});
