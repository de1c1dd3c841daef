import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { DEFAULT_LEARNING_RATE, optimizer, RuleConfigError, RuleOptimizer } from '../../optimizer/rule-optimizer.js';
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

  it('names slots variable/slot', async () => {
    const opt = optimizer('adam', { learningRate: 0.003, params: { beta1: 0.8 } });
    expect(RuleOptimizer.className).not.toContain('_');
    const v = tf.variable(tf.tensor1d([1, 2]), true, 'layer1/kernel');
    opt.applyGradients({ [v.name]: tf.tensor1d([0.1, -0.2]) });
    const names = (await opt.getWeights()).map((w) => w.name);
    expect(names).toEqual(['iter', 'layer1/kernel/ema0', 'layer1/kernel/ema1']);
  });

  // What a saved model does: getConfig -> JSON -> the class registered under 'RuleOptimizer' -> fromConfig.
  const viaRegistry = (opt: RuleOptimizer): RuleOptimizer => {
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap[opt.getClassName()]!;
    return fromConfig(cls, JSON.parse(JSON.stringify(opt.getConfig())) as tf.serialization.ConfigDict) as RuleOptimizer;
  };
  /** Two optimizers applied to the same start and gradient stream must move the weights identically. */
  const sameUpdates = (a: RuleOptimizer, b: RuleOptimizer, steps = 12): [number[][], number[][]] => [
    run(a, steps),
    run(b, steps),
  ];

  for (const [rule, options] of [
    ['adam', { learningRate: 0.003, params: { beta1: 0.8, eps: 1e-6 } }],
    ['powersign-cd', { learningRate: 0.05, params: { beta: 0.7, periods: 1.5 }, decaySteps: 7 }],
    ['drop(adam, 0.3) + 0.5 * noise + anoise', { learningRate: 0.02, seed: 42 }],
    ['lion(beta1 = 0.8) * (1 + 0.5 * sign(g) * sign(m))', { learningRate: 0.01, params: {} }],
  ] as const) {
    it(`getConfig -> fromConfig gives the same updates: ${rule}`, () => {
      const opt = optimizer(rule, options);
      const copy = viaRegistry(opt);
      expect(copy).toBeInstanceOf(RuleOptimizer);
      expect(copy.getConfig()).toEqual(opt.getConfig());
      expect(copy.rule.hash).toBe(opt.rule.hash);
      const [a, b] = sameUpdates(opt, copy);
      expect(b).toEqual(a);
      // ...and the config is what decides them: another learning rate or seed moves differently.
      const lr = viaRegistry(optimizer(rule, { ...options, learningRate: options.learningRate * 2 }));
      expect(run(lr, 12)).not.toEqual(a);
      if ('seed' in options)
        expect(run(viaRegistry(optimizer(rule, { ...options, seed: options.seed + 1 })), 12)).not.toEqual(a);
    });
  }

  it("learning rate defaults to 0.001 (Adam's usual default), also in configs without one", () => {
    expect(DEFAULT_LEARNING_RATE).toBe(0.001);
    const plain = optimizer('adam');
    expect(plain.learningRate).toBe(0.001);
    expect(new RuleOptimizer({ rule: 'adam' }).learningRate).toBe(0.001);
    expect(run(plain, 5)).toEqual(run(optimizer('adam', { learningRate: 0.001 }), 5));
    expect((RuleOptimizer.fromConfig(RuleOptimizer, { rule: 'adam' }) as RuleOptimizer).learningRate).toBe(0.001);
  });

  it('rules that decay need decaySteps (or params.T); others ignore it', () => {
    expect(() => optimizer('powersign-ld')).toThrow(RuleConfigError);
    expect(() => optimizer('powersign-ld')).toThrow(/decaySteps/);
    expect(() => optimizer('g * ld')).toThrow(/decays over T steps/);
    expect(optimizer('powersign-ld', { decaySteps: 500 }).params).toEqual({ T: 500 });
    expect(optimizer('powersign-ld', { params: { T: 500 } }).params).toEqual({ T: 500 });
    expect(optimizer('powersign-ld', { params: { T: 500 }, decaySteps: 500 }).params).toEqual({ T: 500 });
    expect(() => optimizer('powersign-ld', { params: { T: 500 }, decaySteps: 400 })).toThrow(/disagree/);
    expect(() => optimizer('powersign-ld', { decaySteps: 0 })).toThrow(/positive/);
    expect(optimizer('adam', { decaySteps: 500 }).params).toEqual({});
    // decaySteps is T: the same trajectory as the interpreter with T set.
    const params = { T: 6 };
    expect(
      maxRel(
        run(optimizer('powersign-ld', { learningRate: 0.01, decaySteps: 6 })),
        traceInterp(library().get('powersign-ld')!, golden, 0.01, { params }),
      ),
    ).toBeLessThan(2e-5);
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

  for (const [rule, options] of [
    ['powersign', { learningRate: 0.05 }],
    ['drop(@powersign-ld, 0.2) + 0.1 * noise', { learningRate: 0.05, decaySteps: 40, seed: 3 }],
  ] as const) {
    it(`trains a layers model, saves it with its optimizer, loads it, and training continues identically: ${rule}`, async () => {
      const make = () => {
        const m = tf.sequential();
        m.add(
          tf.layers.dense({
            units: 8,
            inputShape: [4],
            activation: 'relu',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
          }),
        );
        m.add(
          tf.layers.dense({
            units: 3,
            activation: 'softmax',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
          }),
        );
        m.compile({ optimizer: optimizer(rule, options), loss: 'categoricalCrossentropy' });
        return m;
      };
      const xs = tf.tensor2d(
        Array.from({ length: 32 * 4 }, (_, i) => Math.sin(i * 0.37)),
        [32, 4],
      );
      const ys = tf.oneHot(
        tf.tensor1d(
          Array.from({ length: 32 }, (_, i) => i % 3),
          'int32',
        ),
        3,
      );
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
      expect((loaded.optimizer as RuleOptimizer).rule.hash).toBe((model.optimizer as RuleOptimizer).rule.hash);
      expect(loaded.optimizer.getConfig()).toEqual(model.optimizer.getConfig());
      expect(loaded.optimizer.iterations).toBe(model.optimizer.iterations);
      await model.fit(xs, ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
      await loaded.fit(xs, ys, { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 });
      const wa = model.getWeights().map((w) => Array.from(w.dataSync()));
      const wb = loaded.getWeights().map((w) => Array.from(w.dataSync()));
      expect(wb).toEqual(wa);
    });
  }

  it('rejects bad rules and hyperparameters with a clear error', () => {
    expect(() => optimizer('g * sigm(m)', { learningRate: 0.1 })).toThrow(/did you mean 'sign'/);
    expect(() => optimizer('adam', { learningRate: 0.1, params: { beta: 0.5 } })).toThrow(
      /unknown hyperparameter 'beta'/,
    );
    expect(() => optimizer('adam', { learningRate: Number.NaN })).toThrow(RuleConfigError);
    expect(() => optimizer('g + noise', { seed: Number.NaN })).toThrow(RuleConfigError);
  });

  for (const rule of ['drop(adam, 0.3) + 0.2 * noise', 'g + anoise']) {
    it(`saves the noise/dropout stream with the weights: reloaded ${rule} continues like the uninterrupted run`, async () => {
      const steps = golden.grads.length;
      const uninterrupted = run(optimizer(rule, { learningRate: 0.01, seed: 5 }));
      // Train 4 steps, save the optimizer's weights, load them into a fresh one, continue.
      const a = optimizer(rule, { learningRate: 0.01, seed: 5 });
      const va = tf.variable(tf.tensor1d(golden.w0));
      const first = run(a, 4, va);
      const saved = await a.getWeights();
      expect(saved.map((w) => w.name)).toContain('nos/draws');
      const b = viaRegistry(a);
      await b.setWeights(saved.map((w) => ({ name: w.name, tensor: w.tensor.clone() })));
      const vb = tf.variable(va.clone());
      const rest: number[][] = [];
      for (const g of golden.grads.slice(4, steps)) {
        const t = tf.tensor1d(g);
        b.applyGradients({ [vb.name]: t });
        t.dispose();
        rest.push(Array.from(vb.dataSync()));
      }
      expect([...first, ...rest]).toEqual(uninterrupted);
      // Without the stream's position the continuation differs (the test can see the difference).
      const c = viaRegistry(a);
      await c.setWeights(
        saved.filter((w) => w.name !== 'nos/draws').map((w) => ({ name: w.name, tensor: w.tensor.clone() })),
      );
      const vc = tf.variable(va.clone());
      const g4 = tf.tensor1d(golden.grads[4]!);
      c.applyGradients({ [vc.name]: g4 });
      expect(Array.from(vc.dataSync())).not.toEqual(uninterrupted[4]);
    });
  }

  it('every error class the library exports has its own name', async () => {
    const nos = await import('../../index.js');
    const classes = Object.entries(nos).filter(([, v]) => typeof v === 'function' && v.prototype instanceof Error) as [
      string,
      new (...a: never[]) => Error,
    ][];
    expect(classes.map(([k]) => k).sort()).toEqual([
      'BindError',
      'DatasetError',
      'DatasetFileError',
      'LearnedFileError',
      'LoweringError',
      'MissingDependencyError',
      'ModelFileError',
      'RuleConfigError',
      'RunConfigError',
      'RunExistsError',
      'RunLockedError',
      'RunMissingError',
      'ScheduleError',
      'SpaceError',
      'StoreError',
      'UnknownOptionError',
      'UnsupportedError',
    ]);
    for (const [exported, cls] of classes) {
      const e = Reflect.construct(
        cls,
        exported === 'MissingDependencyError'
          ? ['better-sqlite3']
          : exported === 'UnknownOptionError'
            ? ['f', 'x', undefined, 'y']
            : ['x', 'y'],
      ) as Error;
      expect(e.name).toBe(exported);
      expect(String(e)).toMatch(new RegExp(`^${exported}: `));
    }
    let thrown: unknown;
    try {
      nos.optimizer('adam', { params: { bta1: 0.5 } });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(nos.BindError);
    expect((thrown as Error).name).toBe('BindError');
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
