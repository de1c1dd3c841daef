import { describe, expect, it } from 'vitest';
import { nos } from '../helpers/cli.js';

describe('nos eval --label-noise and --analyze (reliance, rescaled sharpness)', () => {
  it('the JSON gains labelNoise, and per result reliance and sharpnessRescaled next to sharpness', async () => {
    const r = await nos(
      'eval',
      '--rules',
      'sgd,adam',
      '--task',
      'mlp-mnist',
      '--steps',
      '30',
      '--lrs',
      '0.05',
      '--label-noise',
      '0.5',
      '--analyze',
      '--seeds',
      '2',
      '--json',
      '--workers',
      '2',
    );
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      labelNoise: number;
      results: {
        rule: string;
        analysis: {
          sharpness: { mean: number };
          sharpnessRescaled: { mean: number; std: number };
          trainAcc: { mean: number };
          gapAcc: { mean: number };
          reliance: {
            area: number;
            areaStd: number;
            curve: [number, number][];
            split: string;
            units: number;
            seeds: number;
          };
        };
      }[];
    };
    expect(doc.labelNoise).toBe(0.5);
    for (const x of doc.results) {
      const a = x.analysis;
      expect(a.sharpnessRescaled.mean).toBeGreaterThan(0);
      expect(a.sharpnessRescaled.mean).not.toBe(a.sharpness.mean);
      expect(a.reliance.area).toBeGreaterThan(0);
      expect(a.reliance.area).toBeLessThanOrEqual(1.2);
      expect(a.reliance.split).toBe('train');
      expect(a.reliance.units).toBe(64);
      expect(a.reliance.seeds).toBe(2);
      expect(a.reliance.curve.length).toBe(21);
      expect(a.reliance.curve[0]).toEqual([0, a.trainAcc.mean]);
      expect(a.reliance.curve[20]?.[0]).toBe(1);
    }
    // The noise reached the workers: SGD's accuracy on its half-random training labels is well
    // below its clean test accuracy (a negative gap; about 0 without noise).
    expect(doc.results.find((x) => x.rule === 'sgd')?.analysis.gapAcc.mean).toBeLessThan(-0.1);
    const text = await nos(
      'eval',
      '--rules',
      'sgd',
      '--task',
      'mlp-mnist',
      '--steps',
      '20',
      '--lrs',
      '0.05',
      '--analyze',
      '--workers',
      '1',
    );
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/sharp\. x5 %\s+reliance/);
    expect(text.stdout).toMatch(/sgd .* 0\.\d{3}\n?$/m);
  });

  it('rejects a fraction outside [0, 1], a non-number and analytic tasks, before training', async () => {
    for (const [args, msg] of [
      [
        ['--task', 'mlp-mnist', '--label-noise', '1.5'],
        /--label-noise: label noise must be a fraction in \[0, 1\], got 1.5/,
      ],
      [['--task', 'mlp-mnist', '--label-noise', '-0.1'], /got -0.1/],
      [['--task', 'mlp-mnist', '--label-noise', 'half'], /--label-noise must be a finite number/],
      [
        ['--task', 'quadratic', '--label-noise', '0.2'],
        /--label-noise: label noise needs an image task with labels; quadratic is analytic/,
      ],
      [['--task', 'mlp-mnist', '--label-noise'], /--label-noise needs a value/],
    ] as const) {
      const r = await nos('eval', '--rules', 'adam', ...args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr).not.toMatch(/\[1\/1\]|internal error/);
    }
  });

  it('--help lists --label-noise', async () => {
    const r = await nos('eval', '--help');
    expect(r.stdout).toMatch(/--label-noise P\s+replace this fraction \(0\.\.1\) of the training labels/);
    expect(r.stdout).toMatch(/single-direction reliance/);
  });
});
