/**
 * Readable rules: print a rule naming the built-ins it contains (`adam * exp(sign(g) * sign(m))`
 * rather than Adam's expansion), for leaderboards, reports and export doc comments. The text
 * is still rule text: it checks back to the same canonical form and hash.
 */
import { bindParams } from './check.js';
import { library, lookupRule } from './index.js';
import { countNodes, type Node, printNamed, printNode } from './ir.js';

/** Built-ins whose expansion is at least this many nodes are named (not `sgd` = g, or `signum`). */
const MIN_NODES = 6;

let names: Map<string, string> | undefined;

/** Canonical text of each built-in's expansion (defaults bound) -> how to refer to it. */
function builtinNames(): Map<string, string> {
  if (names !== undefined) return names;
  names = new Map();
  for (const [name, rule] of library()) {
    if (rule.params.some((p) => p.name === 'T')) continue; // T is set by the trainer: never a fixed expansion
    const expr = bindParams(rule, {});
    if (countNodes(expr) < MIN_NODES) continue;
    const text = printNode(expr);
    if (!names.has(text)) names.set(text, /^[A-Za-z][A-Za-z0-9]*$/.test(name) ? name : `@${name}`);
  }
  return names;
}

/** An expression with every subexpression that is exactly a built-in printed as its name. */
export function readableExpr(expr: Node): string {
  const known = builtinNames();
  return printNamed(expr, (n) => (n.k === 'op' ? known.get(printNode(n)) : undefined));
}

/**
 * Rule text (a name, canonical text or any rule text) as a readable expression, its
 * hyperparameters at their defaults; text that does not check is returned as it is.
 */
export function readableRule(text: string): string {
  const found = lookupRule(text);
  if (!found.ok) return text;
  const { rule } = found;
  // T stays symbolic (the trainer sets it); every other hyperparameter takes its default.
  const fixed = rule.params.filter((p) => p.name !== 'T');
  return readableExpr(bindParams({ params: fixed, expr: rule.expr }, {}));
}
