/**
 * x_t of Adam and AMSGrad on the Reddi et al. (2018) counterexample (task reddi-amsgrad) with
 * Theorem 1's hyperparameters beta1 = 0, beta2 = 1/(1 + C^2), projected onto [-1, 1] after
 * every step as the trainer does. Writes docs/reddi-amsgrad.svg (or the path given).
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/reddi-plot.js [out.svg] [lr] [steps]
 */
import { writeFileSync } from 'node:fs';
import { compileRule } from '../dsl/compile/index.js';
import { lookupRule } from '../dsl/index.js';
import { createRun, findTask, REDDI } from '../evaluator/tasks.js';
import { lineChart, type Series } from '../search-results/plot.js';

/** x_1..x_steps (x after each projected update; x_0 = 1 first) of one built-in rule. */
export function reddiTrajectory(ruleName: string, lr: number, steps: number): number[] {
  const task = findTask('reddi-amsgrad');
  if (!task) throw new Error('task reddi-amsgrad is missing');
  const found = lookupRule(ruleName, '<rule>');
  if (!found.ok) throw new Error(found.message);
  const compiled = compileRule(found.rule, { backend: 'js', params: { beta1: 0, beta2: 1 / (1 + REDDI.C ** 2) } });
  const run = createRun(task, 0, undefined);
  const w = run.weights[0] as Float32Array;
  const kernel = compiled.create(1, 0);
  const xs = [w[0] as number];
  for (let t = 1; t <= steps; t++) {
    const { grads } = run.gradients(t);
    kernel.step(w, grads[0] as Float32Array, lr);
    run.project?.();
    xs.push(w[0] as number);
  }
  return xs;
}

const out = process.argv[2] ?? 'docs/reddi-amsgrad.svg';
const lr = Number(process.argv[3] ?? 0.1);
const steps = Number(process.argv[4] ?? 600);
const series: Series[] = ['adam', 'amsgrad'].map((name) => {
  const y = reddiTrajectory(name, lr, steps);
  return { name, x: y.map((_, t) => t), y };
});
writeFileSync(
  out,
  lineChart(series, {
    title: `Reddi et al. counterexample: f_t = ${REDDI.C}x (t mod 3 = 1) else -x, lr ${lr}`,
    xLabel: 'step t',
    yLabel: 'x_t (optimum -1)',
  }),
);
for (const s of series) console.log(`${s.name}: final x = ${(s.y[s.y.length - 1] as number).toFixed(4)}`);
console.log(`wrote ${out}`);
