/**
 * The RNN controller of Bello et al. (2017): an LSTM that writes a rule as groups of five
 * choices (operand 1, operand 2, unary 1, unary 2, binary). Each choice is a softmax over its
 * vocabulary, masked so that a group can only use the base operands and earlier groups'
 * results; the choice is fed back, embedded, as the next input. Trained with REINFORCE:
 * a moving-average baseline, an entropy bonus, global-norm gradient clipping, and Adam —
 * nos's own fused Adam kernel on the controller's flattened weights, so the whole state
 * (weights, Adam moments, step, baseline, RNG) checkpoints and restores exactly.
 *
 * The network is small (32 hidden units, 10 steps), so its forward pass and its gradients
 * (backpropagation through time, written out below) run in plain JS in float64 over float32
 * weights: ~0.3 ms a sample to propose and learn from (one forward pass, then a forward and a
 * backward pass; the matrix loops keep four independent sums in registers: 0.41 -> 0.30 ms,
 * bit for bit the same), where tfjs ops cost ~10x that in per-op overhead (the loop's
 * controller time is what bounds how many workers one search keeps busy). tests/controller/rl-gradients.test.ts checks the pass and the gradients
 * against the tfjs formulation with autodiff (tests/helpers/rl-tfjs.ts).
 */
import { compileRule, type VectorKernel } from '../dsl/compile/index.js';
import type { JsKernel } from '../dsl/compile/js.js';
import { library } from '../dsl/index.js';
import { NOS_SPACE, type SearchSpace } from '../primitives/nos-space.js';
import { base64ToBytes, bytesToBase64 } from '../util/base64.js';
import { drain } from '../util/slices.js';
import type { Choices } from './sample.js';
import { ruleText } from './sample.js';
import { makeRng, type Proposal, type Strategy, type StrategyOptions, type UpdateStats } from './strategy.js';

export interface ControllerOptions extends StrategyOptions {
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
  /**
   * The plateau guard: after this many consecutive batches whose rewards (as the policy learns
   * from them) were all equal, the policy's logits are scaled by `plateauShrink` (towards
   * uniform). A batch of equal rewards carries no signal (REINFORCE's gradient is zero in
   * expectation whatever the baseline), so a policy that puts all its mass where every sample
   * scores the same (every sample rejected, or every sample the same known rule) never leaves
   * on its own: the long search's controller spent 29,000 samples on rejected constant rules
   * (docs/STUDIES.md#the-long-search). 0 turns the guard off.
   */
  readonly plateauBatches?: number;
  /** The factor the guard scales the policy's logits by, in (0, 1). */
  readonly plateauShrink?: number;
}

/** The default repeat penalty: in accuracy units, larger than the gaps between good rules. */
export const REPEAT_PENALTY = 0.05;

/**
 * The plateau guard's defaults: 5 batches in a row with no reward spread. In the long search's
 * first 1,041 batches such runs were at most 9 long, mostly 1 (51 runs) or 2 (15); the default
 * search (its first ~20 batches) has none longer than 1, so the guard leaves it as it was.
 */
export const PLATEAU_BATCHES = 5;
export const PLATEAU_SHRINK = 0.5;

/** The first weight array of the heads (weights and biases of the three kinds' heads follow). */
const HEADS_FROM = 4;

type G = readonly [number, number, number, number, number];

const KINDS = [0, 0, 1, 1, 2] as const; // operand, operand, unary, unary, binary

/** The logit a masked choice gets (as the tfjs formulation adds it): its probability is 0. */
const MASKED = -1e9;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** One pass of the policy over n samples: what was chosen, and its log-probabilities and entropy. */
export interface PolicyPass {
  readonly chosen: G[][];
  /** Log-probability of each sample's choices. */
  readonly logp: Float64Array;
  /** The choices' entropy, averaged over samples and steps. */
  readonly entropy: number;
}

/** The gradients of a REINFORCE loss: dL/dlogp per sample, and dL/d(each step's entropy), the same for all. */
export interface LossWeights {
  readonly dLogp: Float64Array;
  readonly dEntropy: number;
}

