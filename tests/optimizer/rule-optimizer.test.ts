import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { optimizer, RuleConfigError, RuleOptimizer } from '../../optimizer/rule-optimizer.js';
import { torchGolden } from '../helpers/reference.js';
import { tfReady } from '../helpers/tf.js';

const golden = torchGolden();

/** Apply the golden gradient stream to a variable through an optimizer. */
function run(opt: tf.Optimizer, steps = golden.grads.length, v = tf.variable(tf.tensor1d(golden.w0))): number[][] {
  const out: number[][] = [];
  for (let s = 0; s < steps; s++) {
    const g = tf.tensor1d(golden.grads[s]!);
    opt.applyGradients({ [v.name]: g });
    g.dispose();
    out.push(Array.from(v.dataSync()));
  }
  return out;
}

function maxRel(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => {
    row.forEach((x, j) => {
      m = Math.max(m, Math.abs(x - b[i]![j]!) / (1 + Math.abs(x)));
    });
  });
  return m;
}

describe('RuleOptimizer', () => {
  beforeAll(async () => {
    await tfReady;
  });

  for (const name of library().keys()) {
    it(`${name} as a tfjs Optimizer follows the interpreter`, () => {
      const params: Record<string, number> = name.includes('-') ? { T: 10 } : {};
      const opt = optimizer(name, { learningRate: 0.01, params });
      const got = run(opt);
      expect(maxRel(got, traceInterp(library().get(name)!, golden, 0.01, { params }))).toBeLessThan(2e-5);
      opt.dispose();
    });
  }

  it('adam matches tf.train.adam', () => {
    const ours = run(optimizer('adam', { learningRate: 0.01 }));
    const theirs = run(tf.train.adam(0.01, 0.9, 0.999, 1e-8));
    // tfjs folds eps differently (eps * sqrt(1 - beta2^t)); the paths agree to float32 noise.
    expect(maxRel(ours, theirs)).toBeLessThan(1e-4);
  });

  it('leaks no tensors: memory stays flat after the slots exist', () => {
    const v = tf.variable(tf.tensor1d(golden.w0));
    const opt = optimizer('lion', { learningRate: 0.01 });
    run(opt, 1, v);
    const after1 = tf.memory().numTensors;
    run(opt, 10, v);
    expect(tf.memory().numTensors).toBe(after1);
    opt.dispose();
    v.dispose();
  });

  it('names slots variable/slot and round-trips getConfig/fromConfig', async () => {
    const opt = optimizer('adam', { learningRate: 0.003, params: { beta1: 0.8 } });
    expect(RuleOptimizer.className).not.toContain('_');
    const v = tf.variable(tf.tensor1d([1, 2]), true, 'layer1/kernel');
    opt.applyGradients({ [v.name]: tf.tensor1d([0.1, -0.2]) });
    const names = (await opt.getWeights()).map((w) => w.name);
    expect(names).toEqual(['iter', 'layer1/kernel/ema0', 'layer1/kernel/ema1']);
    const config = opt.getConfig();
    const copy = tf.serialization.SerializationMap.getMap().classNameMap.RuleOptimizer![1](RuleOptimizer, config) as RuleOptimizer;
    expect(copy.getConfig()).toEqual(config);
    expect(copy.rule.hash).toBe(opt.rule.hash);
    expect(copy.params).toEqual({ beta1: 0.8 });
  });

  it('getWeights/setWeights resume mid-training exactly', async () => {
    const a = optimizer('amsgrad', { learningRate: 0.01 });
    const va = tf.variable(tf.tensor1d(golden.w0));
    run(a, 5, va);
    const saved = await a.getWeights();
    const vb = tf.variable(va.clone());
    const b = optimizer('amsgrad', { learningRate: 0.01 });
    await b.setWeights(saved.map((w) => ({ name: w.name, tensor: w.tensor.clone() })));
    expect(b.iterations).toBe(5);
    const grads = golden.grads.slice(5, 10);
    for (const g of grads) {
      const ga = tf.tensor1d(g);
      a.applyGradients({ [va.name]: ga });
      b.applyGradients({ [vb.name]: ga });
      ga.dispose();
    }
    expect(Array.from(vb.dataSync())).toEqual(Array.from(va.dataSync()));
  });

  it('trains a layers model, saves it with its optimizer, loads it, and training continues identically', async () => {
    const make = () => {
      const m = tf.sequential();
      m.add(tf.layers.dense({ units: 8, inputShape: [4], activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
      m.add(tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
      m.compile({ optimizer: optimizer('powersign', { learningRate: 0.05 }), loss: 'categoricalCrossentropy' });
      return m;
    };
    const xs = tf.tensor2d(Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i * 0.37)), [32, 4]);
    const ys = tf.oneHot(tf.tensor1d(Array.from({ length: 32 }, (_, i) => i % 3), 'int32'), 3);
    const model = make();
    const first = await model.fit(xs, ys, { epochs: 5, batchSize: 8, shuffle: false, verbose: 0 });
    const losses = first.history.loss as number[];
    expect(losses[4]!).toBeLessThan(losses[0]!);
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
      { includeOptimizer: true },
    );
    expect(JSON.stringify(artifacts?.trainingConfig)).toContain('RuleOptimizer');
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.optimizer).toBeInstanceOf(RuleOptimizer);
    expect((loaded.optimizer as RuleOptimizer).rule.hash).toBe(library().get('powersign')!.hash);
    expect(loaded.optimizer.iterations).toBe(model.optimizer.iterations);
    await model.fit(xs, ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    await loaded.fit(xs, ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
    const wa = model.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = loaded.getWeights().map((w) => Array.from(w.dataSync()));
    expect(wb).toEqual(wa);
  });

  it('rejects bad rules and hyperparameters with a clear error', () => {
    expect(() => optimizer('g * sigm(m)', { learningRate: 0.1 })).toThrow(/did you mean 'sign'/);
    expect(() => optimizer('adam', { learningRate: 0.1, params: { beta: 0.5 } })).toThrow(/unknown hyperparameter 'beta'/);
    expect(() => optimizer('adam', { learningRate: Number.NaN })).toThrow(RuleConfigError);
  });
});

describe('the package entry point', () => {
  it('nos.optimizer(...) from the package entry point trains a variable', async () => {
    const nos = await import('../../index.js');
    await nos.initTf();
    const opt = nos.optimizer('powersign', { learningRate: 0.1 });
    const v = tf.variable(tf.tensor1d([1, -1]));
    opt.minimize(() => tf.sum(tf.square(v)) as tf.Scalar);
    const after = Array.from(v.dataSync());
    expect(Math.abs(after[0]!)).toBeLessThan(1);
    expect(nos.library().has('lion')).toBe(true);
  });
});
