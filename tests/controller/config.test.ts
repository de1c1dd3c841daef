import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { openStore, type RunConfig } from '../../controller/config.js';
import { openRun } from '../../controller/run.js';
import { SqliteStore, StoreError } from '../../search-results/store.js';

const config: RunConfig = {
  run: 'r',
  task: 'quadratic',
  strategy: 'random',
  budget: 10,
  seed: 1,
  workers: 1,
  batchSize: 5,
  steps: null,
  groups: 3,
  warmStart: false,
  createdAt: 'test',
  nosVersion: 'test',
};

/** A run whose stored config JSON is `text`. */
function runWithConfig(text: string): { root: string; dir: string } {
  const root = mkdtempSync(join(tmpdir(), 'nos-config-'));
  const store = SqliteStore.create(config, root);
  const dir = store.dir;
  store.close();
  const db = new Database(join(dir, 'run.db'));
  db.prepare("UPDATE meta SET value = ? WHERE key = 'config'").run(text);
  db.close();
  return { root, dir };
}

const thrown = (f: () => unknown): Error => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('did not throw');
};

describe('the run config, owned by controller/', () => {
  it('a stored config is checked when a run is opened: the error names the run, its folder and the field', () => {
    const { root, dir } = runWithConfig(JSON.stringify({ ...config, budget: 'ten' }));
    for (const open of [() => openStore('r', root), () => openRun('r', { root })]) {
      const e = thrown(open);
      expect(e).toBeInstanceOf(StoreError);
      expect(e.message).toBe(
        `run 'r' in ${dir}: its stored config is not readable: budget: Expected number, received string`,
      );
    }
    const nested = runWithConfig(JSON.stringify({ ...config, funnel: { promote: 2 } }));
    expect(thrown(() => openStore('r', { root: nested.root, readonly: true })).message).toMatch(
      /^run 'r' in .*: its stored config is not readable: funnel\.promote: Number must be less than or equal to 1$/,
    );
    // The store itself reads only the name: the damaged field is the owner's business.
    const raw = SqliteStore.open('r', { root, readonly: true });
    expect(raw.config).toEqual({ ...config, budget: 'ten' });
    raw.close();
  });

  it('a config that is not JSON, or not an object, is refused by the store itself', () => {
    const junk = runWithConfig('{not json');
    expect(thrown(() => openStore('r', junk.root)).message).toBe(
      `run 'r' in ${junk.dir} has no readable config (its run.db was not made by nos, or is damaged)`,
    );
    const list = runWithConfig('[1, 2]');
    expect(thrown(() => SqliteStore.open('r', list.root)).message).toBe(
      `run 'r' in ${list.dir}: its stored config is not readable: config: not an object`,
    );
  });

  it("typed on open: older runs' missing fields get the values they ran with, unknown fields are kept", () => {
    const { groups: _g, warmStart: _w, batchSize: _b, ...old } = config;
    const { root } = runWithConfig(JSON.stringify({ ...old, budgetUnit: 'sampled' }));
    const store = openStore('r', { root, readonly: true });
    expect(store.config).toEqual({ ...old, groups: 2, warmStart: false, batchSize: 10, budgetUnit: 'sampled' });
    store.close();
  });
});
