import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { benchFidelity, proxyProtocols, randomRules } from '../../bench/fidelity.js';
import { findTask } from '../../evaluator/tasks.js';
import { nos, tempFile } from '../helpers/cli.js';

describe('nos bench', () => {
  it('--only kernels --json reports every contract key (a smoke run on a small size; timings are not asserted)', async () => {
    const r = await nos('bench', '--only', 'kernels', '--params', '20000', '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & {
      kernels: Record<string, unknown> & {
        adam: Record<string, number>;
        lion: Record<string, number>;
        powersign: Record<string, number>;
      };
      notes: string[];
    };
    expect(Object.keys(doc).sort()).toEqual(['gpu', 'kernels', 'notes', 'pool', 'queue', 'screen', 'training']);
    expect(doc.kernels.params).toBe(20000);
    expect(doc.kernels.copyFloorNsPerParam).toBeGreaterThan(0);
    for (const key of ['fusedNsPerParam', 'tfOpsNsPerParam', 'tfBuiltinNsPerParam'])
      expect(doc.kernels.adam[key], key).toBeGreaterThan(0);
    for (const rule of ['adam', 'lion', 'powersign'] as const)
      expect(doc.kernels[rule].wasmNsPerParam, `${rule} wasm`).toBeGreaterThan(0);
    // PyTorch's Adam is there when python3-torch is (CI installs it); else null with a note.
    const torch = doc.kernels.adam.torchNsPerParam as number | null;
    if (torch === null) expect(doc.notes.join('\n')).toMatch(/torch/);
    else expect(torch).toBeGreaterThan(0);
    for (const rule of ['lion', 'powersign'] as const) {
      expect(doc.kernels[rule].fusedNsPerParam).toBeGreaterThan(0);
      expect(doc.kernels[rule].tfOpsNsPerParam).toBeGreaterThan(0);
    }
    expect(doc.training).toBeNull();
  });

  it('rejects an unknown part', async () => {
    const r = await nos('bench', '--only', 'tpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--only must be one of kernels, training, pool, screen, gpu, queue, fidelity/);
    // Stray arguments are errors for every command that takes none (they were ignored here once).
    const stray = await nos('bench', 'kernels');
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/unexpected argument 'kernels'/);
  });

  it('fidelity: scores a panel by the proxies and by high fidelity, in the contract keys, and reuses cached high-fidelity runs', async () => {
    const panel = [
      ...['sgd', 'momentum', 'adam', 'rmsprop', 'signum', 'lion'].map((n) => ({
        label: n,
        rule: n,
        kind: 'builtin' as const,
      })),
      ...randomRules(2),
    ];
    const cacheFile = tempFile('hf.json', '{}');
    const options = {
      task: 'quadratic',
      panel,
      proxySeeds: 2,
      hf: { seeds: 2, steps: 400, gridSteps: 100, lrGrid: [1e-3, 1e-2, 1e-1] },
      workers: 1,
      cacheFile,
    };
    const f = await benchFidelity(options);
    expect(f.rules).toBe(8);
    expect(f.protocol).toBe('v1');
    expect(f.variants.map((v) => v.name)).toEqual(proxyProtocols(findTask('quadratic')!).map((p) => p.name));
    expect(f.spearman).toBeGreaterThanOrEqual(-1);
    expect(f.spearman).toBeLessThanOrEqual(1);
    expect(f.top5Overlap).toBeGreaterThanOrEqual(0);
    expect(f.top5Overlap).toBeLessThanOrEqual(5);
    expect(f.secondsPerRule.proxy).toBeGreaterThan(0);
    expect(f.variants.find((v) => v.name === 'half-decade')?.costVsV1).toBeCloseTo((9 * 33 + 200) / (5 * 50 + 200), 6);
    // Good rules above the bad ones: the panel's random rules diverge or do nothing here.
    const hf = new Map(f.panel.map((p) => [p.label, p.highFidelity]));
    expect(hf.get('adam')!).toBeGreaterThan(0.5);
    expect(Object.keys(JSON.parse(readFileSync(cacheFile, 'utf8')))).toHaveLength(8 * 2);
    // A second run reads the high-fidelity half from the cache: the same scores.
    const again = await benchFidelity({ ...options, protocols: [proxyProtocols(findTask('quadratic')!)[0]!] });
    expect(again.panel.map((p) => p.highFidelity)).toEqual(f.panel.map((p) => p.highFidelity));
    expect(again.spearman).toBe(f.spearman);
  }, 120_000);

  it('fidelity: an unknown task is a usage error', async () => {
    const r = await nos('bench', '--only', 'fidelity', '--task', 'mnist-mlp');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--task: unknown task 'mnist-mlp'/);
  });
});
