import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkpointDocument,
  learnedDocument,
  parseCheckpoint,
  parseLearnedFile,
  stateOfCheckpoint,
  weightsOf,
} from '../../learned/file.js';
import { initialWeights, WEIGHT_NAMES } from '../../learned/lstm.js';
import { heldOutLoss, type MetaSettings, type MetaState, metaTrain } from '../../learned/meta-train.js';
import { QUADRATIC_DIM, quadraticGradient, quadraticLoss } from '../../learned/problems.js';
import { tfReady } from '../helpers/tf.js';

beforeAll(async () => {
  await tfReady;
});

const tiny: MetaSettings = { task: 'quadratic', seed: 1, metaSteps: 40, unroll: 5, horizon: 10, metaLr: 0.01 };

describe('the random quadratics', () => {
  it('gradient is 2 Wᵀ(Wθ - y), checked by finite differences of the loss', () => {
    const count = 2;
    const d = QUADRATIC_DIM;
    const W = Float32Array.from({ length: count * d * d }, (_, i) => Math.sin(i * 1.3));
    const y = Float32Array.from({ length: count * d }, (_, i) => Math.cos(i));
    const th = Float32Array.from({ length: count * d }, (_, i) => 0.1 * i);
    const g = quadraticGradient(W, y, th, count);
    for (const j of [0, 7, 13]) {
      const h = 1e-2;
      const up = th.slice();
      const dn = th.slice();
      up[j] = (up[j] as number) + h;
      dn[j] = (dn[j] as number) - h;
      // The loss is the mean over the batch: each problem's own gradient is count x its slope.
      const slope = (quadraticLoss(W, y, up, count) - quadraticLoss(W, y, dn, count)) / (2 * h);
      expect(g[j]).toBeCloseTo(count * slope, 2);
    }
  });
});

describe('meta-training', () => {
  it('lowers the meta-loss on held-out problems of a tiny setting, deterministically', () => {
    const before = heldOutLoss(initialWeights(tiny.seed), 'quadratic', 5, 2, 10);
    const a = metaTrain(tiny);
    const after = heldOutLoss(a.weights, 'quadratic', 5, 2, 10);
    expect(after).toBeLessThan(0.8 * before);
    expect(a.losses).toHaveLength(tiny.metaSteps);
    // Same settings, same weights, bit for bit.
    const b = metaTrain(tiny);
    for (const n of WEIGHT_NAMES) expect(Array.from(b.weights[n])).toEqual(Array.from(a.weights[n]));
  });

  it('resumes from a checkpoint (through its file) to the same weights as an uninterrupted run', () => {
    const settings: MetaSettings = { ...tiny, metaSteps: 6 };
    const straight = metaTrain(settings);
    const checkpoints: MetaState[] = [];
    const tensors = tf.memory().numTensors;
    metaTrain(settings, {
      onCheckpoint: (s) => {
        checkpoints.push({
          ...s,
          weights: s.weights,
          adamM: s.adamM.slice(),
          adamV: s.adamV.slice(),
          losses: [...s.losses],
        });
      },
    });
    expect(tf.memory().numTensors).toBe(tensors);
    // Checkpoints at problem boundaries: horizon 10 / unroll 5 = every 2 meta-steps.
    expect(checkpoints.map((c) => c.step)).toEqual([2, 4, 6]);
    const text = JSON.stringify(checkpointDocument(settings, checkpoints[0] as MetaState, 'test'));
    const resumed = metaTrain(settings, { resume: stateOfCheckpoint(parseCheckpoint(text, 'x.ckpt')) });
    for (const n of WEIGHT_NAMES) expect(Array.from(resumed.weights[n])).toEqual(Array.from(straight.weights[n]));
    expect(resumed.losses).toEqual(straight.losses);
  });

  it('the file round trip keeps every weight and the provenance', () => {
    const settings: MetaSettings = { ...tiny, metaSteps: 2 };
    const state = metaTrain(settings);
    const doc = learnedDocument(settings, state, '0.1.0');
    const back = parseLearnedFile(JSON.stringify(doc), 'f.json');
    expect(back).toMatchObject({ task: 'quadratic', seed: 1, metaSteps: 2, unroll: 5, horizon: 10, nos: '0.1.0' });
    // The mean of the last tenth of the meta-steps (at least one): here the last.
    expect(back.finalMetaLoss).toBe(state.losses[1]);
    const w = weightsOf(back);
    for (const n of WEIGHT_NAMES) expect(Array.from(w[n])).toEqual(Array.from(state.weights[n]));
  });
});
