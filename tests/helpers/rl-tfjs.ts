/**
 * The RL controller as it was written with tfjs ops and autodiff (main at 7aecde8,
 * controller/rl.ts), kept as the reference the plain-JS controller's forward pass, gradients
 * and updates are checked against. The original header:
 *
 * The RNN controller of Bello et al. (2017): an LSTM that writes a rule as groups of five
 * choices (operand 1, operand 2, unary 1, unary 2, binary). Each choice is a softmax over its
 * vocabulary, masked so that a group can only use the base operands and earlier groups'
 * results; the choice is fed back, embedded, as the next input. Trained with REINFORCE:
 * a moving-average baseline, an entropy bonus, global-norm gradient clipping, and Adam —
 * nos's own fused Adam kernel on the controller's flattened weights, so the whole state
 * (weights, Adam moments, step, baseline, RNG) checkpoints and restores exactly.
 */
import * as tf from '@tensorflow/tfjs';
import { compileRule, type VectorKernel } from '../../dsl/compile/index.js';
import type { JsKernel } from '../../dsl/compile/js.js';
import { library } from '../../dsl/index.js';
import { NOS_SPACE, type SearchSpace } from '../../primitives/nos-space.js';
import type { Choices } from '../../controller/sample.js';
import { ruleText } from '../../controller/sample.js';
import {
  makeRng,
  type Proposal,
  type Strategy,
  type StrategyOptions,
  type UpdateStats,
} from '../../controller/strategy.js';

interface ControllerOptions extends StrategyOptions {
  readonly hidden?: number;
  readonly embedding?: number;
  readonly learningRate?: number;
  readonly entropyWeight?: number;
  readonly baselineDecay?: number;
  readonly clipNorm?: number;
  /**
   * Subtracted from the reward of a sample the run already knew (a cache hit): a count-based
   * exploration bonus in reverse. Without it the controller converges on a few known rules and
   * spends most of a run re-sampling them (measured: bench/results/cache-hits.txt).
   */
  readonly repeatPenalty?: number;
}

/** The default repeat penalty: in accuracy units, larger than the gaps between good rules. */
const REPEAT_PENALTY = 0.05;

type G = readonly [number, number, number, number, number];

const KINDS = [0, 0, 1, 1, 2] as const; // operand, operand, unary, unary, binary

export class TfjsRlController implements Strategy {
  readonly name = 'rl';
  private readonly space: SearchSpace;
  private readonly groups: number;
  private readonly H: number;
  private readonly E: number;
  private readonly sizes: readonly [number, number, number]; // operand, unary, binary vocabularies
  private readonly offsets: readonly [number, number, number]; // token offsets per kind (0 = start token)
  private readonly shapes: readonly (readonly number[])[];
  private readonly weights: Float32Array[];
  private readonly vars: tf.Variable[];
  private adam: VectorKernel[];
  private rng;
  private baseline: number | null = null;
  private readonly lr: number;
  private readonly beta: number;
  private readonly decay: number;
  private readonly clip: number;
  private readonly repeatPenalty: number;

  constructor(options: ControllerOptions) {
    this.space = options.space ?? NOS_SPACE;
    this.groups = options.groups;
    this.H = options.hidden ?? 32;
    this.E = options.embedding ?? 16;
    this.lr = options.learningRate ?? 0.01;
    this.beta = options.entropyWeight ?? 0.02;
    this.decay = options.baselineDecay ?? 0.9;
    this.clip = options.clipNorm ?? 1;
    this.repeatPenalty = options.repeatPenalty ?? REPEAT_PENALTY;
    const O = this.space.operands.length + this.groups - 1;
    this.sizes = [O, this.space.unary.length, this.space.binary.length];
    this.offsets = [1, 1 + O, 1 + O + this.sizes[1]];
    const V = 1 + O + this.sizes[1] + this.sizes[2];
    const { H, E } = this;
    this.shapes = [
      [V, E],
      [E, 4 * H],
      [H, 4 * H],
      [4 * H],
      [H, O],
      [O],
      [H, this.sizes[1]],
      [this.sizes[1]],
      [H, this.sizes[2]],
      [this.sizes[2]],
    ];
    const init = makeRng(`controller-init:${options.seed}`);
    this.weights = this.shapes.map((shape, i) => {
      const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
      if (i === 3) {
        // LSTM bias: forget gate starts at 1.
        for (let k = H; k < 2 * H; k++) w[k] = 1;
      } else if (shape.length === 2) for (let k = 0; k < w.length; k++) w[k] = (init() * 2 - 1) * 0.1;
      return w;
    });
    this.vars = this.weights.map((w, i) =>
      tf.tidy(() => tf.variable(tf.tensor(w, [...(this.shapes[i] as number[])]), true)),
    );
    this.adam = this.makeAdam();
    this.rng = makeRng(`controller:${options.seed}`);
  }

