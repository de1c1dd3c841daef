import { createHash } from 'node:crypto';
import seedrandom from 'seedrandom';
import { describe, expect, it } from 'vitest';
import { sha256, sha256Hex } from '../../dsl/sha256.js';

const node = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A random string of code points from ASCII, Latin-1, CJK, astral planes and lone surrogates. */
function randomText(rng: () => number, length: number): string {
  const ranges: [number, number][] = [
    [0x20, 0x7e],
    [0x00, 0x1f],
    [0xa0, 0x7ff],
    [0x4e00, 0x9fff],
    [0x1f300, 0x1faff],
    [0x10000, 0x10ffff],
    [0xd800, 0xdfff], // lone surrogates: both sides encode them as U+FFFD
  ];
  let s = '';
  for (let i = 0; i < length; i++) {
    const [lo, hi] = ranges[Math.floor(rng() * ranges.length)] as [number, number];
    const cp = lo + Math.floor(rng() * (hi - lo + 1));
    s += cp >= 0xd800 && cp <= 0xdfff ? String.fromCharCode(cp) : String.fromCodePoint(cp);
  }
  return s;
}

describe('sha256', () => {
  it('matches the FIPS 180-4 examples', () => {
    expect(sha256Hex('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')).toBe(
      '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
    );
  });

  it('equals node:crypto on 2,000 random strings (ASCII, multi-byte UTF-8, astral, lone surrogates) of every length around the block edges', () => {
    const rng = seedrandom.alea('sha256');
    for (let n = 0; n < 2000; n++) {
      const length = n < 200 ? n : Math.floor(rng() * 300);
      const text =
        n % 3 === 0
          ? Array.from({ length }, () => String.fromCharCode(32 + Math.floor(rng() * 95))).join('')
          : randomText(rng, length);
      expect(sha256Hex(text), JSON.stringify(text)).toBe(node(text));
    }
  });

  it('equals node:crypto on random bytes, including lengths of 55, 56, 63, 64 and 65 (padding edges) and 100 kB', () => {
    const rng = seedrandom.alea('bytes');
    for (const length of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 100_000]) {
      const bytes = Uint8Array.from({ length }, () => Math.floor(rng() * 256));
      expect(Buffer.from(sha256(bytes)).toString('hex')).toBe(node(bytes));
    }
  });

  it('gives rule hashes unchanged: hashText is the first 16 hex digits', async () => {
    const { hashText } = await import('../../dsl/ir.js');
    for (const text of ['exp(sign(ema(g, 0.9)) * sign(g)) * g', 'g', 'rule x(a = 1) = a * g']) {
      expect(hashText(text)).toBe(node(text).slice(0, 16));
    }
  });
});
