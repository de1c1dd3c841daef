/**
 * The checked form of a rule: names resolved, aliases and rule references expanded,
 * commutative arguments sorted. Printing it gives the canonical text; hashing that text
 * gives the rule's identity.
 */
import { type LeafName, PRIMITIVE_BY_NAME, type Primitive } from '../primitives/registry.js';
import { sha256Hex } from './sha256.js';

export type Node =
  | { readonly k: 'const'; readonly v: number }
  | { readonly k: 'param'; readonly name: string }
  | { readonly k: 'leaf'; readonly name: LeafName }
  | { readonly k: 'op'; readonly prim: string; readonly args: readonly Node[] }
  /** The value a stateful op held before this step's update. */
  | { readonly k: 'prev'; readonly arg: Node };

export function primOf(node: Node & { k: 'op' }): Primitive {
  const p = PRIMITIVE_BY_NAME.get(node.prim);
  if (p === undefined) throw new Error(`unknown primitive ${node.prim}`);
  return p;
}

const PREC = { add: 1, sub: 1, mul: 2, div: 2, neg: 3, pow: 4 } as const;
const ATOM = 5;

function precOf(n: Node): number {
  if (n.k === 'const') return n.v < 0 || Object.is(n.v, -0) ? PREC.neg : ATOM;
  if (n.k === 'op' && n.prim in PREC) return PREC[n.prim as keyof typeof PREC];
  return ATOM;
}

export function formatNumber(v: number): string {
  if (Object.is(v, -0)) return '-0';
  if (!Number.isFinite(v)) throw new Error(`cannot print non-finite number ${v}`);
  return String(v);
}

const printed = new WeakMap<Node, string>();

/** Canonical text of an expression (fully parenthesised only where precedence needs it). */
export function printNode(n: Node): string {
  const hit = printed.get(n);
  if (hit !== undefined) return hit;
  const s = printWith(n, printNode);
  printed.set(n, s);
  return s;
}

/**
 * Text of an expression where `name` may give a subexpression a shorter spelling (a built-in
 * rule's name for its expansion, see dsl/readable.ts); names print as atoms.
 */
export function printNamed(n: Node, name: (n: Node) => string | undefined): string {
  const rec = (x: Node): string => name(x) ?? printWith(x, rec, name);
  return rec(n);
}

function printWith(n: Node, rec: (n: Node) => string, name?: (n: Node) => string | undefined): string {
  const prec = (x: Node): number => (name?.(x) !== undefined ? ATOM : precOf(x));
  const wrap = (child: Node, needParens: boolean): string => {
    const s = rec(child);
    return needParens ? `(${s})` : s;
  };
  switch (n.k) {
    case 'const':
      return formatNumber(n.v);
    case 'param':
    case 'leaf':
      return n.name;
    case 'prev':
      return `prev(${rec(n.arg)})`;
    case 'op': {
      const p = primOf(n);
      const [a, b] = n.args;
      if (p.operator?.prefix && a !== undefined) {
        const inner = wrap(a, prec(a) < PREC.neg);
        return inner.startsWith('-') ? `- ${inner}` : `-${inner}`;
      }
      if (p.operator && a !== undefined && b !== undefined) {
        const own = PREC[p.name as keyof typeof PREC];
        if (p.name === 'pow') return `${wrap(a, prec(a) <= PREC.pow)}^${wrap(b, prec(b) < PREC.neg)}`;
        return `${wrap(a, prec(a) < own)} ${p.operator.symbol} ${wrap(b, prec(b) <= own)}`;
      }
      return p.arity === 0 ? p.name : `${p.name}(${n.args.map(rec).join(', ')})`;
    }
  }
}

export function isStateful(n: Node): n is Node & { k: 'op' } {
  return n.k === 'op' && primOf(n).state !== undefined;
}

export function isStochastic(n: Node): n is Node & { k: 'op' } {
  return n.k === 'op' && primOf(n).stochastic !== undefined;
}

/** Visit every node, parents before children. */
export function walk(n: Node, visit: (n: Node) => void): void {
  const stack: Node[] = [n];
  while (stack.length > 0) {
    const x = stack.pop() as Node;
    visit(x);
    if (x.k === 'op') for (let i = x.args.length - 1; i >= 0; i--) stack.push(x.args[i] as Node);
    else if (x.k === 'prev') stack.push(x.arg);
  }
}

