/**
 * Flags through node:util's parseArgs, with what the contract adds: unknown flags are user
 * errors with a suggestion, a flag given twice is an error unless it may repeat, values and
 * positionals may start with a dash (`--lr -0.5`, `nos check "-g"`), and `--help` is answered
 * from the same specs the command parses with (help text is generated, never written by hand).
 */
import { parseArgs as nodeParseArgs } from 'node:util';
import { BACKEND_NAMES } from '../dsl/compile/index.js';
import { nearest } from '../dsl/diagnostics.js';
import { parseNumberLiteral } from '../dsl/parser.js';
import { shown } from '../util/terminal.js';

export class UsageError extends Error {
  /** The class's own name (subclasses included), as `instanceof`-free callers and logs read it. */
  override get name(): string {
    return this.constructor.name;
  }
}

export interface FlagSpec {
  /** 'bool' takes no value; 'string' takes one; 'list' may repeat. */
  readonly type: 'bool' | 'string' | 'list';
  /** One line for --help (flags common to many commands have a default: see COMMON). */
  readonly description?: string;
  /** The value's name in --help (`--task ID`); default VALUE. */
  readonly value?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, string[]>;
  /** The specs parsed against: reading a flag outside them is a bug (see flag()). */
  readonly spec: FlagSpecs;
}

/** Thrown by parseArgs on --help / -h: the caller prints help generated from `spec`. */
export class HelpRequested extends Error {
  constructor(readonly spec: FlagSpecs) {
    super('help requested');
  }
}

/** Descriptions of flags that mean the same in every command that takes them. */
const COMMON: Readonly<Record<string, { description: string; value?: string }>> = {
  json: { description: 'print one JSON document on stdout (progress and logs go to stderr)' },
  file: { description: 'read rules from a .nos file', value: 'F.nos' },
  rule: { description: 'a built-in rule name, rule text, or a .nos file', value: 'RULE' },
  lr: { description: "learning rate that multiplies the rule's direction", value: 'X' },
  input: { description: 'JSON file {"w0": [...], "grads": [[...], ...]}', value: 'F.json' },
  set: { description: 'override a hyperparameter (repeatable)', value: 'k=v' },
  seed: { description: 'random seed', value: 'S' },
  backend: { description: `back end that runs the rule: ${BACKEND_NAMES.join(', ')}`, value: 'NAME' },
  dtype: { description: 'float type of the weights and state: float32 or float64', value: 'TYPE' },
  out: { description: 'write the output here', value: 'PATH' },
  steps: { description: 'training steps', value: 'N' },
  run: { description: "the search run's name", value: 'NAME' },
};

/** The help line parts of a flag: `--name VALUE` and its description. */
export function describeFlag(name: string, spec: FlagSpec): { usage: string; description: string } {
  const common = COMMON[name];
  const description = spec.description ?? common?.description ?? '';
  const value = spec.value ?? common?.value ?? 'VALUE';
  const usage = spec.type === 'bool' ? `--${name}` : `--${name} ${value}`;
  return {
    usage,
    description: spec.type === 'list' && !/repeatable/.test(description) ? `${description} (repeatable)` : description,
  };
}

/** Help for a command: usage line, summary, and one line per flag from the specs. */
export function formatHelp(command: string, usage: string, summary: string, spec: FlagSpecs): string {
  const rows = Object.entries(spec).map(([name, s]) => describeFlag(name, s));
  rows.push({ usage: '-h, --help', description: 'this help' });
  const width = Math.min(28, Math.max(...rows.map((r) => r.usage.length)) + 2);
  const lines = rows.map(
    (r) => `  ${r.usage.padEnd(width)}${r.usage.length >= width ? `\n  ${' '.repeat(width)}` : ''}${r.description}`,
  );
  return [
    `usage: nos ${command}${usage ? ` ${usage}` : ''}${Object.keys(spec).length > 0 ? ' [flags]' : ''}`,
    '',
    summary,
    '',
    'flags:',
    ...lines,
  ].join('\n');
}

function nodeOptions(spec: FlagSpecs): Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const [name, s] of Object.entries(spec))
    out[name] =
      s.type === 'bool' ? { type: 'boolean' } : { type: 'string', ...(s.type === 'list' ? { multiple: true } : {}) };
  return out;
}

