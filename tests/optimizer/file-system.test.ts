import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSystem, ModelFileError } from '../../optimizer/file-system.js';
import { optimizer, RuleOptimizer } from '../../optimizer/rule-optimizer.js';
import { rejection } from '../helpers/rejection.js';
import { tfReady } from '../helpers/tf.js';

const temp = mkdtempSync(join(tmpdir(), 'nos-files-'));
afterAll(() => rmSync(temp, { recursive: true, force: true }));
beforeAll(async () => {
  await tfReady;
});

function model(): tf.LayersModel {
  const m = tf.sequential();
  m.add(
    tf.layers.dense({
      units: 6,
      inputShape: [4],
      activation: 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
    }),
  );
  m.add(
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  );
  m.compile({
    optimizer: optimizer('drop(adam, 0.2) + 0.05 * noise', { learningRate: 0.02, seed: 7 }),
    loss: 'categoricalCrossentropy',
  });
  return m;
}

function data(): { xs: tf.Tensor2D; ys: tf.Tensor } {
  const xs = tf.tensor2d(
    Array.from({ length: 24 * 4 }, (_, i) => Math.sin(i * 0.37)),
    [24, 4],
  );
  const ys = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 24 }, (_, i) => i % 3),
      'int32',
    ),
    3,
  );
  return { xs, ys };
}

const FIT = { epochs: 2, batchSize: 8, shuffle: false, verbose: 0 } as const;
const weights = (m: tf.LayersModel) => m.getWeights().map((w) => Array.from(w.dataSync()));

describe('fileSystem(path): saving and loading models as files in Node, without tfjs-node', () => {
  it('saves a model with its optimizer as model.json + weights.bin, and the loaded model continues training identically', async () => {
    const { xs, ys } = data();
    const m = model();
    await m.fit(xs, ys, FIT);
    const dir = join(temp, 'a', 'nested');
    const saved = await m.save(fileSystem(dir), { includeOptimizer: true });
    // tfjs-node's layout: a manifest naming weights.bin, whose size the specs account for.
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    expect(json.weightsManifest).toHaveLength(1);
    expect(json.weightsManifest[0]!.paths).toEqual(['weights.bin']);
    expect(json.weightsManifest[0]!.weights.map((w) => w.name)).toContain('nos/draws');
    expect(JSON.stringify(json.trainingConfig)).toContain('RuleOptimizer');
    expect(statSync(join(dir, 'weights.bin')).size).toBe(saved.modelArtifactsInfo.weightDataBytes);
    await m.fit(xs, ys, FIT);
    // The .json path and a file:// prefix name the same files.
    for (const path of [dir, join(dir, 'model.json'), `file://${dir}`]) {
      const loaded = await tf.loadLayersModel(fileSystem(path));
      expect(loaded.optimizer).toBeInstanceOf(RuleOptimizer);
      await loaded.fit(xs, ys, FIT);
      expect(weights(loaded)).toEqual(weights(m));
    }
  });

  it('says which file is missing, damaged, too short or outside the folder', async () => {
    const { xs, ys } = data();
    const m = model();
    await m.fit(xs, ys, { ...FIT, epochs: 1 });
    const dir = join(temp, 'b');
    await m.save(fileSystem(dir), { includeOptimizer: true });
    const load = (p: string) => rejection(tf.loadLayersModel(fileSystem(p)));

    const missing = await load(join(temp, 'nothing-here'));
    expect(missing).toBeInstanceOf(ModelFileError);
    expect(missing.message).toMatch(/cannot read .*nothing-here\/model\.json: ENOENT/);

    const json = readFileSync(join(dir, 'model.json'), 'utf8');
    writeFileSync(join(dir, 'broken.json'), json.slice(0, 100));
    expect((await load(join(dir, 'broken.json'))).message).toMatch(/broken\.json is not JSON/);

    const escaping = JSON.parse(json) as tf.io.ModelJSON;
    escaping.weightsManifest[0]!.paths = ['../../etc/passwd'];
    writeFileSync(join(dir, 'escape.json'), JSON.stringify(escaping));
    expect((await load(join(dir, 'escape.json'))).message).toMatch(
      /'\.\.\/\.\.\/etc\/passwd' is outside the model's folder/,
    );

    writeFileSync(join(dir, 'other.json'), JSON.stringify({ hello: 1 }));
    expect((await load(join(dir, 'other.json'))).message).toMatch(/has no modelTopology/);

    const size = statSync(join(dir, 'weights.bin')).size;
    truncateSync(join(dir, 'weights.bin'), size - 4);
    const short = await load(dir);
    expect(short).toBeInstanceOf(ModelFileError);
    expect(short.message).toBe(
      `fileSystem: the weights of ${join(dir, 'model.json')} are ${size - 4} bytes, but its manifest describes ${size}`,
    );

    // Saving where a file stands in the way of the folder.
    writeFileSync(join(temp, 'a-file'), 'x');
    const blocked = await rejection(m.save(fileSystem(join(temp, 'a-file', 'model'))));
    expect(blocked).toBeInstanceOf(ModelFileError);
    expect(blocked.message).toMatch(/cannot save the model to .*a-file\/model\/model\.json: (ENOTDIR|EEXIST)/);
  });
});
