/**
 * Semantic checks: surface tree -> canonical IR. Resolves names (bindings, hyperparameters,
 * leaves, constants, aliases, primitives, other rules), checks arity, scalar arguments,
 * ranges, limits and cycles, and reports every problem with its location.
 */
import {
  ALIAS_BY_NAME,
  CONSTANTS,
  CONTEXT_PARAMS,
  FUNCTION_NAMES,
  formatRange,
  inRange,
  KEYWORDS,
  LEAVES,
  PRIMITIVE_BY_NAME,
  type ArgRange,
  type LeafName,
} from '../primitives/registry.js';
import type { Expr, Range, RuleDef } from './ast.js';
import type { DiagnosticCode } from './diagnostics.js';
import { nearest } from './diagnostics.js';
import {
  countNodes,
  dependsOn,
  depthOf,
  hashText,
  isStateful,
  mkOp,
  type Node,
  paramsUsed,
  printNode,
  substitute,
  walk,
} from './ir.js';
import { LIMITS as PARSE_LIMITS, parseSource } from './parser.js';

export const LIMITS = {
  ...PARSE_LIMITS,
  /** Nodes in a rule after aliases and rule references are expanded. */
  nodes: 4096,
  /** Depth of a rule after expansion. */
  depth: 200,
  /** Rules referring to rules referring to rules... */
  ruleNesting: 8,
} as const;

export interface RuleParam {
  readonly name: string;
  readonly default: number;
}

/** A rule that passed every check. Immutable; safe to share. */
export interface CheckedRule {
  /** Absent for an anonymous (bare expression) rule. */
  readonly name?: string;
  /** Declared hyperparameters, then context ones it reads (T), in order. */
  readonly params: readonly RuleParam[];
  /** The update direction d_t, with hyperparameters as `param` nodes. */
  readonly expr: Node;
  /** Canonical text: `rule name(p = v, ...) = expr`, or just `expr` when anonymous. */
  readonly canonical: string;
  /** Hash of the canonical expression with the default hyperparameters bound. */
  readonly hash: string;
}

export interface Problem {
  readonly code: DiagnosticCode;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  readonly range: Range;
}

const LEAF_BY_NAME = new Map(LEAVES.map((l) => [l.name as string, l]));
const RESERVED = new Set<string>([
  ...LEAF_BY_NAME.keys(),
  ...CONSTANTS.keys(),
  ...PRIMITIVE_BY_NAME.keys(),
  'prev',
  ...KEYWORDS,
]);

class CheckError extends Error {}

/** A rule definition waiting to be checked, or already checked. */
type Entry = { def: RuleDef; checked?: CheckedRule; state: 'todo' | 'busy' | 'done' | 'failed' };

export interface Scope {
  readonly params: ReadonlyMap<string, number>;
  readonly bindings: Map<string, Node>;
}

const aliasCache = new Map<string, Node>();

/** Checks the rules of one source text against the library (and each other). */
export class Checker {
  readonly problems: Problem[] = [];
  private readonly entries = new Map<string, Entry>();
  private nodeBudget = 0;
  /** Definitions that reuse a built-in rule's name: allowed only if they define the same rule. */
  private readonly restated: RuleDef[] = [];
  private nesting = 0;

  constructor(
    defs: readonly RuleDef[],
    private readonly library: ReadonlyMap<string, CheckedRule>,
    /** 'schedule': a scalar expression of t and T (a learning-rate multiplier), not an update rule. */
    private readonly mode: 'rule' | 'schedule' = 'rule',
  ) {
    for (const def of defs) {
      if (def.name === undefined) continue;
      if (this.entries.has(def.name)) this.report('duplicate', `rule '${def.name}' is defined twice`, def.nameRange);
      else if (library.has(def.name)) this.restated.push(def);
      else if (RESERVED.has(def.name))
        this.report(
          'reserved-name',
          `'${def.name}' is a built-in name; choose another name for the rule`,
          def.nameRange,
        );
      else this.entries.set(def.name, { def, state: 'todo' });
    }
  }

  private report(code: DiagnosticCode, message: string, range: Range): void {
    this.problems.push({ code, severity: 'error', message, range });
  }

  /** Report and abandon the rule being checked. */
  private error(code: DiagnosticCode, message: string, range: Range): never {
    this.report(code, message, range);
    throw new CheckError(message);
  }

