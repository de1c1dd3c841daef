/**
 * What predicts generalization (issue 14, part 3): mlp-mnist trained on a subset of MNIST's
 * training set whose labels are partly (p = 0, 0.2, 0.5, 1.0) replaced by random ones (Zhang et al.
 * 2017), with SGD, Adam and PowerSign; per run the generalization gap (train accuracy on the labels
 * trained on minus clean test accuracy), Keskar sharpness before and after Dinh et al.'s x5 ReLU
 * rescaling, and Morcos et al.'s single-direction reliance (the area under the cumulative ablation
 * curve on the training sample). Writes docs/generalization/study.json, reliance.svg, gap.svg,
 * sharpness.svg and ablation-curves.svg.
 *
 *   npx tsc -p tsconfig.build.json && flock /tmp/nos-bench.lock node dist/bench/generalization-study.js [--quick]
 *   node dist/bench/generalization-study.js --replot [docs/generalization/study.json]   (summary and plots from stored runs)
 *
 * Environment (defaults in brackets): STUDY_TRAIN [2000] training examples, STUDY_STEPS [3000],
 * STUDY_SEEDS [3], STUDY_OUT [docs/generalization].
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initTf } from '../dsl/compile/tf-backend.js';
import { type Dataset, loadDataset } from '../evaluator/data.js';
import { RESCALE_ALPHA } from '../evaluator/generalization.js';
import { spearman } from '../evaluator/paired.js';
import { findTask } from '../evaluator/tasks.js';
import { evaluateRule } from '../evaluator/train.js';
import { lineChart, type Series } from '../search-results/plot.js';

const env = (name: string, fallback: number): number => {
  const v = process.env[name];
  const x = v === undefined ? fallback : Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`${name} must be a positive number, got '${v}'`);
  return x;
};

const quick = process.argv.includes('--quick');
const TRAIN = env('STUDY_TRAIN', 2000);
const STEPS = env('STUDY_STEPS', quick ? 300 : 3000);
const SEEDS = env('STUDY_SEEDS', quick ? 1 : 3);
const OUT = process.env.STUDY_OUT ?? 'docs/generalization';
const NOISE = quick ? [0, 1] : [0, 0.2, 0.5, 1];
/** Fixed learning rates (no grid: the grid would pick by validation accuracy, which noise ruins). */
const RULES: readonly { name: string; lr: number }[] = [
  { name: 'sgd', lr: 0.1 },
  { name: 'adam', lr: 0.001 },
  { name: 'powersign', lr: 0.1 },
];

/** The first n examples of the training split (labels copied later by the label noise, pixels shared). */
function subset(data: Dataset, n: number): Dataset {
  const k = Math.min(n, data.train.n);
  return { ...data, train: { n: k, x: data.train.x.subarray(0, k * 784), y: data.train.y.subarray(0, k) } };
}

interface Row {
  rule: string;
  lr: number;
  labelNoise: number;
  seed: number;
  status: string;
  trainAcc: number;
  testAcc: number;
  valAcc: number;
  gapAcc: number;
  sharpness: number;
  sharpnessRescaled: number | null;
  relianceArea: number | null;
  relianceCurve: readonly (readonly [number, number])[] | null;
  seconds: number;
}

interface Setup {
  readonly task: string;
  readonly trainExamples: number;
  readonly steps: number;
  readonly batchSize: number;
  readonly epochs: number;
  readonly seeds: number;
  readonly labelNoise: readonly number[];
  readonly rules: readonly { name: string; lr: number }[];
  readonly rescaleAlpha: number;
  readonly relianceSplit: string;
  readonly testSplit: string;
}

