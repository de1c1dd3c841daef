/**
 * Search strategies behind one interface: random search, regularized evolution (Real et al.;
 * Lion's search is of this kind) and the RL controller (controller/rl.ts). A strategy proposes
 * rules as choice lists, is told their rewards in proposal order, and saves/restores its whole
 * state (RNG included) as JSON, so a resumed search continues exactly.
 */
import seedrandom from 'seedrandom';
import type { AleaState, StatefulRng } from '../dsl/draws.js';
import { NOS_SPACE, type SearchSpace } from '../primitives/nos-space.js';
import { type Choices, randomChoices, ruleText } from './sample.js';

export interface Proposal {
  readonly choices: Choices;
  readonly text: string;
  /** Run index of the candidate this one was derived from (evolution), if any. */
  readonly parent: number | null;
}

export interface UpdateStats {
  readonly meanReward: number;
  readonly baseline: number | null;
  readonly entropy: number | null;
  /**
   * Set when this update found the strategy stuck on a plateau (its last batches' rewards all
   * equal: no signal to learn from) and flattened its policy by this factor to explore again.
   */
  readonly flattened?: number;
}

export interface Strategy {
  readonly name: string;
  propose(n: number): Proposal[];
  /**
   * Rewards for the last proposals, in order, with their run indices, and whether each was new
   * to the run (false: a cache hit, a rule it had already trained).
   */
  observe(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    indices: readonly number[],
    novel?: readonly boolean[],
  ): UpdateStats;
  /**
   * `propose` and `observe` in slices (optional; same results): generators that yield where the
   * work may pause, so that the search loop runs a long update a few ms at a time and finished
   * evaluations are not kept waiting for their next job.
   */
  proposing?(n: number): Generator<void, Proposal[], void>;
  observing?(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    indices: readonly number[],
    novel?: readonly boolean[],
  ): Generator<void, UpdateStats, void>;
  save(): string;
  restore(state: string): void;
}

export interface StrategyOptions {
  readonly seed: number;
  readonly groups: number;
  readonly space?: SearchSpace;
}

