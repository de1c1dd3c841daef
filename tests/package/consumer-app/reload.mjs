// A fresh process: `import 'nos'` registers RuleOptimizer, then the saved model loads with its
// optimizer and continues training; writes the weights it reaches. With `--without-nos` it
// skips the import, to show what happens then.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { data, FIT, weights } from './common.mjs';

const [out, flag] = process.argv.slice(2);
if (flag !== '--without-nos') await import('nos');
const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
const bin = readFileSync(join(out, 'weights.bin'));
const weightData = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
const m = await tf.loadLayersModel(tf.io.fromMemory({ ...json, weightData }));
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