/**
 * Parse flags against `spec`. Positional arguments are an error unless `positionals` allows
 * them (`nos check <rule text>`, `nos schedule <name>`). `--help` or `-h` (before a `--`)
 * throws HelpRequested.
 */
export function parseArgs(
  argv: readonly string[],
  spec: FlagSpecs,
  options: { positionals?: boolean } = {},
): ParsedArgs {
  const terminator = argv.indexOf('--');
  const before = terminator < 0 ? argv : argv.slice(0, terminator);
  if (before.includes('--help') || before.includes('-h')) throw new HelpRequested(spec);
  // Not strict: node's strict mode refuses values that start with a dash and treats `-g` as a
  // short option; the checks it would make are made below, with the contract's messages.
  const { tokens } = nodeParseArgs({
    args: [...argv],
    options: nodeOptions(spec),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  const positionalAt = new Set<number>();
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      positionals.push(t.value);
      positionalAt.add(t.index);
      continue;
    }
    const s = Object.hasOwn(spec, t.name) ? spec[t.name] : undefined;
    // `-g`, `-1`, `--5`: rule text and numbers, not flags (as before node's parser).
    if (t.rawName.startsWith('-') && !t.rawName.startsWith('--')) {
      if (!positionalAt.has(t.index)) positionals.push(argv[t.index] as string);
      positionalAt.add(t.index);
      continue;
    }
    if (s === undefined && /^\d/.test(t.name)) {
      positionals.push(argv[t.index] as string);
      positionalAt.add(t.index);
      continue;
    }
    if (s === undefined) {
      const hint = nearest(t.name, Object.keys(spec));
      throw new UsageError(`unknown flag --${shown(t.name, 40)}${hint ? `; did you mean --${hint}?` : ''}`);
    }
    let value: string;
    if (s.type === 'bool') {
      if (t.inlineValue) throw new UsageError(`--${t.name} takes no value`);
      value = 'true';
    } else {
      if (t.value === undefined) throw new UsageError(`--${t.name} needs a value`);
      value = t.value;
    }
    const list = flags.get(t.name) ?? [];
    if (s.type !== 'list' && list.length > 0) throw new UsageError(`--${t.name} is given more than once`);
    list.push(value);
    flags.set(t.name, list);
  }
  if (!options.positionals && positionals.length > 0)
    throw new UsageError(`unexpected argument '${shown(positionals[0] as string)}'`);
  return { positionals, flags, spec };
}

function declared(args: ParsedArgs, name: string): void {
  if (!Object.hasOwn(args.spec, name))
    throw new Error(`the command reads --${name}, which its flag specs do not declare`);
}

export function flag(args: ParsedArgs, name: string): string | undefined {
  declared(args, name);
  return args.flags.get(name)?.[0];
}

export function has(args: ParsedArgs, name: string): boolean {
  declared(args, name);
  return args.flags.has(name);
}

export function numberFlag(args: ParsedArgs, name: string): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const x = parseNumberLiteral(v);
  if (!x.ok) throw new UsageError(`--${name} must be a finite number: ${x.message}`);
  return x.value;
}

export function intFlag(args: ParsedArgs, name: string, min = 0): number | undefined {
  const x = numberFlag(args, name);
  if (x !== undefined && (!Number.isSafeInteger(x) || x < min))
    throw new UsageError(`--${name} must be an integer >= ${min}, got '${shown(flag(args, name) ?? '')}'`);
  return x;
}

/** `--set k=v` pairs as numbers. */
export function setFlags(args: ParsedArgs): Record<string, number> {
  declared(args, 'set');
  const out: Record<string, number> = Object.create(null);
  for (const kv of args.flags.get('set') ?? []) {
    const m = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(kv.trim());
    if (!m) throw new UsageError(`--set expects name=value, got '${shown(kv, 60)}'`);
    const v = parseNumberLiteral(m[2] as string);
    if (!v.ok) throw new UsageError(`--set ${m[1]}: ${v.message}`);
    if (Object.hasOwn(out, m[1] as string)) throw new UsageError(`--set ${m[1]} is given more than once`);
    out[m[1] as string] = v.value;
  }
  return out;
}
