import { describe, expect, it } from 'vitest';
import { nos } from '../helpers/cli.js';

describe('nos bench', () => {
  it('--only kernels --json reports every contract key (a smoke run on a small size; timings are not asserted)', async () => {
    const r = await nos('bench', '--only', 'kernels', '--params', '20000', '--json');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown> & {
      kernels: Record<string, unknown> & { adam: Record<string, number>; lion: Record<string, number>; powersign: Record<string, number> };
      notes: string[];
    };
    expect(Object.keys(doc).sort()).toEqual(['gpu', 'kernels', 'notes', 'pool', 'queue', 'screen', 'training']);
    expect(doc.kernels.params).toBe(20000);
    expect(doc.kernels.copyFloorNsPerParam).toBeGreaterThan(0);
    for (const key of ['fusedNsPerParam', 'tfOpsNsPerParam', 'tfBuiltinNsPerParam']) expect(doc.kernels.adam[key], key).toBeGreaterThan(0);
    for (const rule of ['adam', 'lion', 'powersign'] as const) expect(doc.kernels[rule].wasmNsPerParam, `${rule} wasm`).toBeGreaterThan(0);
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
    expect(r.stderr).toMatch(/--only must be one of kernels, training, pool, screen, gpu/);
    // Stray arguments are errors for every command that takes none (they were ignored here once).
    const stray = await nos('bench', 'kernels');
    expect(stray.code).toBe(1);
    expect(stray.stderr).toMatch(/unexpected argument 'kernels'/);
  });
});
