/** A small, strict argument parser: unknown flags are user errors with a suggestion. */
import { nearest } from '../dsl/diagnostics.js';

export class UsageError extends Error {}

export interface FlagSpec {
  /** 'bool' takes no value; 'string' takes one; 'list' may repeat. */
  readonly type: 'bool' | 'string' | 'list';
}

export interface ParsedArgs {
  readonly positionals: string[];
  readonly flags: Map<string, string[]>;
}

/**
 * Parse flags against `spec`. Positional arguments are an error unless `positionals` allows
 * them (`nos check <rule text>`, `nos schedule <name>`).
 */
export function parseArgs(argv: readonly string[], spec: Readonly<Record<string, FlagSpec>>, options: { positionals?: boolean } = {}): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('--') || a === '--' || /^--?\d/.test(a)) {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const s = spec[name];
    if (s === undefined) {
      const hint = nearest(name, Object.keys(spec));
      throw new UsageError(`unknown flag --${name}${hint ? `; did you mean --${hint}?` : ''}`);
    }
    let value: string;
    if (s.type === 'bool') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      value = 'true';
    } else if (eq >= 0) value = a.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
      i++;
    }
    const list = flags.get(name) ?? [];
    if (s.type !== 'list' && list.length > 0) throw new UsageError(`--${name} is given more than once`);
    list.push(value);
    flags.set(name, list);
  }
  if (!options.positionals && positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  return { positionals, flags };
}

export function flag(args: ParsedArgs, name: string): string | undefined {
  return args.flags.get(name)?.[0];
}

export function has(args: ParsedArgs, name: string): boolean {
  return args.flags.has(name);
}

export function numberFlag(args: ParsedArgs, name: string): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`--${name} must be a finite number, got '${v}'`);
  return x;
}

export function intFlag(args: ParsedArgs, name: string, min = 0): number | undefined {
  const x = numberFlag(args, name);
  if (x !== undefined && (!Number.isInteger(x) || x < min)) throw new UsageError(`--${name} must be an integer >= ${min}, got '${flag(args, name)}'`);
  return x;
}

/** `--set k=v` pairs as numbers. */
export function setFlags(args: ParsedArgs): Record<string, number> {
  const out: Record<string, number> = {};
  for (const kv of args.flags.get('set') ?? []) {
    const m = /^([A-Za-z][A-Za-z0-9]*)=(.+)$/.exec(kv.trim());
    if (!m) throw new UsageError(`--set expects name=value, got '${kv}'`);
    const v = Number(m[2]);
    if (!Number.isFinite(v)) throw new UsageError(`--set ${m[1]}: '${m[2]}' is not a finite number`);
    out[m[1] as string] = v;
  }
  return out;
}
