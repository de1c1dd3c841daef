/**
 * `RuleOptimizer`: any update rule as a tfjs `Optimizer`, for tfjs layers models or custom
 * training loops. Built from rule text + hyperparameters + learning rate; the rule text is
 * what its config carries, so a saved model reloads it on any tfjs backend.
 *
 *   const opt = optimizer('powersign', { learningRate: 0.01 });
 *   model.compile({ optimizer: opt, loss: 'categoricalCrossentropy' });
 *
 * Per trainable variable it keeps one slot variable per stateful subexpression of the rule,
 * named `${variable}/${slot}` (e.g. `dense_Dense1/kernel/ema0`). Slots are matched to
 * variables by order, as tfjs's own optimizers do, so weights restored with `setWeights`
 * continue training a reloaded model. Rules with noise or dropout draw from a stream seeded
 * by `seed`; its position is saved with the weights (`nos/draws`), so a reloaded model draws
 * what the uninterrupted one would have.
 *
 * Loading a saved model needs the class registered: `import 'nos'` (or anything from it)
 * before `tf.loadLayersModel`.
 */
import * as tf from '@tensorflow/tfjs';

/** A named tensor, as tfjs optimizers save and restore them. */
type NamedTensor = { name: string; tensor: tf.Tensor };
import { tfDirection } from '../dsl/compile/tf.js';
import { DrawSource, type DrawState } from '../dsl/draws.js';
import { type CheckedRule, lookupRule } from '../dsl/index.js';
import { lowerRule, paramValues, type Program } from '../dsl/lower.js';

/** The learning rate when none is given: 0.001, the usual Adam default (as in tfjs, Keras and PyTorch). */
export const DEFAULT_LEARNING_RATE = 0.001;

export interface RuleOptimizerConfig {
  /** A built-in rule name or rule text. */
  readonly rule: string;
  /** `w <- w - learningRate * d_t`; default `DEFAULT_LEARNING_RATE` (0.001). */
  readonly learningRate?: number;
  /** Hyperparameters to override (the rule's defaults fill the rest). */
  readonly params?: Readonly<Record<string, number>>;
  /**
   * Decay steps `T` for rules that decay (`lindecay(T)`, `ld`, `cd`, `rd`, `powersign-ld`...):
   * the number of training steps the decay spans, usually the whole run. Such a rule needs it
   * (here or as `params.T`); rules without `T` ignore it.
   */
  readonly decaySteps?: number;
  /** Seed for rules with noise or dropout (default 0). */
  readonly seed?: number;
}

/** A RuleOptimizer's configuration is invalid: bad rule text, learning rate, decay steps or saved weights. */
export class RuleConfigError extends Error {
  override readonly name = 'RuleConfigError';
}

/** The name of the saved weight holding the noise/dropout stream's position. */
const DRAWS_WEIGHT = 'nos/draws';
const TWO32 = 2 ** 32;

/** Decay steps: `decaySteps` or `params.T`, required (and only used) when the rule reads T. */
function resolveDecaySteps(
  rule: CheckedRule,
  params: Readonly<Record<string, number>>,
  decaySteps: number | undefined,
): Record<string, number> {
  const out = { ...params };
  if (decaySteps !== undefined && !(Number.isFinite(decaySteps) && decaySteps > 0)) {
    throw new RuleConfigError(`decaySteps must be a positive number, got ${decaySteps}`);
  }
  if (!rule.params.some((p) => p.name === 'T')) return out;
  if (decaySteps !== undefined) {
    if (out.T !== undefined && out.T !== decaySteps)
      throw new RuleConfigError(`decaySteps (${decaySteps}) and params.T (${out.T}) disagree; give one`);
    out.T = decaySteps;
  }
  if (out.T === undefined) {
    throw new RuleConfigError(
      `rule '${rule.name ?? rule.canonical}' decays over T steps: pass decaySteps (the number of training steps the decay spans), e.g. optimizer(rule, { decaySteps: 10000 })`,
    );
  }
  return out;
}

interface SlotVar {
  originalName: string;
  variable: tf.Variable;
}

export class RuleOptimizer extends tf.Optimizer {
  static get className(): string {
    return 'RuleOptimizer';
  }

  readonly rule: CheckedRule;
  readonly learningRate: number;
  readonly params: Readonly<Record<string, number>>;
  readonly seed: number;
  private readonly program: Program;
  private readonly values: Float64Array;
  private readonly slotNames: readonly string[];
  private slots: SlotVar[][] = [];
  private readonly draws: DrawSource;

