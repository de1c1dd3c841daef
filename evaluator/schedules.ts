/**
 * Learning-rate schedules: a layer around a rule, never inside it. A schedule is a multiplier
 * m(t) of the base learning rate at step t = 1..T, so the update is w <- w - lr * m(t) * d_t.
 * Schedules that fit the update-rule language are written in it (t, T, numbers, parameters);
 * SGDR's restarts and the noisy linear-cosine decay are written in code.
 */
import seedrandom from 'seedrandom';
import { type CheckedRule, compileSchedules, formatDiagnostics, printNode } from '../dsl/index.js';
import { nearest } from '../dsl/diagnostics.js';
import { parseNumberLiteral } from '../dsl/parser.js';
import { lowerRule, paramValues, scalarValues } from '../dsl/lower.js';

export const SCHEDULE_SOURCE = `
# A constant learning rate.
rule constant = 1

# Step annealing: multiply by gamma at evenly spaced points (drops of them in the run).
rule step(gamma = 0.1, drops = 2) = gamma ^ min(drops, floor((drops + 1) * (t - 1) / T))

# The Transformer's schedule (Vaswani et al.): d^-0.5 * min(t^-0.5, t * warmup^-1.5).
rule transformer(d = 64, warmup = 100) = d^-0.5 * min(t^-0.5, t * warmup^-1.5)

# Cosine annealing from 1 to etamin over the run.
rule cosine(etamin = 0) = etamin + (1 - etamin) * 0.5 * (1 + cos(pi * min(t - 1, T) / T))

# Cyclical learning rate, triangular (Smith 2017): between low and 1, cycles per run.
rule triangular(low = 0.1, cycles = 4) {
  half = T / (2 * cycles)
  x = abs((t - 1) / half - 2 * floor(1 + (t - 1) / (2 * half)) + 1)
  low + (1 - low) * max(0, 1 - x)
}

# NOS's linear-cosine decay (TF linear_cosine_decay): (alpha + linear) * cosine + beta.
rule lincos(alpha = 0, beta = 0.001, periods = 0.5) =
  (alpha + (T - min(t - 1, T)) / T) * 0.5 * (1 + cos(pi * 2 * periods * min(t - 1, T) / T)) + beta
`;

export interface ScheduleParam {
  readonly name: string;
  readonly default: number;
}

export interface Schedule {
  readonly name: string;
  readonly doc: string;
  readonly params: readonly ScheduleParam[];
  /** The formula m(t), in the rule language where it fits (else the equation in words). */
  readonly text: string;
  /** A multiplier for each step t = 1..T (index t - 1). */
  values(T: number, params?: Readonly<Record<string, number>>, seed?: number): Float64Array;
  /** Steps (1-based) at which a cycle ends: where snapshot ensembles take their snapshots. */
  cycleEnds?(T: number, params?: Readonly<Record<string, number>>): number[];
}

export class ScheduleError extends Error {
  /** The class's own name (subclasses included), as `instanceof`-free callers and logs read it. */
  override get name(): string {
    return this.constructor.name;
  }
}

function fromRule(rule: CheckedRule, doc: string): Schedule {
  const declared = rule.params.filter((p) => p.name !== 'T');
  return {
    name: rule.name ?? 'custom',
    doc,
    params: declared,
    text: printNode(rule.expr),
    values: (T, params = {}) => {
      let values: Float64Array;
      try {
        values = paramValues(rule, { ...params, ...(rule.params.some((p) => p.name === 'T') ? { T } : {}) });
      } catch (e) {
        throw new ScheduleError(e instanceof Error ? e.message : String(e));
      }
      const program = lowerRule(rule);
      const scratch = new Float64Array(program.steps.length);
      const out = new Float64Array(T);
      for (let t = 1; t <= T; t++) out[t - 1] = scalarValues(program, values, t, scratch)[program.result] ?? Number.NaN;
      return out;
    },
  };
}

function checkParams(
  name: string,
  known: readonly ScheduleParam[],
  params: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  for (const p of known) out[p.name] = p.default;
  for (const [k, v] of Object.entries(params)) {
    if (!known.some((p) => p.name === k))
      throw new ScheduleError(
        `schedule '${name}' has no parameter '${k}' (it has ${known.map((p) => p.name).join(', ') || 'none'})`,
      );
    if (!Number.isFinite(v)) throw new ScheduleError(`schedule parameter '${k}' must be a finite number`);
    out[k] = v;
  }
  return out;
}

/** SGDR (Loshchilov & Hutter): cosine cycles restarting at 1, the first `first * T` long, each `mult` times longer. */
function sgdrCycles(T: number, first: number, mult: number): { start: number; length: number }[] {
  const cycles: { start: number; length: number }[] = [];
  let start = 1;
  let length = Math.max(1, Math.round(first * T));
  while (start <= T) {
    cycles.push({ start, length });
    start += length;
    length = Math.max(1, Math.round(length * mult));
  }
  return cycles;
}

const SGDR_PARAMS: readonly ScheduleParam[] = [
  { name: 'first', default: 0.05 },
  { name: 'mult', default: 2 },
  { name: 'etamin', default: 0 },
];

