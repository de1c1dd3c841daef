import { beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../controller/api.js';
import { sharpness } from '../../evaluator/analysis.js';
import { type Dataset, loadDataset } from '../../evaluator/data.js';
import {
  ABLATION_FRACTIONS,
  labelNoiseDraw,
  labelNoiseProblem,
  relianceArea,
  rescaledSharpness,
  rescaleReLU,
  singleDirectionReliance,
  withLabelNoise,
} from '../../evaluator/generalization.js';
import { createRun, findTask, type TaskRun, type TaskSpec } from '../../evaluator/tasks.js';
import { evaluateRule } from '../../evaluator/train.js';
import { tfReady } from '../helpers/tf.js';

const mlp = findTask('mlp-mnist') as TaskSpec;
const convnet = findTask('convnet-fashion') as TaskSpec;
const softmax = findTask('softmax-mnist') as TaskSpec;
const quadratic = findTask('quadratic') as TaskSpec;

/** A few plain SGD steps, so the weights (biases included) are not at their initial values. */
function trainSome(run: TaskRun, steps: number, lr: number): void {
  for (let s = 1; s <= steps; s++) {
    const { grads } = run.gradients(s);
    run.weights.forEach((w, i) => {
      const g = grads[i] as Float32Array;
      for (let j = 0; j < w.length; j++) w[j] = (w[j] as number) - lr * (g[j] as number);
    });
  }
}

function argmax(row: Float32Array): number {
  let k = 0;
  for (let c = 1; c < row.length; c++) if ((row[c] as number) > (row[k] as number)) k = c;
  return k;
}

/** The accuracy of always predicting argmax(bias) on the first n labels of `y`. */
function constantAccuracy(bias: Float32Array, y: Uint8Array, n: number): number {
  const c = argmax(bias);
  let hits = 0;
  for (let i = 0; i < n; i++) if (y[i] === c) hits++;
  return hits / n;
}

describe('label noise (Zhang et al. 2017)', () => {
  let mnist: Dataset;
  beforeAll(async () => {
    await tfReady;
    mnist = loadDataset('mnist');
  });

  it('draws exactly round(p n) distinct examples and uniform classes, deterministic per seed', () => {
    for (const [n, p] of [
      [1000, 0.2],
      [999, 0.5],
      [10, 1],
      [10, 0],
    ] as const) {
      const d = labelNoiseDraw(n, p, 7);
      expect(d.indices.length).toBe(Math.round(p * n));
      expect(d.labels.length).toBe(d.indices.length);
      expect(new Set(d.indices).size).toBe(d.indices.length);
      expect([...d.indices].every((i, k) => i >= 0 && i < n && (k === 0 || i > (d.indices[k - 1] as number)))).toBe(
        true,
      );
      expect(d.labels.every((c) => c < 10)).toBe(true);
      expect(labelNoiseDraw(n, p, 7)).toEqual(d);
    }
    const a = labelNoiseDraw(10_000, 0.3, 1);
    const b = labelNoiseDraw(10_000, 0.3, 2);
    expect(a.indices).not.toEqual(b.indices);
    // Uniform new labels: each class near a tenth of 3,000 (binomial sd ~16).
    const counts = Array.from({ length: 10 }, (_, c) => a.labels.filter((x) => x === c).length);
    for (const k of counts) expect(Math.abs(k - 300)).toBeLessThan(80);
  });

  it('replaces the right fraction of training labels, leaves the rest and val/test untouched', () => {
    for (const p of [0.2, 0.5, 1]) {
      const noisy = withLabelNoise(mnist, p, 3);
      expect(noisy.val).toBe(mnist.val);
      expect(noisy.test).toBe(mnist.test);
      expect(noisy.train.x).toBe(mnist.train.x);
      expect(noisy.train.n).toBe(mnist.train.n);
      const { indices, labels } = labelNoiseDraw(mnist.train.n, p, 3);
      const picked = new Set(indices);
      let changed = 0;
      let outside = 0;
      for (let i = 0; i < mnist.train.n; i++) {
        if (noisy.train.y[i] !== mnist.train.y[i]) {
          changed++;
          if (!picked.has(i)) outside++;
        }
      }
      indices.forEach((i, k) => {
        expect(noisy.train.y[i]).toBe(labels[k]);
      });
      expect(outside).toBe(0);
      // A replaced label is uniform over 10 classes, so 9 in 10 of the picked ones change.
      const expected = 0.9 * Math.round(p * mnist.train.n);
      expect(Math.abs(changed - expected)).toBeLessThan(5 * Math.sqrt(expected * 0.1) + 1);
      expect(withLabelNoise(mnist, p, 3).train.y).toEqual(noisy.train.y);
      expect(withLabelNoise(mnist, p, 4).train.y).not.toEqual(noisy.train.y);
    }
    // The original labels are not modified (the dataset is shared between runs and workers).
    expect(withLabelNoise(mnist, 0, 3)).toBe(mnist);
    expect(() => withLabelNoise(mnist, 1.5, 0)).toThrow(/\[0, 1\]/);
  });

  it('p = 0 trains exactly as no label noise; p = 1 ruins the clean validation accuracy (the reward)', () => {
    const options = { steps: 40, lrGrid: [0.01], seed: 1 };
    const plain = evaluateRule('adam', mlp, mnist, options);
    const zero = evaluateRule('adam', mlp, mnist, { ...options, labelNoise: 0 });
    expect(zero.labelNoise).toBe(0);
    expect(plain.labelNoise).toBeUndefined();
    expect(zero.curve).toEqual(plain.curve);
    expect(zero.valAcc).toBe(plain.valAcc);
    expect(zero.finalLoss).toBe(plain.finalLoss);
    const random = evaluateRule('adam', mlp, mnist, { ...options, labelNoise: 1 });
    expect(random.status).toBe('ok');
    expect(plain.valAcc).toBeGreaterThan(0.7);
    expect(random.valAcc).toBeLessThan(0.25);
    expect(evaluateRule('adam', mlp, mnist, { ...options, labelNoise: 1 }).curve).toEqual(random.curve);
  });

  it('rejects a fraction outside [0, 1] and analytic tasks, from code', async () => {
    expect(labelNoiseProblem(0.5, mlp)).toBeUndefined();
    expect(labelNoiseProblem(-0.1, mlp)).toMatch(/fraction in \[0, 1\], got -0.1/);
    expect(labelNoiseProblem(Number.NaN, mlp)).toMatch(/fraction in \[0, 1\]/);
    expect(labelNoiseProblem(0.5, quadratic)).toMatch(/quadratic is analytic/);
    expect(() => evaluateRule('adam', quadratic, undefined, { labelNoise: 0.1 })).toThrow(RangeError);
    expect(() => evaluateRule('adam', mlp, mnist, { labelNoise: 2 })).toThrow(/got 2/);
    await expect(evaluate('adam', { task: 'quadratic', labelNoise: 0.2 })).rejects.toThrow(/analytic/);
  });
});

describe('single-direction reliance (Morcos et al. 2018) and rescaled sharpness (Dinh et al. 2017)', () => {
  let mnist: Dataset;
  beforeAll(async () => {
    await tfReady;
    mnist = loadDataset('mnist');
  });

  it('the normalised area of hand-made curves', () => {
    expect(
      relianceArea([
        [0, 0.8],
        [1, 0.8],
      ]),
    ).toBeCloseTo(1, 12);
    expect(
      relianceArea([
        [0, 1],
        [0.5, 0.5],
        [1, 0],
      ]),
    ).toBeCloseTo(0.5, 12);
    expect(
      relianceArea([
        [0, 0.5],
        [0.5, 0.5],
        [1, 0],
      ]),
    ).toBeCloseTo(0.75, 12);
    expect(
      relianceArea([
        [0, 0],
        [1, 0],
      ]),
    ).toBe(0);
  });

  it('MLP: 0% ablated is the unablated accuracy, 100% the constant-output accuracy; seeded; weights restored', () => {
    const run = createRun(mlp, 0, mnist);
    try {
      trainSome(run, 30, 0.1);
      const before = run.weights.map((w) => Float32Array.from(w));
      const r = singleDirectionReliance(run, 'mlp', 5);
      expect(r).not.toBeNull();
      const rel = r as NonNullable<typeof r>;
      expect(rel.units).toBe(64);
      expect(rel.split).toBe('train');
      expect(rel.curve.map(([f]) => f)).toEqual(ABLATION_FRACTIONS);
      run.weights.forEach((w, i) => {
        expect(w).toEqual(before[i]);
      });
      const acc0 = run.evaluate('train').acc;
      expect(acc0).toBeGreaterThan(0.5);
      expect(rel.curve[0]?.[1]).toBe(acc0);
      // Every hidden unit off: the logits are the output bias, for every input.
      expect(rel.curve[rel.curve.length - 1]?.[1]).toBe(
        constantAccuracy(run.weights[3] as Float32Array, mnist.train.y, mlp.valSize),
      );
      expect(rel.curve[rel.curve.length - 1]?.[1]).toBeLessThan(0.3);
      expect(rel.area).toBeCloseTo(relianceArea(rel.curve), 12);
      expect(rel.area).toBeGreaterThan(0.1);
      expect(rel.area).toBeLessThan(1);
      expect(singleDirectionReliance(run, 'mlp', 5)).toEqual(rel);
      const other = singleDirectionReliance(run, 'mlp', 6) as NonNullable<typeof r>;
      expect(other.curve[0]).toEqual(rel.curve[0]);
      expect(other.curve.slice(1, -1)).not.toEqual(rel.curve.slice(1, -1));
    } finally {
      run.dispose();
    }
  });

  it('MLP: x5 rescaling keeps every prediction and changes the sharpness; weights restored', () => {
    const run = createRun(mlp, 1, mnist);
    try {
      trainSome(run, 30, 0.1);
      const probs = run.probabilities?.('val');
      const s = sharpness(run);
      const before = run.weights.map((w) => Float32Array.from(w));
      const rescaledS = rescaledSharpness(run, 'mlp', 5) as number;
      run.weights.forEach((w, i) => {
        expect(w).toEqual(before[i]);
      });
      expect(Math.abs(rescaledS - s)).toBeGreaterThan(0.1 * s);
      expect(rescaleReLU(run.weights, 'mlp', 5)).toBe(true);
      expect((run.weights[0] as Float32Array)[100]).toBeCloseTo(5 * (before[0] as Float32Array)[100]!, 6);
      expect((run.weights[2] as Float32Array)[7]).toBeCloseTo((before[2] as Float32Array)[7]! / 5, 7);
      expect(run.weights[3]).toEqual(before[3]);
      const after = run.probabilities?.('val');
      expect(after?.probs.length).toBe(probs?.probs.length);
      let maxDiff = 0;
      let argmaxSame = true;
      for (let r = 0; r < (after?.labels.length ?? 0); r++) {
        const a = (after as NonNullable<typeof after>).probs.subarray(r * 10, r * 10 + 10);
        const b = (probs as NonNullable<typeof probs>).probs.subarray(r * 10, r * 10 + 10);
        for (let c = 0; c < 10; c++) maxDiff = Math.max(maxDiff, Math.abs((a[c] as number) - (b[c] as number)));
        if (argmax(a) !== argmax(b)) argmaxSame = false;
      }
      expect(maxDiff).toBeLessThan(1e-5);
      expect(argmaxSame).toBe(true);
      expect(sharpness(run)).toBeCloseTo(rescaledS, 10);
    } finally {
      run.dispose();
    }
  });

  it('ConvNet: feature maps of both conv layers are the units; rescaling keeps its predictions', () => {
    const fashion = loadDataset('fashion');
    const run = createRun(convnet, 0, fashion);
    try {
      trainSome(run, 5, 0.05);
      const probs = run.probabilities?.('val');
      const r = singleDirectionReliance(run, 'convnet', 0, { fractions: [0, 0.5, 1] }) as NonNullable<
        ReturnType<typeof singleDirectionReliance>
      >;
      expect(r.units).toBe(64);
      expect(r.curve[0]?.[1]).toBe(run.evaluate('train').acc);
      expect(r.curve[2]?.[1]).toBe(constantAccuracy(run.weights[5] as Float32Array, fashion.train.y, convnet.valSize));
      rescaleReLU(run.weights, 'convnet', 5);
      const after = run.probabilities?.('val');
      let maxDiff = 0;
      for (let k = 0; k < (after?.probs.length ?? 0); k++)
        maxDiff = Math.max(maxDiff, Math.abs((after?.probs[k] as number) - (probs?.probs[k] as number)));
      expect(maxDiff).toBeLessThan(1e-5);
    } finally {
      run.dispose();
    }
  });

  it('models without hidden ReLU units have neither; bad inputs are refused', () => {
    const run = createRun(softmax, 0, mnist);
    try {
      expect(singleDirectionReliance(run, 'softmax', 0)).toBeNull();
      expect(rescaledSharpness(run, 'softmax')).toBeNull();
      expect(() => rescaleReLU(run.weights, 'mlp', 5)).toThrow(/unexpected weight layout/);
    } finally {
      run.dispose();
    }
    expect(() => rescaleReLU([], 'mlp', 0)).toThrow(/positive/);
    const m = createRun(mlp, 0, mnist);
    try {
      expect(() => singleDirectionReliance(m, 'mlp', 0, { fractions: [0.1, 1] })).toThrow(/from 0 to 1/);
    } finally {
      m.dispose();
    }
  });

  it('evaluateRule with analyze reports reliance and the rescaled sharpness', () => {
    const r = evaluateRule('sgd', mlp, mnist, { steps: 30, lrGrid: [0.1], analyze: true, labelNoise: 0.5, seed: 2 });
    expect(r.status).toBe('ok');
    const a = r.analysis as NonNullable<typeof r.analysis>;
    expect(a.reliance?.curve.length).toBe(ABLATION_FRACTIONS.length);
    expect(a.reliance?.curve[0]?.[1]).toBe(a.trainAcc);
    expect(typeof a.sharpnessRescaled).toBe('number');
    expect(a.sharpnessRescaled).not.toBe(a.sharpness);
    const s = evaluateRule('sgd', softmax, mnist, { steps: 10, lrGrid: [0.1], analyze: true });
    expect(s.analysis?.reliance).toBeNull();
    expect(s.analysis?.sharpnessRescaled).toBeNull();
  });
});
