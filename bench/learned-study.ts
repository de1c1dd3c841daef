/**
 * The learned optimizer study (README, "A learned optimizer"): the qualitative results of
 * Andrychowicz et al. 2016, reproduced small but real on this machine's CPU.
 *
 *   1. meta-train on random quadratics and on a small MLP (as `nos learn` does);
 *   2. held-out quadratics from the training distribution: the learned optimizer (lr 1, as
 *      trained) vs Adam and RMSProp with learning rates tuned on other quadratics of the same
 *      distribution, at the meta-training horizon and at 2x it;
 *   3. mlp-mnist (the evaluator's 784-64-10 MLP; the optimizer was meta-trained on a 196-20-10
 *      one): the evaluation protocol (`evaluateRule`: Adam and RMSProp with the grid, the
 *      learned optimizer at lr 1) at the horizon, 2x and 4x it;
 *   4. a task it never saw: softmax-mnist;
 *   5. the two forward passes' speed on mlp-mnist's 50,890 coordinates.
 * Writes docs/learned/results.json, the trained files and SVG plots. Run it under the lock:
 *
 *   npx tsc -p tsconfig.build.json && flock /tmp/nos-bench.lock node dist/bench/learned-study.js
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nosVersion } from '../controller/run.js';
import { compileRule } from '../dsl/compile/index.js';
import { initTf } from '../dsl/compile/tf-backend.js';
import { lookupRule } from '../dsl/index.js';
import { batchPixels, loadDataset } from '../evaluator/data.js';
import { findTask } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';
import { learnedDocument } from '../learned/file.js';
import { learnedKernel } from '../learned/kernel.js';
import { JsLstm, type LstmWeights, TfLstm } from '../learned/lstm.js';
import { metaTrain, type MetaSettings } from '../learned/meta-train.js';
import { type ImageSource, normal, QUADRATIC_DIM, quadraticGradient, quadraticLoss } from '../learned/problems.js';
import { lineChart, type Series } from '../search-results/plot.js';
import seedrandom from 'seedrandom';

const OUT = process.argv[2] ?? 'docs/learned';
const QUAD_STEPS = Number(process.env.NOS_STUDY_QUAD_STEPS ?? 300);
const MLP_STEPS = Number(process.env.NOS_STUDY_MLP_STEPS ?? 200);
const SEEDS = Number(process.env.NOS_STUDY_SEEDS ?? 2);
const HORIZON = 100;
mkdirSync(OUT, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);
const t00 = performance.now();
const since = () => `${((performance.now() - t00) / 1000).toFixed(0)} s`;

await initTf();
const version = nosVersion();
const mnist = loadDataset('mnist');
const source: ImageSource = {
  n: mnist.train.n,
  batch: (idx) => ({ x: batchPixels(mnist.train, idx), y: Int32Array.from(idx, (i) => mnist.train.y[i] as number) }),
};

// 1. Meta-training.
function train(settings: MetaSettings, file: string) {
  const t0 = performance.now();
  const state = metaTrain(settings, {
    ...(settings.task === 'mlp-mnist' ? { data: source } : {}),
    onStep: (k, l) => {
      if (k % Math.max(1, Math.floor(settings.metaSteps / 10)) === 0)
        log(`  ${settings.task} meta-step ${k}/${settings.metaSteps}: meta-loss ${l.toFixed(4)} (${since()})`);
    },
  });
  const doc = learnedDocument(settings, state, version);
  writeFileSync(join(OUT, file), `${JSON.stringify(doc)}\n`);
  return { doc, weights: state.weights, losses: state.losses, seconds: (performance.now() - t0) / 1000 };
}
log(`meta-training on quadratics (${QUAD_STEPS} meta-steps)`);
const quad = train(
  { task: 'quadratic', seed: 0, metaSteps: QUAD_STEPS, unroll: 20, horizon: HORIZON, metaLr: 0.003 },
  'quadratic.json',
);
log(`meta-training on the MLP (${MLP_STEPS} meta-steps)`);
const mlp = train(
  { task: 'mlp-mnist', seed: 0, metaSteps: MLP_STEPS, unroll: 20, horizon: HORIZON, metaLr: 0.003 },
  'mlp.json',
);

// 2. Held-out quadratics: one vector of `count` problems (every optimizer here is coordinatewise).
function quadratics(stream: string, count: number) {
  const rng = seedrandom.alea(`study:${stream}`);
  const d = QUADRATIC_DIM;
  return {
    W: Float32Array.from({ length: count * d * d }, () => normal(rng)),
    y: Float32Array.from({ length: count * d }, () => normal(rng)),
    theta0: Float32Array.from({ length: count * d }, () => 0.01 * normal(rng)),
    count,
  };
}
type Step = (w: Float32Array, g: Float32Array) => void;
function quadCurve(q: ReturnType<typeof quadratics>, steps: number, make: (n: number) => Step): number[] {
  const w = q.theta0.slice();
  const step = make(w.length);
  const out = [quadraticLoss(q.W, q.y, w, q.count)];
  for (let t = 0; t < steps; t++) {
    step(w, quadraticGradient(q.W, q.y, w, q.count));
    out.push(quadraticLoss(q.W, q.y, w, q.count));
  }
  return out;
}
const ruleStep = (name: string, lr: number) => (n: number) => {
  const found = lookupRule(name);
  if (!found.ok) throw new Error(found.message);
  const k = compileRule(found.rule, { backend: 'js' }).create(n, 0);
  return (w: Float32Array, g: Float32Array) => k.step(w, g, lr);
};
const learnedStep = (weights: LstmWeights) => (n: number) => {
  const k = learnedKernel(weights, n, 'js');
  return (w: Float32Array, g: Float32Array) => k.step(w, g, 1);
};
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const GRID = [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1];
const tuneSet = quadratics('tune', 128);
const testSet = quadratics('test', 256);
const quadResults: Record<string, unknown> = {};
const quadSeries: Series[] = [];
for (const name of ['adam', 'rmsprop']) {
  // Tuned for the mean loss over the horizon (the meta-objective), on other quadratics.
  const scored = GRID.map((lr) => ({ lr, score: mean(quadCurve(tuneSet, HORIZON, ruleStep(name, lr)).slice(1)) }));
  const best = scored.filter((s) => Number.isFinite(s.score)).sort((a, b) => a.score - b.score)[0];
  if (!best) throw new Error(`${name} diverged at every rate`);
  const curve = quadCurve(testSet, 2 * HORIZON, ruleStep(name, best.lr));
  quadResults[name] = {
    lr: best.lr,
    grid: scored,
    lossAt: { [HORIZON]: curve[HORIZON], [2 * HORIZON]: curve[2 * HORIZON] },
    meanLossToHorizon: mean(curve.slice(1, HORIZON + 1)),
  };
  quadSeries.push({ name: `${name} (lr ${best.lr})`, x: curve.map((_, i) => i), y: curve });
}
for (const [name, w] of [
  ['learned (quadratics)', quad.weights],
  ['learned (MLP)', mlp.weights],
] as const) {
  const curve = quadCurve(testSet, 2 * HORIZON, learnedStep(w));
  quadResults[name] = {
    lr: 1,
    lossAt: { [HORIZON]: curve[HORIZON], [2 * HORIZON]: curve[2 * HORIZON] },
    meanLossToHorizon: mean(curve.slice(1, HORIZON + 1)),
  };
  quadSeries.push({ name, x: curve.map((_, i) => i), y: curve });
}
writeFileSync(
  join(OUT, 'quadratics.svg'),
  lineChart(quadSeries, {
    title: `Held-out random quadratics (256, 10-d): mean loss; meta-trained to step ${HORIZON}`,
    xLabel: 'step',
    yLabel: 'mean ||Wθ - y||²',
    logY: true,
  }),
);
log(`held-out quadratics done (${since()})`);

// 3-4. The evaluator's protocol on image tasks.
function evaluate(
  task: string,
  rule: string,
  steps: number,
  learned?: { label: string; doc: ReturnType<typeof learnedDocument> },
) {
  const spec = findTask(task);
  if (!spec) throw new Error(task);
  return Array.from({ length: SEEDS }, (_, seed) =>
    evaluateRule(learned ? learned.label : rule, spec, mnist, {
      seed,
      steps,
      test: true,
      timeLimitMs: 1_200_000,
      ...(learned ? { learned: learned.doc, lrGrid: [1] } : {}),
    }),
  );
}
const imageResults: Record<string, unknown> = {};
const curvesSvg: Record<string, Series[]> = {};
const runs: [string, number, string, { label: string; doc: ReturnType<typeof learnedDocument> } | undefined][] = [];
for (const steps of [HORIZON, 2 * HORIZON, 4 * HORIZON]) {
  for (const r of ['adam', 'rmsprop']) runs.push(['mlp-mnist', steps, r, undefined]);
  runs.push(['mlp-mnist', steps, 'learned (MLP)', { label: 'learned:docs/learned/mlp.json', doc: mlp.doc }]);
  if (steps === HORIZON)
    runs.push([
      'mlp-mnist',
      steps,
      'learned (quadratics)',
      { label: 'learned:docs/learned/quadratic.json', doc: quad.doc },
    ]);
}
for (const r of ['adam', 'rmsprop']) runs.push(['softmax-mnist', 2 * HORIZON, r, undefined]);
runs.push(['softmax-mnist', 2 * HORIZON, 'learned (MLP)', { label: 'learned:docs/learned/mlp.json', doc: mlp.doc }]);
for (const [task, steps, name, learned] of runs) {
  const res = evaluate(task, name, steps, learned);
  const key = `${task}@${steps}`;
  const entry = {
    status: res.map((r) => r.status),
    bestLr: res.map((r) => r.bestLr),
    testAcc: { mean: mean(res.map((r) => r.testAcc ?? Number.NaN)), perSeed: res.map((r) => r.testAcc) },
    finalLoss: { mean: mean(res.map((r) => r.finalLoss)), perSeed: res.map((r) => r.finalLoss) },
    seconds: mean(res.map((r) => r.seconds)),
  };
  const byRule = (imageResults[key] ?? {}) as Record<string, unknown>;
  byRule[name] = entry;
  imageResults[key] = byRule;
  log(
    `  ${key} ${name}: test acc ${(100 * entry.testAcc.mean).toFixed(2)}%, final loss ${entry.finalLoss.mean.toFixed(4)}, ${res.map((r) => r.status).join('/')} (${since()})`,
  );
  const ok = res.filter((r) => r.curve.length > 0);
  if (ok.length > 0) {
    const len = Math.min(...ok.map((r) => r.curve.length));
    const every = ok[0]?.curveEvery ?? 1;
    const y = Array.from({ length: len }, (_, i) => mean(ok.map((r) => r.curve[i] as number)));
    curvesSvg[key] = [...(curvesSvg[key] ?? []), { name, x: y.map((_, i) => (i + 1) * every), y }];
  }
}
for (const [key, series] of Object.entries(curvesSvg)) {
  writeFileSync(
    join(OUT, `${key.replace('@', '-')}.svg`),
    lineChart(series, {
      title: `${key.replace('@', ', ')} steps: training loss (mean of ${SEEDS} seeds)`,
      xLabel: 'step',
      yLabel: 'training loss',
      logY: true,
    }),
  );
}

// 5. The two forward passes on mlp-mnist's size.
function msPerStep(make: (g: Float32Array, out: Float32Array) => void, reps: number): number {
  const n = 50_890;
  const rng = seedrandom.alea('speed');
  const g = Float32Array.from({ length: n }, () => 0.01 * normal(rng));
  const out = new Float32Array(n);
  make(g, out);
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) make(g, out);
  return (performance.now() - t0) / reps;
}
const js = new JsLstm(quad.weights, 50_890);
const tfl = new TfLstm(quad.weights, 50_890);
const speed = {
  params: 50_890,
  jsMsPerStep: msPerStep((g, o) => js.step(g, o), 3),
  tfMsPerStep: msPerStep((g, o) => tfl.step(g, o), 5),
};
tfl.dispose();
log(`speed: ${JSON.stringify(speed)}`);

const results = {
  nos: version,
  command: 'flock /tmp/nos-bench.lock node dist/bench/learned-study.js',
  seconds: (performance.now() - t00) / 1000,
  horizon: HORIZON,
  seeds: SEEDS,
  metaTraining: {
    quadratic: {
      metaSteps: QUAD_STEPS,
      seconds: quad.seconds,
      finalMetaLoss: quad.doc.finalMetaLoss,
      losses: quad.losses,
    },
    mlp: { metaSteps: MLP_STEPS, seconds: mlp.seconds, finalMetaLoss: mlp.doc.finalMetaLoss, losses: mlp.losses },
  },
  heldOutQuadratics: { problems: 256, tuneProblems: 128, grid: GRID, results: quadResults },
  imageTasks: imageResults,
  kernelSpeed: speed,
};
writeFileSync(join(OUT, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
writeFileSync(
  join(OUT, 'meta-loss.svg'),
  lineChart(
    [
      { name: 'quadratics', x: quad.losses.map((_, i) => i + 1), y: quad.losses },
      { name: 'MLP (196-20-10)', x: mlp.losses.map((_, i) => i + 1), y: mlp.losses },
    ],
    {
      title: 'Meta-training: mean loss over each 20-step unroll',
      xLabel: 'meta-step',
      yLabel: 'meta-loss',
      logY: true,
    },
  ),
);
log(`done in ${since()}`);
