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
  const s = printUncached(n);
  printed.set(n, s);
  return s;
}

function wrap(child: Node, needParens: boolean): string {
  const s = printNode(child);
  return needParens ? `(${s})` : s;
}

function printUncached(n: Node): string {
  switch (n.k) {
    case 'const':
      return formatNumber(n.v);
    case 'param':
    case 'leaf':
      return n.name;
    case 'prev':
      return `prev(${printNode(n.arg)})`;
    case 'op': {
      const p = primOf(n);
      const [a, b] = n.args;
      if (p.operator?.prefix && a !== undefined) {
        const inner = wrap(a, precOf(a) < PREC.neg);
        return inner.startsWith('-') ? `- ${inner}` : `-${inner}`;
      }
      if (p.operator && a !== undefined && b !== undefined) {
        const prec = PREC[p.name as keyof typeof PREC];
        if (p.name === 'pow') return `${wrap(a, precOf(a) <= PREC.pow)}^${wrap(b, precOf(b) < PREC.neg)}`;
        return `${wrap(a, precOf(a) < prec)} ${p.operator.symbol} ${wrap(b, precOf(b) <= prec)}`;
      }
      return p.arity === 0 ? p.name : `${p.name}(${n.args.map(printNode).join(', ')})`;
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

/** Build an op node in canonical form: commutative arguments sorted by their text, -(const) folded. */
export function mkOp(prim: string, args: readonly Node[]): Node {
  const p = PRIMITIVE_BY_NAME.get(prim);
  if (p === undefined) throw new Error(`unknown primitive ${prim}`);
  const a0 = args[0];
  if (prim === 'neg' && a0 !== undefined && a0.k === 'const') return { k: 'const', v: -a0.v };
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
