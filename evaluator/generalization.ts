/**
 * What predicts generalization: label noise (Zhang et al. 2017), single-direction reliance
 * (Morcos et al. 2018) and sharpness after a function-preserving rescaling (Dinh et al. 2017).
 *
 * - Label noise: a fraction p of the TRAINING labels (exactly round(p * n) examples, chosen by a
 *   seeded shuffle) is replaced by labels drawn uniformly from the 10 classes, as in Zhang et al.
 *   (so about a tenth of the replaced labels equal the true one). Validation and test stay clean.
 * - Reliance: the hidden units (MLP) or feature maps (ConvNet, both conv layers) are ablated, their
 *   activation set to zero by zeroing their incoming weights and bias (ReLU(0) = 0), cumulatively in
 *   a seeded random order; the accuracy at each ablated fraction is measured on the fixed training
 *   sample the analysis uses, with the labels the network was trained on (noisy ones included), as
 *   Morcos et al. measured their corrupted-label networks: a network trained on random labels is at
 *   chance on test data at every fraction. The area is the trapezoid area under accuracy / unablated
 *   accuracy over the fraction in [0, 1]: 1 when ablation costs nothing, lower when the network
 *   relies on few directions.
 * - Rescaling: the first ReLU layer's weights and bias times alpha and the next layer's weights over
 *   alpha compute the same function (ReLU is positively homogeneous, and so is max-pooling), yet
 *   Keskar et al.'s sharpness, whose box |z_i| <= eps * (|w_i| + 1) is not scale-free, changes.
 */
import seedrandom from 'seedrandom';
import { sharpness } from './analysis.js';
import type { Dataset } from './images.js';
import type { ModelKind, SplitName, TaskRun, TaskSpec } from './tasks.js';

export const CLASSES = 10;

/** Why a label-noise fraction cannot be used on a task, or undefined when it can. */
export function labelNoiseProblem(p: number, task: Pick<TaskSpec, 'id' | 'dataset'>): string | undefined {
  if (!Number.isFinite(p) || p < 0 || p > 1) return `label noise must be a fraction in [0, 1], got ${p}`;
  if (task.dataset === null)
    return `label noise needs an image task with labels; ${task.id} is analytic (mlp-mnist, convnet-fashion and softmax-mnist have labels)`;
  return undefined;
}

/** The examples whose labels were replaced (sorted) and the new labels, in the same order. */
export interface LabelNoise {
  readonly indices: Int32Array;
  readonly labels: Uint8Array;
}

/**
 * Which of n training labels are replaced for fraction p and seed, and by what: exactly
 * round(p * n) examples, the first of a seeded shuffle, each given a uniformly random class.
 */
export function labelNoiseDraw(n: number, p: number, seed: number, classes = CLASSES): LabelNoise {
  const rng = seedrandom.alea(`label-noise:${seed}`);
  const k = Math.round(p * n);
  const order = Int32Array.from({ length: n }, (_, i) => i);
  // A partial Fisher-Yates shuffle: the first k positions are a uniform k-subset.
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  const picked = order.slice(0, k).sort();
  const labels = Uint8Array.from({ length: k }, () => Math.floor(rng() * classes));
  return { indices: picked, labels };
}

/**
 * The dataset with a fraction p of its training labels replaced (see labelNoiseDraw); the pixels
 * and the validation and test splits are the same objects (shared, untouched). p = 0 returns
 * `data` itself.
 */
export function withLabelNoise(data: Dataset, p: number, seed: number): Dataset {
  if (!Number.isFinite(p) || p < 0 || p > 1) throw new RangeError(`label noise must be a fraction in [0, 1], got ${p}`);
  if (p === 0) return data;
  const y = Uint8Array.from(data.train.y);
  const { indices, labels } = labelNoiseDraw(data.train.n, p, seed);
  indices.forEach((i, k) => {
    y[i] = labels[k] as number;
  });
  return { ...data, train: { n: data.train.n, x: data.train.x, y } };
}

