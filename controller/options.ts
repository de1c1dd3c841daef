/**
 * The library's options as its callers see them: unknown names are refused (with the nearest
 * known name, or the option a CLI flag of that name sets), and errors are worded in the
 * library's terms. The controller words its setting errors once, for the CLI (`--budget-unit`,
 * `nos tasks lists them`), and each carries the field it is about; the CLI prints them as they
 * are, and `evaluate()` / `search()` reword them here with option names (`budgetUnit`).
 */
import { nearest } from '../dsl/diagnostics.js';
import { StoreError } from '../search-results/store.js';
import { RunConfigError } from './run.js';

/** A library function was given an option it does not know (a TypeError, as for a wrong argument). */
export class UnknownOptionError extends TypeError {
  override readonly name = 'UnknownOptionError';

  constructor(
    /** The function called (`evaluate`, `search`). */
    readonly fn: string,
    /** The unknown option, as given (`lrs`, `funnel.longtop`). */
    readonly option: string,
    /** The known option it probably meant, if any. */
    readonly suggestion: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** CLI flags (without dashes) and the library options they set: `nos search` and `search()`. */
export const SEARCH_FLAG_OPTIONS: Readonly<Record<string, string>> = {
  task: 'task',
  budget: 'budget',
  'budget-unit': 'budgetUnit',
  strategy: 'strategy',
  workers: 'workers',
  device: 'device',
  seed: 'seed',
  run: 'run',
  resume: 'resume',
  batch: 'batchSize',
  staleness: 'staleness',
  'stand-in': 'standIn',
  groups: 'groups',
  steps: 'steps',
  'warm-start': 'warmStart',
  space: 'space',
  funnel: 'funnel',
  promote: 'funnel.promote',
  'rung-seeds': 'funnel.seeds',
  'long-top': 'funnel.longTop',
  'long-factor': 'funnel.longFactor',
  finalists: 'funnel.finalists',
  transfer: 'funnel.transfer',
  baseline: 'funnel.baseline',
  suite: 'suite',
  aggregate: 'suite.aggregate',
  'search-workloads': 'suite.search',
};

/** CLI flags (without dashes) and the library options they set: `nos eval` and `evaluate()`. */
export const EVAL_FLAG_OPTIONS: Readonly<Record<string, string>> = {
  rules: 'rule',
  task: 'task',
  seeds: 'seeds',
  steps: 'steps',
  lrs: 'lrGrid',
  workers: 'workers',
  device: 'device',
  set: 'params',
  baseline: 'baseline',
  schedule: 'schedule',
  'weight-decay': 'weightDecay',
  'batch-growth': 'batchGrowth',
  analyze: 'analyze',
  'label-noise': 'labelNoise',
};

/** The option a flag sets: from the table, else the flag in camelCase (`stand-in` -> `standIn`). */
export function optionOf(flag: string, table: Readonly<Record<string, string>>): string {
  return table[flag] ?? flag.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Whole phrases that say what to type on the command line, in the library's words. */
const PHRASES: readonly (readonly [RegExp, string])[] = [
  [
    /pass --resume to continue it, or pick another --run/g,
    'pass resume: true to continue it, or choose another run name',
  ],
  [/--resume needs --run NAME/g, 'resume: true needs run (the name of the run to continue)'],
  [/--run NAME is required/g, "run (the run's name) is required"],
  [/\(nos tasks lists them\)/g, '(TASKS lists them)'],
  [/\(nos rules lists them\)/g, '(library() lists the built-in rules)'],
  [/\bdrop --([a-z][a-z0-9-]*)/g, 'leave out --$1'],
  [/another --run\b/g, 'another run name'],
];

/** A message written with CLI flags, with option names instead (`--long-top 3` -> `funnel.longTop 3`). */
export function libraryWording(text: string, table: Readonly<Record<string, string>>): string {
  let out = text;
  for (const [from, to] of PHRASES) out = out.replace(from, to);
  return out.replace(/(^|[^-\w])--([a-z][a-z0-9-]*)/g, (_m, before: string, flag: string) => {
    return `${before}${optionOf(flag, table)}`;
  });
}

/**
 * An error on its way out of `evaluate()` or `search()`, in the library's terms: a setting's
 * RunConfigError anew with option names (and `option` set), a store's error reworded in place
 * (its class and stack frames kept); anything else as it is.
 */
export function inLibraryTerms(e: unknown, table: Readonly<Record<string, string>>): unknown {
  if (e instanceof RunConfigError) {
    if (e.option !== undefined) return e;
    const out = new RunConfigError(e.field, libraryWording(e.message, table), { option: optionOf(e.field, table) });
    out.stack = `${out.name}: ${out.message}\n${(e.stack ?? '').split('\n').slice(1).join('\n')}`;
    return out;
  }
  if (e instanceof StoreError) {
    const worded = libraryWording(e.message, table);
    if (worded !== e.message) {
      e.stack = e.stack?.replace(e.message, worded);
      e.message = worded;
    }
  }
  return e;
}

/** The shape of a function's options: each known name, and for an object-valued one, its own. */
export type OptionNames = readonly (string | readonly [string, readonly string[]])[];

/**
 * Refuse options a function does not know, naming the nearest known one (or, for a CLI flag's
 * name such as `lrs`, the option it sets: `lrGrid`). Checks one level of nesting.
 */
export function checkOptionNames(
  fn: string,
  given: object,
  known: OptionNames,
  table: Readonly<Record<string, string>>,
): void {
  const check = (
    value: object,
    names: readonly string[],
    prefix: string,
    nested: ReadonlyMap<string, readonly string[]>,
  ) => {
    for (const key of Object.keys(value)) {
      if (names.includes(key)) {
        const inner = nested.get(key);
        const v = (value as Record<string, unknown>)[key];
        if (inner !== undefined && typeof v === 'object' && v !== null && !Array.isArray(v))
          check(v, inner, `${prefix}${key}.`, new Map());
        continue;
      }
      const full = `${prefix}${key}`;
      const kebab = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      const viaFlag = [key, kebab].map((k) => table[k]).find((o) => o !== undefined && o !== full);
      const suggestion = viaFlag ?? nearest(key, names);
      const all = names.map((n) => `${prefix}${n}`);
      throw new UnknownOptionError(
        fn,
        full,
        suggestion === undefined ? undefined : suggestion.startsWith(prefix) ? suggestion : `${prefix}${suggestion}`,
        `${fn}(): unknown option '${full}'${
          viaFlag !== undefined
            ? `; did you mean '${viaFlag}'? (the CLI's --${table[key] !== undefined ? key : kebab} is ${viaFlag} here)`
            : suggestion !== undefined
              ? `; did you mean '${prefix}${suggestion}'?`
              : ''
        } (options: ${all.join(', ')})`,
      );
    }
  };
  const names = known.map((k) => (typeof k === 'string' ? k : k[0]));
  const nested = new Map(known.filter((k): k is readonly [string, readonly string[]] => typeof k !== 'string'));
  check(given, names, '', nested);
}
