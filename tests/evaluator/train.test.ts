import { beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { loadDataset } from '../../evaluator/data.js';
import { analyticScore, createRun, findTask, parameterCount, TASKS } from '../../evaluator/tasks.js';
import { defaultTimeLimitMs, evaluateRule, LEARNED_TIME_FACTOR, trainOnce } from '../../evaluator/train.js';
import { tfReady } from '../helpers/tf.js';

const quadratic = findTask('quadratic')!;
const rosenbrock = findTask('rosenbrock')!;
const mlp = findTask('mlp-mnist')!;

describe('training protocol', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('runs the learning-rate grid, picks the best rate, and reports the full run', () => {
    const r = evaluateRule('adam', quadratic, undefined);
    expect(r.status).toBe('ok');
    expect(r.grid.map((g) => g.lr)).toEqual(quadratic.lrGrid);
    const bestGrid = Math.max(...r.grid.filter((g) => g.status === 'ok').map((g) => g.valAcc));
    expect(r.grid.find((g) => g.lr === r.bestLr)?.valAcc).toBe(bestGrid);
    expect(r.reward).toBe(r.valAcc);
    expect(r.reward).toBeGreaterThan(0.5);
    expect(r.curve.length).toBeGreaterThan(10);
  });

  it("picks the rate the protocol says: by validation accuracy, validation loss, or the grid runs' tail training loss", () => {
    const okRuns = (r: ReturnType<typeof evaluateRule>) => r.grid.filter((g) => g.status === 'ok');
    const byTail = evaluateRule('momentum', quadratic, undefined, { lrSelect: 'train-loss', steps: 80 });
    const minTail = Math.min(...okRuns(byTail).map((g) => g.tailLoss));
    expect(byTail.grid.find((g) => g.lr === byTail.bestLr)?.tailLoss).toBe(minTail);
    const byValLoss = evaluateRule('momentum', quadratic, undefined, { lrSelect: 'val-loss', steps: 80 });
    expect(byValLoss.grid.find((g) => g.lr === byValLoss.bestLr)?.valLoss).toBe(
      Math.min(...okRuns(byValLoss).map((g) => g.valLoss)),
    );
    // A grid run's tail loss is the mean training loss over its last quarter: each grid run here is
    // 20 steps (80 x 50/200), one curve point per step, so the last 5 points.
    const one = trainOnce(library().get('momentum')!, quadratic, undefined, 0.0001, 20, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
    });
    expect(one.status).toBe('ok');
    const tail = one.curve.slice(-5);
    expect(one.tailLoss).toBeCloseTo(tail.reduce((a, b) => a + b, 0) / 5, 12);
    // Grid steps and the validation size are the protocol's too; the image tasks rank by tail loss.
    expect(evaluateRule('sgd', quadratic, undefined, { gridSteps: 7, lrGrid: [0.01, 0.1] }).grid).toHaveLength(2);
    for (const id of ['mlp-mnist', 'convnet-fashion', 'softmax-mnist'])
      expect(findTask(id)?.lrSelect, id).toBe('train-loss');
    expect(mlp.lrGrid).toEqual([1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1]);
    // A run that diverges has no tail loss to win with.
    const diverged = trainOnce(library().get('sgd')!, quadratic, undefined, 1e6, 20, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
    });
    expect(diverged.status).toBe('diverged');
    expect(diverged.tailLoss).toBe(Number.POSITIVE_INFINITY);
  });

  it('ranks optimizers sensibly on the analytic problems', () => {
    const score = (rule: string, task = quadratic) => evaluateRule(rule, task, undefined).reward;
    expect(score('adam')).toBeGreaterThan(score('sgd'));
    expect(score('momentum')).toBeGreaterThan(score('sgd'));
    expect(score('adam', rosenbrock)).toBeGreaterThan(score('sgd', rosenbrock));
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = evaluateRule('rmsprop', quadratic, undefined, { seed: 3 });
    const b = evaluateRule('rmsprop', quadratic, undefined, { seed: 3 });
    const c = evaluateRule('rmsprop', quadratic, undefined, { seed: 4 });
    expect(b.curve).toEqual(a.curve);
    expect(b.reward).toBe(a.reward);
    expect(c.curve).not.toEqual(a.curve);
  });

  it('ends runaway, inert and slow rules as statuses with reward 0, never as exceptions', () => {
    const diverged = evaluateRule('1e6 * exp(g)', quadratic, undefined, { lrGrid: [1] });
    expect(diverged.status).toBe('diverged');
    expect(diverged.reward).toBe(0);
    const nan = evaluateRule('log(g - g) * g', quadratic, undefined, { lrGrid: [0.1] });
    expect(nan.status).toBe('diverged');
    expect(nan.reason).toMatch(/NaN|Inf/);
    const inert = evaluateRule('0 * g', quadratic, undefined);
    expect(inert.status).toBe('invalid');
    expect(inert.reason).toMatch(/did not change any weight/);
    const bad = evaluateRule('g +', quadratic, undefined);
    expect(bad.status).toBe('invalid');
    expect(bad.reward).toBe(0);
    const slow = evaluateRule('adam', mlp, loadDataset('mnist'), { timeLimitMs: 1, lrGrid: [0.01] });
    expect(slow.status).toBe('timeout');
    expect(slow.reward).toBe(0);
  });

  it("the default time limit is the task's for its own steps, longer for more steps or a learned optimizer", () => {
    const task = findTask('quadratic')!;
    expect(defaultTimeLimitMs(task, false)).toBe(task.timeLimitMs);
    expect(defaultTimeLimitMs(task, false, task.steps / 4)).toBe(task.timeLimitMs);
    expect(defaultTimeLimitMs(task, false, task.steps * 1500)).toBe(task.timeLimitMs * 1500);
    expect(defaultTimeLimitMs(task, true, task.steps * 2)).toBe(task.timeLimitMs * LEARNED_TIME_FACTOR * 2);
  });

  it("sets a decay rule's T to the run length", () => {
    const rule = library().get('powersign-ld')!;
    const r = trainOnce(rule, quadratic, undefined, 1e-4, 40, { seed: 0, deadline: Number.POSITIVE_INFINITY });
    const s = trainOnce(rule, quadratic, undefined, 1e-4, 40, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
      params: { T: 1e9 },
    });
    expect(r.status).toBe('ok');
    expect(s.status).toBe('ok');
    // A fading sign term (T = 40) takes smaller steps than one that never fades.
    expect(r.finalLoss).toBeGreaterThan(s.finalLoss);
  });

  it('trains the MLP on MNIST to well above chance in a few dozen steps, and measures test accuracy', () => {
    const r = evaluateRule('adam', mlp, loadDataset('mnist'), { steps: 40, lrGrid: [0.01], test: true });
    expect(r.status).toBe('ok');
    expect(r.valAcc).toBeGreaterThan(0.7);
    expect(r.testAcc).toBeGreaterThan(0.7);
  });

  it('trains the ConvNet on Fashion-MNIST (conv gradients on wasm)', () => {
    const r = trainOnce(library().get('adam')!, findTask('convnet-fashion')!, loadDataset('fashion'), 0.003, 12, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
    });
    expect(r.status).toBe('ok');
    expect(r.curve[r.curve.length - 1]!).toBeLessThan(r.curve[0]!);
  });

  it('analytic score: 0 without progress, 1 at a 1e8-fold reduction', () => {
    expect(analyticScore(10, 10)).toBe(0);
    expect(analyticScore(10, 20)).toBe(0);
    expect(analyticScore(1, 1e-8)).toBe(1);
    expect(analyticScore(1, 1e-4)).toBeCloseTo(0.5, 12);
    expect(analyticScore(1, Number.NaN)).toBe(0);
  });

  it('every task reports its exact parameter count (the weights its model builds) and a sane budget', () => {
    // By hand: MLP 784-64-10 = 784*64 + 64 + 64*10 + 10; ConvNet: two 3x3 convs of 32 filters,
    // then dense from 7x7x32 = (3*3*1*32 + 32) + (3*3*32*32 + 32) + (7*7*32*10 + 10); softmax 784*10 + 10.
    const expected: Record<string, number> = {
      'mlp-mnist': 50_890,
      'convnet-fashion': 25_258,
      'softmax-mnist': 7_850,
      quadratic: 20,
      rosenbrock: 2,
      'reddi-amsgrad': 1,
      // 2 x (784*128 + 128*64 + 64*16) + biases 128 + 64 + 16 + 64 + 128 + 784
      'ae-mnist': 220_320,
      // embedding 96*64, positions 32*64; a block: 2 layer norms (2*2*64), Wq Wk Wv Wo (4*64*64), MLP 64*128 + 128 + 128*64 + 64; final norm 2*64, head 64*96 + 96
      'char-brown': 96 * 64 + 32 * 64 + (4 * 64 + 4 * 64 * 64 + 64 * 128 + 128 + 128 * 64 + 64) + 2 * 64 + 64 * 96 + 96,
      'convnet-fashion-2ep': 25_258,
    };
    expect(TASKS.map((t) => t.id).sort()).toEqual(Object.keys(expected).sort());
    for (const t of TASKS) {
      expect(parameterCount(t), t.id).toBe(expected[t.id]);
      const run = createRun(t, 0, t.dataset === null ? undefined : loadDataset(t.dataset));
      try {
        expect(
          run.weights.reduce((n, w) => n + w.length, 0),
          t.id,
        ).toBe(expected[t.id]);
      } finally {
        run.dispose();
      }
      expect(t.gridSteps).toBeLessThan(t.steps);
      expect(t.lrGrid.length).toBeGreaterThan(1);
    }
  });
});
