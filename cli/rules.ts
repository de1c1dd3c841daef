/** `nos check`, `nos rules`, `nos trace`. */
import {
  BindError,
  type CheckedRule,
  compileRules,
  formatDiagnostics,
  LIMITS,
  library,
  lookupRule,
  printNode,
} from '../dsl/index.js';
import {
  BACKENDS,
  backendByName,
  type CompiledRule,
  compileRule,
  type DeviceKernel,
  prepareBackend,
  releaseBackend,
  traceCompiledAsync,
  type VectorKernel,
} from '../dsl/compile/index.js';
import '../dsl/compile/node-backends.js';
import type { Dtype } from '../dsl/interp.js';
import { LIBRARY_DOCS } from '../dsl/library.js';
import { flag, has, numberFlag, type ParsedArgs, parseArgs, UsageError } from './args.js';
import { NOS_SPACE } from '../primitives/nos-space.js';
import { ALIASES, CONTEXT_PARAMS, LEAVES, PRIMITIVES } from '../primitives/registry.js';
import { type Io, readUserFile, ruleOverrides } from './io.js';
import { shown } from '../util/terminal.js';

/** A rule file: at most the language's source limit, read without trusting the path. */
function readRuleFile(path: string): string {
  return readUserFile(path, { maxChars: LIMITS.sourceChars, what: 'rule text' });
}

function ruleJson(r: CheckedRule): { name: string | null; params: Record<string, number>; text: string; hash: string } {
  return {
    name: r.name ?? null,
    params: Object.fromEntries(r.params.map((p) => [p.name, p.default])),
    text: r.canonical,
    hash: r.hash,
  };
}

export function checkCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { file: { type: 'string' }, json: { type: 'bool' } }, { positionals: true });
  const file = flag(args, 'file');
  if (file !== undefined && args.positionals.length > 0) throw new UsageError('give rule text or --file, not both');
  if (file === undefined && args.positionals.length === 0)
    throw new UsageError('nothing to check: give rule text, e.g. nos check "sign(g) * g", or --file F.nos');
  const text = file !== undefined ? readRuleFile(file) : args.positionals.join(' ');
  const result = compileRules(text, file ?? '<arg>');
  if (has(args, 'json')) {
    io.out(
      JSON.stringify({
        ok: result.ok,
        rules: result.ok ? result.rules.map(ruleJson) : [],
        diagnostics: result.diagnostics.map((d) => ({
          code: d.code,
          severity: d.severity,
          message: d.message,
          source: d.source,
          line: d.span.line,
          col: d.span.col,
        })),
      }),
    );
  } else if (result.ok) {
    for (const r of result.rules) io.out(r.canonical);
  } else io.err(formatDiagnostics(result));
  return result.ok ? 0 : 1;
}

export function rulesCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { json: { type: 'bool' } });
  const rules = [...library().values()];
  if (has(args, 'json')) {
    io.out(
      JSON.stringify(
        rules.map((r) => ({
          name: r.name,
          params: ruleJson(r).params,
          text: r.canonical,
          doc: LIBRARY_DOCS[r.name ?? ''] ?? '',
        })),
      ),
    );
    return 0;
  }
  for (const r of rules) {
    const params = r.params.map((p) => `${p.name}=${p.default}`).join(', ');
    io.out(`${r.name}${params ? `  (${params})` : ''}  -- ${LIBRARY_DOCS[r.name ?? ''] ?? ''}`);
    io.out(`    d = ${printNode(r.expr)}`);
  }
  return 0;
}

export function primitivesCommand(argv: readonly string[], io: Io): number {
  const args = parseArgs(argv, { json: { type: 'bool' } });
  const prims = PRIMITIVES.map((p) => ({
    name: p.name,
    category: p.category,
    args: p.argNames.map((n, i) => ({ name: n, kind: p.argKinds[i] })),
    operator: p.operator?.symbol ?? null,
    doc: p.doc,
  }));
  if (has(args, 'json')) {
    io.out(JSON.stringify({ primitives: prims, leaves: LEAVES, aliases: ALIASES, space: NOS_SPACE }));
    return 0;
  }
  io.out('values:');
  for (const l of LEAVES) io.out(`  ${l.name.padEnd(22)} ${l.doc}`);
  for (const [name, p] of CONTEXT_PARAMS) io.out(`  ${name.padEnd(22)} ${p.doc} (default ${p.default})`);
  io.out('  e, pi                  constants');
  io.out('functions and operators:');
  for (const p of prims) {
    const sig = p.operator
      ? p.doc
      : p.args.length === 0
        ? p.name
        : `${p.name}(${p.args.map((a) => (a.kind === 'scalar' ? `${a.name}:scalar` : a.name)).join(', ')})`;
    io.out(`  ${sig.padEnd(22)} ${p.operator ? '' : p.doc}`.trimEnd());
  }
  io.out('  prev(s)                the value of a stateful expression s before this step');
  io.out('NOS short names:');
  for (const a of ALIASES) io.out(`  ${a.name.padEnd(22)} ${a.text}  -- ${a.doc}`);
  return 0;
}