// ---------------------------------------------------------------------------------------
// Hidden units of the classifiers (weight layouts as in tasks.ts: row-major, [in, out] for dense
// layers, [kh, kw, in, out] for convolutions).

interface UnitLayer {
  /** Index of the weight tensor feeding the units and of their bias. */
  readonly weight: number;
  readonly bias: number;
  /** Units in the layer; incoming weights of unit u are the entries with (index % units) === u. */
  readonly units: number;
  /** Expected length of the weight tensor (checked). */
  readonly length: number;
}

/** The ReLU layers whose units/feature maps can be ablated and rescaled (none for softmax and analytic tasks). */
export function reluLayers(model: ModelKind): readonly UnitLayer[] {
  switch (model) {
    case 'mlp':
      return [{ weight: 0, bias: 1, units: 64, length: 784 * 64 }];
    case 'convnet':
      return [
        { weight: 0, bias: 1, units: 32, length: 3 * 3 * 1 * 32 },
        { weight: 2, bias: 3, units: 32, length: 3 * 3 * 32 * 32 },
      ];
    default:
      return [];
  }
}

function checkLayout(weights: readonly Float32Array[], layers: readonly UnitLayer[]): void {
  for (const l of layers) {
    const w = weights[l.weight];
    const b = weights[l.bias];
    if (w === undefined || w.length !== l.length || b === undefined || b.length !== l.units) {
      throw new Error(
        `unexpected weight layout: layer ${l.weight} should have ${l.length} weights and ${l.units} biases`,
      );
    }
  }
}

/** Set unit `u` of layer `l` to output zero: its incoming weights and bias become 0, so ReLU gives 0. */
function ablateUnit(weights: readonly Float32Array[], l: UnitLayer, u: number): void {
  const w = weights[l.weight] as Float32Array;
  for (let j = u; j < w.length; j += l.units) w[j] = 0;
  (weights[l.bias] as Float32Array)[u] = 0;
}

export interface Reliance {
  /** Normalised area under the ablation curve: mean of acc(f) / acc(0) over f in [0, 1] (trapezoid). */
  readonly area: number;
  /** [fraction of units ablated, accuracy]. */
  readonly curve: readonly (readonly [number, number])[];
  /** The split the accuracy is measured on. */
  readonly split: SplitName;
  /** How many units / feature maps there are to ablate. */
  readonly units: number;
}

/** 0, 0.05, ..., 1. */
export const ABLATION_FRACTIONS: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20);

/** Trapezoid area under acc / acc0 over the fractions (which must start at 0 and end at 1). */
export function relianceArea(curve: readonly (readonly [number, number])[]): number {
  const acc0 = curve[0]?.[1] ?? 0;
  if (!(acc0 > 0)) return 0;
  let area = 0;
  for (let i = 1; i < curve.length; i++) {
    const [f0, a0] = curve[i - 1] as readonly [number, number];
    const [f1, a1] = curve[i] as readonly [number, number];
    area += ((f1 - f0) * (a0 + a1)) / 2;
  }
  return area / acc0;
}

/**
 * Cumulative ablation of the run's hidden units in a random order (seeded), the accuracy on
 * `split` at each fraction; the weights are restored afterwards. Null for models without ReLU
 * units (softmax regression, the analytic tasks).
 */
