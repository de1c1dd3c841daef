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
 * continue training a reloaded model. Rules with noise draw from the optimizer's seed; the
 * random stream itself is not part of the saved weights.
 */
import * as tf from '@tensorflow/tfjs';

/** A named tensor, as tfjs optimizers save and restore them. */
type NamedTensor = { name: string; tensor: tf.Tensor };
import { tfDirection } from '../dsl/compile/tf.js';
import { DrawSource } from '../dsl/draws.js';
import { bindParams, type CheckedRule, lookupRule } from '../dsl/index.js';
import { buildProgram, type Program } from '../dsl/interp.js';

export interface RuleOptimizerConfig {
  /** A built-in rule name or rule text. */
  readonly rule: string;
  readonly learningRate: number;
  /** Hyperparameters to override (the rule's defaults fill the rest). */
  readonly params?: Readonly<Record<string, number>>;
  /** Seed for rules with noise or dropout. */
  readonly seed?: number;
}

export class RuleConfigError extends Error {}

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
  private readonly slotNames: readonly string[];
  private slots: SlotVar[][] = [];
  private readonly draws: DrawSource;

  constructor(config: RuleOptimizerConfig) {
    super();
    const found = lookupRule(config.rule, '<optimizer rule>');
    if (!found.ok) throw new RuleConfigError(`invalid rule for RuleOptimizer:\n${found.message}`);
    if (!Number.isFinite(config.learningRate)) throw new RuleConfigError(`learningRate must be a finite number, got ${config.learningRate}`);
    this.rule = found.rule;
    this.learningRate = config.learningRate;
    this.params = { ...(config.params ?? {}) };
    this.seed = config.seed ?? 0;
    // Validates the hyperparameters (unknown names and non-finite values throw here).
    this.program = buildProgram(bindParams(this.rule, this.params));
    this.slotNames = this.program.slots.map((s, k) => `${s.node.prim.name}${k}`);
    this.draws = new DrawSource(this.seed);
  }

  /** Names of the per-variable slots, e.g. ['ema0', 'ema1']. */
  get slotNamesPerVariable(): readonly string[] {
    return this.slotNames;
  }

  override applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const names = Array.isArray(variableGradients) ? variableGradients.map((v) => v.name) : Object.keys(variableGradients);
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

  override async getWeights(): Promise<NamedTensor[]> {
    return [await this.saveIterations(), ...this.slots.flat().map((s) => ({ name: s.originalName, tensor: s.variable }))];
  }

  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    const per = this.program.slots.length;
    this.disposeSlots();
    if (per === 0) return;
    if (rest.length % per !== 0) throw new RuleConfigError(`expected a multiple of ${per} slot weights, got ${rest.length}`);
    for (let i = 0; i < rest.length / per; i++) {
      this.slots.push(rest.slice(i * per, (i + 1) * per).map((v) => ({ originalName: v.name, variable: v.tensor.variable(false) })));
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
    return new cls({ rule: String(config.rule), learningRate: Number(config.learningRate), params, seed: Number(config.seed ?? 0) });
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

/** A tfjs optimizer for a built-in rule name or rule text: `optimizer('powersign', { learningRate: 0.01 })`. */
export function optimizer(rule: string, options: Omit<RuleOptimizerConfig, 'rule'>): RuleOptimizer {
  return new RuleOptimizer({ rule, ...options });
}