  /** Check every definition; returns the ones that passed, in source order. */
  checkAll(defs: readonly RuleDef[]): CheckedRule[] {
    const out: CheckedRule[] = [];
    for (const def of defs) {
      if (def.name === undefined) {
        const r = this.tryCheck(def);
        if (r) out.push(r);
        continue;
      }
      if (this.restated.includes(def)) {
        const r = this.tryCheck(def);
        const builtin = this.library.get(def.name);
        if (r && builtin && r.canonical !== builtin.canonical) {
          this.report(
            'duplicate',
            `'${def.name}' is a built-in rule with a different definition; choose another name`,
            def.nameRange,
          );
        } else if (r) out.push(r);
        continue;
      }
      const entry = this.entries.get(def.name);
      if (entry?.def !== def) continue; // a duplicate, already reported
      const r = this.resolveRule(def.name, def.nameRange);
      if (r) out.push(r);
    }
    return out;
  }

  private tryCheck(def: RuleDef): CheckedRule | undefined {
    try {
      return this.checkRule(def);
    } catch (e) {
      if (e instanceof CheckError) return undefined;
      throw e;
    }
  }

  private resolveRule(name: string, at: Range): CheckedRule | undefined {
    const lib = this.library.get(name);
    if (lib) return lib;
    const entry = this.entries.get(name);
    if (entry === undefined) return undefined;
    if (entry.state === 'done') return entry.checked;
    if (entry.state === 'failed') return undefined;
    if (entry.state === 'busy')
      this.error('cycle', `rule '${name}' refers to itself (directly or through other rules)`, at);
    if (++this.nesting > LIMITS.ruleNesting) {
      this.nesting--;
      this.error('limit', `rules refer to other rules more than ${LIMITS.ruleNesting} levels deep`, at);
    }
    entry.state = 'busy';
    const r = this.tryCheck(entry.def);
    this.nesting--;
    entry.state = r ? 'done' : 'failed';
    if (r) entry.checked = r;
    return r;
  }

  private checkRule(def: RuleDef): CheckedRule {
    const params = new Map<string, number>();
    for (const p of def.params) {
      if (params.has(p.name)) this.error('duplicate', `hyperparameter '${p.name}' is declared twice`, p.range);
      this.checkFreshName(p.name, p.range, 'hyperparameter');
      if (Number.isNaN(p.value))
        this.error('bad-argument', `the default of '${p.name}' must be a number (or e, pi)`, p.range);
      if (!Number.isFinite(p.value) || Math.abs(p.value) > LIMITS.maxNumber)
        this.error('number', `the default of '${p.name}' is out of range`, p.range);
      params.set(p.name, p.value);
    }
    const scope: Scope = { params, bindings: new Map() };
    this.nodeBudget = 0;
    for (const b of def.bindings) {
      if (scope.bindings.has(b.name)) this.error('duplicate', `'${b.name}' is bound twice`, b.range);
      if (params.has(b.name)) this.error('duplicate', `'${b.name}' is already a hyperparameter`, b.range);
      this.checkFreshName(b.name, b.range, 'name');
      scope.bindings.set(b.name, this.expr(b.value, scope));
    }
    const expr = this.expr(def.body, scope);
    if (countNodes(expr) > LIMITS.nodes)
      this.error('limit', `the rule expands to more than ${LIMITS.nodes} nodes`, def.body.range);
    if (depthOf(expr) > LIMITS.depth) this.error('limit', `the rule nests deeper than ${LIMITS.depth}`, def.body.range);
    if (this.mode === 'schedule') {
      if (!isScalar(expr))
        this.error(
          'not-scalar',
          'a schedule reads only t, T, numbers and its parameters (not g, w, state or noise)',
          def.body.range,
        );
    } else if (!dependsOn(expr, 'g'))
      this.error('no-gradient', 'the update does not depend on the gradient g', def.body.range);
    // Every call site checks its own arguments; this catches what only the whole rule shows.
    const bad = rangeViolations(expr, params)[0];
    if (bad) this.error('range', `${describeViolation(bad)}; it must be in ${formatRange(bad.range)}`, def.body.range);
    const used = paramsUsed(expr);
    const all: RuleParam[] = def.params.map((p) => ({ name: p.name, default: p.value }));
    for (const [name, spec] of CONTEXT_PARAMS)
      if (used.has(name) && !params.has(name)) all.push({ name, default: spec.default });
    return finishRule(def.name, all, expr);
  }