export function singleDirectionReliance(
  run: TaskRun,
  model: ModelKind,
  seed: number,
  options: { fractions?: readonly number[]; split?: SplitName } = {},
): Reliance | null {
  const layers = reluLayers(model);
  if (layers.length === 0) return null;
  checkLayout(run.weights, layers);
  const fractions = options.fractions ?? ABLATION_FRACTIONS;
  if (
    fractions[0] !== 0 ||
    fractions[fractions.length - 1] !== 1 ||
    fractions.some((f, i) => i > 0 && f <= (fractions[i - 1] as number))
  ) {
    throw new RangeError('ablation fractions must rise from 0 to 1');
  }
  const split = options.split ?? 'train';
  const units = layers.flatMap((l) => Array.from({ length: l.units }, (_, u) => [l, u] as const));
  const rng = seedrandom.alea(`ablation:${seed}`);
  for (let i = units.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [units[i], units[j]] = [units[j] as (typeof units)[number], units[i] as (typeof units)[number]];
  }
  const saved = run.weights.map((w) => Float32Array.from(w));
  const curve: [number, number][] = [];
  try {
    let ablated = 0;
    for (const f of fractions) {
      const upTo = Math.round(f * units.length);
      for (; ablated < upTo; ablated++) {
        const [l, u] = units[ablated] as (typeof units)[number];
        ablateUnit(run.weights, l, u);
      }
      curve.push([f, run.evaluate(split).acc]);
    }
  } finally {
    run.weights.forEach((w, i) => {
      w.set(saved[i] as Float32Array);
    });
  }
  return { area: relianceArea(curve), curve, split, units: units.length };
}

/** The rescaling factor of Dinh et al.'s reparametrisation used by `--analyze`. */
export const RESCALE_ALPHA = 5;

/**
 * Rescale in place: the first ReLU layer's weights and bias times alpha, the weights of the layer
 * it feeds over alpha (the MLP's output layer; the ConvNet's second convolution). The function the
 * network computes is unchanged (up to float rounding). False for models without a ReLU layer.
 */
export function rescaleReLU(weights: readonly Float32Array[], model: ModelKind, alpha: number): boolean {
  if (!(alpha > 0) || !Number.isFinite(alpha))
    throw new RangeError(`the rescaling factor must be positive, got ${alpha}`);
  const layers = reluLayers(model);
  const first = layers[0];
  if (first === undefined) return false;
  checkLayout(weights, layers);
  const scale = (w: Float32Array, k: number) => {
    for (let j = 0; j < w.length; j++) w[j] = (w[j] as number) * k;
  };
  scale(weights[first.weight] as Float32Array, alpha);
  scale(weights[first.bias] as Float32Array, alpha);
  // The next layer's weights directly follow the first layer's bias (MLP: W2; ConvNet: conv2).
  scale(weights[first.bias + 1] as Float32Array, 1 / alpha);
  return true;
}

/**
 * Keskar et al.'s sharpness of the same function after rescaleReLU by alpha; the weights are
 * restored afterwards. Null for models without a ReLU layer.
 */
export function rescaledSharpness(run: TaskRun, model: ModelKind, alpha = RESCALE_ALPHA): number | null {
  const saved = run.weights.map((w) => Float32Array.from(w));
  try {
    if (!rescaleReLU(run.weights, model, alpha)) return null;
    return sharpness(run);
  } finally {
    run.weights.forEach((w, i) => {
      w.set(saved[i] as Float32Array);
    });
  }
}

/** Reliance over seeds, for JSON: the mean area (and its std) and the mean accuracy at each fraction; null when no seed has one. */
export function relianceSummary(list: readonly (Reliance | null | undefined)[]): {
  readonly area: number;
  readonly areaStd: number;
  readonly curve: readonly (readonly [number, number])[];
  readonly split: SplitName;
  readonly units: number;
  readonly seeds: number;
} | null {
  const have = list.filter((r): r is Reliance => r !== null && r !== undefined);
  const first = have[0];
  if (first === undefined) return null;
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const areas = have.map((r) => r.area);
  const area = mean(areas);
  const areaStd = have.length > 1 ? Math.sqrt(areas.reduce((a, x) => a + (x - area) ** 2, 0) / (have.length - 1)) : 0;
  const curve = first.curve.map(
    ([f], i) => [f, mean(have.map((r) => (r.curve[i] as readonly [number, number])[1]))] as const,
  );
  return { area, areaStd, curve, split: first.split, units: first.units, seeds: have.length };
}
