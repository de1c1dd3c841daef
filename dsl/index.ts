/**
 * The front door of the update-rule language: text in, checked rules or located
 * diagnostics out. Never throws on bad input.
 */
import { type CheckedRule, Checker, type Problem } from './check.js';
import { clipMessage, type Diagnostic, formatDiagnostic, SourceText } from './diagnostics.js';
import { LIBRARY_SOURCE } from './library.js';
import { parseSource } from './parser.js';

export type { CheckedRule, ParamValues, RangeViolation, RuleParam } from './check.js';
export { BindError, bindParams, LIMITS, rangeViolations, ruleHash } from './check.js';
export type { Diagnostic } from './diagnostics.js';
export { clipLine, formatDiagnostic, SourceText } from './diagnostics.js';
export type { NumberLiteral } from './parser.js';
export { parseNumberLiteral } from './parser.js';

/** Most diagnostics one compile returns; the rest are counted in a last one. */
export const MAX_DIAGNOSTICS = 50;
export type { Node } from './ir.js';
export { printNode } from './ir.js';

export interface CompileResult {
  readonly ok: boolean;
  readonly rules: readonly CheckedRule[];
  readonly diagnostics: readonly Diagnostic[];
  readonly source: SourceText;
}

function toDiagnostic(
  src: SourceText,
  p: { code: Diagnostic['code']; severity?: 'error' | 'warning'; message: string },
  offset: number,
  length: number,
): Diagnostic {
  return {
    code: p.code,
    severity: p.severity ?? 'error',
    message: clipMessage(p.message),
    span: src.span(offset, length),
    source: src.name,
  };
}

/** The first MAX_DIAGNOSTICS, and one that says how many more there were. */
function capped(src: SourceText, diagnostics: Diagnostic[]): Diagnostic[] {
  if (diagnostics.length <= MAX_DIAGNOSTICS) return diagnostics;
  const kept = diagnostics.slice(0, MAX_DIAGNOSTICS);
  const last = kept[kept.length - 1] as Diagnostic;
  const more = diagnostics.length - MAX_DIAGNOSTICS;
  return [
    ...kept,
    {
      code: 'limit',
      severity: 'error',
      message: `${more} more problem${more === 1 ? '' : 's'} not shown`,
      span: last.span,
      source: src.name,
    },
  ];
}

function compileWith(
  text: string,
  sourceName: string,
  lib: ReadonlyMap<string, CheckedRule>,
  mode: 'rule' | 'schedule' = 'rule',
): CompileResult {
  const src = new SourceText(sourceName, text);
  try {
    const parsed = parseSource(text);
    if (parsed.file === undefined) {
      const diagnostics = capped(
        src,
        parsed.problems.map((p) => toDiagnostic(src, p, p.offset, p.length)),
      );
      return { ok: false, rules: [], diagnostics, source: src };
    }
    const checker = new Checker(parsed.file.rules, lib, mode);
    const rules = checker.checkAll(parsed.file.rules);
    const diagnostics = checker.problems.map((p: Problem) =>
      toDiagnostic(src, p, p.range.start, p.range.end - p.range.start),
    );
    diagnostics.sort((a, b) => a.span.offset - b.span.offset);
    return {
      ok: !diagnostics.some((d) => d.severity === 'error'),
      rules,
      diagnostics: capped(src, diagnostics),
      source: src,
    };
  } catch (e) {
    // A bug, not bad input: still report it located instead of crashing the caller.
    const message = clipMessage(`internal error while checking: ${e instanceof Error ? e.message : String(e)}`);
    return {
      ok: false,
      rules: [],
      diagnostics: [{ code: 'internal', severity: 'error', message, span: src.span(0), source: sourceName }],
      source: src,
    };
  }
}

let libraryCache: ReadonlyMap<string, CheckedRule> | undefined;

/** The built-in rules by name, in library order. */
export function library(): ReadonlyMap<string, CheckedRule> {
  if (libraryCache === undefined) {
    const r = compileWith(LIBRARY_SOURCE, '<library>', new Map());
    if (!r.ok)
      throw new Error(
        `the built-in library does not check:\n${r.diagnostics.map((d) => formatDiagnostic(d, r.source)).join('\n')}`,
      );
    libraryCache = new Map(r.rules.map((rule) => [rule.name as string, rule]));
  }
  return libraryCache;
}

/** Parse and check rule text (one bare expression, or `rule` definitions). */
export function compileRules(text: string, sourceName = '<arg>'): CompileResult {
  return compileWith(text, sourceName, library());
}

/**
 * Parse and check schedule text: scalar expressions of t (the step, from 1), T (the run's
 * length) and parameters, that multiply the learning rate. Schedules may use each other.
 */
export function compileSchedules(
  text: string,
  sourceName = '<schedule>',
  known: ReadonlyMap<string, CheckedRule> = new Map(),
): CompileResult {
  return compileWith(text, sourceName, known, 'schedule');
}

export function formatDiagnostics(result: Pick<CompileResult, 'diagnostics' | 'source'>): string {
  return result.diagnostics.map((d) => formatDiagnostic(d, result.source)).join('\n');
}

export type RuleLookup =
  | { readonly ok: true; readonly rule: CheckedRule }
  | { readonly ok: false; readonly message: string };

/** A built-in rule by name, or rule text that defines exactly one rule (the last one, if several). */
export function lookupRule(nameOrText: string, sourceName = '<arg>'): RuleLookup {
  const lib = library().get(nameOrText.trim());
  if (lib) return { ok: true, rule: lib };
  const r = compileRules(nameOrText, sourceName);
  if (!r.ok) return { ok: false, message: formatDiagnostics(r) };
  const rule = r.rules[r.rules.length - 1];
  if (rule === undefined) return { ok: false, message: `${sourceName}: error: no rule in the text` };
  return { ok: true, rule };
}