  private makeAdam(): VectorKernel[] {
    const adam = compileRule(library().get('adam') as NonNullable<ReturnType<ReturnType<typeof library>['get']>>, {
      backend: 'js',
    });
    return this.weights.map((w) => adam.create(w.length));
  }

  private v(i: number): tf.Tensor {
    return this.vars[i] as tf.Tensor;
  }

  /** One LSTM step for a batch: returns new [h, c]. */
  private cell(x: tf.Tensor2D, h: tf.Tensor2D, c: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
    const H = this.H;
    const z = tf.add(tf.add(tf.matMul(x, this.v(1) as tf.Tensor2D), tf.matMul(h, this.v(2) as tf.Tensor2D)), this.v(3));
    const [i, f, g, o] = tf.split(z, [H, H, H, H], 1) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    const c2 = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g))) as tf.Tensor2D;
    const h2 = tf.mul(tf.sigmoid(o), tf.tanh(c2)) as tf.Tensor2D;
    return [h2, c2];
  }

  /** Masked log-probabilities of decision `k` of group `g`. */
  private logProbs(h: tf.Tensor2D, g: number, k: number): tf.Tensor2D {
    const kind = KINDS[k as 0 | 1 | 2 | 3 | 4];
    const logits = tf.add(tf.matMul(h, this.v(4 + 2 * kind) as tf.Tensor2D), this.v(5 + 2 * kind)) as tf.Tensor2D;
    let masked = logits;
    if (kind === 0) {
      const valid = this.space.operands.length + g;
      const size = this.sizes[0];
      if (valid < size) {
        const mask = tf.tensor1d(Array.from({ length: size }, (_, j) => (j < valid ? 0 : -1e9)));
        masked = tf.add(logits, mask) as tf.Tensor2D;
      }
    }
    return tf.logSoftmax(masked) as tf.Tensor2D;
  }

  private token(kind: 0 | 1 | 2, choice: number): number {
    return (this.offsets[kind] as number) + choice;
  }

  /** Run the policy over a batch. With `actions`, scores them; without, samples them. */
  private unroll(n: number, actions?: readonly G[][]): { chosen: G[][]; logp: tf.Tensor1D; entropy: tf.Scalar } {
    let h = tf.zeros([n, this.H]) as tf.Tensor2D;
    let c = tf.zeros([n, this.H]) as tf.Tensor2D;
    let input = new Int32Array(n); // start token 0
    const chosen: number[][][] = Array.from({ length: n }, () => []);
    let logp = tf.zeros([n]) as tf.Tensor1D;
    let entropy = tf.scalar(0);
    const steps = this.groups * 5;
    for (let g = 0; g < this.groups; g++) {
      for (let k = 0; k < 5; k++) {
        // Embedding lookup as a one-hot matMul: gather's gradient needs UnsortedSegmentSum, which wasm lacks.
        const x = tf.matMul(
          tf.oneHot(tf.tensor1d(input, 'int32'), this.shapes[0]?.[0] as number),
          this.v(0) as tf.Tensor2D,
        ) as tf.Tensor2D;
        [h, c] = this.cell(x, h, c);
        const lp = this.logProbs(h, g, k);
        const kind = KINDS[k as 0 | 1 | 2 | 3 | 4];
        let picks: Int32Array;
        if (actions) picks = Int32Array.from(actions.map((a) => (a[g] as G)[k] as number));
        else {
          const probs = tf.exp(lp).arraySync() as number[][];
          picks = Int32Array.from(probs.map((row) => sample(row, this.rng)));
        }
        picks.forEach((p, b) => {
          const row = chosen[b] as number[][];
          if (k === 0) row.push([]);
          (row[g] as number[]).push(p);
        });
        const onehot = oneHot(picks, lp.shape[1]);
        logp = tf.add(logp, tf.sum(tf.mul(onehot, lp), 1)) as tf.Tensor1D;
        const p = tf.exp(lp);
        // Masked choices have lp = -1e9 (finite) and p = 0: they add nothing.
        entropy = tf.add(entropy, tf.neg(tf.mean(tf.sum(tf.mul(p, lp), 1)))) as tf.Scalar;
        input = Int32Array.from(picks, (p) => this.token(kind, p));
      }
    }
    return {
      chosen: chosen.map((groups) => groups.map((gr) => gr as unknown as G)),
      logp,
      entropy: tf.div(entropy, steps) as tf.Scalar,
    };
  }

  propose(n: number): Proposal[] {
    let sampled: G[][] = [];
    tf.tidy(() => {
      sampled = this.unroll(n).chosen;
    });
    return sampled.map((groups) => {
      const choices: Choices = { groups };
      return { choices, text: ruleText(choices, this.space), parent: null };
    });
  }

  /** The policy's log-probability of each proposal (as the controller would write it). */
  logProb(proposals: readonly Proposal[]): number[] {
    return tf.tidy(() =>
      Array.from(
        this.unroll(
          proposals.length,
          proposals.map((p) => p.choices.groups as G[]),
        ).logp.dataSync(),
      ),
    );
  }

  observe(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    _indices?: readonly number[],
    novel?: readonly boolean[],
  ): UpdateStats {
    const meanReward = rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length);
    // What the policy learns from: the reward, less the repeat penalty for rules already known.
    const shaped = rewards.map((r, i) => (novel !== undefined && novel[i] === false ? r - this.repeatPenalty : r));
    const shapedMean = shaped.reduce((a, b) => a + b, 0) / Math.max(1, shaped.length);
    const baseline = this.baseline ?? shapedMean;
    const advantages = shaped.map((r) => r - baseline);
    const actions = proposals.map((p) => p.choices.groups as G[]);
    let entropy = 0;
    const grads = tf.tidy(() => {
      const { value, grads: g } = tf.variableGrads(() => {
        const { logp, entropy: ent } = this.unroll(actions.length, actions);
        entropy = ent.dataSync()[0] as number;
        const pg = tf.neg(tf.mean(tf.mul(tf.tensor1d(advantages), logp)));
        return tf.sub(pg, tf.mul(this.beta, ent)) as tf.Scalar;
      }, this.vars);
      void value;
      return this.vars.map((v) => Float32Array.from((g[v.name] as tf.Tensor).dataSync()));
    });
    // Clip by global norm, then one Adam step per weight array.
    const norm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));
    const scale = norm > this.clip ? this.clip / norm : 1;
    grads.forEach((g, i) => {
      if (scale !== 1) for (let k = 0; k < g.length; k++) g[k] = (g[k] as number) * scale;
      this.adam[i]?.step(this.weights[i] as Float32Array, g, this.lr);
    });
    this.vars.forEach((v, i) => {
      tf.tidy(() => v.assign(tf.tensor(this.weights[i] as Float32Array, v.shape)));
    });
    this.baseline = this.baseline === null ? shapedMean : this.decay * this.baseline + (1 - this.decay) * shapedMean;
    return { meanReward, baseline, entropy };
  }

  save(): string {
    const b64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
    return JSON.stringify({
      weights: this.weights.map(b64),
      adam: this.adam.map((k) => {
        const js = k as unknown as JsKernel;
        return { t: js.t, state: js.state.map((s) => b64(s as Float32Array)) };
      }),
      baseline: this.baseline,
      rng: this.rng.state(),
    });
  }

  restore(state: string): void {
    const s = JSON.parse(state) as {
      weights: string[];
      adam: { t: number; state: string[] }[];
      baseline: number | null;
      rng: Parameters<typeof makeRng>[1];
    };
    const f32 = (b: string) => {
      const buf = Buffer.from(b, 'base64');
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    };
    s.weights.forEach((w, i) => {
      (this.weights[i] as Float32Array).set(f32(w));
    });
    this.vars.forEach((v, i) => {
      tf.tidy(() => v.assign(tf.tensor(this.weights[i] as Float32Array, v.shape)));
    });
    this.adam = this.makeAdam();
    s.adam.forEach((a, i) => {
      const js = this.adam[i] as unknown as JsKernel;
      js.t = a.t;
      a.state.forEach((st, k) => {
        (js.state[k] as Float32Array).set(f32(st));
      });
    });
    this.baseline = s.baseline;
    this.rng = makeRng('', s.rng);
  }

  dispose(): void {
    tf.dispose(this.vars);
  }
}

/** tf.oneHot, also for a vocabulary of one (tf refuses depth 1: a one-entry --space list). */
function oneHot(indices: Int32Array, depth: number): tf.Tensor2D {
  return depth === 1 ? tf.ones([indices.length, 1]) : (tf.oneHot(tf.tensor1d(indices, 'int32'), depth) as tf.Tensor2D);
}

function sample(probs: readonly number[], rng: () => number): number {
  let u = rng();
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i] as number;
    if (u < 0) return i;
  }
  // Rounding left a sliver: the last choice with any mass.
  for (let i = probs.length - 1; i >= 0; i--) if ((probs[i] as number) > 0) return i;
  return 0;
}
