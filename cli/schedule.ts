/** `nos schedule NAME [--steps N] [--set k=v] [--out F.svg] [--json]`: a schedule's values and plot. */
import { parseScheduleSpec, ScheduleError, schedules } from '../evaluator/schedules.js';
import { lineChart } from '../search-results/plot.js';
import { type FlagSpecs, flag, has, intFlag, parseArgs, setFlags, UsageError } from './args.js';
import type { Io } from './io.js';
import { checkOutputFile, writeOutputFile } from './paths.js';

/** Most steps a schedule is computed over (as many as nos trains for), and listed with --json or --out. */
export const MAX_STEPS = 10_000_000;
export const MAX_LISTED = 1_000_000;

export const SCHEDULE_FLAGS: FlagSpecs = {
  steps: {
    type: 'string',
    value: 'N',
    description: `steps to compute the schedule over (default 1000; at most ${MAX_STEPS}, ${MAX_LISTED} with --json or --out)`,
  },
  set: { type: 'list', value: 'k=v', description: 'override a schedule parameter (repeatable)' },
  out: { type: 'string', value: 'F.svg', description: 'plot the schedule into this SVG file' },
  json: { type: 'bool', description: 'print {"schedule", "steps", "values", "cycleEnds"} as JSON' },
  seed: { type: 'string', value: 'S', description: 'seed of noisy schedules (default 0)' },
};

export function scheduleCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, SCHEDULE_FLAGS, { positionals: true });
  const spec = args.positionals.join(' ').trim();
  if (spec === '') {
    for (const s of schedules().values()) {
      io.out(
        `${s.name}${s.params.length ? `(${s.params.map((p) => `${p.name}=${p.default}`).join(', ')})` : ''}  -- ${s.doc}`,
      );
      io.out(`    m(t) = ${s.text}`);
    }
    return 0;
  }
  const steps = intFlag(args, 'steps', 1) ?? 1000;
  if (steps > MAX_STEPS) throw new UsageError(`--steps ${steps}: at most ${MAX_STEPS} (the most steps nos trains for)`);
  const listed = has(args, 'json') ? '--json' : flag(args, 'out') !== undefined ? '--out' : undefined;
  if (listed !== undefined && steps > MAX_LISTED)
    throw new UsageError(
      `--steps ${steps} with ${listed}: at most ${MAX_LISTED} (${listed} writes every value); without it, nos schedule prints a few`,
    );
  let values: Float64Array;
  let name: string;
  let cycleEnds: number[] = [];
  try {
    const { schedule, params } = parseScheduleSpec(spec);
    const all = { ...params, ...setFlags(args) };
    values = schedule.values(steps, all, intFlag(args, 'seed', 0) ?? 0);
    cycleEnds = schedule.cycleEnds?.(steps, all) ?? [];
    name = schedule.name;
  } catch (e) {
    if (e instanceof ScheduleError) throw new UsageError(e.message);
    throw e;
  }
  // A multiplier that is not a finite number would turn every weight into NaN: refuse it.
  const bad = values.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new UsageError(
      `schedule '${spec}' is ${values[bad]} at t=${bad + 1}${steps > 1 ? ` (of ${steps} steps)` : ''}: a learning-rate multiplier must be a finite number (check for a division by zero)`,
    );
  }
  const negative = values.findIndex((v) => v < 0);
  if (negative >= 0)
    io.err(
      `nos schedule: warning: the multiplier is negative at t=${negative + 1} (${values[negative]}): the learning rate would point uphill`,
    );
  const out = flag(args, 'out');
  if (out !== undefined) {
    checkOutputFile(out);
    const x = Array.from({ length: steps }, (_, i) => i + 1);
    writeOutputFile(
      out,
      lineChart([{ name, x, y: Array.from(values) }], {
        title: `Schedule ${name} over ${steps} steps`,
        xLabel: 'step t',
        yLabel: 'learning-rate multiplier',
      }),
      'the plot',
    );
    io.err(`wrote ${out}`);
  }
  if (has(args, 'json')) io.out(JSON.stringify({ schedule: name, steps, values: Array.from(values), cycleEnds }));
  else if (out === undefined) {
    const marks = [1, 2, Math.round(steps / 4), Math.round(steps / 2), Math.round((3 * steps) / 4), steps].filter(
      (t, i, a) => t >= 1 && a.indexOf(t) === i,
    );
    for (const t of marks) io.out(`t=${String(t).padStart(6)}  ${(values[t - 1] as number).toPrecision(6)}`);
    if (cycleEnds.length > 0) io.out(`cycles end at ${cycleEnds.join(', ')}`);
  }
  return 0;
}
