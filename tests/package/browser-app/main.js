// A user's page: trains a linear regression with a nos optimizer on tfjs's cpu backend, saves
// and reloads the model with its optimizer, and posts what happened to the test's server.
import * as tf from '@tensorflow/tfjs';
import { lookupRule, optimizer, RuleOptimizer } from 'nos';

const report = (result) => fetch('/result', { method: 'POST', body: JSON.stringify(result) });
addEventListener('error', (e) => report({ error: `error: ${e.message}` }));
addEventListener('unhandledrejection', (e) => report({ error: `unhandled rejection: ${e.reason?.stack ?? e.reason}` }));

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  const x = Array.from({ length: 64 }, (_, i) => i / 32 - 1);
  const xs = tf.tensor2d(x, [64, 1]);
  const ys = tf.tensor2d(
    x.map((v) => 3 * v - 2),
    [64, 1],
  );
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1], kernelInitializer: 'zeros' })] });
  model.compile({ optimizer: optimizer('adam', { learningRate: 0.05 }), loss: 'meanSquaredError' });
  const first = await model.fit(xs, ys, { epochs: 100, batchSize: 64, shuffle: false, verbose: 0 });

  let artifacts;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
    { includeOptimizer: true },
  );
  const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts));
  const again = await loaded.fit(xs, ys, { epochs: 20, batchSize: 64, shuffle: false, verbose: 0 });

  const found = lookupRule('exp(sign(g) * sign(m)) * g');
  const losses = first.history.loss;
  return {
    backend: tf.getBackend(),
    lossFirst: losses[0],
    lossLast: losses[losses.length - 1],
    lossAfterReload: again.history.loss[again.history.loss.length - 1],
    weights: model.getWeights().map((w) => Array.from(w.dataSync())),
    reloadedIsRuleOptimizer: loaded.optimizer instanceof RuleOptimizer,
    reloadedRule: loaded.optimizer.rule?.canonical,
    reloadedIterations: loaded.optimizer.iterations,
    powersignHash: found.ok ? found.rule.hash : found.message,
  };
}

main()
  .then((result) => {
    document.getElementById('status').textContent = 'done';
    return report(result);
  })
  .catch((e) => report({ error: String(e?.stack ?? e) }));
