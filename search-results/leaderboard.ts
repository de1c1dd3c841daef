/**
 * The proxy leaderboard as a pure function of a run's candidates (no store, no Node built-ins:
 * the in-browser search ranks with it too).
 */

/** What a candidate needs to be ranked. */
export interface Rankable {
  readonly index: number;
  readonly status: string;
  readonly reward: number;
}

/** The best successfully trained candidates, best first (ties: the earlier one). */
export function leaderboard<C extends Rankable>(cs: readonly C[], top = 10): C[] {
  return cs
    .filter((c) => c.status === 'ok')
    .sort((a, b) => b.reward - a.reward || a.index - b.index)
    .slice(0, top);
}
