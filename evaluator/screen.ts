/**
 * Pre-screen and behavioural fingerprint, before any training.
 *
 * A rule runs (compiled) on fixed probe streams: a handful of steps over a few elements with
 * gradients of mixed sign and magnitude. It is rejected when its update is NaN/Inf, the same
 * for every element and step (constant), or does not change when only the gradient changes
 * (ignores g). The fingerprint hashes the probe updates rounded to 4 significant digits, so
 * rules written differently but acting the same share one evaluation.
 */
import seedrandom from 'seedrandom';
import { compileRule } from '../dsl/compile/index.js';
import type { CheckedRule } from '../dsl/index.js';
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

type Compiled = ReturnType<typeof compileRule>;

function directions(compiled: Compiled, probe: Probe): Float64Array {
  const kernel = compiled.create(N, 7);
  const w = Float64Array.from(probe.w0);
  const out = new Float64Array(N * STEPS);
  probe.grads.forEach((g, s) => {
    const before = Float64Array.from(w);
    kernel.step(w, Float64Array.from(g), 1);
    for (let i = 0; i < N; i++) out[s * N + i] = (before[i] as number) - (w[i] as number);
  });
  return out;
}

function round4(x: number): string {
  if (x === 0) return '0';
  return x.toPrecision(4);
}

export function screenRule(rule: CheckedRule, params: Readonly<Record<string, number>> = {}): ScreenResult {
  // Compiled once for the three runs (each kernel starts from fresh state). float64 weights: the
  // update is recovered from w_before - w_after without float32 rounding.
  const compiled = compileRule(rule, { backend: 'js', params, exact: true, dtype: 'float64' });
  const outs = PROBES.map((p) => directions(compiled, p));
  // The probes' rounded outputs, concatenated (the same digest as hashing them one after another).
  const fingerprint = sha256Hex(outs.map((o) => Array.from(o, round4).join(',')).join('')).slice(0, 16);
  const all = outs.flatMap((o) => Array.from(o));
  if (all.some((x) => !Number.isFinite(x)))
    return { ok: false, reason: 'the update is NaN or infinite on the probe', fingerprint };
  const first = all[0] as number;
  if (all.every((x) => Math.abs(x - first) <= 1e-12 * (1 + Math.abs(first))))
    return { ok: false, reason: 'the update is constant', fingerprint };
  const other = directions(compiled, PROBE_A_OTHER_G);
  if (other.every((x, i) => x === (outs[0] as Float64Array)[i]))
    return { ok: false, reason: 'the update does not depend on the gradient', fingerprint };
  return { ok: true, fingerprint };
}
