/**
 * What a sample's status means, as pure functions (no store, no Node built-ins: the search loop
 * and the funnel's policy use them in browsers too). store.ts re-exports them.
 */
import type { Status } from '../evaluator/train.js';

/** The statuses of a sample the evaluator trained, whatever came out. */
export const TRAINED_STATUSES: readonly Status[] = ['ok', 'diverged', 'invalid', 'timeout'];

export function isTrained(status: string): status is Status {
  return (TRAINED_STATUSES as readonly string[]).includes(status);
}

/**
 * What a sample's status says about it, decided here only: trained (the evaluator ran it: ok,
 * diverged, invalid or timed out), cached (a copy of an earlier sample's result: the same rule,
 * or one the fingerprint found equal) or rejected (never trained: rule text that does not check,
 * or a rule the pre-screen refused). A status nos did not write (an edited run.db) counts as rejected.
 */
export type SampleKind = 'trained' | 'cached' | 'rejected';

export function sampleKind(status: string): SampleKind {
  return isTrained(status) ? 'trained' : status === 'cached' ? 'cached' : 'rejected';
}

/** A run's samples by kind, and the best reward of those that trained successfully (0 if none). */
export function sampleCounts(cs: readonly { readonly status: string; readonly reward: number }[]): {
  readonly trained: number;
  readonly cached: number;
  readonly rejected: number;
  readonly best: number;
} {
  const n = { trained: 0, cached: 0, rejected: 0, best: 0 };
  for (const c of cs) {
    n[sampleKind(c.status)]++;
    if (c.status === 'ok' && c.reward > n.best) n.best = c.reward;
  }
  return n;
}
