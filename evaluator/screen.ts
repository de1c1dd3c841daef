/**
 * Pre-screen and behavioural fingerprint, before any training.
 *
 * A rule runs (interpreted, a column at a time) on fixed probe streams: a handful of steps over a few elements with
 * gradients of mixed sign and magnitude. It is rejected when its update is NaN/Inf, the same
 * for every element and step (constant), or does not change when only the gradient changes
 * (ignores g). The fingerprint hashes the probe updates rounded to 4 significant digits, so
 * rules written differently but acting the same share one evaluation.
 */
import seedrandom from 'seedrandom';
import type { CheckedRule } from '../dsl/index.js';
import { ColumnInterpreter } from '../dsl/interp.js';
import { lowerRule, type Program } from '../dsl/lower.js';
import { sha256Hex } from '../dsl/sha256.js';

export interface ScreenResult {
  readonly ok: boolean;
  readonly reason?: string;
  /** 16 hex digits; equal for rules that act the same on the probes. */
  readonly fingerprint: string;
}

const N = 12;
const STEPS = 8;

interface Probe {
  w0: Float32Array;
  grads: Float32Array[];
}

function makeProbe(seed: string, scale: number): Probe {
  const rng = seedrandom.alea(seed);
  const w0 = Float32Array.from({ length: N }, () => (rng() - 0.5) * 2);
  const grads = Array.from({ length: STEPS }, (_, s) =>
    Float32Array.from({ length: N }, (_, i) => {
      // Mixed magnitudes, sign flips every few steps, and one exact zero.
      if (i === 0 && s % 3 === 1) return 0;
      const mag = 10 ** (((i % 4) - 2) * 1.0) * scale;
      return (rng() - 0.4) * mag * (s % 4 === 3 ? -1 : 1);
    }),
  );
  return { w0, grads };
}

const PROBES: readonly Probe[] = [makeProbe('nos:probe:a', 1), makeProbe('nos:probe:b', 0.3)];
/** Probe A with only the gradients changed: a rule whose updates stay the same ignores g. */
const PROBE_A_OTHER_G: Probe = { w0: (PROBES[0] as Probe).w0, grads: makeProbe('nos:probe:c', 1).grads };

/** A probe's gradients as float64 (the same values), made once. */
const GRADS64 = new Map<Probe, Float64Array[]>(
  [...PROBES, PROBE_A_OTHER_G].map((p) => [p, p.grads.map((g) => Float64Array.from(g))]),
);

/**
 * The rule's updates on a probe, from fresh state: the reference interpreter's semantics in
 * float64 with draws of seed 7, a column at a time (ColumnInterpreter: the same numbers bit for
 * bit as the compiled exact kernel this screen used before, without compiling each new rule;
 * tests/evaluator/screen.test.ts checks both on random rules, so stored fingerprints stay
 * valid). Each update is w_before - w_after, w_after = w_before - 1 * d, as a kernel's step
 * computes it (float64 weights: without float32 rounding).
 */
function directions(
  rule: Pick<CheckedRule, 'params' | 'expr'>,
  program: Program,
  params: Readonly<Record<string, number>>,
  probe: Probe,
): Float64Array {
  const kernel = new ColumnInterpreter(rule, { size: N, seed: 7, dtype: 'float64', params }, program);
  const w = Float64Array.from(probe.w0);
  const d = new Float64Array(N);
  const out = new Float64Array(N * STEPS);
  (GRADS64.get(probe) as Float64Array[]).forEach((g, s) => {
    kernel.direction(w, g, d);
    for (let i = 0; i < N; i++) {
      const before = w[i] as number;
      const after = before - 1 * (d[i] as number);
      w[i] = after;
      out[s * N + i] = before - after;
    }
  });
  return out;
}

function round4(x: number): string {
  if (x === 0) return '0';
  return x.toPrecision(4);
}

export function screenRule(rule: CheckedRule, params: Readonly<Record<string, number>> = {}): ScreenResult {
  // Lowered once for the three runs (each starts from fresh state).
  const program = lowerRule(rule);
  const outs = PROBES.map((p) => directions(rule, program, params, p));
  // The probes' rounded outputs, concatenated (the same digest as hashing them one after another).
  const fingerprint = sha256Hex(outs.map((o) => Array.from(o, round4).join(',')).join('')).slice(0, 16);
  let finite = true;
  let constant = true;
  const first = (outs[0] as Float64Array)[0] as number;
  for (const o of outs)
    for (let i = 0; i < o.length; i++) {
      const x = o[i] as number;
      if (!Number.isFinite(x)) finite = false;
      if (!(Math.abs(x - first) <= 1e-12 * (1 + Math.abs(first)))) constant = false;
    }
  if (!finite) return { ok: false, reason: 'the update is NaN or infinite on the probe', fingerprint };
  if (constant) return { ok: false, reason: 'the update is constant', fingerprint };
  const other = directions(rule, program, params, PROBE_A_OTHER_G);
  if (other.every((x, i) => x === (outs[0] as Float64Array)[i]))
    return { ok: false, reason: 'the update does not depend on the gradient', fingerprint };
  return { ok: true, fingerprint };
}