  private checkFreshName(name: string, range: Range, what: string): void {
    if (RESERVED.has(name))
      this.error('reserved-name', `'${name}' is a built-in name and cannot be used as a ${what}`, range);
    if (this.library.has(name) || this.entries.has(name))
      this.error('reserved-name', `'${name}' is the name of a rule and cannot be used as a ${what}`, range);
  }

  private count(range: Range): void {
    if (++this.nodeBudget > LIMITS.nodes * 4)
      this.error('limit', `the rule expands to more than ${LIMITS.nodes} nodes`, range);
  }

  expr(e: Expr, scope: Scope): Node {
    this.count(e.range);
    switch (e.type) {
      case 'num':
        if (!Number.isFinite(e.value) || Math.abs(e.value) > LIMITS.maxNumber)
          this.error('number', `number out of range`, e.range);
        return { k: 'const', v: e.value };
      case 'neg':
        return mkOp('neg', [this.expr(e.arg, scope)]);
      case 'binary': {
        if (e.op === '-') this.checkHyphenatedName(e.left, e.right);
        const prim = { '+': 'add', '-': 'sub', '*': 'mul', '/': 'div', '^': 'pow' }[e.op];
        return mkOp(prim, [this.expr(e.left, scope), this.expr(e.right, scope)]);
      }
      case 'name':
        return this.name(e.name, e.range, scope);
      case 'call':
        return this.call(e, scope);
    }
  }

  /** `powersign-ld` without `@` reads as powersign minus ld: say so instead of guessing. */
  private checkHyphenatedName(left: Expr, right: Expr): void {
    let r: Expr = right;
    while (r.type === 'binary') r = r.left;
    const rname = r.type === 'name' ? r.name : r.type === 'call' ? r.callee : undefined;
    if (left.type !== 'name' || rname === undefined || left.range.end + 1 !== r.range.start) return;
    const joined = `${left.name}-${rname}`;
    if (this.library.has(joined) || this.entries.has(joined)) {
      this.error(
        'unknown-name',
        `'${joined}' reads as '${left.name}' minus '${rname}'; write @${joined} to use the rule`,
        { start: left.range.start, end: r.range.end },
      );
    }
  }

  private visibleNames(scope: Scope): string[] {
    return [
      ...scope.bindings.keys(),
      ...scope.params.keys(),
      ...LEAF_BY_NAME.keys(),
      ...CONSTANTS.keys(),
      ...CONTEXT_PARAMS.keys(),
      ...ALIAS_BY_NAME.keys(),
      ...FUNCTION_NAMES,
      ...this.library.keys(),
      ...this.entries.keys(),
    ];
  }

  private name(name: string, range: Range, scope: Scope): Node {
    const bound = scope.bindings.get(name);
    if (bound) return bound;
    if (scope.params.has(name)) return { k: 'param', name };
    const leaf = LEAF_BY_NAME.get(name);
    if (leaf) return { k: 'leaf', name: leaf.name as LeafName };
    const c = CONSTANTS.get(name);
    if (c !== undefined) return { k: 'const', v: c };
    if (CONTEXT_PARAMS.has(name)) return { k: 'param', name };
    const alias = ALIAS_BY_NAME.get(name);
    if (alias) return expandAlias(alias.name, alias.text);
    const prim = PRIMITIVE_BY_NAME.get(name);
    if (prim && !prim.operator) {
      if (prim.arity === 0) return mkOp(name, []);
      this.error(
        'arity',
        `'${name}' is a function of ${prim.arity} argument${prim.arity === 1 ? '' : 's'}: write ${name}(${prim.argNames.join(', ')})`,
        range,
      );
    }
    if (name === 'prev') this.error('arity', `'prev' takes one argument: prev(ema(g, 0.9))`, range);
    if (this.library.has(name) || this.entries.has(name)) return this.inlineRule(name, [], range, scope);
    const hint = nearest(name, this.visibleNames(scope));
    this.error('unknown-name', `unknown name '${name}'${hint ? `; did you mean '${hint}'?` : ''}`, range);
  }