const sgdr: Schedule = {
  name: 'sgdr',
  doc: 'SGDR warm restarts: cosine cycles, the first `first` x T steps long (T0), each `mult` times longer (Tmult)',
  params: SGDR_PARAMS,
  text: "etamin + (1 - etamin) * 0.5 * (1 + cos(pi * tcur / Ti)), tcur = steps since the last restart, Ti = this cycle's length",
  values: (T, params = {}) => {
    const p = checkParams('sgdr', SGDR_PARAMS, params);
    if (!((p.first as number) > 0) || !((p.mult as number) >= 1))
      throw new ScheduleError('sgdr needs first > 0 and mult >= 1');
    const out = new Float64Array(T);
    for (const c of sgdrCycles(T, p.first as number, p.mult as number)) {
      for (let k = 0; k < c.length && c.start + k <= T; k++) {
        out[c.start + k - 1] =
          (p.etamin as number) + (1 - (p.etamin as number)) * 0.5 * (1 + Math.cos((Math.PI * k) / c.length));
      }
    }
    return out;
  },
  cycleEnds: (T, params = {}) => {
    const p = checkParams('sgdr', SGDR_PARAMS, params);
    return sgdrCycles(T, p.first as number, p.mult as number)
      .map((c) => Math.min(T, c.start + c.length - 1))
      .filter((end, i, all) => all.indexOf(end) === i);
  },
};

const NOISY_PARAMS: readonly ScheduleParam[] = [
  { name: 'alpha', default: 0 },
  { name: 'beta', default: 0.001 },
  { name: 'periods', default: 0.5 },
  { name: 'variance', default: 1 },
  { name: 'decay', default: 0.55 },
];

const noisyLincos: Schedule = {
  name: 'noisylincos',
  doc: 'NOS noisy linear-cosine decay (TF noisy_linear_cosine_decay): lincos with N(0, variance/(1+s)^decay) added to the linear part',
  params: NOISY_PARAMS,
  text: '(alpha + (T - min(t - 1, T)) / T + eps) * 0.5 * (1 + cos(pi * 2 * periods * min(t - 1, T) / T)) + beta, eps ~ N(0, variance / (1 + (t - 1))^decay)',
  values: (T, params = {}, seed = 0) => {
    const p = checkParams('noisylincos', NOISY_PARAMS, params);
    const rng = seedrandom.alea(`nos:noisylincos:${seed}`);
    const out = new Float64Array(T);
    for (let t = 1; t <= T; t++) {
      const s = Math.min(t - 1, T);
      const z = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
      const eps = z * Math.sqrt((p.variance as number) / (1 + (t - 1)) ** (p.decay as number));
      const linear = (T - s) / T;
      const cosine = 0.5 * (1 + Math.cos(Math.PI * 2 * (p.periods as number) * (s / T)));
      out[t - 1] = ((p.alpha as number) + linear + eps) * cosine + (p.beta as number);
    }
    return out;
  },
};

const DOCS: Readonly<Record<string, string>> = {
  constant: 'a constant learning rate',
  step: 'step annealing: x gamma at `drops` evenly spaced points',
  transformer: "the Transformer's warmup then inverse-square-root decay",
  cosine: 'cosine annealing to etamin',
  triangular: 'cyclical (triangular) learning rate, Smith 2017',
  lincos: "NOS's linear-cosine decay",
};

let cache: ReadonlyMap<string, Schedule> | undefined;

export function schedules(): ReadonlyMap<string, Schedule> {
  if (cache === undefined) {
    const r = compileSchedules(SCHEDULE_SOURCE, '<schedules>');
    if (!r.ok) throw new Error(`the built-in schedules do not check:\n${formatDiagnostics(r)}`);
    const all: Schedule[] = r.rules.map((rule) => fromRule(rule, DOCS[rule.name ?? ''] ?? ''));
    all.push(sgdr, noisyLincos);
    cache = new Map(all.map((s) => [s.name, s]));
  }
  return cache;
}

/** A built-in schedule by name, or schedule text (an expression of t and T). */
export function findSchedule(spec: string): Schedule {
  const named = schedules().get(spec.trim());
  if (named) return named;
  if (/^[A-Za-z][A-Za-z0-9]*$/.test(spec.trim()) && spec.trim() !== 't' && spec.trim() !== 'T') {
    const hint = nearest(spec.trim(), [...schedules().keys()]);
    throw new ScheduleError(
      `unknown schedule '${spec.trim()}'${hint ? `; did you mean '${hint}'?` : ''} (built-ins: ${[...schedules().keys()].join(', ')})`,
    );
  }
  const r = compileSchedules(spec, '<schedule>');
  const rule = r.rules[r.rules.length - 1];
  if (!r.ok || rule === undefined) {
    const hint = [...schedules().keys()].join(', ');
    throw new ScheduleError(`invalid schedule (built-ins: ${hint})\n${formatDiagnostics(r)}`);
  }
  return fromRule(rule, 'custom');
}

/** Multipliers for a schedule spec `name` or `name:k=v,k=v`. */
export function parseScheduleSpec(spec: string): { schedule: Schedule; params: Record<string, number> } {
  const colon = spec.indexOf(':');
  const name =
    colon >= 0 && /^[A-Za-z][A-Za-z0-9]*$/.test(spec.slice(0, colon).trim()) ? spec.slice(0, colon).trim() : spec;
  const rest = name === spec ? '' : spec.slice(colon + 1);
  const schedule = findSchedule(name);
  const params: Record<string, number> = Object.create(null);
  for (const kv of rest.split(',').filter((x) => x.trim() !== '')) {
    const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.+?)\s*$/.exec(kv);
    const v = m ? parseNumberLiteral(m[2] as string) : undefined;
    if (!m || !v?.ok)
      throw new ScheduleError(`schedule parameter '${kv}' should be name=number${v && !v.ok ? ` (${v.message})` : ''}`);
    params[m[1] as string] = v.value;
  }
  // Validate names now, not in a worker.
  schedule.values(2, params);
  return { schedule, params };
}
