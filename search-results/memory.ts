/**
 * A results store in memory: the `ResultsStore` interface without a file, for searches that keep
 * nothing (the in-browser search page) and for tests. No Node built-ins.
 */
import type { Candidate, ResultsStore, StoredConfig, StrategyCheckpoint } from './store.js';

export class MemoryStore<C extends StoredConfig = StoredConfig> implements ResultsStore<C> {
  private readonly rows = new Map<number, Candidate>();
  private readonly hashes = new Map<string, Candidate>();
  private readonly prints = new Map<string, Candidate>();
  private readonly saved: StrategyCheckpoint[] = [];

  constructor(readonly config: C) {}

  candidates(): Candidate[] {
    return [...this.rows.values()].sort((a, b) => a.index - b.index);
  }

  /** The first candidate with this hash that is not a cache hit (as SqliteStore answers). */
  byHash(hash: string): Candidate | undefined {
    return this.hashes.get(hash);
  }

  /** The first candidate with this fingerprint that was neither a cache hit nor rejected. */
  byFingerprint(fingerprint: string): Candidate | undefined {
    return this.prints.get(fingerprint);
  }

  add(c: Candidate): void {
    this.rows.set(c.index, c);
    // Keep the earliest sample of each hash and fingerprint, whatever order they are added in.
    const first = (map: Map<string, Candidate>, key: string) => {
      const known = map.get(key);
      if (known === undefined || c.index < known.index) map.set(key, c);
    };
    if (c.status !== 'cached') first(this.hashes, c.hash);
    if (c.fingerprint !== null && c.status !== 'cached' && c.status !== 'rejected') first(this.prints, c.fingerprint);
  }

  saveCheckpoint(checkpoint: StrategyCheckpoint): void {
    const at = this.saved.findIndex((c) => c.batch === checkpoint.batch);
    if (at >= 0) this.saved[at] = checkpoint;
    else this.saved.push(checkpoint);
    this.saved.sort((a, b) => a.batch - b.batch);
  }

  lastCheckpoint(): StrategyCheckpoint | undefined {
    return this.saved.at(-1);
  }

  checkpoints(): StrategyCheckpoint[] {
    return [...this.saved];
  }

  close(): void {}
}
