/**
 * Seeded random draws for stochastic primitives (noise, anoise, drop). Every back end takes
 * its draws from this one source, in the same order (per step: occurrence, then element),
 * so a rule with noise gives the same trajectory everywhere for a given seed.
 */
import seedrandom from 'seedrandom';

/** The generator's state (alea's four numbers), to save and restore mid-stream. */
/**
 * The Alea generator's state (declared here rather than taken from @types/seedrandom, a dev
 * dependency: the package's public declarations must not need it).
 */
export interface AleaState {
  readonly c: number;
  readonly s0: number;
  readonly s1: number;
  readonly s2: number;
}

/** A seeded RNG in [0, 1) whose state can be saved and restored exactly. */
export interface StatefulRng {
  (): number;
  state(): AleaState;
}

export type DrawState = AleaState;

export class DrawSource {
  private rng: StatefulRng;

  constructor(readonly seed: number) {
    this.rng = seedrandom.alea(`nos:${seed}`, { state: true });
  }

  /** Where the stream is now: `restore` of it continues with the same draws. */
  state(): DrawState {
    return this.rng.state();
  }

  restore(state: DrawState): void {
    this.rng = seedrandom.alea(`nos:${this.seed}`, { state: { ...state } });
  }

  /** Fill with independent standard normal (Box-Muller) or uniform [0, 1) draws. */
  fill(kind: 'normal' | 'uniform', out: Float64Array | Float32Array): void {
    const rng = this.rng;
    if (kind === 'uniform') {
      for (let i = 0; i < out.length; i++) out[i] = rng();
      return;
    }
    for (let i = 0; i < out.length; i++) {
      const u1 = 1 - rng();
      const u2 = rng();
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
  }
}
