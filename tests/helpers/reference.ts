/**
 * Golden data, all under tests/fixtures: TF's sign optimizers (sign-optimizers.json, copied from
 * the project's shared reference by copy-sign-reference.mjs) and torch.optim (torch-golden.json,
 * made by make-torch-golden.py). Tests read nothing outside the repository.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

export interface SignCase {
  name: string;
  optimizer: string;
  params: Record<string, number>;
  sign_decay: { fn: 'linear' | 'cosine' | 'restart'; decay_steps: number; num_periods?: number } | null;
  weights_after_each_step: number[][];
}

export interface SignReference {
  w0: number[];
  grads: number[][];
  cases: SignCase[];
}

export function fixturePath(...parts: string[]): string {
  return join(repoRoot, 'tests', 'fixtures', ...parts);
}

export function signReference(): SignReference {
  return JSON.parse(readFileSync(fixturePath('sign-optimizers.json'), 'utf8')) as SignReference;
}

/** The library rule name and --set values for a reference case. */
export function signCaseRule(c: SignCase): { rule: string; params: Record<string, number>; lr: number } {
  const params: Record<string, number> = {};
  for (const [k, v] of Object.entries(c.params)) if (k !== 'learning_rate') params[k] = v;
  let rule = c.optimizer;
  if (c.sign_decay) {
    rule += { linear: '-ld', cosine: '-cd', restart: '-rd' }[c.sign_decay.fn];
    params.T = c.sign_decay.decay_steps;
    if (c.sign_decay.num_periods !== undefined) params.periods = c.sign_decay.num_periods;
  }
  return { rule, params, lr: c.params.learning_rate as number };
}

export interface TorchCase {
  rule: string;
  params: Record<string, number>;
  lr: number;
  source: string;
  weights: number[][];
}

export function torchGolden(): { w0: number[]; grads: number[][]; cases: TorchCase[] } {
  return JSON.parse(readFileSync(fixturePath('torch-golden.json'), 'utf8')) as {
    w0: number[];
    grads: number[][];
    cases: TorchCase[];
  };
}

export function maxAbsDiff(a: readonly (readonly number[])[], b: readonly (readonly number[])[]): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  a.forEach((row, i) => {
    const other = b[i] as readonly number[];
    if (row.length !== other.length) m = Number.POSITIVE_INFINITY;
    row.forEach((x, j) => {
      m = Math.max(m, Math.abs(x - (other[j] as number)));
    });
  });
  return m;
}