  private call(e: Expr & { type: 'call' }, scope: Scope): Node {
    const name = e.callee;
    if (name === 'prev') {
      if (e.args.length !== 1 || e.args[0]?.name !== undefined)
        this.error('arity', `'prev' takes one argument: prev(ema(g, 0.9))`, e.range);
      const inner = this.expr((e.args[0] as { value: Expr }).value, scope);
      if (!isStateful(inner)) {
        this.error(
          'bad-prev',
          `prev(...) needs a stateful expression (ema, accum, sum, runmax), not '${printNode(inner)}'`,
          e.range,
        );
      }
      return { k: 'prev', arg: inner };
    }
    const prim = PRIMITIVE_BY_NAME.get(name);
    if (prim && !prim.operator) {
      const named = e.args.find((a) => a.name !== undefined);
      if (named) this.error('bad-argument', `'${name}' takes positional arguments only`, named.nameRange ?? e.range);
      if (e.args.length !== prim.arity) {
        this.error(
          'arity',
          `'${name}' takes ${prim.arity} argument${prim.arity === 1 ? '' : 's'} (${prim.argNames.join(', ')}), got ${e.args.length}`,
          e.range,
        );
      }
      const args = e.args.map((a) => this.expr(a.value, scope));
      args.forEach((a, i) => {
        const argExpr = (e.args[i] as { value: Expr }).value;
        if (prim.argKinds[i] === 'scalar' && !isScalar(a)) {
          this.error(
            'not-scalar',
            `argument '${prim.argNames[i]}' of '${name}' must be the same for every weight (numbers, hyperparameters, t), not '${printNode(a)}'`,
            argExpr.range,
          );
        }
        for (const r of prim.ranges ?? []) {
          if (r.arg !== i) continue;
          const v = evalScalar(a, scope.params);
          if (v !== undefined && !inRange(v, r)) {
            this.error(
              'range',
              `argument '${prim.argNames[i]}' of '${name}' is ${v}; it must be in ${formatRange(r)}`,
              argExpr.range,
            );
          }
        }
      });
      return mkOp(name, args);
    }
    if (this.library.has(name) || this.entries.has(name)) return this.inlineRule(name, e.args, e.calleeRange, scope);
    if (
      scope.bindings.has(name) ||
      scope.params.has(name) ||
      LEAF_BY_NAME.has(name) ||
      ALIAS_BY_NAME.has(name) ||
      CONSTANTS.has(name)
    ) {
      this.error('bad-argument', `'${name}' is a value, not a function`, e.calleeRange);
    }
    const hint = nearest(name, [...FUNCTION_NAMES, 'prev', ...this.library.keys(), ...this.entries.keys()]);
    this.error('unknown-name', `unknown function '${name}'${hint ? `; did you mean '${hint}'?` : ''}`, e.calleeRange);
  }

  private inlineRule(
    name: string,
    args: readonly { name?: string; nameRange?: Range; value: Expr }[],
    range: Range,
    scope: Scope,
  ): Node {
    const rule = this.resolveRule(name, range);
    if (rule === undefined) this.error('unknown-name', `rule '${name}' cannot be used: it has errors`, range);
    const values = new Map<string, Node>();
    const given: { name: string; at: Range; value: Node }[] = [];
    const declared = rule.params.map((p) => p.name);
    args.forEach((a, i) => {
      const pname = a.name ?? declared[i];
      const at = a.nameRange ?? a.value.range;
      if (pname === undefined)
        this.error(
          'arity',
          `rule '${name}' takes ${declared.length} hyperparameter${declared.length === 1 ? '' : 's'}`,
          a.value.range,
        );
      if (!declared.includes(pname)) {
        const hint = nearest(pname, declared);
        this.error(
          'unknown-param',
          `rule '${name}' has no hyperparameter '${pname}'${hint ? `; did you mean '${hint}'?` : ''}`,
          at,
        );
      }
      if (values.has(pname)) this.error('duplicate', `hyperparameter '${pname}' is given twice`, at);
      const v = this.expr(a.value, scope);
      if (!isScalar(v))
        this.error(
          'not-scalar',
          `hyperparameter '${pname}' must be the same for every weight, not '${printNode(v)}'`,
          a.value.range,
        );
      const known = evalScalar(v, scope.params);
      if (known !== undefined && !isAllowedNumber(known)) {
        this.error(
          'number',
          `hyperparameter '${pname}' of '${name}' is ${known}; values must be finite and at most ${LIMITS.maxNumber} in magnitude`,
          a.value.range,
        );
      }
      values.set(pname, v);
      given.push({ name: pname, at: { start: at.start, end: a.value.range.end }, value: v });
    });
    const defaults = new Map<string, Node>();
    for (const p of rule.params) {
      // A context hyperparameter (T) stays one, and becomes the outer rule's.
      if (CONTEXT_PARAMS.has(p.name)) continue;
      defaults.set(p.name, { k: 'const', v: p.default });
      if (!values.has(p.name)) values.set(p.name, { k: 'const', v: p.default });
    }
    const result = substitute(rule.expr, values);
    const bad = rangeViolations(result, scope.params)[0];
    if (bad) {
      // Blame the first argument that is out of range on its own; else the call as a whole.
      for (const g of given) {
        const single = new Map(defaults);
        single.set(g.name, g.value);
        const alone = rangeViolations(substitute(rule.expr, single), scope.params)[0];
        if (alone === undefined) continue;
        this.error(
          'range',
          blame(
            `hyperparameter '${g.name}' of '${name}'`,
            evalScalar(g.value, scope.params) ?? printNode(g.value),
            alone,
          ),
          g.at,
        );
      }
      this.error(
        'range',
        `used here, rule '${name}' makes ${argumentOf(bad)} ${bad.value}; it must be in ${formatRange(bad.range)}`,
        range,
      );
    }
    return result;
  }
}

