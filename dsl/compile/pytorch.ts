/**
 * `nos export --format pytorch`: a Python file defining the rule as a `torch.optim.Optimizer`
 * subclass, generated from the shared lowering.
 *
 * - A drop-in for torch's own optimizers where the rule mirrors one: torch's argument names
 *   (`betas=(beta1, beta2)`, `momentum=` for mu, `alpha=` for decay, `weight_decay=` for wd,
 *   else `weight_decay=` as torch's L2 penalty g + weight_decay * w), the rule's own names
 *   accepted too; ranges validated as torch validates them (ValueError, torch's wording) and
 *   as the registry's ranges say; every hyperparameter lives in each param group (so
 *   schedulers and per-group settings work as usual), under torch's name where it has one.
 * - A rule that decays over `T` steps requires `T` (no silent default), unless the export
 *   fixed it (`EmitOptions.decaySteps`).
 * - The update is written once, on lists of tensors (all parameters of a group that share a
 *   device, a dtype and a step count), through an operation table: `torch._foreach_*`
 *   multi-tensor kernels when `foreach=True` (the default where torch has them), the same
 *   operations tensor by tensor otherwise. Temporaries are updated in place where their
 *   value is not needed again, state slots are updated in place where nothing reads their
 *   old value, `g^2` is `g*g` (fused into `addcmul_` where it feeds a moving average), and
 *   the final `w - lr * (a / b)` is one `addcdiv_`.
 * - Noise and dropout are drawn on the parameter's device, from one `torch.Generator` per
 *   device seeded with `seed`; their states are saved in `state_dict()`.
 * - Sparse gradients are refused with a clear error.
 */
import {
  type ArgRange,
  CONTEXT_PARAMS,
  formatRange,
  type NoisePrim,
  PRIMITIVE_BY_NAME,
  type ScalarPrim,
  type StatePrim,
  type TensorPrim,
} from '../../primitives/registry.js';
import type { CheckedRule } from '../check.js';
import { type Node, printNode } from '../ir.js';
import { liveSteps, lowerRule, type Program, type Step } from '../lower.js';
import {
  checkedParamNames,
  className,
  commentText,
  numberLiteral,
  readableLine,
  ruleComment,
  stringLiteral,
} from './names.js';
import { arg, INFIX, type Tpl } from './templates.js';
import type { EmitOptions } from './ts.js';

/** Python keywords and builtins (exceptions included: `__init__` raises ValueError), and the names the file itself uses. */
const PY_RESERVED = new Set(
  `False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case type _
  abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile complex copyright credits delattr dict dir divmod enumerate eval exec exit filter float format frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len license list locals map max memoryview min next object oct open ord pow print property quit range repr reversed round set setattr slice sorted staticmethod str sum super tuple vars zip
  ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception ExceptionGroup FileExistsError FileNotFoundError FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning IndentationError IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError MemoryError ModuleNotFoundError NameError NotADirectoryError NotImplemented NotImplementedError OSError OverflowError PendingDeprecationWarning PermissionError ProcessLookupError PythonFinalizationError RecursionError ReferenceError ResourceWarning RuntimeError RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError TimeoutError TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning ZeroDivisionError
  math torch params lr self closure seed betas defaults group state foreach itertools PROVENANCE`.split(/\s+/),
);

/**
 * The keyword-argument name for a hyperparameter in emitted Python: the name, or the name
 * with a trailing underscore when Python or the optimizer reserves it. Rule names have no
 * underscores, so an escaped name never equals another hyperparameter's.
 */
export function pyArgName(name: string): string {
  return PY_RESERVED.has(name) ? `${name}_` : name;
}

// ---------------------------------------------------------------------------------------
// Scalars: Python floats, computed once per step (per group and step count).

/** Python floats and tensors share these spellings. */
const { div: _div, ...BOTH } = INFIX;

