/**
 * The in-memory store answers the search loop as SQLite does: the same search (strategy, seed,
 * evaluator) gives the same candidates and checkpoints in both, cache hits included.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSearch } from '../../controller/search.js';
import { Evolution, RandomSearch } from '../../controller/strategy.js';
import { leaderboard } from '../../controller/funnel-plan.js';
import { MemoryStore } from '../../search-results/memory.js';
import { SqliteStore } from '../../search-results/store.js';
import type { RunConfig } from '../../controller/config.js';
import { FakeEvaluator } from '../helpers/fake-evaluator.js';

const config = (strategy: string): RunConfig & { budgetUnit: 'trained' } => ({
  run: 'mem',
  task: 'quadratic',
  strategy,
  budget: 60,
  budgetUnit: 'trained',
  seed: 4,
  workers: 1,
  batchSize: 8,
  steps: null,
  groups: 1,
  warmStart: false,
  createdAt: 'test',
  nosVersion: 'test',
});

describe('MemoryStore', () => {
  for (const strategy of ['random', 'evolution'] as const) {
    it(`gives the loop what SqliteStore gives it (${strategy}, out-of-order evaluations)`, async () => {
      const make = () =>
        strategy === 'random' ? new RandomSearch({ seed: 4, groups: 1 }) : new Evolution({ seed: 4, groups: 1 });
      const memory = new MemoryStore(config(strategy));
      const a = await runSearch(memory, make(), new FakeEvaluator({ delays: true, diverge: true }));
      const root = mkdtempSync(join(tmpdir(), 'nos-memory-'));
      try {
        const sqlite = SqliteStore.create(config(strategy), root);
        const b = await runSearch(sqlite, make(), new FakeEvaluator({ delays: true, diverge: true }));
        expect(a).toEqual(b);
        expect(memory.candidates()).toEqual(sqlite.candidates());
        expect(memory.checkpoints()).toEqual(sqlite.checkpoints());
        expect(memory.lastCheckpoint()).toEqual(sqlite.lastCheckpoint());
        // The search met cache hits and rejected rules, so byHash/byFingerprint were exercised.
        expect(memory.candidates().some((c) => c.status === 'cached')).toBe(true);
        expect(memory.candidates().some((c) => c.status === 'rejected')).toBe(true);
        for (const c of memory.candidates()) {
          expect(memory.byHash(c.hash)).toEqual(sqlite.byHash(c.hash));
          if (c.fingerprint !== null)
            expect(memory.byFingerprint(c.fingerprint)).toEqual(sqlite.byFingerprint(c.fingerprint));
        }
        expect(leaderboard(memory.candidates(), 5)).toEqual(leaderboard(sqlite.candidates(), 5));
        sqlite.close();
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
