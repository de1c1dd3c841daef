/** How many sampled rules the checker, the pre-screen and the fingerprint cache settle before training. */
import seedrandom from 'seedrandom';
import { randomChoices, ruleText } from '../controller/sample.js';
import { compileRules } from '../dsl/index.js';
import { screenRule } from '../evaluator/screen.js';

export interface ScreenFigures {
  sampled: number;
  /** Rejected by the checker or the pre-screen. */
  rejected: number;
  /** Equal in behaviour to a rule seen before (fingerprint cache hit). */
  cached: number;
  /** Left to train. */
  trained: number;
  microsPerScreen: number;
}

export function benchScreen(sampled = 1000, seed = 1): ScreenFigures {
  const rng = seedrandom.alea(`bench:screen:${seed}`);
  const seen = new Set<string>();
  let rejected = 0;
  let cached = 0;
  let screenMs = 0;
  let screened = 0;
  for (let i = 0; i < sampled; i++) {
    const text = ruleText(randomChoices(rng, 1 + Math.floor(rng() * 2)));
    const checked = compileRules(text);
    const rule = checked.rules[0];
    if (!checked.ok || rule === undefined) {
      rejected++;
      continue;
    }
    const t0 = performance.now();
    const s = screenRule(rule);
    screenMs += performance.now() - t0;
    screened++;
    if (!s.ok) rejected++;
    else if (seen.has(s.fingerprint)) cached++;
    else seen.add(s.fingerprint);
  }
  return {
    sampled,
    rejected,
    cached,
    trained: sampled - rejected - cached,
    microsPerScreen: (1000 * screenMs) / Math.max(1, screened),
  };
}
