import { describe, expect, it } from 'vitest';
import { leaderboardTable } from '../../cli/search.js';
import { bindParams, library, printNode } from '../../dsl/index.js';
import type { LeaderboardEntry } from '../../controller/funnel-plan.js';
import type { Candidate } from '../../search-results/store.js';

const candidate = (rule: string, reward: number, index: number): Candidate => ({
  index,
  batch: 0,
  rule,
  hash: '',
  fingerprint: null,
  status: 'ok',
  reward,
  bestLr: 0.01,
  valAcc: reward,
  testAcc: null,
  finalLoss: 0.1,
  detail: '{}',
  seconds: 1,
  strategy: 'random',
  parent: null,
});
const row = (rule: string, reward: number, index: number): LeaderboardEntry => ({
  rank: index,
  candidate: candidate(rule, reward, index),
  rule,
  reward,
  rung: 0,
  task: 'mlp-mnist',
  seeds: 1,
  ci95: null,
  vsBaseline: null,
});

describe('leaderboards print readable rules', () => {
  it('names built-ins inside stored canonical text', () => {
    const adam = printNode(bindParams(library().get('adam')!, {}));
    const table = leaderboardTable([
      row(`(${adam}) * exp(sign(ema(g, 0.9)) * sign(g))`, 0.95, 3),
      row('sign(ema(g, 0.9))', 0.9, 1),
    ]);
    expect(table).toContain('adam * exp(sign(ema(g, 0.9)) * sign(g))');
    expect(table).not.toContain('sqrt(ema(g^2');
    expect(table).toContain('sign(ema(g, 0.9))'); // signum is too small to name
  });
});
