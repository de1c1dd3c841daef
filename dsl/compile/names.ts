/**
 * Names and literals for generated source. Everything that reaches emitted TypeScript or
 * Python is a generated name, a validated identifier, a number literal of a finite value,
 * or text that passed `commentText` / a string-literal encoder.
 */
import type { CheckedRule } from '../check.js';
import { printNode } from '../ir.js';
import { readableExpr } from '../readable.js';

/** Numbers as source literals: validated finite, shortest round-trip form. */
export function numberLiteral(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`cannot emit non-finite number ${v}`);
  return Object.is(v, -0) ? '-0.0' : String(v);
}

const IDENT = /^[A-Za-z][A-Za-z0-9]*$/;

/** A rule's hyperparameter names, checked to be plain identifiers (no underscores). */
export function checkedParamNames(rule: Pick<CheckedRule, 'params'>): string[] {
  return rule.params.map((p) => {
    if (!IDENT.test(p.name)) throw new Error(`hyperparameter name '${p.name}' is not a plain identifier`);
    if (!Number.isFinite(p.default)) throw new Error(`hyperparameter '${p.name}' has a non-finite default`);
    return p.name;
  });
}

/**
 * A class name for an exported optimizer: `name` when given (`--name`), else the rule's name
 * (`powersign-ld` -> `PowersignLdOptimizer`), else one derived from the rule's hash
 * (`Rule3fa2b1c4Optimizer`), so two exported rules never register the same class.
 */
export function className(rule: Pick<CheckedRule, 'name' | 'hash'>, name?: string): string {
  const from = name ?? rule.name;
  if (from === undefined) return `Rule${rule.hash.slice(0, 8)}Optimizer`;
  const parts = from.split(/[^A-Za-z0-9]+/).filter((p) => p !== '');
  const stem = parts.map((p) => (p[0] as string).toUpperCase() + p.slice(1)).join('');
  if (stem === '') return `Rule${rule.hash.slice(0, 8)}Optimizer`;
  const safe = /^[A-Za-z]/.test(stem) ? stem : `Rule${stem}`;
  return safe.endsWith('Optimizer') ? safe : `${safe}Optimizer`;
}

/**
 * Text for a comment or docstring: only characters that cannot end a comment, a docstring or
 * a line (no quotes, backslashes, `*` followed by `/`, newlines). Anything else is dropped,
 * so untrusted text (a stored run's task or strategy) stays inert; the exact text goes into
 * a string literal through `stringLiteral`.
 */
export function commentText(text: string, max = 300): string {
  const kept = text.replace(/[^A-Za-z0-9 .,:;()[\]{}#=+\-^/<>@!?%&|~]/g, '');
  return kept.length > max ? `${kept.slice(0, max)}...` : kept;
}

/** A rule's canonical text in a comment: the language's alphabet only, never `*` then `/`. */
export function ruleComment(text: string): string {
  if (!/^[A-Za-z0-9 .,+\-*/^()=@;{}]*$/.test(text) || text.includes('*/'))
    throw new Error('rule text outside the language alphabet');
  return text;
}

/**
 * A string literal that is valid, inert TypeScript and Python alike: JSON's escapes (quotes,
 * backslashes, control characters) are a subset of both languages' string escapes; U+2028/9
 * are escaped too.
 */
export function stringLiteral(text: string): string {
  return JSON.stringify(text)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A doc line with the rule's built-ins named (`adam * ...`), when that reads differently from the canonical form. */
export function readableLine(rule: Pick<CheckedRule, 'expr'>, indent: string): string {
  const text = readableExpr(rule.expr);
  return text === printNode(rule.expr) ? '' : `${indent}= ${ruleComment(text)}\n`;
}
