import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { brownText, charId, idChar, loadDataset, TEXT_VOCAB } from '../../evaluator/data.js';
import { createRun, findTask, parameterCount, TASKS } from '../../evaluator/tasks.js';
import { trainOnce } from '../../evaluator/train.js';
import {
  autoencoderParameterCount,
  bmmAB,
  bmmABt,
  charLmParameterCount,
  sigmoidXent,
  softmaxXent,
} from '../../evaluator/workloads.js';
import { tfReady } from '../helpers/tf.js';

const rnd = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, 'float32', seed);

/** Gradients of f at xs, by tfjs's tape. */
function gradsOf(f: (...xs: tf.Tensor[]) => tf.Scalar, xs: tf.Tensor[]): Float32Array[] {
  return tf.tidy(() => tf.grads(f)(xs)).map((g) => g.dataSync() as Float32Array);
}

function expectClose(a: Float32Array, b: Float32Array, tol = 1e-4): void {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  const scale = Math.max(1e-6, ...Array.from(b, Math.abs));
  expect(worst / scale).toBeLessThan(tol);
}

describe('the suite workloads', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('Brown corpus text: tags dropped, quotes and punctuation joined, one paragraph a line', () => {
    const tagged =
      "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, (/( 1/2/cd )/) ./.\n\n\tIt/pps ended/vbd ./.\n";
    expect(brownText(tagged)).toBe('The jury said " no evidence ", (1/2) .\nIt ended.\n'.replace(' .', '.'));
    expect(brownText('')).toBe('');
    for (const c of ['\n', ' ', 'a', 'Z', '~', '0']) expect(idChar(charId(c.charCodeAt(0)))).toBe(c);
    expect(charId(9)).toBe(-1);
    expect(charId(200)).toBe(-1);
  });

  it('the Brown corpus loads as character ids, split by sample, every split English text', () => {
    const d = loadDataset('brown');
    expect(d.train.n).toBeGreaterThan(4_000_000);
    expect(d.val.n).toBeGreaterThan(400_000);
    expect(d.test.n).toBeGreaterThan(400_000);
    expect(d.train.y.length).toBe(0);
    const text = (ids: Uint8Array) => Array.from(ids, idChar).join('');
    expect(text(d.train.x.subarray(0, 44))).toBe('The Fulton County Grand Jury said Friday an ');
    for (const split of [d.train, d.val, d.test]) {
      expect(Math.max(...split.x.subarray(0, 100_000))).toBeLessThan(TEXT_VOCAB);
      const sample = text(split.x.subarray(0, 50_000));
      expect(sample.split(' the ').length, 'a common English word').toBeGreaterThan(200);
    }
    // Validation and test hold other samples than training.
    expect(text(d.val.x.subarray(0, 200))).not.toBe(text(d.train.x.subarray(0, 200)));
  });

  it('custom gradients equal the tape through the plain formulas', () => {
    const [a, b] = [rnd([3, 5, 4], 1), rnd([3, 6, 4], 2)];
    const c = rnd([3, 4, 6], 3);
    const w = rnd([3, 5, 6], 4);
    const plainABt = (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D, false, true), w)) as tf.Scalar;
    const oursABt = (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(bmmABt(x as tf.Tensor3D, y as tf.Tensor3D), w)) as tf.Scalar;
    for (const [i, g] of gradsOf(oursABt, [a, b]).entries())
      expectClose(g, gradsOf(plainABt, [a, b])[i] as Float32Array);
    const plainAB = (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D), w)) as tf.Scalar;
    const oursAB = (x: tf.Tensor, y: tf.Tensor) =>
      tf.sum(tf.mul(bmmAB(x as tf.Tensor3D, y as tf.Tensor3D), w)) as tf.Scalar;
    for (const [i, g] of gradsOf(oursAB, [a, c]).entries()) expectClose(g, gradsOf(plainAB, [a, c])[i] as Float32Array);
    // Softmax cross-entropy: value and gradient.
    const logits = tf.mul(rnd([7, 5], 5), 3);
    const onehot = tf.oneHot(tf.tensor1d([0, 4, 2, 2, 1, 3, 0], 'int32'), 5).toFloat();
    const plainX = (z: tf.Tensor) => tf.losses.softmaxCrossEntropy(onehot, z) as tf.Scalar;
    const oursX = (z: tf.Tensor) => softmaxXent(z as tf.Tensor2D, onehot as tf.Tensor2D);
    expect(oursX(logits).dataSync()[0]).toBeCloseTo(plainX(logits).dataSync()[0] as number, 5);
    expectClose(gradsOf(oursX, [logits])[0] as Float32Array, gradsOf(plainX, [logits])[0] as Float32Array);
    // Sigmoid cross-entropy summed over pixels, mean over images.
    const target = tf.randomUniform([4, 9], 0, 1, 'float32', 6);
    const plainS = (z: tf.Tensor) => tf.div(tf.sum(tf.sub(tf.softplus(z), tf.mul(target, z))), 4) as tf.Scalar;
    const oursS = (z: tf.Tensor) => sigmoidXent(z as tf.Tensor2D, target as tf.Tensor2D);
    const z = tf.mul(rnd([4, 9], 7), 4);
    expect(oursS(z).dataSync()[0]).toBeCloseTo(plainS(z).dataSync()[0] as number, 4);
    expectClose(gradsOf(oursS, [z])[0] as Float32Array, gradsOf(plainS, [z])[0] as Float32Array);
  });

  it('the autoencoder trains: its reconstruction loss falls and its score rises from 0', () => {
    const task = findTask('ae-mnist')!;
    expect(parameterCount(task)).toBe(autoencoderParameterCount());
    expect(autoencoderParameterCount()).toBe(2 * (784 * 128 + 128 * 64 + 64 * 16) + 128 + 64 + 16 + 64 + 128 + 784);
    const data = loadDataset('mnist');
    const before = createRun(task, 0, data);
    const start = before.evaluate('val');
    before.dispose();
    const r = trainOnce(library().get('adam')!, task, data, 0.01, 80, { seed: 0, deadline: Number.POSITIVE_INFINITY });
    expect(r.status).toBe('ok');
    expect(r.curve.at(-1)!).toBeLessThan(0.6 * r.curve[0]!);
    expect(r.valLoss).toBeLessThan(start.loss);
    // Past the mean image (score 0), the plateau deep autoencoders are known for.
    expect(start.acc).toBe(0);
    expect(r.valAcc).toBeGreaterThan(0.05);
    expect(r.valAcc).toBeLessThanOrEqual(1);
  });

  it('the character-level language model trains: bits per character fall below a uniform guess and a unigram model', () => {
    const task = findTask('char-brown')!;
    expect(parameterCount(task)).toBe(charLmParameterCount());
    const data = loadDataset('brown');
    const r = trainOnce(library().get('adam')!, task, data, 0.01, 60, { seed: 0, deadline: Number.POSITIVE_INFINITY });
    expect(r.status).toBe('ok');
    // The training loss starts near ln(96) nats and falls.
    expect(r.curve[0]!).toBeGreaterThan(3.5);
    expect(r.curve.at(-1)!).toBeLessThan(r.curve[0]! - 1);
    // Validation bits per character: below the corpus's unigram entropy (about 4.4 bits).
    expect(r.valLoss).toBeLessThan(4.2);
    expect(r.valAcc).toBeCloseTo(1 - r.valLoss / Math.log2(96), 10);
  });

  it('a fixed training subset: the ConvNet sees only the first examples (it memorises a subset of 32)', () => {
    const base = findTask('convnet-fashion-2ep')!;
    expect(base.trainSubset).toBe(8000);
    expect(base.steps * base.batchSize).toBe(2 * base.trainSubset!);
    const tiny = { ...base, trainSubset: 32, valSize: 32 };
    const data = loadDataset('fashion');
    const r = trainOnce(library().get('adam')!, tiny, data, 0.003, 40, { seed: 0, deadline: Number.POSITIVE_INFINITY });
    expect(r.status).toBe('ok');
    // 40 passes over the same 32 images: training loss near 0 on them.
    expect(r.curve.at(-1)!).toBeLessThan(0.1);
  });

  it('every task says its kind, metric, target and suite; the suites are disjoint and each holds two workloads or more', () => {
    for (const t of TASKS) {
      expect(['classifier', 'autoencoder', 'language-model', 'analytic']).toContain(t.kind);
      expect(t.metric.name.length).toBeGreaterThan(3);
      expect(Number.isFinite(t.metric.target)).toBe(true);
    }
    const search = TASKS.filter((t) => t.suite === 'search').map((t) => t.id);
    const heldOut = TASKS.filter((t) => t.suite === 'held-out').map((t) => t.id);
    expect(search.length).toBeGreaterThanOrEqual(2);
    expect(heldOut.length).toBeGreaterThanOrEqual(2);
    expect(search.filter((id) => heldOut.includes(id))).toEqual([]);
    expect(TASKS.some((t) => t.id.includes('ae') && t.kind === 'autoencoder')).toBe(true);
    expect(TASKS.some((t) => t.id.includes('char') && t.kind === 'language-model')).toBe(true);
  });
});
