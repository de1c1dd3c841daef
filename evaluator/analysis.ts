/**
 * What kind of minimum a rule found: sharpness (Keskar et al. 2017) and snapshot ensembles
 * (Huang et al. 2017).
 */
import type { SplitName, TaskRun } from './tasks.js';

/**
 * Keskar et al.'s sharpness: the largest relative increase of the training loss within the box
 * |z_i| <= eps * (|w_i| + 1) around the weights, in percent: 100 * (max f(w + z) - f(w)) / (1 + f(w)).
 * The maximum is sought by a few steps of projected (sign-)gradient ascent on a fixed sample of
 * the training set. The weights are restored afterwards.
 */
export function sharpness(run: TaskRun, eps = 1e-3, steps = 10): number {
  const w0 = run.weights.map((w) => Float32Array.from(w));
  const bounds = w0.map((w) => Float32Array.from(w, (v) => eps * (Math.abs(v) + 1)));
  const f0 = run.fixedGradients().loss;
  let best = f0;
  try {
    for (let k = 0; k < steps; k++) {
      const { loss, grads } = run.fixedGradients();
      if (Number.isFinite(loss)) best = Math.max(best, loss);
      run.weights.forEach((w, i) => {
        const g = grads[i] as Float32Array;
        const b = bounds[i] as Float32Array;
        const base = w0[i] as Float32Array;
        for (let j = 0; j < w.length; j++) {
          const step = (2 * (b[j] as number)) / steps;
          const gj = g[j] as number;
          const next = (w[j] as number) + (gj > 0 ? step : gj < 0 ? -step : 0);
          w[j] = Math.min(
            (base[j] as number) + (b[j] as number),
            Math.max((base[j] as number) - (b[j] as number), next),
          );
        }
      });
    }
    const last = run.fixedGradients().loss;
    if (Number.isFinite(last)) best = Math.max(best, last);
  } finally {
    run.weights.forEach((w, i) => {
      w.set(w0[i] as Float32Array);
    });
  }
  return (100 * (best - f0)) / (1 + f0);
}

/** Accuracy of the averaged class probabilities of several weight snapshots. */
export function ensembleAccuracy(run: TaskRun, snapshots: readonly Float32Array[][], split: SplitName): number | null {
  if (run.probabilities === undefined || snapshots.length === 0) return null;
  const current = run.weights.map((w) => Float32Array.from(w));
  let sum: Float32Array | undefined;
  let labels: Uint8Array | undefined;
  let classes = 0;
  try {
    for (const snap of snapshots) {
      run.weights.forEach((w, i) => {
        w.set(snap[i] as Float32Array);
      });
      const p = run.probabilities(split);
      labels = p.labels;
      classes = p.classes;
      if (sum === undefined) sum = Float32Array.from(p.probs);
      else for (let k = 0; k < sum.length; k++) sum[k] = (sum[k] as number) + (p.probs[k] as number);
    }
  } finally {
    run.weights.forEach((w, i) => {
      w.set(current[i] as Float32Array);
    });
  }
  if (sum === undefined || labels === undefined) return null;
  let correct = 0;
  for (let r = 0; r < labels.length; r++) {
    let arg = 0;
    for (let c = 1; c < classes; c++)
      if ((sum[r * classes + c] as number) > (sum[r * classes + arg] as number)) arg = c;
    if (arg === labels[r]) correct++;
  }
  return correct / labels.length;
}
