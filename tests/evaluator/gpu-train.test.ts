import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lookupRule } from '../../dsl/index.js';
import { loadDataset } from '../../evaluator/data.js';
import { gpuProblem } from '../../evaluator/gpu-train.js';
import { findTask } from '../../evaluator/tasks.js';
import { trainOnce, type TrainOptions } from '../../evaluator/train.js';
import { nos, nosBin, tempFile } from '../helpers/cli.js';
import { repoRoot } from '../helpers/reference.js';
import { tfReady } from '../helpers/tf.js';

interface Case {
  task: string;
  rule: string;
  lr: number;
  steps: number;
  valSize: number;
  options: Omit<TrainOptions, 'deadline'>;
}

/** The GPU runs, in a child process (tests/fixtures/gpu-train.mjs): Dawn stays out of vitest's workers. */
function gpuRuns(cases: Case[]) {
  const file = tempFile('gpu-cases.json', JSON.stringify(cases));
  const r = spawnSync(process.execPath, [join(repoRoot, 'tests', 'fixtures', 'gpu-train.mjs'), file], {
    encoding: 'utf8',
    env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
    timeout: 240_000,
  });
  const err = r.stderr
    .split('\n')
    .filter((l) => !l.startsWith('Warning'))
    .join('\n');
  if (r.status !== 0) throw new Error(`gpu-train fixture failed (${r.status ?? r.signal}): ${err}`);
  return JSON.parse(r.stdout) as {
    status: string;
    reason?: string;
    steps: number;
    valAcc: number;
    finalLoss: string;
    tailLoss: number | string;
    curve: number[];
    testAcc: number | null;
    ruleBackend: string;
  }[];
}

const close = (a: number, b: number, rel: number) => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

describe('children on the GPU (--device webgpu: tfjs-webgpu and the WGSL rule; Mesa llvmpipe here)', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('trains as the CPU path does: the same statuses at the same steps, losses and accuracy to float32 tolerance', () => {
    const cases: Case[] = [
      // Adam with a schedule, decoupled weight decay and the test split.
      {
        task: 'softmax-mnist',
        rule: 'adam',
        lr: 0.01,
        steps: 10,
        valSize: 500,
        options: { seed: 1, weightDecay: 0.01, schedule: 'cosine', test: true },
      },
      // Noise drawn per element and per step from the same seeded stream; batch growth.
      {
        task: 'mlp-mnist',
        rule: 'rule r = sign(ema(g, 0.9)) + 0.5 * noise',
        lr: 0.001,
        steps: 6,
        valSize: 300,
        options: { seed: 2, schedule: 'step', batchGrowth: true },
      },
      // No update: invalid after 3 steps. An exploding loss: diverged at step 2. Infinite weights.
      { task: 'mlp-mnist', rule: 'rule r = 0 * g', lr: 0.01, steps: 5, valSize: 100, options: { seed: 0 } },
      { task: 'mlp-mnist', rule: 'rule r = exp(1000 * g)', lr: 0.01, steps: 5, valSize: 100, options: { seed: 0 } },
      {
        task: 'softmax-mnist',
        rule: 'rule r = log(abs(g - g))',
        lr: 0.01,
        steps: 5,
        valSize: 100,
        options: { seed: 0 },
      },
    ];
    const gpu = gpuRuns(cases);
    cases.forEach((c, k) => {
      const task = { ...findTask(c.task)!, valSize: c.valSize };
      const rule = lookupRule(c.rule);
      if (!rule.ok) throw new Error(rule.message);
      const cpu = trainOnce(rule.rule, task, loadDataset(task.dataset!), c.lr, c.steps, {
        ...c.options,
        deadline: Number.POSITIVE_INFINITY,
      });
      const g = gpu[k]!;
      const what = `${c.rule} on ${c.task}`;
      expect(g.ruleBackend, what).toBe('wgsl');
      expect([g.status, g.steps, g.reason?.replace(/[\d.e+-]+(?= exceeds)/, 'X')], what).toEqual([
        cpu.status,
        cpu.steps,
        cpu.reason?.replace(/[\d.e+-]+(?= exceeds)/, 'X'),
      ]);
      expect(
        close(Number(g.finalLoss), cpu.finalLoss, 1e-4),
        `${what}: final loss ${g.finalLoss} vs ${cpu.finalLoss}`,
      ).toBe(true);
      expect(g.curve.length, what).toBe(cpu.curve.length);
      g.curve.forEach((x, i) => {
        expect(close(x, cpu.curve[i]!, 1e-4), `${what}: curve[${i}] ${x} vs ${cpu.curve[i]}`).toBe(true);
      });
      expect(Math.abs(g.valAcc - cpu.valAcc), what).toBeLessThanOrEqual(2 / c.valSize);
      expect(g.testAcc === null, what).toBe(cpu.testAcc === null);
      if (cpu.testAcc !== null) expect(Math.abs(g.testAcc! - cpu.testAcc)).toBeLessThanOrEqual(0.0005);
    });
    expect(gpu.map((g) => g.status)).toEqual(['ok', 'ok', 'invalid', 'diverged', 'diverged']);
  }, 240_000);

  it('nos eval --device webgpu --rules adam --steps 20 on mlp-mnist matches the wasm path', async () => {
    const gpu = nosBin(['eval', '--device', 'webgpu', '--rules', 'adam', '--steps', '20', '--json'], {
      timeoutMs: 240_000,
    });
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/on the GPU/);
    const cpu = await nos('eval', '--rules', 'adam', '--steps', '20', '--workers', '1', '--json');
    expect(cpu.code, cpu.stderr).toBe(0);
    type Doc = {
      device?: string;
      results: { bestLr: number; valAcc: { mean: number }; testAcc: { mean: number }; finalLoss: { mean: number } }[];
    };
    const g = JSON.parse(gpu.stdout) as Doc;
    const c = JSON.parse(cpu.stdout) as Doc;
    expect(g.device).toBe('webgpu');
    const [a, b] = [g.results[0]!, c.results[0]!];
    expect(a.bestLr).toBe(b.bestLr);
    expect(Math.abs(a.valAcc.mean - b.valAcc.mean)).toBeLessThanOrEqual(2e-4);
    expect(Math.abs(a.testAcc.mean - b.testAcc.mean)).toBeLessThanOrEqual(2e-4);
    expect(close(a.finalLoss.mean, b.finalLoss.mean, 1e-4), `${a.finalLoss.mean} vs ${b.finalLoss.mean}`).toBe(true);
  }, 240_000);

  it('refuses, with the reason and exit 1, what has no GPU path', async () => {
    expect(gpuProblem(findTask('quadratic')!)).toMatch(/no GPU path/);
    expect(gpuProblem(findTask('convnet-fashion')!)).toBeUndefined();
    const cases: [string[], RegExp][] = [
      [['eval', '--device', 'webgpu', '--rules', 'adam', '--task', 'quadratic'], /task quadratic .* has no GPU path/],
      [['eval', '--device', 'webgpu', '--rules', 'adam', '--analyze'], /--analyze runs on the CPU only/],
      [['eval', '--device', 'tpu', '--rules', 'adam'], /--device must be one of cpu, webgpu, got 'tpu'/],
      [['eval', '--device', 'webgpu', '--rules', 'adam', '--queue', 'redis://127.0.0.1:1'], /does not go with --queue/],
      [['search', '--device', 'webgpu', '--queue', 'redis://127.0.0.1:1'], /does not go with --queue/],
    ];
    for (const [argv, message] of cases) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