function expandAlias(name: string, text: string): Node {
  const hit = aliasCache.get(name);
  if (hit) return hit;
  const parsed = parseSource(text);
  const def = parsed.file?.rules[0];
  if (def === undefined) throw new Error(`alias ${name} does not parse: ${text}`);
  const checker = new Checker([], new Map());
  const node = checker.expr(def.body, { params: new Map(), bindings: new Map() });
  aliasCache.set(name, node);
  return node;
}

/** Same value for every element: built from numbers, hyperparameters, t and schedules only. */
export function isScalar(n: Node): boolean {
  switch (n.k) {
    case 'const':
    case 'param':
      return true;
    case 'leaf':
      return n.name === 't';
    case 'prev':
      return false;
    case 'op': {
      const p = PRIMITIVE_BY_NAME.get(n.prim);
      if (p === undefined || p.state || p.stochastic) return false;
      return n.args.every(isScalar);
    }
  }
}

/** Value of a scalar expression known at check time (hyperparameter defaults, t = 1), if any. */
export function evalScalar(n: Node, params: ReadonlyMap<string, number>): number | undefined {
  if (!isScalar(n)) return undefined;
  const ev = (x: Node): number | undefined => {
    switch (x.k) {
      case 'const':
        return x.v;
      case 'param':
        return params.get(x.name) ?? CONTEXT_PARAMS.get(x.name)?.default;
      case 'leaf':
        return undefined; // depends on t
      case 'prev':
        return undefined;
      case 'op': {
        const p = PRIMITIVE_BY_NAME.get(x.prim);
        if (p === undefined || p.scalarResult) return undefined;
        const args: number[] = [];
        for (const a of x.args) {
          const v = ev(a);
          if (v === undefined) return undefined;
          args.push(v);
        }
        return p.ref(args, { t: 1 }, 0);
      }
    }
  };
  return ev(n);
}

export function finishRule(name: string | undefined, params: readonly RuleParam[], expr: Node): CheckedRule {
  const body = printNode(expr);
  const head = params.length > 0 ? `(${params.map((p) => `${p.name} = ${formatParam(p.default)}`).join(', ')})` : '';
  const canonical = name === undefined ? body : `rule ${name}${head} = ${body}`;
  const bound = bindParams({ params, expr }, {});
  return { ...(name === undefined ? {} : { name }), params, expr, canonical, hash: hashText(printNode(bound)) };
}

function formatParam(v: number): string {
  return String(v);
}

/** A bound hyperparameter value is unknown, not a number, too large, or out of range. */
export class BindError extends Error {
  constructor(
    message: string,
    /** The hyperparameter the problem is about, when it is one. */
    readonly param?: string,
  ) {
    super(message);
    this.name = 'BindError';
  }
}

/** Hyperparameter values by name: a Map, or a plain record (only its own properties are read). */
export type ParamValues = Readonly<Record<string, number>> | ReadonlyMap<string, number>;

function entriesOf(values: ParamValues): [string, unknown][] {
  return values instanceof Map ? [...(values as ReadonlyMap<string, number>)] : Object.entries(values);
}

function isAllowedNumber(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= LIMITS.maxNumber;
}

function describeValue(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return v === null ? 'null' : typeof v;
}

