/** The surface syntax tree: what the parser read, with source ranges, before name resolution. */

/** Half-open character range [start, end) in the source. */
export interface Range {
  readonly start: number;
  readonly end: number;
}

export type BinaryOp = '+' | '-' | '*' | '/' | '^';

export type Expr =
  | { readonly type: 'num'; readonly value: number; readonly range: Range }
  | { readonly type: 'name'; readonly name: string; readonly range: Range }
  | {
      readonly type: 'call';
      readonly callee: string;
      readonly calleeRange: Range;
      readonly args: readonly Arg[];
      readonly range: Range;
    }
  | { readonly type: 'neg'; readonly arg: Expr; readonly range: Range }
  | {
      readonly type: 'binary';
      readonly op: BinaryOp;
      readonly left: Expr;
      readonly right: Expr;
      readonly range: Range;
    };

/** A call argument: positional, or `name = value` (named arguments bind a rule's hyperparameters). */
export interface Arg {
  readonly name?: string;
  readonly nameRange?: Range;
  readonly value: Expr;
}

export interface Param {
  readonly name: string;
  readonly value: number;
  readonly range: Range;
}

export interface Binding {
  readonly name: string;
  readonly value: Expr;
  readonly range: Range;
}

export interface RuleDef {
  /** Absent for a bare expression (an anonymous rule). */
  readonly name?: string;
  readonly nameRange: Range;
  readonly params: readonly Param[];
  readonly bindings: readonly Binding[];
  readonly body: Expr;
  readonly range: Range;
}

export interface SourceFile {
  readonly rules: readonly RuleDef[];
}

/** Structural equality that ignores ranges (for round-trip tests). */
export function stripRanges(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripRanges);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) {
      if (k === 'range' || k === 'nameRange' || k === 'calleeRange') continue;
      out[k] = stripRanges(v);
    }
    return out;
  }
  return x;
}
