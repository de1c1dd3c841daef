/**
 * The exported PyTorch optimizers' speed next to torch.optim.Adam's on the CPU, as
 * bench/torch-export-speed.py measures it (small and short here; the goals, exported Adam
 * <= 1.3x torch's foreach Adam and adam + noise <= 2x Adam, are checked by the benchmark and
 * its committed figures, bench/results/torch-export-speed-cpu.json, never by a timed test).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emitPyTorch } from '../../dsl/compile/pytorch.js';
import { compileRules, library } from '../../dsl/index.js';
import { repoRoot } from '../helpers/reference.js';
import { scratchDir } from '../helpers/scratch.js';

describe('exported PyTorch optimizers next to torch.optim.Adam (CPU)', () => {
  it('runs the benchmark script and prints the ratios', () => {
    const dir = scratchDir('export-speed');
    writeFileSync(join(dir, 'adam.py'), emitPyTorch(library().get('adam')!));
    const noisy = compileRules('rule adamnoise = adam + noise');
    if (!noisy.ok) throw new Error('rule does not compile');
    writeFileSync(join(dir, 'adamnoise.py'), emitPyTorch(noisy.rules[0]!));
    const out = execFileSync(
      '/usr/bin/python3',
      [join(repoRoot, 'bench', 'torch-export-speed.py'), '--params', '100000', '--reps', '5', '--export-dir', dir],
      { encoding: 'utf8' },
    );
    const doc = JSON.parse(out) as {
      params: number;
      msPerStep: Record<string, number>;
      ratios: { adamVsTorchForeach: number; noiseVsNoiseless: number };
    };
    expect(doc.params).toBeGreaterThan(90_000);
    expect(Object.keys(doc.msPerStep).sort()).toEqual([
      'adamForeach',
      'adamPerTensor',
      'noiseForeach',
      'noisePerTensor',
      'torchForLoop',
      'torchForeach',
    ]);
    for (const v of Object.values(doc.msPerStep)) expect(v).toBeGreaterThan(0);
    console.log(
      `exported Adam / torch.optim.Adam(foreach=True): ${doc.ratios.adamVsTorchForeach.toFixed(2)}x; adam + noise / adam: ${doc.ratios.noiseVsNoiseless.toFixed(2)}x (CPU, ${doc.params} parameters; goals 1.3x and 2x)`,
    );
  }, 60_000);
});