export function dependsOn(n: Node, leaf: LeafName): boolean {
  let found = false;
  walk(n, (x) => {
    if (x.k === 'leaf' && x.name === leaf) found = true;
  });
  return found;
}

export function countNodes(n: Node): number {
  let c = 0;
  walk(n, () => c++);
  return c;
}

export function depthOf(n: Node): number {
  if (n.k === 'op') return 1 + Math.max(0, ...n.args.map(depthOf));
  if (n.k === 'prev') return 1 + depthOf(n.arg);
  return 1;
}

const isConst = (n: Node | undefined, v: number): boolean => n !== undefined && n.k === 'const' && Object.is(n.v, v);

function hasDraw(n: Node): boolean {
  let found = false;
  walk(n, (x) => {
    if (x.k === 'op' && PRIMITIVE_BY_NAME.get(x.prim)?.stochastic !== undefined) found = true;
  });
  return found;
}

/**
 * Simplifications that are exact in IEEE arithmetic for every input (NaN, infinities and
 * signed zeros included), so equal rules share a canonical form and a hash: x*1, x/1, x^1,
 * x-0 -> x; --x -> x; x*-1 -> -x; sign(sign x), abs(abs x), abs(-x); keep(x, y) -> x and
 * min(x, x), max(x, x) -> x when no draw is dropped (a draw would shift the random stream).
 */
function simplify(prim: string, args: readonly Node[]): Node | undefined {
  const [a, b] = args;
  switch (prim) {
    case 'neg':
      return a?.k === 'op' && a.prim === 'neg' ? a.args[0] : undefined;
    case 'mul':
      if (isConst(b, 1)) return a;
      if (isConst(a, 1)) return b;
      if (isConst(b, -1) && a !== undefined) return mkOp('neg', [a]);
      if (isConst(a, -1) && b !== undefined) return mkOp('neg', [b]);
      return undefined;
    case 'div':
    case 'pow':
      return isConst(b, 1) ? a : undefined;
    case 'sub':
      return isConst(b, 0) ? a : undefined;
    case 'sign':
      return a?.k === 'op' && a.prim === 'sign' ? a : undefined;
    case 'abs':
      if (a?.k === 'op' && a.prim === 'abs') return a;
      return a?.k === 'op' && a.prim === 'neg' && a.args[0] !== undefined ? mkOp('abs', [a.args[0]]) : undefined;
    case 'keep':
      return b !== undefined && !hasDraw(b) ? a : undefined;
    case 'min':
    case 'max':
      return a !== undefined && b !== undefined && !hasDraw(a) && printNode(a) === printNode(b) ? a : undefined;
    default:
      return undefined;
  }
}

/** Build an op node in canonical form: commutative arguments sorted by their text, -(const) folded, exact identities simplified. */
export function mkOp(prim: string, args: readonly Node[]): Node {
  const p = PRIMITIVE_BY_NAME.get(prim);
  if (p === undefined) throw new Error(`unknown primitive ${prim}`);
  const a0 = args[0];
  if (prim === 'neg' && a0 !== undefined && a0.k === 'const') return { k: 'const', v: -a0.v };
  const simpler = simplify(prim, args);
  if (simpler !== undefined) return simpler;
  if (p.commutative && args.length === 2) {
    const [x, y] = args as [Node, Node];
    if (printNode(y) < printNode(x)) return { k: 'op', prim, args: [y, x] };
  }
  return { k: 'op', prim, args };
}

/** Replace params by nodes (or constants); params not in the map stay. Rebuilds canonical order. */
export function substitute(n: Node, values: ReadonlyMap<string, Node>): Node {
  switch (n.k) {
    case 'param':
      return values.get(n.name) ?? n;
    case 'const':
    case 'leaf':
      return n;
    case 'prev':
      return { k: 'prev', arg: substitute(n.arg, values) };
    case 'op':
      return mkOp(
        n.prim,
        n.args.map((a) => substitute(a, values)),
      );
  }
}

export function paramsUsed(n: Node): Set<string> {
  const s = new Set<string>();
  walk(n, (x) => {
    if (x.k === 'param') s.add(x.name);
  });
  return s;
}

export function hashText(text: string): string {
  return sha256Hex(text).slice(0, 16);
}
