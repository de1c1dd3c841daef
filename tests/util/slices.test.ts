import { describe, expect, it } from 'vitest';
import { drain, drive, messageYield } from '../../util/slices.js';

/** A computation of `pieces` pieces of about `ms` ms of busy work each, pausing after each. */
function* busy(pieces: number, ms: number, log: string[]): Generator<void, number, void> {
  for (let i = 0; i < pieces; i++) {
    const end = performance.now() + ms;
    let spins = 0;
    while (performance.now() < end) spins++;
    log.push(`piece ${i}: ${spins > 0 ? 'busy' : 'idle'}`);
    yield;
  }
  log.push('done');
  return pieces;
}

describe('computations in slices', () => {
  it('drain runs to the end at once: no other event gets in', async () => {
    const log: string[] = [];
    setTimeout(() => log.push('timer'), 0);
    expect(drain(busy(10, 2, log))).toBe(10);
    await new Promise((r) => setTimeout(r, 5));
    expect(log.indexOf('timer')).toBe(log.length - 1);
  });

  it('drive gives the same result and lets a timer run between slices', async () => {
    const log: string[] = [];
    setTimeout(() => log.push('timer'), 0);
    expect(await drive(busy(10, 2, log), 3)).toBe(10);
    const at = log.indexOf('timer');
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(log.indexOf('done'));
  });

  it('an error inside the computation rejects the drive', async () => {
    function* failing(): Generator<void, number, void> {
      yield;
      throw new RangeError('bad choice');
    }
    await expect(drive(failing(), 0)).rejects.toThrow('bad choice');
    expect(() => drain(failing())).toThrow('bad choice');
  });

  it("a browser's yield (a MessageChannel) lets a pending timer run first, and comes back in order", async () => {
    const yieldOnce = messageYield();
    const log: string[] = [];
    setTimeout(() => log.push('timer'), 0);
    await new Promise((r) => setTimeout(r, 2));
    for (let i = 0; i < 3; i++) {
      await yieldOnce();
      log.push(`yield ${i}`);
    }
    expect(log).toEqual(['timer', 'yield 0', 'yield 1', 'yield 2']);
  });
});