export class RlController implements Strategy {
  readonly name = 'rl';
  private readonly space: SearchSpace;
  private readonly groups: number;
  private readonly H: number;
  private readonly E: number;
  private readonly V: number;
  private readonly sizes: readonly [number, number, number]; // operand, unary, binary vocabularies
  private readonly offsets: readonly [number, number, number]; // token offsets per kind (0 = start token)
  private readonly shapes: readonly (readonly number[])[];
  private readonly weights: Float32Array[];
  private adam: VectorKernel[];
  private rng;
  private baseline: number | null = null;
  private readonly lr: number;
  private readonly beta: number;
  private readonly decay: number;
  private readonly clip: number;
  private readonly repeatPenalty: number;
  private readonly plateauBatches: number;
  private readonly plateauShrink: number;
  /** Consecutive batches with no reward spread so far (the plateau guard's count). */
  private flat = 0;

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
    this.plateauBatches = options.plateauBatches ?? PLATEAU_BATCHES;
    this.plateauShrink = options.plateauShrink ?? PLATEAU_SHRINK;
    if (!Number.isInteger(this.plateauBatches) || this.plateauBatches < 0)
      throw new RangeError(`plateauBatches must be a whole number >= 0, got ${this.plateauBatches}`);
    if (!(this.plateauShrink > 0 && this.plateauShrink < 1))
      throw new RangeError(`plateauShrink must be in (0, 1), got ${this.plateauShrink}`);
    const O = this.space.operands.length + this.groups - 1;
    this.sizes = [O, this.space.unary.length, this.space.binary.length];
    this.offsets = [1, 1 + O, 1 + O + this.sizes[1]];
    this.V = 1 + O + this.sizes[1] + this.sizes[2];
    const { H, E, V } = this;
    // Embedding; LSTM input, recurrent and bias weights (gates i, f, g, o); a head per kind.
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
    this.adam = this.makeAdam();
    this.rng = makeRng(`controller:${options.seed}`);
  }

  private makeAdam(): VectorKernel[] {
    const adam = compileRule(library().get('adam') as NonNullable<ReturnType<ReturnType<typeof library>['get']>>, {
      backend: 'js',
    });
    return this.weights.map((w) => adam.create(w.length));
  }

  /**
   * Run the policy over n samples, step by step (all samples' choices at a step before the next
   * step, so the RNG is drawn in that order). With `actions`, scores them; without, samples
   * them. With `loss`, also returns the gradient of the loss for every weight array.
   */
  private pass(
    n: number,
    actions?: readonly (readonly G[])[],
    loss?: LossWeights,
  ): PolicyPass & { grads?: Float64Array[] } {
    return drain(this.passing(n, actions, loss));
  }

  /** `pass`, in slices: it yields after each step of the forward pass and each sample of the backward. */
  private *passing(
    n: number,
    actions?: readonly (readonly G[])[],
    loss?: LossWeights,
  ): Generator<void, PolicyPass & { grads?: Float64Array[] }, void> {
    const { H, E } = this;
    const H4 = 4 * H;
    const steps = this.groups * 5;
    const [emb, wx, wh32, bias] = this.weights as [Float32Array, Float32Array, Float32Array, Float32Array];
    // The weights read in the inner loops, widened once (exactly) to float64: the products are
    // float64 either way, and reading float64 arrays is faster than converting each float32.
    const wh = Float64Array.from(wh32);
    const heads = [0, 1, 2].map((kind) => ({
      w: Float64Array.from(this.weights[4 + 2 * kind] as Float32Array),
      b: this.weights[5 + 2 * kind] as Float32Array,
      size: this.sizes[kind as 0 | 1 | 2],
    }));
    const maxK = Math.max(...this.sizes);
    // Per step and sample, what the backward pass needs.
    const keep = loss !== undefined;
    const tokens = new Int32Array((steps + 1) * n); // the input token of each step (step 0: the start token)
    const gates = keep ? new Float64Array(steps * n * H4) : new Float64Array(0); // i, f, g, o after their nonlinearities
    const cells = new Float64Array((steps + 1) * n * H); // c before each step (and after the last)
    const hiddens = new Float64Array((steps + 1) * n * H);
    const probs = keep ? new Float64Array(steps * n * maxK) : new Float64Array(0);
    const logps = keep ? new Float64Array(steps * n * maxK) : new Float64Array(0);
    const stepEntropy = keep ? new Float64Array(steps * n) : new Float64Array(0);
    const picked = new Int32Array(steps * n);
    const logp = new Float64Array(n);
    let entropySum = 0;
    const z = new Float64Array(H4);
    const inputs = new Float64Array(this.V * H4);
    const projected = new Uint8Array(this.V);
    const logits = new Float64Array(maxK);
    const p = new Float64Array(maxK);
    for (let s = 0; s < steps; s++) {
      const g = Math.floor(s / 5);
      const k = s % 5;
      const kind = KINDS[k as 0 | 1 | 2 | 3 | 4];
      const head = heads[kind] as { w: Float64Array; b: Float32Array; size: number };
      const K = head.size;
      const valid = kind === 0 ? Math.min(K, this.space.operands.length + g) : K;
      let stepEntropyMean = 0;
      for (let b = 0; b < n; b++) {
        const tok = tokens[s * n + b] as number;
        const hPrev = (s * n + b) * H;
        const hNext = ((s + 1) * n + b) * H;
        // z = bias + x Wx + h Wh, x the token's embedding row (bias + x Wx once per token and pass).
        const proj = tok * H4;
        if (projected[tok] === 0) {
          projected[tok] = 1;
          for (let j = 0; j < H4; j++) inputs[proj + j] = bias[j] as number;
          for (let e = 0; e < E; e++) {
            const x = emb[tok * E + e] as number;
            if (x === 0) continue;
            const row = e * H4;
            for (let j = 0; j < H4; j++) inputs[proj + j] = (inputs[proj + j] as number) + x * (wx[row + j] as number);
          }
        }
        // Each z[j] sums its terms in the same order (h ascending, zero inputs skipped) either way.
        // With no zero input (every step but the first), four j at a time in registers: four
        // independent sums, each in its own order, instead of one chain of dependent additions.
        let zeros = 0;
        for (let h = 0; h < H; h++) if ((hiddens[hPrev + h] as number) === 0) zeros++;
        if (zeros === 0 && H4 % 4 === 0) {
          for (let j = 0; j < H4; j += 4) {
            let a0 = inputs[proj + j] as number;
            let a1 = inputs[proj + j + 1] as number;
            let a2 = inputs[proj + j + 2] as number;
            let a3 = inputs[proj + j + 3] as number;
            for (let h = 0, row = j; h < H; h++, row += H4) {
              const x = hiddens[hPrev + h] as number;
              a0 += x * (wh[row] as number);
              a1 += x * (wh[row + 1] as number);
              a2 += x * (wh[row + 2] as number);
              a3 += x * (wh[row + 3] as number);
            }
            z[j] = a0;
            z[j + 1] = a1;
            z[j + 2] = a2;
            z[j + 3] = a3;
          }
        } else {
          for (let j = 0; j < H4; j++) z[j] = inputs[proj + j] as number;
          if (zeros < H)
            for (let h = 0; h < H; h++) {
              const x = hiddens[hPrev + h] as number;
              if (x === 0) continue;
              const row = h * H4;
              for (let j = 0; j < H4; j++) z[j] = (z[j] as number) + x * (wh[row + j] as number);
            }
        }
        const gBase = (s * n + b) * H4;
        for (let h = 0; h < H; h++) {
          const i = sigmoid(z[h] as number);
          const f = sigmoid(z[H + h] as number);
          const gg = Math.tanh(z[2 * H + h] as number);
          const o = sigmoid(z[3 * H + h] as number);
          const c = f * (cells[hPrev + h] as number) + i * gg;
          cells[hNext + h] = c;
          hiddens[hNext + h] = o * Math.tanh(c);
          if (keep) {
            gates[gBase + h] = i;
            gates[gBase + H + h] = f;
            gates[gBase + 2 * H + h] = gg;
            gates[gBase + 3 * H + h] = o;
          }
        }
        // The head's logits, masked, and their log-softmax.
        for (let c = 0; c < K; c++) logits[c] = head.b[c] as number;
        for (let h = 0; h < H; h++) {
          const x = hiddens[hNext + h] as number;
          const row = h * K;
          for (let c = 0; c < K; c++) logits[c] = (logits[c] as number) + x * (head.w[row + c] as number);
        }
        let max = Number.NEGATIVE_INFINITY;
        for (let c = 0; c < K; c++) {
          if (c >= valid) logits[c] = (logits[c] as number) + MASKED;
          if ((logits[c] as number) > max) max = logits[c] as number;
        }
        let sum = 0;
        for (let c = 0; c < K; c++) {
          const e = Math.exp((logits[c] as number) - max);
          p[c] = e;
          sum += e;
        }
        const lse = max + Math.log(sum);
        let ent = 0;
        for (let c = 0; c < K; c++) {
          p[c] = (p[c] as number) / sum;
          const lp = (logits[c] as number) - lse;
          // Masked choices have p = 0 and a finite lp: they add nothing.
          ent -= (p[c] as number) * lp;
          if (keep) {
            probs[(s * n + b) * maxK + c] = p[c] as number;
            logps[(s * n + b) * maxK + c] = lp;
          }
        }
        if (keep) stepEntropy[s * n + b] = ent;
        stepEntropyMean += ent;
        const pick = actions ? (((actions[b] as readonly G[])[g] as G)[k] as number) : sample(p, K, this.rng);
        if (!Number.isInteger(pick) || pick < 0 || pick >= K)
          throw new RangeError(`choice ${pick} of step ${s} is outside its vocabulary of ${K}`);
        picked[s * n + b] = pick;
        logp[b] = (logp[b] as number) + (logits[pick] as number) - lse;
        tokens[(s + 1) * n + b] = (this.offsets[kind] as number) + pick;
      }
      entropySum += stepEntropyMean / n;
      yield;
    }
    const chosen: G[][] = Array.from({ length: n }, (_, b) =>
      Array.from(
        { length: this.groups },
        (_g, g) => [0, 1, 2, 3, 4].map((k) => picked[(g * 5 + k) * n + b] as number) as unknown as G,
      ),
    );
    const entropy = entropySum / steps;
    if (!loss) return { chosen, logp, entropy };

    // Backpropagation through time, sample by sample, step by step from the last.
    const grads = this.shapes.map((shape) => new Float64Array(shape.reduce((a, b) => a * b, 1)));
    const [dEmb, dWx, dWh, dBias] = grads as [Float64Array, Float64Array, Float64Array, Float64Array];
    const dh = new Float64Array(H);
    const dc = new Float64Array(H);
    const dz = new Float64Array(H4);
    const dl = new Float64Array(maxK);
    const dInputs = new Float64Array(this.V * H4);
    for (let b = 0; b < n; b++) {
      dh.fill(0);
      dc.fill(0);
      const dLogp = loss.dLogp[b] as number;
      for (let s = steps - 1; s >= 0; s--) {
        const kind = KINDS[(s % 5) as 0 | 1 | 2 | 3 | 4];
        const head = heads[kind] as { w: Float64Array; b: Float32Array; size: number };
        const K = head.size;
        const hNext = ((s + 1) * n + b) * H;
        const hPrev = (s * n + b) * H;
        const at = (s * n + b) * maxK;
        const pick = picked[s * n + b] as number;
        const ent = stepEntropy[s * n + b] as number;
        // d logp / d logits = onehot - p; d entropy / d logits = -p (lp + entropy).
        for (let c = 0; c < K; c++) {
          const pc = probs[at + c] as number;
          dl[c] = dLogp * ((c === pick ? 1 : 0) - pc) - loss.dEntropy * pc * ((logps[at + c] as number) + ent);
        }
        const dW = grads[4 + 2 * kind] as Float64Array;
        const dB = grads[5 + 2 * kind] as Float64Array;
        for (let c = 0; c < K; c++) dB[c] = (dB[c] as number) + (dl[c] as number);
        for (let h = 0; h < H; h++) {
          const x = hiddens[hNext + h] as number;
          const row = h * K;
          let acc = 0;
          for (let c = 0; c < K; c++) {
            const d = dl[c] as number;
            dW[row + c] = (dW[row + c] as number) + x * d;
            acc += (head.w[row + c] as number) * d;
          }
          dh[h] = (dh[h] as number) + acc;
        }
        // Through the cell.
        const gBase = (s * n + b) * H4;
        for (let h = 0; h < H; h++) {
          const i = gates[gBase + h] as number;
          const f = gates[gBase + H + h] as number;
          const gg = gates[gBase + 2 * H + h] as number;
          const o = gates[gBase + 3 * H + h] as number;
          const tc = Math.tanh(cells[hNext + h] as number);
          const dH = dh[h] as number;
          const dC = (dc[h] as number) + dH * o * (1 - tc * tc);
          dz[h] = dC * gg * i * (1 - i);
          dz[H + h] = dC * (cells[hPrev + h] as number) * f * (1 - f);
          dz[2 * H + h] = dC * i * (1 - gg * gg);
          dz[3 * H + h] = dH * tc * o * (1 - o);
          dc[h] = dC * f;
        }
        // The input projection's gradient, summed per token (spread over bias, Wx and the embedding below).
        const proj = (tokens[s * n + b] as number) * H4;
        for (let j = 0; j < H4; j++) dInputs[proj + j] = (dInputs[proj + j] as number) + (dz[j] as number);
        // dWh += h_prev (outer) dz, and dh = Wh dz: four h at a time (four independent sums over
        // j, each in j order: the same results as one h at a time, faster).
        let h0 = 0;
        for (; h0 + 4 <= H; h0 += 4) {
          const x0 = hiddens[hPrev + h0] as number;
          const x1 = hiddens[hPrev + h0 + 1] as number;
          const x2 = hiddens[hPrev + h0 + 2] as number;
          const x3 = hiddens[hPrev + h0 + 3] as number;
          const r0 = h0 * H4;
          const r1 = r0 + H4;
          const r2 = r1 + H4;
          const r3 = r2 + H4;
          let a0 = 0;
          let a1 = 0;
          let a2 = 0;
          let a3 = 0;
          for (let j = 0; j < H4; j++) {
            const d = dz[j] as number;
            dWh[r0 + j] = (dWh[r0 + j] as number) + x0 * d;
            dWh[r1 + j] = (dWh[r1 + j] as number) + x1 * d;
            dWh[r2 + j] = (dWh[r2 + j] as number) + x2 * d;
            dWh[r3 + j] = (dWh[r3 + j] as number) + x3 * d;
            a0 += (wh[r0 + j] as number) * d;
            a1 += (wh[r1 + j] as number) * d;
            a2 += (wh[r2 + j] as number) * d;
            a3 += (wh[r3 + j] as number) * d;
          }
          dh[h0] = a0;
          dh[h0 + 1] = a1;
          dh[h0 + 2] = a2;
          dh[h0 + 3] = a3;
        }
        for (let h = h0; h < H; h++) {
          const x = hiddens[hPrev + h] as number;
          const row = h * H4;
          let acc = 0;
          for (let j = 0; j < H4; j++) {
            const d = dz[j] as number;
            dWh[row + j] = (dWh[row + j] as number) + x * d;
            acc += (wh[row + j] as number) * d;
          }
          dh[h] = acc;
        }
      }
      yield;
    }
    for (let tok = 0; tok < this.V; tok++) {
      if (projected[tok] === 0) continue;
      const proj = tok * H4;
      for (let j = 0; j < H4; j++) dBias[j] = (dBias[j] as number) + (dInputs[proj + j] as number);
      for (let e = 0; e < E; e++) {
        const x = emb[tok * E + e] as number;
        const row = e * H4;
        let acc = 0;
        for (let j = 0; j < H4; j++) {
          const d = dInputs[proj + j] as number;
          dWx[row + j] = (dWx[row + j] as number) + x * d;
          acc += (wx[row + j] as number) * d;
        }
        dEmb[tok * E + e] = (dEmb[tok * E + e] as number) + acc;
      }
    }
    return { chosen, logp, entropy, grads };
  }

  propose(n: number): Proposal[] {
    return drain(this.proposing(n));
  }

  *proposing(n: number): Generator<void, Proposal[], void> {
    const { chosen } = yield* this.passing(n);
    return chosen.map((groups) => {
      const choices: Choices = { groups };
      return { choices, text: ruleText(choices, this.space), parent: null };
    });
  }

  /** The policy's log-probability of each proposal (as the controller would write it). */
  logProb(proposals: readonly Proposal[]): number[] {
    return Array.from(
      this.pass(
        proposals.length,
        proposals.map((p) => p.choices.groups as G[]),
      ).logp,
    );
  }

  /**
   * The REINFORCE loss's gradients for given proposals and advantages, without updating
   * anything: L = -mean(advantage * logp) - entropyWeight * entropy.
   */
  lossGradients(
    proposals: readonly Proposal[],
    advantages: readonly number[],
  ): { grads: Float64Array[]; entropy: number; logp: Float64Array } {
    return drain(this.lossGradientsSteps(proposals, advantages));
  }

  private *lossGradientsSteps(
    proposals: readonly Proposal[],
    advantages: readonly number[],
  ): Generator<void, { grads: Float64Array[]; entropy: number; logp: Float64Array }, void> {
    const n = proposals.length;
    const steps = this.groups * 5;
    const r = yield* this.passing(
      n,
      proposals.map((p) => p.choices.groups as G[]),
      {
        dLogp: Float64Array.from(advantages, (a) => -a / Math.max(1, n)),
        dEntropy: -this.beta / (steps * Math.max(1, n)),
      },
    );
    return { grads: r.grads as Float64Array[], entropy: r.entropy, logp: r.logp };
  }

  observe(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    indices?: readonly number[],
    novel?: readonly boolean[],
  ): UpdateStats {
    return drain(this.observing(proposals, rewards, indices, novel));
  }

  *observing(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    _indices?: readonly number[],
    novel?: readonly boolean[],
  ): Generator<void, UpdateStats, void> {
    const meanReward = rewards.reduce((a, b) => a + b, 0) / Math.max(1, rewards.length);
    // What the policy learns from: the reward, less the repeat penalty for rules already known.
    const shaped = rewards.map((r, i) => (novel !== undefined && novel[i] === false ? r - this.repeatPenalty : r));
    const shapedMean = shaped.reduce((a, b) => a + b, 0) / Math.max(1, shaped.length);
    const baseline = this.baseline ?? shapedMean;
    const advantages = shaped.map((r) => r - baseline);
    const { grads: g64, entropy } = yield* this.lossGradientsSteps(proposals, advantages);
    const grads = g64.map((g) => Float32Array.from(g));
    // Clip by global norm, then one Adam step per weight array.
    const norm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));
    const scale = norm > this.clip ? this.clip / norm : 1;
    grads.forEach((g, i) => {
      if (scale !== 1) for (let k = 0; k < g.length; k++) g[k] = (g[k] as number) * scale;
      this.adam[i]?.step(this.weights[i] as Float32Array, g, this.lr);
    });
    this.baseline = this.baseline === null ? shapedMean : this.decay * this.baseline + (1 - this.decay) * shapedMean;
    // The plateau guard: no spread in this batch's shaped rewards -> one more flat batch.
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const r of shaped) {
      if (r < lo) lo = r;
      if (r > hi) hi = r;
    }
    this.flat = this.plateauBatches > 0 && shaped.length > 0 && hi - lo <= 1e-12 ? this.flat + 1 : 0;
    if (this.plateauBatches > 0 && this.flat >= this.plateauBatches) {
      this.flat = 0;
      // Every head's logits are h W + b: scaling W and b scales them, the LSTM is untouched.
      for (let i = HEADS_FROM; i < this.weights.length; i++) {
        const w = this.weights[i] as Float32Array;
        for (let k = 0; k < w.length; k++) w[k] = (w[k] as number) * this.plateauShrink;
      }
      return { meanReward, baseline, entropy, flattened: this.plateauShrink };
    }
    return { meanReward, baseline, entropy };
  }

  save(): string {
    const b64 = (a: Float32Array) => bytesToBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return JSON.stringify({
      weights: this.weights.map(b64),
      adam: this.adam.map((k) => {
        const js = k as unknown as JsKernel;
        return { t: js.t, state: js.state.map((s) => b64(s as Float32Array)) };
      }),
      baseline: this.baseline,
      rng: this.rng.state(),
      flat: this.flat,
    });
  }

  restore(state: string): void {
    const s = JSON.parse(state) as {
      weights: string[];
      adam: { t: number; state: string[] }[];
      baseline: number | null;
      rng: Parameters<typeof makeRng>[1];
      /** Absent in checkpoints written before the plateau guard: none counted. */
      flat?: number;
    };
    const f32 = (b: string) => new Float32Array(base64ToBytes(b).buffer);
    s.weights.forEach((w, i) => {
      (this.weights[i] as Float32Array).set(f32(w));
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
    this.flat = typeof s.flat === 'number' && Number.isInteger(s.flat) && s.flat >= 0 ? s.flat : 0;
    this.rng = makeRng('', s.rng);
  }

  /** Nothing to free (the controller holds plain arrays); kept for callers that dispose strategies. */
  dispose(): void {}
}

function sample(probs: Float64Array, size: number, rng: () => number): number {
  let u = rng();
  for (let i = 0; i < size; i++) {
    u -= probs[i] as number;
    if (u < 0) return i;
  }
  // Rounding left a sliver: the last choice with any mass.
  for (let i = size - 1; i >= 0; i--) if ((probs[i] as number) > 0) return i;
  return 0;
}
