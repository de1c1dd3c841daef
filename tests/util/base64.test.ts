import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToBase64 } from '../../util/base64.js';

describe('base64 without Buffer', () => {
  it("gives Buffer's text for every length up to 300 bytes and for 100 kB, and reads it back", () => {
    const rng = seedrandom.alea('base64');
    const lengths = [...Array.from({ length: 301 }, (_, i) => i), 100_003];
    for (const n of lengths) {
      const bytes = Uint8Array.from({ length: n }, () => Math.floor(rng() * 256));
      const text = bytesToBase64(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64'));
      expect(base64ToBytes(text)).toEqual(bytes);
    }
  });

  it('float32 weights survive the round trip bit for bit (the RL checkpoint)', () => {
    const w = Float32Array.of(0, -0, 1.5, Number.MIN_VALUE, -3.4e38, Number.NaN, Number.POSITIVE_INFINITY);
    const back = new Float32Array(base64ToBytes(bytesToBase64(new Uint8Array(w.buffer))).buffer);
    expect(new Uint32Array(back.buffer)).toEqual(new Uint32Array(w.buffer));
  });

  it('refuses text that is not base64', () => {
    expect(() => base64ToBytes('not base64!')).toThrow();
  });
});
