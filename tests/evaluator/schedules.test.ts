import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { ensembleAccuracy, sharpness } from '../../evaluator/analysis.js';
import { loadDataset } from '../../evaluator/data.js';
import { findSchedule, parseScheduleSpec, schedules } from '../../evaluator/schedules.js';
import { createRun, findTask } from '../../evaluator/tasks.js';
import { evaluateRule, trainOnce } from '../../evaluator/train.js';
import { nos } from '../helpers/cli.js';
import { scratchDir } from '../helpers/scratch.js';
import { tfReady } from '../helpers/tf.js';

const at = (name: string, T: number, params: Record<string, number> = {}) =>
  Array.from(findSchedule(name).values(T, params));

describe('learning-rate schedules, against their formulas', () => {
  it('constant, step annealing', () => {
    expect(at('constant', 5)).toEqual([1, 1, 1, 1, 1]);
    const s = at('step', 9, { gamma: 0.5, drops: 2 });
    expect(s).toEqual([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]);
  });

  it("the Transformer's d^-0.5 * min(t^-0.5, t * warmup^-1.5)", () => {
    const s = at('transformer', 400, { d: 64, warmup: 100 });
    for (const t of [1, 50, 100, 101, 400])
      expect(s[t - 1]).toBeCloseTo(64 ** -0.5 * Math.min(t ** -0.5, t * 100 ** -1.5), 12);
    expect(Math.max(...s)).toBeCloseTo(s[99]!, 12); // peak at the end of warmup
  });

  it('cosine annealing and NOS linear-cosine decay (TF formulas)', () => {
    const T = 100;
    const c = at('cosine', T, { etamin: 0.1 });
    for (const t of [1, 26, 51, 100])
      expect(c[t - 1]).toBeCloseTo(0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * (t - 1)) / T)), 12);
    const l = at('lincos', T);
    for (const t of [1, 30, 77, 100]) {
      const s = t - 1;
      expect(l[t - 1]).toBeCloseTo(((T - s) / T) * 0.5 * (1 + Math.cos(Math.PI * 2 * 0.5 * (s / T))) + 0.001, 12);
    }
  });

  it('triangular cyclical rates go low -> 1 -> low each cycle (Smith 2017)', () => {
    const s = at('triangular', 40, { low: 0.2, cycles: 2 });
    expect(s[0]).toBeCloseTo(0.2, 12);
    expect(s[10]).toBeCloseTo(1, 12);
    expect(s[20]).toBeCloseTo(0.2, 12);
    expect(s[30]).toBeCloseTo(1, 12);
    expect(Math.min(...s)).toBeGreaterThanOrEqual(0.2 - 1e-12);
  });

  it('SGDR restarts after T0 = first*T steps, each cycle mult times longer', () => {
    const sched = findSchedule('sgdr');
    const s = Array.from(sched.values(150, { first: 0.1, mult: 2 }));
    // cycles of 15, 30, 60, 45 (cut by the end of the run): restarts at 16, 46, 106
    for (const t of [1, 16, 46, 106]) expect(s[t - 1]).toBe(1);
    expect(s[14]!).toBeLessThan(0.02);
    expect(s[15 + 14]).toBeCloseTo(0.5 * (1 + Math.cos((Math.PI * 14) / 30)), 12);
    expect(sched.cycleEnds?.(150, { first: 0.1, mult: 2 })).toEqual([15, 45, 105, 150]);
  });

  it('noisy linear-cosine decay is seeded and centred on linear-cosine', () => {
    const sched = findSchedule('noisylincos');
    const a = Array.from(sched.values(2000, {}, 1));
    expect(Array.from(sched.values(2000, {}, 1))).toEqual(a);
    expect(Array.from(sched.values(2000, {}, 2))).not.toEqual(a);
    const plain = at('lincos', 2000);
    const meanDiff = a.reduce((s, v, i) => s + v - plain[i]!, 0) / a.length;
    expect(Math.abs(meanDiff)).toBeLessThan(0.02);
  });

  it('accepts schedule text and name:k=v specs; rejects what is not a schedule', () => {
    expect(at('0.5 * (1 + cos(pi * (t - 1) / T))', 3)[0]).toBe(1);
    const { schedule, params } = parseScheduleSpec('step:gamma=0.3,drops=1');
    expect(Array.from(schedule.values(4, params))).toEqual([1, 1, 0.3, 0.3]);
    expect(() => parseScheduleSpec('step:beta=1')).toThrow(/unknown hyperparameter 'beta'/);
    expect(() => parseScheduleSpec('sgdr:beta=1')).toThrow(/has no parameter 'beta'/);
    expect(() => findSchedule('g * t')).toThrow(/reads only t, T/);
    expect(() => findSchedule('cosin')).toThrow(/unknown schedule 'cosin'; did you mean 'cosine'/);
    expect([...schedules().keys()]).toEqual([
      'constant',
      'step',
      'transformer',
      'cosine',
      'triangular',
      'lincos',
      'sgdr',
      'noisylincos',
    ]);
  });

  it('nos schedule prints values and plots a schedule', async () => {
    const out = join(scratchDir('schedule-cli'), 'sgdr.svg');
    const r = await nos('schedule', 'sgdr', '--steps', '1000', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { values: number[]; cycleEnds: number[] };
    expect(doc.values).toHaveLength(1000);
    expect(doc.cycleEnds).toEqual([50, 150, 350, 750, 1000]);
    expect(readFileSync(out, 'utf8')).toContain('<polyline');
    expect((await nos('schedule')).stdout).toContain('sgdr(first=0.05, mult=2, etamin=0)');
    expect((await nos('schedule', 'cosine:foo=1')).code).toBe(1);
  });
});