/** A rule from `--rule`: a built-in name, rule text, or the path of a .nos file (its last rule). */
export function ruleFromArgs(args: ParsedArgs): CheckedRule {
  const spec = flag(args, 'rule');
  if (spec === undefined) throw new UsageError('--rule is required (a built-in name such as adam, or rule text)');
  const found = /\.nos$/.test(spec.trim()) ? lookupRule(readRuleFile(spec.trim()), spec.trim()) : lookupRule(spec);
  if (!found.ok) throw new UsageError(`invalid rule\n${found.message}`);
  return found.rule;
}

export interface TraceFile {
  w0: number[];
  grads: number[][];
}

function isFiniteArray(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => typeof v === 'number' && Number.isFinite(v));
}

export function readTraceInput(path: string): TraceFile {
  const text = readUserFile(path, { what: 'the trace input' });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path}: not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (data === null || typeof data !== 'object')
    throw new UsageError(`${path}: expected an object {"w0": [...], "grads": [[...], ...]}`);
  const { w0, grads } = data as { w0?: unknown; grads?: unknown };
  if (!isFiniteArray(w0) || w0.length === 0)
    throw new UsageError(`${path}: "w0" must be a non-empty array of finite numbers`);
  if (!Array.isArray(grads)) throw new UsageError(`${path}: "grads" must be an array of gradient vectors`);
  grads.forEach((row: unknown, i) => {
    if (!isFiniteArray(row)) throw new UsageError(`${path}: grads[${i}] must be an array of finite numbers`);
    if (row.length !== w0.length)
      throw new UsageError(`${path}: grads[${i}] has ${row.length} numbers but w0 has ${w0.length}`);
  });
  return { w0, grads: grads as number[][] };
}

export async function traceCommand(argv: readonly string[], io: Io): Promise<number> {
  const args = parseArgs(argv, {
    rule: { type: 'string' },
    lr: { type: 'string' },
    input: { type: 'string' },
    set: { type: 'list' },
    seed: { type: 'string' },
    backend: { type: 'string' },
    dtype: { type: 'string' },
    json: { type: 'bool' },
  });
  const rule = ruleFromArgs(args);
  // Checked here, so every back end gets values that are known, decimal and in range.
  const overrides = ruleOverrides(rule, args.flags.get('set') ?? []);
  const lr = numberFlag(args, 'lr');
  if (lr === undefined) throw new UsageError('--lr is required');
  const inputPath = flag(args, 'input');
  if (inputPath === undefined)
    throw new UsageError('--input F.json is required ({"w0": [...], "grads": [[...], ...]})');
  const input = readTraceInput(inputPath);
  const seed = numberFlag(args, 'seed') ?? 0;
  const name = flag(args, 'backend') ?? 'js';
  const backend = backendByName(name);
  if (backend === undefined)
    throw new UsageError(
      `back end '${shown(name)}' is not available in this build; the back ends are:\n${BACKENDS.map((b) => `  ${b.name.padEnd(7)}${b.summary}`).join('\n')}`,
    );
  const dtype = flag(args, 'dtype') ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float64')
    throw new UsageError(`--dtype must be float32 or float64, got '${shown(dtype)}'`);
  // A back end with a fallback runs the rule there (and says so); the others refuse.
  if (!backend.dtypes.includes(dtype as Dtype) && backend.fallback === undefined)
    throw new UsageError(`the ${name} back end computes in float32 only`);
  try {
    try {
      const note = await prepareBackend(backend.name);
      if (note !== '') io.err(note);
    } catch (e) {
      throw new UsageError(`the ${name} back end is not available here: ${e instanceof Error ? e.message : String(e)}`);
    }
    let compiled: CompiledRule<VectorKernel> | CompiledRule<DeviceKernel>;
    try {
      compiled = compileRule(rule, { backend: backend.name, params: overrides, dtype: dtype as Dtype });
    } catch (e) {
      if (e instanceof BindError) throw new UsageError(e.message);
      throw e;
    }
    if (compiled.fallbackReason)
      io.err(
        `note: ${compiled.fallbackReason}; using ${compiled.backend === 'interp' ? 'the interpreter' : `the ${compiled.backend} back end`}`,
      );
    const weights = await traceCompiledAsync(compiled, input, lr, { seed, dtype: dtype as Dtype });
    checkFinite(weights, lr);
    if (has(args, 'json')) io.out(JSON.stringify({ weights }));
    else {
      io.err(`rule: ${rule.canonical}\nback end: ${compiled.backend} (${dtype}), lr ${lr}`);
      printWeights(io, weights);
    }
    return 0;
  } finally {
    await releaseBackend(backend.name);
  }
}

/**
 * Weights that stopped being numbers are an error that says where and why (JSON has no NaN: they
 * would print as null, and `adam` with beta1 = 1, an allowed value, divides by zero).
 */
function checkFinite(weights: readonly (readonly number[])[], lr: number): void {
  for (const [step, row] of weights.entries()) {
    const i = row.findIndex((x) => !Number.isFinite(x));
    if (i < 0) continue;
    throw new UsageError(
      `the weights are not finite from step ${step + 1} on (w[${i}] = ${row[i]}): the rule's direction, times lr ${lr}, is not a finite number with these hyperparameters and gradients (a division by zero, such as a bias correction 1 - beta^t with beta = 1, or an overflow)`,
    );
  }
}

function printWeights(io: Io, weights: readonly number[][]): void {
  weights.forEach((row, i) => {
    io.out(`step ${String(i + 1).padStart(4)}: ${row.map((x) => x.toPrecision(8)).join(' ')}`);
  });
}