/** A scalar argument of a primitive, known at check or bind time, outside its allowed range. */
export interface RangeViolation {
  readonly prim: string;
  readonly argName: string;
  readonly value: number;
  readonly range: ArgRange;
}

function argumentOf(v: RangeViolation): string {
  return `argument '${v.argName}' of '${v.prim}'`;
}

function describeViolation(v: RangeViolation): string {
  return `${argumentOf(v)} is ${v.value}`;
}

/** Why a hyperparameter's value is out of range: directly, or through what it computes. */
function blame(who: string, value: number | string, v: RangeViolation): string {
  if (value === v.value) return `${who} is ${value}; it must be in ${formatRange(v.range)} (${argumentOf(v)})`;
  return `${who} is ${value}, which makes ${argumentOf(v)} ${v.value}; it must be in ${formatRange(v.range)}`;
}

/**
 * Ranged primitive arguments (ema's beta, clip's c, drop's p, the decays' steps) whose value is
 * known from constants and the given hyperparameter values (t = 1), and out of range.
 */
export function rangeViolations(expr: Node, params: ReadonlyMap<string, number>): RangeViolation[] {
  const out: RangeViolation[] = [];
  walk(expr, (n) => {
    if (n.k !== 'op') return;
    const prim = PRIMITIVE_BY_NAME.get(n.prim);
    for (const r of prim?.ranges ?? []) {
      const arg = n.args[r.arg];
      if (prim === undefined || arg === undefined) continue;
      const v = evalScalar(arg, params);
      if (v !== undefined && !inRange(v, r))
        out.push({ prim: prim.name, argName: prim.argNames[r.arg] ?? `#${r.arg + 1}`, value: v, range: r });
    }
  });
  return out;
}

/**
 * The rule's expression with hyperparameters replaced by numbers (defaults, then overrides).
 * Throws BindError for an unknown name, a value that is not a finite number within the
 * language's number limit, or one that puts a primitive's argument out of its range.
 */
export function bindParams(rule: Pick<CheckedRule, 'params' | 'expr'>, overrides: ParamValues = {}): Node {
  const declared = new Map(rule.params.map((p) => [p.name, p.default]));
  const given = new Map<string, number>();
  for (const [k, v] of entriesOf(overrides)) {
    if (!declared.has(k)) {
      const hint = nearest(k, declared.keys());
      throw new BindError(
        `unknown hyperparameter '${k}'${hint ? `; did you mean '${hint}'?` : ''} (this rule has ${declared.size > 0 ? [...declared.keys()].join(', ') : 'none'})`,
        k,
      );
    }
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new BindError(`hyperparameter '${k}' must be a finite number, got ${describeValue(v)}`, k);
    if (!isAllowedNumber(v))
      throw new BindError(`hyperparameter '${k}' is ${v}; values are limited to ${LIMITS.maxNumber} in magnitude`, k);
    given.set(k, v);
  }
  const boundValue = (name: string): number => given.get(name) ?? (declared.get(name) as number);
  const values = new Map<string, Node>();
  for (const p of rule.params) values.set(p.name, { k: 'const', v: boundValue(p.name) });
  const bound = substitute(rule.expr, values);
  const bad = rangeViolations(bound, new Map())[0];
  if (bad) {
    // Blame the first hyperparameter that is out of range on its own.
    for (const p of rule.params) {
      if (!given.has(p.name)) continue;
      const single = new Map<string, Node>(rule.params.map((q) => [q.name, { k: 'const', v: q.default }]));
      single.set(p.name, { k: 'const', v: boundValue(p.name) });
      const alone = rangeViolations(substitute(rule.expr, single), new Map())[0];
      if (alone === undefined) continue;
      throw new BindError(blame(`hyperparameter '${p.name}'`, boundValue(p.name), alone), p.name);
    }
    const names = [...given.keys()];
    throw new BindError(
      `with ${names.length > 0 ? names.map((k) => `${k} = ${boundValue(k)}`).join(', ') : 'its defaults'}, ${describeViolation(bad)}; it must be in ${formatRange(bad.range)}`,
      names.length === 1 ? names[0] : undefined,
    );
  }
  return bound;
}

/** Hash of a rule's behaviour under the given hyperparameters. */
export function ruleHash(rule: Pick<CheckedRule, 'params' | 'expr'>, overrides: ParamValues = {}): string {
  return hashText(printNode(bindParams(rule, overrides)));
}