describe('layers around a rule, and what kind of minimum it found', () => {
  beforeAll(async () => {
    await tfReady;
  });
  const mlp = findTask('mlp-mnist')!;
  const adam = library().get('adam')!;

  it('decoupled weight decay shrinks the weights', () => {
    const norm = (wd: number) => {
      const r = trainOnce(adam, findTask('quadratic')!, undefined, 1e-3, 30, {
        seed: 0,
        deadline: Number.POSITIVE_INFINITY,
        weightDecay: wd,
      });
      return r.finalLoss;
    };
    expect(norm(5)).toBeLessThan(norm(0));
  });

  it('batch growth sees the same number of examples in fewer steps', () => {
    const data = loadDataset('mnist');
    const decay = trainOnce(library().get('sgd')!, mlp, data, 0.1, 60, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
      schedule: 'step:gamma=0.5',
    });
    const grow = trainOnce(library().get('sgd')!, mlp, data, 0.1, 60, {
      seed: 0,
      deadline: Number.POSITIVE_INFINITY,
      schedule: 'step:gamma=0.5',
      batchGrowth: true,
    });
    expect(decay.steps).toBe(60);
    // 20 steps of 64, 20 of 128, then 256s until 60*64 examples: 20 + 10 + 5 = 35 steps.
    expect(grow.steps).toBe(35);
    expect(grow.status).toBe('ok');
  });

  it('snapshot ensembles at SGDR cycle ends, sharpness and the generalisation gap', () => {
    const r = evaluateRule('adam', mlp, loadDataset('mnist'), {
      steps: 60,
      lrGrid: [0.01],
      schedule: 'sgdr:first=0.25,mult=1',
      analyze: true,
    });
    expect(r.status).toBe('ok');
    const a = r.analysis!;
    expect(a.ensemble?.snapshots).toBe(4);
    expect(a.ensemble?.valAcc).toBeGreaterThan(0.6);
    expect(a.sharpness).toBeGreaterThan(0);
    expect(a.gapAcc).toBeCloseTo(a.trainAcc - a.testAcc, 12);
  });

  it('sharpness restores the weights, and an ensemble of identical snapshots is the model itself', () => {
    const run = createRun(mlp, 0, loadDataset('mnist'));
    try {
      const before = run.weights.map((w) => Float32Array.from(w));
      expect(sharpness(run)).toBeGreaterThan(0);
      run.weights.forEach((w, i) => {
        expect(w).toEqual(before[i]);
      });
      const single = run.evaluate('val').acc;
      expect(ensembleAccuracy(run, [before, before], 'val')).toBe(single);
    } finally {
      run.dispose();
    }
  });
});