/** A seeded RNG whose state can be saved and restored exactly. */
export function makeRng(seed: string, state?: AleaState): StatefulRng {
  if (state !== undefined) {
    // A restored state comes from a run.db (untrusted): alea would take anything and draw NaN.
    const ok =
      typeof state === 'object' &&
      state !== null &&
      (['c', 's0', 's1', 's2'] as const).every((k) => typeof state[k] === 'number' && Number.isFinite(state[k]));
    if (!ok) throw new Error('its random generator state is not {c, s0, s1, s2} numbers');
  }
  return state ? seedrandom.alea('', { state }) : seedrandom.alea(seed, { state: true });
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

export class RandomSearch implements Strategy {
  readonly name = 'random';
  private rng: StatefulRng;
  private readonly space: SearchSpace;

  constructor(private readonly options: StrategyOptions) {
    this.space = options.space ?? NOS_SPACE;
    this.rng = makeRng(`random:${options.seed}`);
  }

  propose(n: number): Proposal[] {
    return Array.from({ length: n }, () => {
      const choices = randomChoices(this.rng, this.options.groups, this.space);
      return { choices, text: ruleText(choices, this.space), parent: null };
    });
  }

  observe(_p: readonly Proposal[], rewards: readonly number[], _indices?: readonly number[]): UpdateStats {
    return { meanReward: mean(rewards), baseline: null, entropy: null };
  }

  save(): string {
    return JSON.stringify({ rng: this.rng.state() });
  }

  restore(state: string): void {
    this.rng = makeRng('', (JSON.parse(state) as { rng: AleaState }).rng);
  }
}

/** Known rules as choice lists, for warm starts: PowerSign (two groups) and AddSign (three). */
export function knownChoices(space: SearchSpace = NOS_SPACE): Choices[] {
  const o = (id: string) => space.operands.findIndex((e) => e.id === id);
  const u = (id: string) => space.unary.findIndex((e) => e.id === id);
  const b = (id: string) => space.binary.findIndex((e) => e.id === id);
  const first = space.operands.length; // the first group's result
  type G = readonly [number, number, number, number, number];
  const signs: G = [o('sign-g'), o('sign-m'), u('id'), u('id'), b('mul')];
  const known: { groups: G[] }[] = [
    { groups: [signs, [first, o('g'), u('exp'), u('id'), b('mul')]] }, // exp(sign(g)*sign(m)) * g
    { groups: [signs, [o('one'), first, u('id'), u('id'), b('add')], [first + 1, o('g'), u('id'), u('id'), b('mul')]] }, // (1 + sign(g)*sign(m)) * g
  ];
  return known.filter((c) => c.groups.every((g) => g.every((x) => x >= 0)));
}

interface Member {
  choices: Choices;
  reward: number;
  index: number;
}

export interface EvolutionOptions extends StrategyOptions {
  readonly population?: number;
  readonly tournament?: number;
  /** Seed the population with known rules (PowerSign, AddSign). */
  readonly warmStart?: boolean;
}

/**
 * Regularized evolution: a fixed-size population in age order; each child is a mutation of
 * the best of a random tournament; the oldest member dies when a child joins. A child the run
 * already knew (a cache hit: the same rule, or one that acts the same on the screen's probes)
 * does not join: it is not a new individual, and letting copies in fills the population with
 * the best rule's clones, whose mutations are then mostly cache hits again (a long run measured
 * 89% cache hits after 5,700 samples, with only 305 rules trained; Lion's search likewise skips
 * functional duplicates).
 */
export class Evolution implements Strategy {
  readonly name = 'evolution';
  private rng: StatefulRng;
  private population: Member[] = [];
  private readonly space: SearchSpace;
  private readonly size: number;
  private readonly tournament: number;
  private warm: Choices[];

  constructor(private readonly options: EvolutionOptions) {
    this.space = options.space ?? NOS_SPACE;
    this.rng = makeRng(`evolution:${options.seed}`);
    this.size = options.population ?? 20;
    this.tournament = options.tournament ?? 5;
    this.warm = options.warmStart ? knownChoices(this.space).filter((c) => c.groups.length === options.groups) : [];
  }

  private mutate(c: Choices): Choices {
    const groups = c.groups.map((g) => [...g] as [number, number, number, number, number]);
    const gi = Math.floor(this.rng() * groups.length);
    const pos = Math.floor(this.rng() * 5);
    const g = groups[gi] as [number, number, number, number, number];
    const bound =
      pos < 2 ? this.space.operands.length + gi : pos < 4 ? this.space.unary.length : this.space.binary.length;
    let v = Math.floor(this.rng() * bound);
    if (v === g[pos] && bound > 1) v = (v + 1 + Math.floor(this.rng() * (bound - 1))) % bound;
    g[pos] = v;
    return { groups };
  }

  propose(n: number): Proposal[] {
    const out: Proposal[] = [];
    for (let i = 0; i < n; i++) {
      const warm = this.warm.shift();
      if (warm) {
        out.push({ choices: warm, text: ruleText(warm, this.space), parent: null });
        continue;
      }
      if (this.population.length < this.size) {
        const choices = randomChoices(this.rng, this.options.groups, this.space);
        out.push({ choices, text: ruleText(choices, this.space), parent: null });
        continue;
      }
      let best: Member | undefined;
      for (let k = 0; k < this.tournament; k++) {
        const m = this.population[Math.floor(this.rng() * this.population.length)] as Member;
        if (best === undefined || m.reward > best.reward) best = m;
      }
      const parent = best as Member;
      const choices = this.mutate(parent.choices);
      out.push({ choices, text: ruleText(choices, this.space), parent: parent.index });
    }
    return out;
  }

  observe(
    proposals: readonly Proposal[],
    rewards: readonly number[],
    indices: readonly number[],
    novel?: readonly boolean[],
  ): UpdateStats {
    proposals.forEach((p, i) => {
      if (novel !== undefined && novel[i] === false) return;
      this.population.push({ choices: p.choices, reward: rewards[i] as number, index: indices[i] as number });
      if (this.population.length > this.size) this.population.shift();
    });
    return { meanReward: mean(rewards), baseline: null, entropy: null };
  }

  save(): string {
    return JSON.stringify({ rng: this.rng.state(), population: this.population, warm: this.warm });
  }

  restore(state: string): void {
    const s = JSON.parse(state) as { rng: AleaState; population: Member[]; warm: Choices[] };
    this.rng = makeRng('', s.rng);
    this.population = s.population;
    this.warm = s.warm;
  }
}