const SCALAR = {
  ...BOTH,
  div: (a) => `_div(${arg(a, 0)}, ${arg(a, 1)})`,
  pow: (a) => `_spow(${arg(a, 0)}, ${arg(a, 1)})`,
  exp: (a) => `_sexp(${arg(a, 0)})`,
  log: (a) => `_slog(${arg(a, 0)})`,
  sqrt: (a) => `math.sqrt(abs(${arg(a, 0)}))`,
  abs: (a) => `abs(${arg(a, 0)})`,
  cos: (a) => `_scos(${arg(a, 0)})`,
  floor: (a) => `_sfloor(${arg(a, 0)})`,
  sign: (a) => `_ssign(${arg(a, 0)})`,
  clip: (a) => `_smin(_smax(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `_smin(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `_smax(${arg(a, 0)}, ${arg(a, 1)})`,
  lindecay: (a) => `_linear_decay(t, ${arg(a, 0)})`,
  cosdecay: (a) => `_cosine_decay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
  restartdecay: (a) => `_restart_decay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
} as const satisfies Record<ScalarPrim, Tpl>;

/** The per-step scale of scaled noise, as a Python expression of t. */
const SCALE = {
  noise: '0.1',
  anoise: 'math.sqrt(1 / (1 + (t - 1)) ** 0.55)',
} as const satisfies Record<NoisePrim, string>;

// ---------------------------------------------------------------------------------------
// Tensors: lists of tensors, through the operation table `F` (_Foreach or _PerTensor).

/** A value in the update: a Python float (`S`) or a list of tensors (`L`). */
interface Val {
  readonly kind: 'S' | 'L';
  readonly name: string;
  /** A list this update allocated and nothing else holds: later operations may overwrite it. */
  readonly fresh: boolean;
}

/** An argument of the step being emitted: a value, and whether this step is its last reader. */
interface Arg extends Val {
  readonly reusable: boolean;
}

/** F's operations the code generator may use. */
type FOp =
  | 'add'
  | 'add_'
  | 'sub'
  | 'sub_'
  | 'mul'
  | 'mul_'
  | 'div'
  | 'div_'
  | 'neg'
  | 'neg_'
  | 'exp'
  | 'exp_'
  | 'log'
  | 'log_'
  | 'sqrt'
  | 'sqrt_'
  | 'abs'
  | 'abs_'
  | 'cos'
  | 'cos_'
  | 'floor'
  | 'floor_'
  | 'maximum'
  | 'maximum_'
  | 'minimum'
  | 'minimum_'
  | 'addcmul'
  | 'addcmul_'
  | 'addcdiv_';

/** Each operation tensor by tensor (Python), for `_PerTensor`; `_Foreach` uses `torch._foreach_<op>`. */
const PER_TENSOR: Record<FOp, string> = {
  add: 'lambda xs, y, alpha=1: _each(lambda a, b: torch.add(a, b, alpha=alpha), xs, y)',
  add_: 'lambda xs, y, alpha=1: _each(lambda a, b: a.add_(b, alpha=alpha), xs, y)',
  sub: 'lambda xs, y, alpha=1: _each(lambda a, b: torch.sub(a, b, alpha=alpha), xs, y)',
  sub_: 'lambda xs, y, alpha=1: _each(lambda a, b: a.sub_(b, alpha=alpha), xs, y)',
  mul: 'lambda xs, y: _each(torch.mul, xs, y)',
  mul_: 'lambda xs, y: _each(torch.Tensor.mul_, xs, y)',
  div: 'lambda xs, y: _each(torch.div, xs, y)',
  div_: 'lambda xs, y: _each(torch.Tensor.div_, xs, y)',
  neg: 'lambda xs: _each(torch.neg, xs)',
  neg_: 'lambda xs: _each(torch.Tensor.neg_, xs)',
  exp: 'lambda xs: _each(torch.exp, xs)',
  exp_: 'lambda xs: _each(torch.Tensor.exp_, xs)',
  log: 'lambda xs: _each(torch.log, xs)',
  log_: 'lambda xs: _each(torch.Tensor.log_, xs)',
  sqrt: 'lambda xs: _each(torch.sqrt, xs)',
  sqrt_: 'lambda xs: _each(torch.Tensor.sqrt_, xs)',
  abs: 'lambda xs: _each(torch.abs, xs)',
  abs_: 'lambda xs: _each(torch.Tensor.abs_, xs)',
  cos: 'lambda xs: _each(torch.cos, xs)',
  cos_: 'lambda xs: _each(torch.Tensor.cos_, xs)',
  floor: 'lambda xs: _each(torch.floor, xs)',
  floor_: 'lambda xs: _each(torch.Tensor.floor_, xs)',
  maximum: 'lambda xs, ys: _each(torch.maximum, xs, ys)',
  maximum_: 'lambda xs, ys: _each(lambda a, b: torch.maximum(a, b, out=a), xs, ys)',
  minimum: 'lambda xs, ys: _each(torch.minimum, xs, ys)',
  minimum_: 'lambda xs, ys: _each(lambda a, b: torch.minimum(a, b, out=a), xs, ys)',
  addcmul: 'lambda xs, a, b, value=1: _each(lambda x, p, q: torch.addcmul(x, p, q, value=value), xs, a, b)',
  addcmul_: 'lambda xs, a, b, value=1: _each(lambda x, p, q: x.addcmul_(p, q, value=value), xs, a, b)',
  addcdiv_: 'lambda xs, a, b, value=1: _each(lambda x, p, q: x.addcdiv_(p, q, value=value), xs, a, b)',
};

/** Emits the update's lines; names temporaries; records the operations and helpers used. */
class Emitter {
  readonly lines: string[] = [];
  readonly ops = new Set<FOp>();
  private counter = 0;

  line(text: string): void {
    this.lines.push(text);
  }

  tmp(): string {
    return `x${this.counter++}`;
  }

  /** `F.op(args)` as an expression (recorded as used). */
  f(op: FOp, ...args: string[]): string {
    this.ops.add(op);
    return `F.${op}(${args.join(', ')})`;
  }

  /** A fresh list from an expression. */
  fresh(expr: string): Val {
    const name = this.tmp();
    this.line(`${name} = ${expr}`);
    return { kind: 'L', name, fresh: true };
  }

  /** A Python float from an expression. */
  scalar(expr: string): Val {
    const name = this.tmp();
    this.line(`${name} = ${expr}`);
    return { kind: 'S', name, fresh: false };
  }
}

const asArg = (v: Val, reusable: boolean): Arg => ({ ...v, reusable: reusable && v.fresh && v.kind === 'L' });
const at = (a: readonly Arg[], i: number): Arg => {
  const x = a[i];
  if (x === undefined) throw new Error(`template argument ${i} missing`);
  return x;
};

type Arith = 'add' | 'sub' | 'mul' | 'div';
const COMMUTATIVE: ReadonlySet<Arith> = new Set(['add', 'mul']);
const PY_INFIX: Record<Arith, (x: string, y: string) => string> = {
  add: (x, y) => `(${x} + ${y})`,
  sub: (x, y) => `(${x} - ${y})`,
  mul: (x, y) => `(${x} * ${y})`,
  div: (x, y) => `_div(${x}, ${y})`,
};

/** x op y for floats and lists, in place into a list that may be overwritten. */
function arith(e: Emitter, op: Arith, x: Arg, y: Arg): Val {
  if (x.kind === 'S' && y.kind === 'S') return e.scalar(PY_INFIX[op](x.name, y.name));
  if (x.kind === 'L' && x.reusable) {
    e.line(e.f(`${op}_`, x.name, y.name));
    return x;
  }
  if (COMMUTATIVE.has(op) && y.kind === 'L' && y.reusable) {
    e.line(e.f(`${op}_`, y.name, x.name));
    return y;
  }
  if (x.kind === 'L') return e.fresh(e.f(op, x.name, y.name));
  // A float and a list: s + x and s * x commute; s - x is -x + s (exact); s / x divides for real.
  if (COMMUTATIVE.has(op)) return e.fresh(e.f(op, y.name, x.name));
  if (op === 'sub') {
    let neg: Val = y;
    if (y.reusable) e.line(e.f('neg_', y.name));
    else neg = e.fresh(e.f('neg', y.name));
    e.line(e.f('add_', neg.name, x.name));
    return neg;
  }
  return e.fresh(`_each(_rdiv, ${y.name}, ${x.name})`);
}

type Unary = 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'cos' | 'floor';
function unary(e: Emitter, op: Unary, x: Arg): Val {
  if (x.kind === 'S') throw new Error(`${op} of a float is a scalar step`);
  if (x.reusable) {
    e.line(e.f(`${op}_`, x.name));
    return x;
  }
  return e.fresh(e.f(op, x.name));
}

/** f(|x|) (log, sqrt), without the |.| where x is known to be >= 0 (or NaN). */
function ofAbs(e: Emitter, op: 'log' | 'sqrt', x: Arg, nonNegative: boolean): Val {
  if (nonNegative) return unary(e, op, x);
  const a = unary(e, 'abs', x);
  return unary(e, op, asArg(a, true));
}

/** A per-tensor helper over lists (and floats, repeated). */
const each = (e: Emitter, helper: string, args: readonly Arg[]): Val =>
  e.fresh(`_each(${[helper, ...args.map((a) => a.name)].join(', ')})`);

/** min/max: NaN-propagating, as the registry's Math.min/Math.max (torch.minimum/maximum and clamp propagate NaN). */
function minMax(e: Emitter, op: 'minimum' | 'maximum', x: Arg, y: Arg): Val {
  if (x.kind === 'L' && y.kind === 'L') {
    if (x.reusable) {
      e.line(e.f(`${op}_`, x.name, y.name));
      return x;
    }
    if (y.reusable) {
      e.line(e.f(`${op}_`, y.name, x.name));
      return y;
    }
    return e.fresh(e.f(op, x.name, y.name));
  }
  const [list, s] = x.kind === 'L' ? [x, y] : [y, x];
  return e.fresh(
    op === 'minimum'
      ? `_each(torch.clamp, ${list.name}, None, ${s.name})`
      : `_each(torch.clamp, ${list.name}, ${s.name})`,
  );
}

/** What a list template knows besides its arguments. */
interface TplContext {
  /** Whether argument i is >= 0 or NaN on every element (see `nonNegativeSteps`). */
  readonly nonNegative: (i: number) => boolean;
  /** The constant value of argument i, if it is a constant. */
  readonly constant: (i: number) => number | undefined;
}

type ListTpl = (e: Emitter, a: readonly Arg[], c: TplContext) => Val;

const LIST = {
  add: (e, a) => arith(e, 'add', at(a, 0), at(a, 1)),
  sub: (e, a) => arith(e, 'sub', at(a, 0), at(a, 1)),
  mul: (e, a) => arith(e, 'mul', at(a, 0), at(a, 1)),
  div: (e, a) => arith(e, 'div', at(a, 0), at(a, 1)),
  // x^2 is x*x (the registry's guardedPow computes it so); other exponents keep the odd extension.
  pow: (e, a, c) => {
    const x = at(a, 0);
    const y = at(a, 1);
    if (c.constant(1) === 2 && x.kind === 'L') return arith(e, 'mul', x, { ...x, reusable: false });
    return each(e, '_tpow', [x, y]);
  },
  neg: (e, a) => unary(e, 'neg', at(a, 0)),
  exp: (e, a) => unary(e, 'exp', at(a, 0)),
  log: (e, a, c) => ofAbs(e, 'log', at(a, 0), c.nonNegative(0)),
  sqrt: (e, a, c) => ofAbs(e, 'sqrt', at(a, 0), c.nonNegative(0)),
  abs: (e, a) => unary(e, 'abs', at(a, 0)),
  cos: (e, a) => unary(e, 'cos', at(a, 0)),
  floor: (e, a) => unary(e, 'floor', at(a, 0)),
  square: (e, a) => arith(e, 'mul', at(a, 0), { ...at(a, 0), reusable: false }),
  sign: (e, a) => each(e, '_tsign', [at(a, 0)]),
  clip: (e, a) => {
    const x = at(a, 0);
    const c = at(a, 1);
    return e.fresh(`_each(torch.clamp, ${x.name}, -${c.name}, ${c.name})`);
  },
  min: (e, a) => minMax(e, 'minimum', at(a, 0), at(a, 1)),
  max: (e, a) => minMax(e, 'maximum', at(a, 0), at(a, 1)),
  // a + w * (b - a), as the registry computes it (torch.lerp rounds differently).
  lerp: (e, a) => {
    const d = arith(e, 'sub', at(a, 1), { ...at(a, 0), reusable: false });
    const m = arith(e, 'mul', asArg(d, true), at(a, 2));
    return arith(e, 'add', asArg(m, true), at(a, 0));
  },
  keep: (_e, a) => ({ ...at(a, 0), fresh: false }),
  // drop(x, p, 1 - p, u): 0 where u < p, else x / (1 - p).
  drop: (e, a) => each(e, '_drop', [at(a, 0), at(a, 1), at(a, 2), at(a, 3)]),
} as const satisfies Record<TensorPrim, ListTpl>;

/**
 * Where a new state goes: in place into the slot's tensors (nothing reads the old value
 * after), or into fresh tensors (prev() reads the old value; stored after the update). The
 * template's first operation reads the old state (`first`), the others update `name` in place.
 */
interface StateTarget {
  readonly name: string;
  first(op: 'mul' | 'add' | 'maximum' | 'addcmul', ...args: string[]): void;
}

/** `x` may be a product `a * b` the generator fused (`addcmul_`), in which case `ab` holds it. */
type StateListTpl = (e: Emitter, s: StateTarget, a: readonly Arg[], ab?: readonly [Arg, Arg]) => void;

/** s <- s + x * scale, with x possibly the fused product a * b; `s.first` when nothing came before. */
function addScaled(
  e: Emitter,
  s: StateTarget,
  started: boolean,
  x: Arg,
  scale: Arg | undefined,
  ab?: readonly [Arg, Arg],
): void {
  if (!started) {
    // sum: the first operation is the addition itself.
    if (ab !== undefined) s.first('addcmul', ab[0].name, ab[1].name, 'value=1');
    else s.first('add', x.name);
    return;
  }
  if (ab !== undefined && (scale === undefined || scale.kind === 'S')) {
    e.line(e.f('addcmul_', s.name, ab[0].name, ab[1].name, `value=${scale?.name ?? '1'}`));
    return;
  }
  if (scale === undefined) e.line(e.f('add_', s.name, x.name));
  else if (x.kind === 'L' && scale.kind === 'S') e.line(e.f('add_', s.name, x.name, `alpha=${scale.name}`));
  else if (x.kind === 'S' && scale.kind === 'S') e.line(e.f('add_', s.name, `${x.name} * ${scale.name}`));
  else e.line(e.f('add_', s.name, arith(e, 'mul', x, scale).name));
}

const STATE_LIST = {
  // ema(x, beta, 1 - beta): s <- beta * s + (1 - beta) * x
  ema: (e, s, a, ab) => {
    s.first('mul', at(a, 1).name);
    addScaled(e, s, true, at(a, 0), at(a, 2), ab);
  },
  accum: (e, s, a, ab) => {
    s.first('mul', at(a, 1).name);
    addScaled(e, s, true, at(a, 0), undefined, ab);
  },
  sum: (e, s, a, ab) => addScaled(e, s, false, at(a, 0), undefined, ab),
  runmax: (_e, s, a) => {
    const x = at(a, 0);
    if (x.kind === 'L') s.first('maximum', x.name);
    else throw new Error('runmax of a float is a scalar step');
  },
} as const satisfies Record<StatePrim, StateListTpl>;

// ---------------------------------------------------------------------------------------
// Python helpers, emitted only when used.

interface Helper {
  readonly name: string;
  readonly uses: readonly string[];
  readonly source: string;
}

const HELPERS: readonly Helper[] = [
  {
    name: '_each',
    uses: [],
    source:
      'def _each(fn, *args):\n    """fn tensor by tensor: lists are taken element by element, anything else is passed to every call."""\n    n = next(len(a) for a in args if isinstance(a, (list, tuple)))\n    return [fn(*(a[i] if isinstance(a, (list, tuple)) else a for a in args)) for i in range(n)]',
  },
  {
    name: '_div',
    uses: [],
    source:
      'def _div(x, y):\n    try:\n        return x / y\n    except ZeroDivisionError:\n        if x != x or x == 0:\n            return math.nan\n        return math.copysign(math.inf, x) * math.copysign(1.0, y)',
  },
  {
    name: '_rdiv',
    uses: [],
    source:
      'def _rdiv(x, s):\n    """s / x, a true division (a float divided by a tensor is x.reciprocal() * s in torch)."""\n    return torch.div(torch.tensor(s, dtype=torch.float64), x)',
  },
  {
    name: '_sexp',
    uses: [],
    source: 'def _sexp(x):\n    try:\n        return math.exp(x)\n    except OverflowError:\n        return math.inf',
  },
  { name: '_scos', uses: [], source: 'def _scos(x):\n    return math.cos(x) if math.isfinite(x) else math.nan' },
  { name: '_sfloor', uses: [], source: 'def _sfloor(x):\n    return float(math.floor(x)) if math.isfinite(x) else x' },
  { name: '_slog', uses: [], source: 'def _slog(x):\n    return math.log(abs(x)) if x != 0 else -math.inf' },
  {
    name: '_ssign',
    uses: [],
    source: 'def _ssign(x):\n    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0 if x == 0 else math.nan',
  },
  {
    name: '_smin',
    uses: [],
    source: 'def _smin(x, y):\n    return math.nan if math.isnan(x) or math.isnan(y) else min(x, y)',
  },
  {
    name: '_smax',
    uses: [],
    source: 'def _smax(x, y):\n    return math.nan if math.isnan(x) or math.isnan(y) else max(x, y)',
  },
  {
    name: '_spow',
    uses: [],
    source:
      'def _spow(x, y):\n    """x ** y (IEEE pow); a negative x with a non-integer y gives -(|x| ** y)."""\n    if y == 2:\n        return x * x\n    if x < 0 and not (float(y).is_integer() or math.isinf(y)):\n        return -_spow(-x, y)\n    try:\n        return math.pow(x, y)\n    except (OverflowError, ValueError):\n        return torch.pow(torch.tensor(x, dtype=torch.float64), y).item()',
  },
  {
    name: '_tpow',
    uses: [],
    source:
      'def _tpow(x, y):\n    """x ** y per element (IEEE pow); a negative x with a non-integer y gives -(|x| ** y)."""\n    ax = torch.abs(x) if isinstance(x, torch.Tensor) else abs(x)\n    if not isinstance(y, torch.Tensor):\n        if y == 2:\n            return x * x\n        if float(y).is_integer() or math.isinf(y):\n            return torch.pow(x, y)\n        return torch.where(x < 0, torch.pow(ax, y).neg_(), torch.pow(x, y))\n    odd = (torch.floor(y) != y) & (x < 0)\n    return torch.where(odd, torch.pow(ax, y).neg_(), torch.where(y == 2, x * x, torch.pow(x, y)))',
  },
  {
    name: '_tsign',
    uses: [],
    source:
      'def _tsign(x):\n    """sign(x) with sign(NaN) = NaN (torch.sign gives 0)."""\n    return torch.sign(x).masked_fill_(torch.isnan(x), math.nan)',
  },
  {
    name: '_drop',
    uses: [],
    source:
      'def _drop(x, p, q, u):\n    """Dropout: 0 where u < p, else x / q (q = 1 - p)."""\n    kept = torch.div(x, q) if isinstance(x, torch.Tensor) else torch.full_like(u, x / q)\n    return kept.masked_fill_(u < p, 0.0)',
  },
  {
    name: '_linear_decay',
    uses: ['_smax'],
    source: 'def _linear_decay(t, steps):\n    s = min(t - 1, steps)\n    return _smax(0.0, (steps - s) / steps)',
  },
  {
    name: '_cosine_decay',
    uses: ['_scos'],
    source:
      'def _cosine_decay(t, steps, periods):\n    s = min(t - 1, steps)\n    return 0.5 * (1 + _scos(math.pi * 2 * periods * (s / steps)))',
  },
  {
    name: '_restart_decay',
    uses: ['_scos'],
    source:
      'def _restart_decay(t, steps, periods):\n    s = min(t - 1, steps)\n    x = periods * s\n    n = math.fmod(x, steps) if math.isfinite(x) else math.nan\n    return 0.5 * (1 + _scos(math.pi * n / steps))',
  },
];

/**
 * The scalar templates (Python floats) and every helper, for tests that run the emitted scalar
 * code itself (every scalar primitive on special values).
 */
export function pyScalarCode(): { templates: Readonly<Record<ScalarPrim, Tpl>>; helpers: string } {
  return { templates: SCALAR, helpers: HELPERS.map((h) => h.source).join('\n\n') };
}

/** The helpers some code names (called, or passed to `_each`), with what they use, in declaration order. */
function pyHelpersUsed(code: string): Helper[] {
  const need = new Set<string>();
  const add = (name: string): void => {
    if (need.has(name)) return;
    need.add(name);
    for (const u of HELPERS.find((h) => h.name === name)?.uses ?? []) add(u);
  };
  for (const h of HELPERS) if (new RegExp(`(?<![A-Za-z0-9_.])${h.name}(?![A-Za-z0-9_])`).test(code)) add(h.name);
  // Helpers call helpers: _tpow and _rdiv are self-contained, _spow calls itself.
  return HELPERS.filter((h) => need.has(h.name));
}

// ---------------------------------------------------------------------------------------
// torch's names for hyperparameters, and their checks.

/** How one hyperparameter appears: its group key, how the update reads it, its checks. */
interface PyParam {
  /** The rule's name for it. */
  readonly raw: string;
  /** Its keyword in emitted Python (escaped). */
  readonly kw: string;
  /** Where it lives in a param group: a key, and an index for a pair (betas). */
  readonly key: string;
  readonly index?: number;
  readonly default: number | undefined;
}

interface TorchSpelling {
  readonly params: readonly PyParam[];
  /** Keywords torch spells differently, kept as aliases of the rule's names (default None). */
  readonly aliases: readonly { readonly kw: string; readonly key: string; readonly index?: number }[];
  /** A generic L2 `weight_decay` (g + weight_decay * w), for rules without a `wd`. */
  readonly l2: boolean;
}

/** The rule's hyperparameters in torch's spelling where torch has one (see the module comment). */
function torchSpelling(rule: CheckedRule, decaySteps: number | undefined): TorchSpelling {
  const raw = checkedParamNames(rule);
  const has = (n: string) => raw.includes(n);
  const betas = has('beta1') && has('beta2') && !has('betas');
  const rename = new Map<string, string>();
  if (has('mu') && !has('momentum')) rename.set('mu', 'momentum');
  if (has('decay') && !has('alpha')) rename.set('decay', 'alpha');
  if (has('wd')) rename.set('wd', 'weight_decay');
  const params = rule.params.map((p, i): PyParam => {
    const kw = pyArgName(raw[i] as string);
    const fixed = CONTEXT_PARAMS.has(p.name) ? decaySteps : p.default;
    if (betas && (p.name === 'beta1' || p.name === 'beta2'))
      return { raw: p.name, kw, key: 'betas', index: p.name === 'beta1' ? 0 : 1, default: fixed };
    return { raw: p.name, kw, key: rename.get(p.name) ?? kw, default: fixed };
  });
  const aliases = params.filter((p) => p.key !== p.kw).map((p) => ({ kw: p.kw, key: p.key, index: p.index }));
  return { params, aliases, l2: !has('wd') };
}

/** `group["key"]` or `group["betas"][i]`. */
const groupRead = (p: { readonly key: string; readonly index?: number }, group = 'group'): string =>
  `${group}["${p.key}"]${p.index === undefined ? '' : `[${p.index}]`}`;

/** torch's own checks, by group key: condition on `v`, and torch's message. */
const TORCH_CHECKS: ReadonlyMap<string, { readonly ok: string; readonly message: string }> = new Map([
  ['eps', { ok: '0.0 <= v', message: 'Invalid epsilon value: {}' }],
  ['momentum', { ok: '0.0 <= v', message: 'Invalid momentum value: {}' }],
  ['weight_decay', { ok: '0.0 <= v', message: 'Invalid weight_decay value: {}' }],
  ['alpha', { ok: '0.0 <= v', message: 'Invalid alpha value: {}' }],
]);
const WEIGHT_DECAY_CHECK = { ok: '0.0 <= v', message: 'Invalid weight_decay value: {}' } as const;

/** The registry's ranges for hyperparameters used directly as a ranged argument (ema's beta, clip's c, ...). */
function directRanges(rule: CheckedRule): Map<string, { range: ArgRange; what: string }[]> {
  const out = new Map<string, { range: ArgRange; what: string }[]>();
  const visit = (n: Node): void => {
    if (n.k === 'prev') visit(n.arg);
    if (n.k !== 'op') return;
    const p = PRIMITIVE_BY_NAME.get(n.prim);
    for (const r of p?.ranges ?? []) {
      const a = n.args[r.arg];
      if (a?.k !== 'param') continue;
      const list = out.get(a.name) ?? [];
      const what = `${p?.name}'s ${p?.argNames[r.arg]}`;
      if (!list.some((x) => x.what === what)) list.push({ range: r, what });
      out.set(a.name, list);
    }
    n.args.forEach(visit);
  };
  visit(rule.expr);
  return out;
}

function rangeCondition(r: ArgRange): string {
  const lo = `${numberLiteral(r.min)} ${r.minOpen ? '<' : '<='} v`;
  const hi = r.max === Number.POSITIVE_INFINITY ? '' : ` ${r.maxOpen ? '<' : '<='} ${numberLiteral(r.max)}`;
  return `${lo}${hi}`;
}

/** Lines of `_check(self, group)`: torch's checks where torch has the name, the registry's ranges. */
function checkLines(rule: CheckedRule, spelling: TorchSpelling, cls: string): string[] {
  const lines = [
    '        if not 0.0 <= group["lr"]:',
    '            raise ValueError("Invalid learning rate: {}".format(group["lr"]))',
  ];
  const ranges = directRanges(rule);
  const check = (read: string, ok: string, message: string) => {
    lines.push(
      `        v = ${read}`,
      `        if not ${ok}:`,
      `            raise ValueError(${stringLiteral(message)}.format(v))`,
    );
  };
  for (const p of spelling.params) {
    const read = groupRead(p);
    if (CONTEXT_PARAMS.has(p.raw))
      lines.push(
        `        if ${read} is None:`,
        `            raise TypeError(${stringLiteral(`${cls}: this rule decays over ${p.raw} steps; pass ${p.kw}= (the number of steps the decay spans, usually the whole run)`)})`,
      );
    if (p.key === 'betas') check(read, '0.0 <= v < 1.0', `Invalid beta parameter at index ${p.index}: {}`);
    else {
      const torch = TORCH_CHECKS.get(p.key);
      if (torch) check(read, torch.ok, torch.message);
    }
    // torch's betas check ([0, 1)) already keeps them within ema's range.
    for (const { range, what } of p.key === 'betas' ? [] : (ranges.get(p.raw) ?? []))
      check(
        read,
        rangeCondition(range),
        `Invalid ${p.key === 'betas' ? `beta parameter at index ${p.index}` : `${p.key} value`}: {} (${what} must be in ${formatRange(range)})`,
      );
  }
  if (spelling.l2) check('group["weight_decay"]', WEIGHT_DECAY_CHECK.ok, WEIGHT_DECAY_CHECK.message);
  return lines;
}

// ---------------------------------------------------------------------------------------
// Analysis of the program for the list code.

/**
 * Tensor steps whose every element is >= 0 or NaN, never -0 (so sqrt and log need no |.|):
 * squares, |x|, exp, sqrt, and moving averages, sums and running maxima of such values
 * (ema's beta is checked to lie in [0, 1]).
 */
function nonNegativeSteps(program: Program): boolean[] {
  const nn = program.steps.map(() => false);
  const isConstNonNeg = (k: number) => {
    const s = program.steps[k] as Step;
    return s.op === 'const' && s.value >= 0 && !Object.is(s.value, -0);
  };
  const same = (a: number | undefined, b: number | undefined) => a !== undefined && a === b;
  program.steps.forEach((s, k) => {
    if (s.op === 'tensor') {
      const [a, b] = s.args;
      if (s.prim === 'square' || s.prim === 'abs' || s.prim === 'exp' || s.prim === 'sqrt') nn[k] = true;
      else if (s.prim === 'mul' && same(a, b)) nn[k] = true;
      else if (s.prim === 'pow' && b !== undefined && (program.steps[b] as Step).op === 'const')
        nn[k] = (program.steps[b] as Step & { value: number }).value === 2;
      else if ((s.prim === 'add' || s.prim === 'mul') && a !== undefined && b !== undefined)
        nn[k] = (nn[a] || isConstNonNeg(a)) === true && (nn[b] || isConstNonNeg(b)) === true;
    } else if (s.op === 'state') {
      const x = s.args[0] as number;
      const beta = s.args[1];
      const betaChecked = beta !== undefined && ((program.steps[beta] as Step).op === 'param' || isConstNonNeg(beta));
      if (s.prim === 'ema') nn[k] = nn[x] === true && betaChecked;
      else if (s.prim === 'sum' || s.prim === 'runmax') nn[k] = nn[x] === true;
    }
  });
  return nn;
}

/** For each step, the index of the last step that reads it (Infinity: the result or a slot). */
function lastUses(program: Program): number[] {
  const last = program.steps.map(() => -1);
  program.steps.forEach((s, k) => {
    if ('args' in s) for (const a of s.args) last[a] = Math.max(last[a] as number, k);
  });
  last[program.result] = Number.POSITIVE_INFINITY;
  for (const k of program.slotSteps) last[k] = Number.POSITIVE_INFINITY;
  return last;
}

// ---------------------------------------------------------------------------------------
// The emitter.

export function emitPyTorch(rule: CheckedRule, options: EmitOptions = {}): string {
  const provenance = options.provenance ?? { source: 'built-in' };
  const program = lowerRule(rule);
  const cls = className(rule, options.className);
  const spelling = torchSpelling(rule, options.decaySteps);
  const live = liveSteps(program);
  const last = lastUses(program);
  const nonNeg = nonNegativeSteps(program);
  const steps = program.steps;
  const stepAt = (k: number): Step => steps[k] as Step;
  const prevRead = new Set(steps.flatMap((s) => (s.op === 'prev' ? [s.slot] : [])));
  const slotOfStep = new Map(program.slotSteps.map((k, slot) => [k, slot]));
  const isProduct = (k: number): readonly [number, number] | undefined => {
    const s = stepAt(k);
    if (s.op !== 'tensor') return undefined;
    const [a, b] = s.args;
    if (a === undefined || stepAt(a).kind !== 'tensor') return undefined;
    if (s.prim === 'square') return [a, a];
    if (s.prim === 'pow' && b !== undefined && stepAt(b).op === 'const' && (stepAt(b) as { value: number }).value === 2)
      return [a, a];
    if (s.prim === 'mul' && b !== undefined && stepAt(b).kind === 'tensor') return [a, b];
    return undefined;
  };
  /** A step read by exactly one later step (or only as the result), that no slot holds. */
  const onlyFor = (k: number, reader: number): boolean =>
    !slotOfStep.has(k) &&
    k !== program.result &&
    steps.every((s, i) => i === reader || !('args' in s) || !s.args.includes(k));

  // Fusions: a product feeding a moving average (addcmul_), and the final w - lr * d.
  const fused = new Map<number, readonly [number, number]>(); // state step -> product operands
  const skip = new Set<number>();
  const fusedAway = (k: number) => skip.has(k);
  steps.forEach((s, k) => {
    if (s.op !== 'state' || (s.prim !== 'ema' && s.prim !== 'accum' && s.prim !== 'sum')) return;
    const x = s.args[0] as number;
    const ab = isProduct(x);
    const scale = s.prim === 'ema' ? s.args[2] : undefined;
    if (ab && onlyFor(x, k) && (scale === undefined || stepAt(scale).kind === 'scalar')) {
      fused.set(k, ab);
      skip.add(x);
    }
  });
  // A scaled term of a sum, x + s * a or x - s * a (s a scalar): one add/sub with alpha = s.
  const scaled = new Map<number, { readonly a: number; readonly s: number }>();
  steps.forEach((s, k) => {
    if (s.op !== 'tensor' || (s.prim !== 'add' && s.prim !== 'sub')) return;
    const [x, y] = s.args as [number, number];
    const term = (m: number) => {
      const st = stepAt(m);
      if (st.op !== 'tensor' || st.prim !== 'mul' || !onlyFor(m, k) || fusedAway(m)) return undefined;
      const [p, q] = st.args as [number, number];
      if (stepAt(p).kind === 'tensor' && stepAt(q).kind === 'scalar') return { a: p, s: q };
      if (stepAt(q).kind === 'tensor' && stepAt(p).kind === 'scalar') return { a: q, s: p };
      return undefined;
    };
    // The other operand must be a list: x + s * a, x - s * a, s * a + y.
    const ty = stepAt(x).kind === 'tensor' ? term(y) : undefined;
    const tx = s.prim === 'add' && stepAt(y).kind === 'tensor' ? term(x) : undefined;
    const t = ty ?? tx;
    if (t === undefined || (scaled.size > 0 && [...scaled.values()].some((v) => v.a === x || v.a === y))) return;
    scaled.set(ty !== undefined ? y : x, t);
    skip.add(ty !== undefined ? y : x);
  });
  type Final =
    | { readonly kind: 'plain' }
    | { readonly kind: 'addcdiv' | 'addcmul'; readonly a: number; readonly b: number; readonly over?: number }
    | { readonly kind: 'scaled'; readonly a: number; readonly times?: number; readonly over?: number };
  let final: Final = { kind: 'plain' };
  const r = stepAt(program.result);
  const resultAlone =
    r.op === 'tensor' &&
    !slotOfStep.has(program.result) &&
    steps.every((s) => !('args' in s) || !s.args.includes(program.result));
  if (resultAlone && r.op === 'tensor' && (r.prim === 'div' || r.prim === 'mul')) {
    const [a, b] = r.args as [number, number];
    const ka = stepAt(a).kind;
    const kb = stepAt(b).kind;
    if (ka === 'tensor' && kb === 'tensor') {
      // (c / s) / b: the scalar folds into the update's factor.
      const inner = stepAt(a);
      if (r.prim === 'div' && inner.op === 'tensor' && inner.prim === 'div' && onlyFor(a, program.result)) {
        const [c, s] = inner.args as [number, number];
        if (stepAt(c).kind === 'tensor' && stepAt(s).kind === 'scalar') {
          final = { kind: 'addcdiv', a: c, b, over: s };
          skip.add(a);
        }
      }
      if (final.kind === 'plain') final = { kind: r.prim === 'div' ? 'addcdiv' : 'addcmul', a, b };
    } else if (ka === 'tensor' && kb === 'scalar')
      final = r.prim === 'div' ? { kind: 'scaled', a, over: b } : { kind: 'scaled', a, times: b };
    else if (ka === 'scalar' && kb === 'tensor' && r.prim === 'mul') final = { kind: 'scaled', a: b, times: a };
    if (final.kind !== 'plain') skip.add(program.result);
  }

  // The update on lists: scalars first (once per call), then the tensor steps in order.
  const e = new Emitter();
  const scalarLines: string[] = [];
  const vals = new Map<number, Val>();
  const paramOf = (i: number): PyParam => spelling.params[i] as PyParam;
  const valOf = (k: number): Val => {
    if (skip.has(k)) return { kind: 'L', name: `(fused step ${k})`, fresh: false };
    const v = vals.get(k);
    if (v === undefined) throw new Error(`step ${k} has no value yet`);
    return v;
  };
  const argsOf = (k: number, args: readonly number[]): Arg[] => args.map((a) => asArg(valOf(a), last[a] === k));
  const context = (args: readonly number[]): TplContext => ({
    nonNegative: (i) => nonNeg[args[i] as number] === true,
    constant: (i) => {
      const s = stepAt(args[i] as number);
      return s.op === 'const' ? s.value : undefined;
    },
  });
  program.slots.forEach((slot, k) => {
    e.line(`s${k} = [st["${slot.name}"] for st in states]`);
  });
  steps.forEach((s, k) => {
    if (!live[k] && s.kind === 'scalar') return;
    switch (s.op) {
      case 'const':
        scalarLines.push(`v${k} = ${numberLiteral(s.value)}`);
        vals.set(k, { kind: 'S', name: `v${k}`, fresh: false });
        break;
      case 'param':
        scalarLines.push(`v${k} = float(${groupRead(paramOf(s.param))})`);
        vals.set(k, { kind: 'S', name: `v${k}`, fresh: false });
        break;
      case 'leaf':
        vals.set(
          k,
          s.leaf === 't' ? { kind: 'S', name: 't', fresh: false } : { kind: 'L', name: `${s.leaf}s`, fresh: false },
        );
        break;
      case 'scale':
        scalarLines.push(`v${k} = ${SCALE[s.prim]}`);
        vals.set(k, { kind: 'S', name: `v${k}`, fresh: false });
        break;
      case 'scalar':
        scalarLines.push(`v${k} = ${SCALAR[s.prim](s.args.map((a) => valOf(a).name))}`);
        vals.set(k, { kind: 'S', name: `v${k}`, fresh: false });
        break;
      case 'prev':
        vals.set(k, { kind: 'L', name: `s${s.slot}`, fresh: false });
        break;
      case 'draw':
        vals.set(k, { kind: 'L', name: `d${s.draw}`, fresh: true });
        break;
      case 'state': {
        if (!live[k]) break;
        const tpl: StateListTpl = STATE_LIST[s.prim];
        const ab = fused.get(k);
        const args = argsOf(k, s.args);
        const pair = ab ? ([asArg(valOf(ab[0]), false), asArg(valOf(ab[1]), false)] as const) : undefined;
        const old = `s${s.slot}`;
        // prev() reads the old value: the new state goes to fresh tensors, stored after the update.
        const target: StateTarget = prevRead.has(s.slot)
          ? { name: `n${s.slot}`, first: (op, ...x) => e.line(`n${s.slot} = ${e.f(op, old, ...x)}`) }
          : { name: old, first: (op, ...x) => e.line(e.f(`${op}_`, old, ...x)) };
        tpl(e, target, args, pair);
        vals.set(k, { kind: 'L', name: target.name, fresh: false });
        break;
      }
      case 'tensor': {
        if (!live[k] || skip.has(k)) break;
        const [sx, sy] = s.args as [number, number];
        const term = scaled.get(sy) ?? scaled.get(sx);
        if ((s.prim === 'add' || s.prim === 'sub') && term !== undefined) {
          const other = scaled.has(sy) ? sx : sy;
          const x = asArg(valOf(other), last[other] === k);
          const alpha = `alpha=${valOf(term.s).name}`;
          if (x.reusable) {
            e.line(e.f(`${s.prim}_`, x.name, valOf(term.a).name, alpha));
            vals.set(k, x);
          } else vals.set(k, e.fresh(e.f(s.prim, x.name, valOf(term.a).name, alpha)));
          break;
        }
        const tpl: ListTpl = LIST[s.prim];
        const v = tpl(e, argsOf(k, s.args), context(s.args));
        vals.set(k, v);
        break;
      }
    }
  });
  // The update itself.
  const name = (k: number) => valOf(k).name;
  const factor = (f: { times?: number; over?: number }) =>
    f.over !== undefined ? `_div(-lr, ${name(f.over)})` : f.times !== undefined ? `-lr * ${name(f.times)}` : '-lr';
  if (final.kind === 'addcdiv' || final.kind === 'addcmul')
    e.line(e.f(`${final.kind}_`, 'ws', name(final.a), name(final.b), `value=${factor(final)}`));
  else if (final.kind === 'scaled') e.line(e.f('add_', 'ws', name(final.a), `alpha=${factor(final)}`));
  else {
    const d = valOf(program.result);
    e.line(d.kind === 'L' ? e.f('add_', 'ws', d.name, 'alpha=-lr') : e.f('add_', 'ws', `-lr * ${d.name}`));
  }
  program.slots.forEach((slot, k) => {
    const step = program.slotSteps[k] as number;
    if (prevRead.has(k)) {
      e.line(`for st, x in zip(states, ${name(step)}):`);
      e.line(`    st["${slot.name}"] = x`);
    }
  });
  if (spelling.l2) e.ops.add('add');

  const hasDraws = program.draws.length > 0;
  const body = [...scalarLines, ...e.lines];
  const code = body.join('\n');
  const helpers = pyHelpersUsed(`${code}\n_each(`);
  const ops = [...e.ops].sort();
  const provText = `${provenance.source}${provenance.detail ? ` (${provenance.detail})` : ''}`;

  // Constructor: positional hyperparameters in the rule's order (torch's spelling, betas at
  // beta1's place), then weight_decay, then keyword-only foreach, seed and the rule's own names.
  const positional: string[] = [];
  const seenKeys = new Set<string>();
  for (const p of spelling.params) {
    if (seenKeys.has(p.key)) continue;
    seenKeys.add(p.key);
    if (p.key === 'betas') {
      const b = spelling.params.filter((q) => q.key === 'betas').sort((x, y) => (x.index ?? 0) - (y.index ?? 0));
      positional.push(`betas=(${b.map((q) => numberLiteral(q.default as number)).join(', ')})`);
    } else positional.push(`${p.key}=${p.default === undefined ? 'None' : numberLiteral(p.default)}`);
  }
  if (spelling.l2) positional.push('weight_decay=0.0');
  const aliasKws = spelling.aliases.map((a) => `${a.kw}=None`);
  const signature = ['params', 'lr=1e-3', ...positional, '*', 'foreach=None', 'seed=0', ...aliasKws].join(', ');
  const aliasLines: string[] = [];
  const betaAliases = spelling.aliases.filter((a) => a.key === 'betas');
  if (betaAliases.length > 0)
    aliasLines.push(
      `        if ${betaAliases.map((a) => `${a.kw} is not None`).join(' or ')}:`,
      '            betas = tuple(betas)',
      ...betaAliases.map(
        (a) =>
          `            betas = betas[:${a.index}] + (${a.kw},) + betas[${(a.index ?? 0) + 1}:] if ${a.kw} is not None else betas`,
      ),
    );
  for (const a of spelling.aliases.filter((x) => x.key !== 'betas'))
    aliasLines.push(`        if ${a.kw} is not None:`, `            ${a.key} = ${a.kw}`);
  const defaultKeys = [...new Set(spelling.params.map((p) => p.key)), ...(spelling.l2 ? ['weight_decay'] : [])];
  // Rule names inside a param group become torch's (a group may say beta1=, mu=, ...).
  const groupAliasLines: string[] = [];
  for (const a of spelling.aliases) {
    if (a.key === 'betas')
      groupAliasLines.push(
        `        if "${a.kw}" in group:`,
        `            b = list(group.get("betas", self.defaults["betas"]))`,
        `            b[${a.index}] = group.pop("${a.kw}")`,
        '            group["betas"] = tuple(b)',
      );
    else groupAliasLines.push(`        if "${a.kw}" in group:`, `            group["${a.key}"] = group.pop("${a.kw}")`);
  }
  const inits = program.slots.map(
    (s) =>
      `                    state["${s.name}"] = ${s.init === 0 ? 'torch.zeros_like(p, memory_format=torch.preserve_format)' : `torch.full_like(p, ${s.init === Number.NEGATIVE_INFINITY ? '-math.inf' : numberLiteral(s.init)}, memory_format=torch.preserve_format)`}`,
  );
  const slotDocs = program.slots.map((s) => `        ${s.name}: ${ruleComment(s.key)}`);
  const paramDocs = spelling.params.map(
    (p) =>
      `${p.kw}${p.key !== p.kw ? ` (${p.key}${p.index === undefined ? '' : `[${p.index}]`})` : ''}=${p.default === undefined ? 'required' : numberLiteral(p.default)}`,
  );
  // Draws fill buffers kept per parameter (allocating them each step cost as much as drawing on
  // the CPU): randn(shape) is empty(shape).normal_(), so the stream is the same.
  const drawLines = hasDraws
    ? [
        '        gen = self._generator(ws[0].device)',
        '        drawn = [self._draw_buffers(w) for w in ws]',
        '        for bufs in drawn:',
        ...program.draws.map(
          (d, j) => `            bufs[${j}].${d === 'normal' ? 'normal_' : 'uniform_'}(generator=gen)`,
        ),
        ...program.draws.map((_d, j) => `        d${j} = [x[${j}] for x in drawn]`),
      ]
    : [];
  const rngMethods = hasDraws
    ? `

    def _draw_buffers(self, w):
        """The parameter's draw buffers: refilled every step, kept between steps, not saved."""
        bufs = self._buffers.get(w)
        if bufs is None:
            bufs = [torch.empty_like(w, memory_format=torch.contiguous_format) for _ in range(${program.draws.length})]
            self._buffers[w] = bufs
        return bufs

    def _generator(self, device):
        """The noise and dropout generator of a device (seeded with seed), made on first use."""
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed(self._seed)
            self._generators[key] = gen
        return gen

    def state_dict(self):
        """The optimizer state, with each device's generator state (noise and dropout resume identically)."""
        sd = super().state_dict()
        sd["nos_rng_state"] = {k: g.get_state() for k, g in self._generators.items()}
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        rng = state_dict.pop("nos_rng_state", None)
        super().load_state_dict(state_dict)
        if isinstance(rng, torch.Tensor):
            rng = {"cpu": rng}
        for k, s in (rng or {}).items():
            self._generator(torch.device(k)).set_state(s)`
    : '';
  const opLines = (foreach: boolean) =>
    ops.map((op) => `    ${op} = staticmethod(${foreach ? `torch._foreach_${op}` : PER_TENSOR[op]})`).join('\n');
  const l2Lines = spelling.l2
    ? ['        wd = group["weight_decay"]', '        if wd != 0:', '            gs = F.add(gs, ws, alpha=wd)']
    : [];
  return `# Generated by nos (neural optimizer search). Edit the rule, not this file.
"""${cls}: the update rule ${ruleComment(rule.name ?? 'found by nos')} as a torch.optim.Optimizer.

Update, per parameter w with gradient g at step t = 1, 2, ...:
    w <- w - lr * d_t
    d_t = ${ruleComment(printNode(rule.expr))}
${readableLine(rule, '        ')}State per parameter (updated once per step; prev(s) reads it before the update):
${slotDocs.length > 0 ? slotDocs.join('\n') : '        none'}
Hyperparameters (defaults): ${paramDocs.length > 0 ? paramDocs.join(', ') : 'none'}${spelling.aliases.length > 0 ? `; the rule's names (${spelling.aliases.map((a) => `${a.kw}=`).join(', ')}) are accepted too` : ''}${spelling.l2 ? '; weight_decay adds weight_decay * w to the gradient (L2, as torch)' : ''}.
foreach=True (the default) updates a group's parameters with torch._foreach_* kernels.
Semantics: ema(x, b) = b*s + (1-b)*x from s = 0 (no bias correction); log(x) = ln|x|;
sqrt(x) = sqrt(|x|); sign(0) = 0; x^y with x < 0 and non-integer y is -(|x|^y).
Provenance: ${commentText(provText)}; rule hash ${rule.hash.replace(/[^0-9a-f]/g, '')} (exact text in PROVENANCE).
"""
import math

import torch

PROVENANCE = ${stringLiteral(provText)}

${helpers.map((h) => `${h.source}\n`).join('\n')}
class _PerTensor:
    """The update's operations on lists of tensors, one tensor at a time (foreach=False)."""

${opLines(false)}


class _Foreach:
    """The same operations as multi-tensor kernels (torch._foreach_*), one call per list."""

${opLines(true)}


class ${cls}(torch.optim.Optimizer):
    """d_t = ${ruleComment(printNode(rule.expr))}"""

    def __init__(self, ${signature}):
${aliasLines.join('\n')}${aliasLines.length > 0 ? '\n' : ''}        defaults = dict(lr=lr, ${defaultKeys.map((k) => `${k}=${k}`).join(', ')}${defaultKeys.length > 0 ? ', ' : ''}foreach=foreach)
        self._seed = seed
        self._generators = {}
        self._buffers = {}
        super().__init__(params, defaults)

    def __getstate__(self):
        return {**super().__getstate__(), "_seed": self._seed}

    def __setstate__(self, state):
        state = dict(state)
        self._seed = state.pop("_seed", 0)
        self._generators = {}
        self._buffers = {}
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("foreach", None)

    def add_param_group(self, param_group):
        group = param_group
${groupAliasLines.join('\n')}${groupAliasLines.length > 0 ? '\n' : ''}        super().add_param_group(group)
        self._check(self.param_groups[-1])

    @staticmethod
    def _check(group):
${checkLines(rule, spelling, cls).join('\n')}${rngMethods}

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            foreach = group["foreach"]
            if foreach is None:
                foreach = hasattr(torch, "_foreach_add_")
            buckets = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("${cls} does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
${inits.join('\n')}${inits.length > 0 ? '\n' : ''}                state["step"] += 1
                buckets.setdefault((p.device, p.dtype, state["step"]), []).append(p)
            for (_device, _dtype, t), ps in buckets.items():
                if foreach:
                    self._update(group, t, ps, _Foreach)
                else:
                    for p in ps:
                        self._update(group, t, [p], _PerTensor)
        return loss

    def _update(self, group, t, ws, F):
        """One step for parameters that share a device, a dtype and a step count t."""
        lr = group["lr"]
        gs = [w.grad for w in ws]
        states = [self.state[w] for w in ws]
${[...l2Lines, ...drawLines].join('\n')}${l2Lines.length + drawLines.length > 0 ? '\n' : ''}${body.map((l) => `        ${l}`).join('\n')}
`;
}
