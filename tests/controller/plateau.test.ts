/**
 * The RL controller's plateau guard (controller/rl.ts): a policy whose samples all score the same
 * gets no signal from REINFORCE (the gradient is zero in expectation whatever the baseline), so
 * one that has put its mass where everything is rejected stays there. The long search's
 * controller did (29,000 samples of rejected constant rules); the guard flattens the policy
 * after PLATEAU_BATCHES batches in a row with no reward spread.
 */
import { describe, expect, it } from 'vitest';
import { PLATEAU_BATCHES, RlController } from '../../controller/rl.js';
import type { Proposal, UpdateStats } from '../../controller/strategy.js';

/** The choices of a target rule, as the controller would write it. */
const TARGET = [
  [0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0],
] as const;

function similarity(p: Proposal): number {
  let same = 0;
  p.choices.groups.forEach((g, i) => {
    g.forEach((x, k) => {
      if (TARGET[i]?.[k] === x) same++;
    });
  });
  return same / 10;
}

/** A controller driven to near certainty on TARGET's choices: the start of a trap. */
function collapsed(options: { plateauBatches?: number } = {}): RlController {
  const c = new RlController({ seed: 3, groups: 2, learningRate: 0.05, entropyWeight: 0, plateauBatches: 0 });
  for (let b = 0; b < 60; b++) {
    const ps = c.propose(32);
    // Rewards that sharpen the policy on TARGET (all-or-nothing near the end).
    c.observe(
      ps,
      ps.map((p) => similarity(p) ** 4),
    );
  }
  const trapped = new RlController({ seed: 3, groups: 2, learningRate: 0.01, ...options });
  trapped.restore(c.save());
  return trapped;
}

/** Batches where every sample scores 0 (as if the screen rejected them all). */
function zeroes(c: RlController, batches: number): { stats: UpdateStats[]; texts: Set<string> } {
  const stats: UpdateStats[] = [];
  const texts = new Set<string>();
  for (let b = 0; b < batches; b++) {
    const ps = c.propose(10);
    for (const p of ps) if (b >= batches - 5) texts.add(p.text);
    stats.push(
      c.observe(
        ps,
        ps.map(() => 0),
        undefined,
        ps.map(() => true),
      ),
    );
  }
  return { stats, texts };
}

describe('the RL controller on a reward plateau', () => {
  it('without the guard, a collapsed policy stays collapsed under equal rewards; with it, it explores again', () => {
    const off = collapsed({ plateauBatches: 0 });
    const on = collapsed();
    const start = off.propose(1)[0] as Proposal;
    expect(on.propose(1)[0]?.text).toBe(start.text); // the same state
    const a = zeroes(off, 30);
    const b = zeroes(on, 30);
    const entropy = (s: UpdateStats[]) => s.map((x) => x.entropy as number);
    // Off: never flattened; the entropy stays low (the entropy bonus alone barely moves it).
    expect(a.stats.some((s) => s.flattened !== undefined)).toBe(false);
    expect(Math.max(...entropy(a.stats))).toBeLessThan(0.05);
    expect(a.texts.size).toBeLessThanOrEqual(2);
    // On: flattened every PLATEAU_BATCHES batches, and the policy spreads out.
    const flattenedAt = b.stats.flatMap((s, i) => (s.flattened === undefined ? [] : [i + 1]));
    expect(flattenedAt.slice(0, 2)).toEqual([PLATEAU_BATCHES, 2 * PLATEAU_BATCHES]);
    expect(b.stats[PLATEAU_BATCHES - 1]?.flattened).toBe(0.5);
    expect((b.stats[0] as UpdateStats).entropy as number).toBeLessThan(0.05);
    expect((b.stats.at(-1) as UpdateStats).entropy as number).toBeGreaterThan(1);
    expect(b.texts.size).toBeGreaterThanOrEqual(20); // of the last 50 samples
  });

  it('counts only consecutive batches: one with spread starts the count again', () => {
    const c = new RlController({ seed: 4, groups: 2 });
    const flat = () => c.observe(c.propose(4), [0, 0, 0, 0]);
    const spread = () => c.observe(c.propose(4), [0, 1, 0, 0]);
    for (let i = 0; i < PLATEAU_BATCHES - 1; i++) expect(flat().flattened).toBeUndefined();
    expect(spread().flattened).toBeUndefined();
    for (let i = 0; i < PLATEAU_BATCHES - 1; i++) expect(flat().flattened).toBeUndefined();
    expect(flat().flattened).toBe(0.5);
    // A batch of one known rule, sampled again and again, is a plateau too (shaped rewards equal).
    const known = c.propose(1)[0] as Proposal;
    let last: UpdateStats | undefined;
    for (let i = 0; i < PLATEAU_BATCHES; i++)
      last = c.observe([known, known, known], [1.2, 1.2, 1.2], undefined, [false, false, false]);
    expect(last?.flattened).toBe(0.5);
  });

  it('flattening scales every logit: log-probabilities move towards uniform, choices keep their order', () => {
    const c = collapsed();
    const ps = c.propose(6);
    const copy = new RlController({ seed: 3, groups: 2, learningRate: 0.01, plateauBatches: 1 });
    copy.restore(c.save());
    const before = copy.logProb(ps);
    // learningRate 0 isolates the guard from the Adam step.
    const still = new RlController({ seed: 3, groups: 2, learningRate: 0, plateauBatches: 1, plateauShrink: 0.5 });
    still.restore(c.save());
    expect(still.logProb(ps)).toEqual(before);
    expect(
      still.observe(
        ps,
        ps.map(() => 0),
      ).flattened,
    ).toBe(0.5);
    const after = still.logProb(ps);
    // The most likely samples lose probability (all of them are near the mode of a sharp policy).
    expect(after.reduce((a, b) => a + b, 0)).toBeLessThan(before.reduce((a, b) => a + b, 0));
  });

  it('the count survives save/restore; checkpoints from before the guard restore with none counted', () => {
    const a = new RlController({ seed: 6, groups: 2 });
    const b = new RlController({ seed: 6, groups: 2 });
    for (let i = 0; i < PLATEAU_BATCHES - 1; i++) {
      a.observe(a.propose(3), [0, 0, 0]);
      b.observe(b.propose(3), [0, 0, 0]);
    }
    const resumed = new RlController({ seed: 99, groups: 2 });
    resumed.restore(a.save());
    expect(resumed.save()).toBe(a.save());
    expect(resumed.observe(resumed.propose(3), [0, 0, 0]).flattened).toBe(0.5);
    expect(b.observe(b.propose(3), [0, 0, 0]).flattened).toBe(0.5);
    expect(resumed.save()).toBe(b.save());
    // An old checkpoint: no `flat` field.
    const old = JSON.parse(a.save()) as Record<string, unknown>;
    delete old.flat;
    const fromOld = new RlController({ seed: 6, groups: 2 });
    fromOld.restore(JSON.stringify(old));
    expect(fromOld.observe(fromOld.propose(3), [0, 0, 0]).flattened).toBeUndefined();
  });

  it('rejects guard settings out of range', () => {
    expect(() => new RlController({ seed: 1, groups: 2, plateauShrink: 1 })).toThrow(/plateauShrink/);
    expect(() => new RlController({ seed: 1, groups: 2, plateauShrink: 0 })).toThrow(/plateauShrink/);
    expect(() => new RlController({ seed: 1, groups: 2, plateauBatches: -1 })).toThrow(/plateauBatches/);
    expect(() => new RlController({ seed: 1, groups: 2, plateauBatches: 1.5 })).toThrow(/plateauBatches/);
  });
});
