// Trains with a nos optimizer, saves the model with its optimizer to OUT/model (model.json +
// weights.bin, through nos.fileSystem: plain tfjs has no file:// handler in Node), then keeps
// training and writes the uninterrupted run's weights.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as nos from 'nos';
import { data, FIT, model, OPTIONS, RULE, weights } from './common.mjs';

const out = process.argv[2];
const { xs, ys } = data();
const m = model(nos.optimizer(RULE, OPTIONS));
const first = await m.fit(xs, ys, FIT);
await m.save(nos.fileSystem(join(out, 'model')), { includeOptimizer: true });
await m.fit(xs, ys, FIT);
writeFileSync(
  join(out, 'uninterrupted.json'),
  JSON.stringify({
    tfjs: tf.version.tfjs,
    backend: tf.getBackend(),
    loss: first.history.loss,
    iterations: m.optimizer.iterations,
    weights: weights(m),
  }),
);
