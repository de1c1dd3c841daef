/** Prints the surface tree back to rule text; `parse(print(ast))` gives the same tree. */
import type { Arg, Expr, RuleDef, SourceFile } from './ast.js';
import { formatNumber } from './ir.js';

const PREC: Record<string, number> = { '+': 1, '-': 1, '*': 2, '/': 2 };
const NEG = 3;
const POW = 4;
const ATOM = 5;

function prec(e: Expr): number {
  if (e.type === 'binary') return e.op === '^' ? POW : (PREC[e.op] as number);
  if (e.type === 'neg') return NEG;
  return ATOM;
}

function wrap(e: Expr, parens: boolean): string {
  const s = printExpr(e);
  return parens ? `(${s})` : s;
}

function printName(name: string): string {
  return name.includes('-') ? `@${name}` : name;
}

function printArg(a: Arg): string {
  return a.name === undefined ? printExpr(a.value) : `${a.name} = ${printExpr(a.value)}`;
}

export function printExpr(e: Expr): string {
  switch (e.type) {
    case 'num':
      return formatNumber(e.value);
    case 'name':
      return printName(e.name);
    case 'call':
      return `${printName(e.callee)}(${e.args.map(printArg).join(', ')})`;
    case 'neg': {
      const inner = wrap(e.arg, prec(e.arg) < NEG);
      return inner.startsWith('-') ? `- ${inner}` : `-${inner}`;
    }
    case 'binary': {
      if (e.op === '^') return `${wrap(e.left, prec(e.left) <= POW)}^${wrap(e.right, prec(e.right) < NEG)}`;
      const p = PREC[e.op] as number;
      return `${wrap(e.left, prec(e.left) < p)} ${e.op} ${wrap(e.right, prec(e.right) <= p)}`;
    }
  }
}

export function printRule(r: RuleDef): string {
  const lets = r.bindings.map((b) => `${b.name} = ${printExpr(b.value)}`);
  if (r.name === undefined) return [...lets, printExpr(r.body)].join('\n');
  const params =
    r.params.length > 0 ? `(${r.params.map((p) => `${p.name} = ${formatNumber(p.value)}`).join(', ')})` : '';
  const head = `rule ${r.name}${params}`;
  if (lets.length === 0) return `${head} = ${printExpr(r.body)}`;
  return `${head} {\n${[...lets, printExpr(r.body)].map((l) => `  ${l}`).join('\n')}\n}`;
}

export function printFile(f: SourceFile): string {
  return f.rules.map(printRule).join('\n');
}