/** Train every (noise, rule, seed) and measure it. */
async function study(): Promise<{ rows: Row[]; setup: Setup; seconds: number }> {
  await initTf();
  const task = findTask('mlp-mnist');
  if (task === undefined) throw new Error('task mlp-mnist is missing');
  const data = subset(loadDataset('mnist'), TRAIN);
  const rows: Row[] = [];
  const t0 = performance.now();
  for (const p of NOISE) {
    for (const { name, lr } of RULES) {
      for (let seed = 0; seed < SEEDS; seed++) {
        const r = evaluateRule(name, task, data, {
          seed,
          steps: STEPS,
          lrGrid: [lr],
          analyze: true,
          test: true,
          labelNoise: p,
          timeLimitMs: 600_000,
        });
        const a = r.analysis;
        const row: Row = {
          rule: name,
          lr,
          labelNoise: p,
          seed,
          status: r.status,
          trainAcc: a?.trainAcc ?? Number.NaN,
          testAcc: a?.testAcc ?? Number.NaN,
          valAcc: r.valAcc,
          gapAcc: a?.gapAcc ?? Number.NaN,
          sharpness: a?.sharpness ?? Number.NaN,
          sharpnessRescaled: a?.sharpnessRescaled ?? null,
          relianceArea: a?.reliance?.area ?? null,
          relianceCurve: a?.reliance?.curve ?? null,
          seconds: r.seconds,
        };
        rows.push(row);
        console.log(
          `p=${p} ${name} seed ${seed}: ${r.status} train ${row.trainAcc.toFixed(3)} test ${row.testAcc.toFixed(3)} gap ${row.gapAcc.toFixed(3)} ` +
            `sharpness ${row.sharpness.toFixed(3)} rescaled ${row.sharpnessRescaled?.toFixed(3)} reliance ${row.relianceArea?.toFixed(3)} (${r.seconds.toFixed(1)} s)`,
        );
      }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const setup: Setup = {
    task: task.id,
    trainExamples: data.train.n,
    steps: STEPS,
    batchSize: task.batchSize,
    epochs: (STEPS * task.batchSize) / data.train.n,
    seeds: SEEDS,
    labelNoise: NOISE,
    rules: RULES,
    rescaleAlpha: RESCALE_ALPHA,
    relianceSplit: `train: the first ${Math.min(task.valSize, data.train.n)} training examples, with the labels trained on`,
    testSplit: 'MNIST test, 10,000, clean',
  };
  return { rows, setup, seconds };
}

/** Means per (rule, noise), correlations with the gap, study.json and the plots. */
function report(rows: readonly Row[], setup: Setup, seconds: number): void {
  const NOISE = setup.labelNoise;
  const RULES = setup.rules;
  const alpha = setup.rescaleAlpha;
  mkdirSync(OUT, { recursive: true });
  const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  const cell = (rule: string, p: number, f: (r: Row) => number | null) =>
    mean(rows.filter((r) => r.rule === rule && r.labelNoise === p && r.status === 'ok').map((r) => f(r) ?? Number.NaN));
  const summary = RULES.flatMap(({ name }) =>
    NOISE.map((p) => ({
      rule: name,
      labelNoise: p,
      trainAcc: cell(name, p, (r) => r.trainAcc),
      testAcc: cell(name, p, (r) => r.testAcc),
      gapAcc: cell(name, p, (r) => r.gapAcc),
      sharpness: cell(name, p, (r) => r.sharpness),
      sharpnessRescaled: cell(name, p, (r) => r.sharpnessRescaled),
      relianceArea: cell(name, p, (r) => r.relianceArea),
    })),
  );
  // Spearman correlations with the gap: over all runs, then within each rule (noise varies) and
  // within each noise level (the rule and seed vary). Morcos et al.: more reliance, i.e. a lower
  // area, goes with a larger gap, so negative for the area.
  const corr = (rs: readonly Row[]) => ({
    relianceAreaVsGap: spearman(
      rs.map((r) => r.relianceArea as number),
      rs.map((r) => r.gapAcc),
    ),
    sharpnessVsGap: spearman(
      rs.map((r) => r.sharpness),
      rs.map((r) => r.gapAcc),
    ),
    sharpnessRescaledVsGap: spearman(
      rs.map((r) => r.sharpnessRescaled as number),
      rs.map((r) => r.gapAcc),
    ),
    runs: rs.length,
  });
  const ok = rows.filter((r) => r.status === 'ok' && r.relianceArea !== null && r.sharpnessRescaled !== null);
  const correlations = {
    all: corr(ok),
    byRule: Object.fromEntries(RULES.map(({ name }) => [name, corr(ok.filter((r) => r.rule === name))])),
    byNoise: Object.fromEntries(NOISE.map((p) => [String(p), corr(ok.filter((r) => r.labelNoise === p))])),
  };
  const doc = {
    study:
      'label noise x rule on mlp-mnist: generalization gap, sharpness (before/after rescaling), single-direction reliance',
    command: 'flock /tmp/nos-bench.lock node dist/bench/generalization-study.js',
    setup,
    seconds,
    correlations,
    summary,
    runs: rows,
  };
  writeFileSync(join(OUT, 'study.json'), `${JSON.stringify(doc, null, 1)}\n`);
  const byRule = (f: (r: (typeof summary)[number]) => number): Series[] =>
    RULES.map(({ name }) => {
      const s = summary.filter((x) => x.rule === name);
      return { name, x: s.map((x) => x.labelNoise), y: s.map(f) };
    });
  writeFileSync(
    join(OUT, 'reliance.svg'),
    lineChart(
      byRule((x) => x.relianceArea),
      {
        title: `Single-direction reliance vs label noise (mlp-mnist, ${setup.trainExamples} examples, ${setup.steps} steps)`,
        xLabel: 'fraction of training labels randomised',
        yLabel: 'ablation area (lower = more reliance)',
      },
    ),
  );
  writeFileSync(
    join(OUT, 'gap.svg'),
    lineChart(
      byRule((x) => x.gapAcc),
      {
        title: `Generalization gap vs label noise (train acc on trained labels - clean test acc)`,
        xLabel: 'fraction of training labels randomised',
        yLabel: 'gap (accuracy)',
      },
    ),
  );
  const sharp: Series[] = [
    ...byRule((x) => x.sharpness).map((x) => ({ ...x, name: `${x.name}` })),
    ...byRule((x) => x.sharpnessRescaled).map((x) => ({ ...x, name: `${x.name}, x${alpha} rescaled` })),
  ];
  writeFileSync(
    join(OUT, 'sharpness.svg'),
    lineChart(sharp, {
      title: `Keskar sharpness of the same functions before and after x${alpha} ReLU rescaling`,
      xLabel: 'fraction of training labels randomised',
      yLabel: 'sharpness % (log)',
      logY: true,
    }),
  );
  // The ablation curves of the first seed at each noise level, one rule (Adam), as in Morcos et al. Fig. 1.
  const curves: Series[] = NOISE.map((p) => {
    const r = rows.find((x) => x.rule === 'adam' && x.labelNoise === p && x.seed === 0);
    const c = r?.relianceCurve ?? [];
    return { name: `p = ${p}`, x: c.map(([f]) => f), y: c.map(([, acc]) => acc) };
  });
  writeFileSync(
    join(OUT, 'ablation-curves.svg'),
    lineChart(curves, {
      title: 'Adam: training accuracy as hidden units are ablated (seed 0)',
      xLabel: 'fraction of hidden units ablated',
      yLabel: 'training accuracy',
    }),
  );
  console.log(JSON.stringify(correlations.all));
  console.log(
    `${rows.length} runs (${seconds.toFixed(0)} s of training and analysis); wrote ${OUT}/study.json, reliance.svg, gap.svg, sharpness.svg, ablation-curves.svg`,
  );
}

async function main(): Promise<void> {
  const at = process.argv.indexOf('--replot');
  if (at >= 0) {
    // Recompute the summary, correlations and plots from the runs of an existing study.json.
    const file = process.argv[at + 1] ?? join(OUT, 'study.json');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { runs: Row[]; setup: Setup; seconds: number };
    report(doc.runs, doc.setup, doc.seconds);
    return;
  }
  const { rows, setup, seconds } = await study();
  report(rows, setup, seconds);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exit(1);
});