  constructor(config: RuleOptimizerConfig) {
    super();
    const found = lookupRule(config.rule, '<optimizer rule>');
    if (!found.ok) throw new RuleConfigError(`invalid rule for RuleOptimizer:\n${found.message}`);
    const learningRate = config.learningRate ?? DEFAULT_LEARNING_RATE;
    // As torch.optim: a negative rate would climb the loss (a saved config is input like any other).
    if (typeof learningRate !== 'number' || !Number.isFinite(learningRate) || learningRate < 0)
      throw new RuleConfigError(`learningRate must be a finite number >= 0, got ${String(learningRate)}`);
    const seed = config.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0)
      throw new RuleConfigError(`seed must be an integer from 0 to 2^53-1, got ${String(seed)}`);
    this.rule = found.rule;
    this.learningRate = learningRate;
    this.params = resolveDecaySteps(found.rule, config.params ?? {}, config.decaySteps);
    this.seed = seed;
    // Validates the hyperparameters (unknown names and non-finite values throw here).
    this.values = paramValues(this.rule, this.params);
    this.program = lowerRule(this.rule);
    this.slotNames = this.program.slots.map((s) => s.name);
    this.draws = new DrawSource(this.seed);
  }

  /** Names of the per-variable slots, e.g. ['ema0', 'ema1']. */
  get slotNamesPerVariable(): readonly string[] {
    return this.slotNames;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((v) => v.name)
      : Object.keys(variableGradients);
    const t = this.iterations + 1;
    const lr = this.learningRate;
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      const grad = Array.isArray(variableGradients) ? variableGradients[i]?.tensor : variableGradients[name];
      if (value === undefined || grad == null) return;
      if (this.slots[i] === undefined) {
        this.slots[i] = this.program.slots.map((s, k) => ({
          originalName: `${name}/${this.slotNames[k]}`,
          variable: tf.tidy(() => tf.fill(value.shape, s.init).variable(false)),
        }));
      }
      const slots = this.slots[i] as SlotVar[];
      const draws = this.program.draws.map((kind) => {
        const buf = new Float64Array(value.size);
        this.draws.fill(kind, buf);
        return buf;
      });
      tf.tidy(() => {
        const r = tfDirection(this.program, {
          w: value,
          g: grad,
          t,
          params: this.values,
          state: slots.map((s) => s.variable),
          draws: draws.map((b) => tf.tensor(Float32Array.from(b), value.shape)),
        });
        const next = tf.sub(value, tf.mul(lr, r.d));
        slots.forEach((s, k) => {
          s.variable.assign(r.state[k] as tf.Tensor);
        });
        value.assign(next);
      });
    });
    this.incrementIterations();
  }

  /** The slots by variable; for rules with noise or dropout, the draw stream's position last (`nos/draws`, int32). */
  override async getWeights(): Promise<NamedTensor[]> {
    const weights = [
      await this.saveIterations(),
      ...this.slots.flat().map((s) => ({ name: s.originalName, tensor: s.variable as tf.Tensor })),
    ];
    if (this.program.draws.length > 0) {
      // alea's state: an integer carry and three multiples of 2^-32 in [0, 1), exact as int32 bit patterns.
      const st = this.draws.state();
      weights.push({
        name: DRAWS_WEIGHT,
        tensor: tf.tensor1d(
          [st.c, st.s0 * TWO32, st.s1 * TWO32, st.s2 * TWO32].map((x) => x | 0),
          'int32',
        ),
      });
    }
    return weights;
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const draws = weightValues.find((w) => w.name === DRAWS_WEIGHT);
    const rest = (await this.extractIterations(weightValues.filter((w) => w !== draws))) as NamedTensor[];
    if (draws !== undefined) this.restoreDraws(draws.tensor);
    const per = this.program.slots.length;
    this.disposeSlots();
    if (per === 0) return;
    if (rest.length % per !== 0)
      throw new RuleConfigError(`expected a multiple of ${per} slot weights, got ${rest.length}`);
    for (let i = 0; i < rest.length / per; i++) {
      this.slots.push(
        rest.slice(i * per, (i + 1) * per).map((v) => ({ originalName: v.name, variable: v.tensor.variable(false) })),
      );
    }
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { rule: this.rule.canonical, learningRate: this.learningRate, params: { ...this.params }, seed: this.seed };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    const params = (config.params ?? {}) as Record<string, number>;
    const learningRate = config.learningRate === undefined ? undefined : Number(config.learningRate);
    return new cls({ rule: String(config.rule), learningRate, params, seed: Number(config.seed ?? 0) });
  }

  private restoreDraws(t: tf.Tensor): void {
    if (t.size !== 4) throw new RuleConfigError(`'${DRAWS_WEIGHT}' must hold 4 numbers, got ${t.size}`);
    const [c, s0, s1, s2] = Array.from(t.dataSync(), (x) => x >>> 0) as [number, number, number, number];
    const state: DrawState = { c, s0: s0 / TWO32, s1: s1 / TWO32, s2: s2 / TWO32 };
    this.draws.restore(state);
  }

  private disposeSlots(): void {
    for (const s of this.slots.flat()) s.variable.dispose();
    this.slots = [];
  }

  override dispose(): void {
    super.dispose();
    this.disposeSlots();
  }
}

tf.serialization.registerClass(RuleOptimizer);

/**
 * A tfjs optimizer for a built-in rule name or rule text: `optimizer('powersign', { learningRate: 0.01 })`.
 * Options default to learning rate 0.001 and seed 0; rules that decay need `decaySteps`.
 */
export function optimizer(rule: string, options: Omit<RuleOptimizerConfig, 'rule'> = {}): RuleOptimizer {
  return new RuleOptimizer({ rule, ...options });
}
