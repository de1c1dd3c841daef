// A fresh process: `import 'nos'` registers RuleOptimizer, then the saved model loads with its
// optimizer and continues training; writes the weights it reaches. With `--without-nos` it
// skips the import (and reads the files itself), to show what happens then.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { data, FIT, weights } from './common.mjs';

const [out, flag] = process.argv.slice(2);
const dir = join(out, 'model');
let handler;
if (flag === '--without-nos') {
  const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
  const bin = readFileSync(join(dir, 'weights.bin'));
  const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  handler = tf.io.fromMemory({ ...json, weightSpecs: json.weightsManifest[0].weights, weightData });
} else handler = (await import('nos')).fileSystem(dir);
const m = await tf.loadLayersModel(handler);
const restoredIterations = m.optimizer.iterations;
const { xs, ys } = data();
await m.fit(xs, ys, FIT);
writeFileSync(
  join(out, 'reloaded.json'),
  JSON.stringify({
    className: m.optimizer.getClassName(),
    config: m.optimizer.getConfig(),
    restoredIterations,
    iterations: m.optimizer.iterations,
    weights: weights(m),
  }),
);
