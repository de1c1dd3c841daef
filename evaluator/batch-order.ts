import seedrandom from 'seedrandom';

/** Seeded order of training examples: a fresh shuffle per epoch. */
export class BatchOrder {
  private order: Int32Array;
  private pos = 0;
  private readonly rng: seedrandom.PRNG;

  constructor(
    private readonly n: number,
    seed: number,
  ) {
    this.rng = seedrandom.alea(`data:${seed}`);
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.shuffle();
  }

  private shuffle(): void {
    for (let i = this.n - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      const t = this.order[i] as number;
      this.order[i] = this.order[j] as number;
      this.order[j] = t;
    }
    this.pos = 0;
  }

  next(size: number): Int32Array {
    if (this.pos + size > this.n) this.shuffle();
    const out = this.order.subarray(this.pos, this.pos + size);
    this.pos += size;
    return out;
  }
}
