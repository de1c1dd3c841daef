/**
 * `nos export --format pytorch`: a Python file defining the rule as a `torch.optim.Optimizer`
 * subclass, generated from the shared lowering. Hyperparameters are constructor arguments
 * (and live in each param group, so schedulers and per-group settings work as usual), with
 * torch's usual aliases (`betas=`, `weight_decay=`) where the rule has the matching
 * hyperparameters; state lives in `self.state[p]`; the random generator's state is saved in
 * `state_dict()` when the rule draws noise or dropout.
 */
import type { NoisePrim, ScalarPrim, StatePrim, TensorPrim } from '../../primitives/registry.js';
import type { CheckedRule } from '../check.js';
import { printNode } from '../ir.js';
import { lowerRule, type Program, type Step } from '../lower.js';
import {
  checkedParamNames,
  className,
  commentText,
  numberLiteral,
  readableLine,
  ruleComment,
  stringLiteral,
} from './names.js';
import { helpersUsed, type EmitOptions } from './ts.js';
import { arg, INFIX, type Tpl } from './templates.js';

/** Python keywords and builtins (exceptions included: `__init__` raises ValueError), and the names the file itself uses. */
const PY_RESERVED = new Set(
  `False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case type _
  abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile complex copyright credits delattr dict dir divmod enumerate eval exec exit filter float format frozenset getattr globals hasattr hash help hex id input int isinstance issubclass iter len license list locals map max memoryview min next object oct open ord pow print property quit range repr reversed round set setattr slice sorted staticmethod str sum super tuple vars zip
  ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception ExceptionGroup FileExistsError FileNotFoundError FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning IndentationError IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError MemoryError ModuleNotFoundError NameError NotADirectoryError NotImplemented NotImplementedError OSError OverflowError PendingDeprecationWarning PermissionError ProcessLookupError PythonFinalizationError RecursionError ReferenceError ResourceWarning RuntimeError RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError TimeoutError TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning UserWarning ValueError Warning ZeroDivisionError
  math torch params lr self closure seed betas defaults group state PROVENANCE`.split(/\s+/),
);

/**
 * The keyword-argument name for a hyperparameter in emitted Python: the name, or the name
 * with a trailing underscore when Python or the optimizer reserves it. Rule names have no
 * underscores, so an escaped name never equals another hyperparameter's.
 */
export function pyArgName(name: string): string {
  return PY_RESERVED.has(name) ? `${name}_` : name;
}

/** Python floats and tensors share these spellings (operators broadcast both ways). */
const { div: _div, ...BOTH } = INFIX;

const SCALAR = {
  ...BOTH,
  div: (a) => `_div(${arg(a, 0)}, ${arg(a, 1)})`,
  pow: (a) => `_spow(${arg(a, 0)}, ${arg(a, 1)})`,
  exp: (a) => `math.exp(${arg(a, 0)})`,
  log: (a) => `_slog(${arg(a, 0)})`,
  sqrt: (a) => `math.sqrt(abs(${arg(a, 0)}))`,
  abs: (a) => `abs(${arg(a, 0)})`,
  cos: (a) => `math.cos(${arg(a, 0)})`,
  floor: (a) => `_sfloor(${arg(a, 0)})`,
  sign: (a) => `_ssign(${arg(a, 0)})`,
  clip: (a) => `min(max(${arg(a, 0)}, -${arg(a, 1)}), ${arg(a, 1)})`,
  min: (a) => `_smin(${arg(a, 0)}, ${arg(a, 1)})`,
  max: (a) => `_smax(${arg(a, 0)}, ${arg(a, 1)})`,
  lindecay: (a) => `_linear_decay(t, ${arg(a, 0)})`,
  cosdecay: (a) => `_cosine_decay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
  restartdecay: (a) => `_restart_decay(t, ${arg(a, 0)}, ${arg(a, 1)})`,
} as const satisfies Record<ScalarPrim, Tpl>;

const TENSOR = {
  ...BOTH,
  div: (a) => `(${arg(a, 0)} / ${arg(a, 1)})`,
  pow: (a) => `_tpow(${arg(a, 0)}, ${arg(a, 1)}, w)`,
  exp: (a) => `torch.exp(_t(${arg(a, 0)}, w))`,
  log: (a) => `torch.log(torch.abs(_t(${arg(a, 0)}, w)))`,
  sqrt: (a) => `torch.sqrt(torch.abs(_t(${arg(a, 0)}, w)))`,
  abs: (a) => `torch.abs(_t(${arg(a, 0)}, w))`,
  cos: (a) => `torch.cos(_t(${arg(a, 0)}, w))`,
  floor: (a) => `torch.floor(_t(${arg(a, 0)}, w))`,
  sign: (a) => `torch.sign(_t(${arg(a, 0)}, w))`,
  clip: (a) => `_tmin(_tmax(${arg(a, 0)}, -${arg(a, 1)}, w), ${arg(a, 1)}, w)`,
  min: (a) => `_tmin(${arg(a, 0)}, ${arg(a, 1)}, w)`,
  max: (a) => `_tmax(${arg(a, 0)}, ${arg(a, 1)}, w)`,
  drop: (a) =>
    `torch.where(${arg(a, 2)} < ${arg(a, 1)}, torch.zeros_like(w), _t(${arg(a, 0)}, w) / (1 - ${arg(a, 1)}))`,
} as const satisfies Record<TensorPrim, Tpl>;

const STATE = {
  ema: (s, a) => `(${arg(a, 1)} * ${s} + (1 - ${arg(a, 1)}) * ${arg(a, 0)})`,
  accum: (s, a) => `(${arg(a, 1)} * ${s} + ${arg(a, 0)})`,
  sum: (s, a) => `(${s} + ${arg(a, 0)})`,
  runmax: (s, a) => `_tmax(${s}, ${arg(a, 0)}, w)`,
} as const satisfies Record<StatePrim, (s: string, a: readonly string[]) => string>;

/** The per-step scale of scaled noise, as a Python expression of t. */
const SCALE = {
  noise: '0.1',
  anoise: 'math.sqrt(1 / (1 + (t - 1)) ** 0.55)',
} as const satisfies Record<NoisePrim, string>;

const HELPERS: readonly { readonly name: string; readonly uses: readonly string[]; readonly source: string }[] = [
  {
    name: '_t',
    uses: [],
    source:
      'def _t(x, like):\n    if isinstance(x, torch.Tensor):\n        return x.expand_as(like) if x.shape != like.shape else x\n    return torch.full_like(like, float(x))',
  },
  {
    name: '_div',
    uses: [],
    source:
      'def _div(x, y):\n    try:\n        return x / y\n    except ZeroDivisionError:\n        return math.copysign(math.inf, x) if x != 0 else math.nan',
  },
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
      'def _spow(x, y):\n    if x < 0 and not float(y).is_integer():\n        return -(abs(x) ** y)\n    try:\n        return x ** y\n    except ZeroDivisionError:\n        return math.inf',
  },
  {
    name: '_tpow',
    uses: ['_t'],
    source:
      'def _tpow(x, y, like):\n    x = _t(x, like)\n    y = _t(y, like)\n    odd = (x < 0) & (torch.floor(y) != y)\n    return torch.where(odd, -(torch.abs(x) ** y), x ** y)',
  },
  {
    name: '_tmin',
    uses: ['_t'],
    source:
      'def _tmin(x, y, like):\n    x = _t(x, like)\n    y = _t(y, like)\n    return torch.where(torch.isnan(x) | torch.isnan(y), torch.full_like(like, math.nan), torch.minimum(x, y))',
  },
  {
    name: '_tmax',
    uses: ['_t'],
    source:
      'def _tmax(x, y, like):\n    x = _t(x, like)\n    y = _t(y, like)\n    return torch.where(torch.isnan(x) | torch.isnan(y), torch.full_like(like, math.nan), torch.maximum(x, y))',
  },
  {
    name: '_linear_decay',
    uses: [],
    source: 'def _linear_decay(t, steps):\n    s = min(t - 1, steps)\n    return max(0.0, (steps - s) / steps)',
  },
  {
    name: '_cosine_decay',
    uses: [],
    source:
      'def _cosine_decay(t, steps, periods):\n    s = min(t - 1, steps)\n    return 0.5 * (1 + math.cos(math.pi * 2 * periods * (s / steps)))',
  },
  {
    name: '_restart_decay',
    uses: [],
    source:
      'def _restart_decay(t, steps, periods):\n    s = min(t - 1, steps)\n    return 0.5 * (1 + math.cos(math.pi * math.fmod(periods * s, steps) / steps))',
  },
];

function stepName(program: Program, k: number): string {
  const s = program.steps[k] as Step;
  if (s.op === 'leaf') return s.leaf;
  if (s.op === 'prev') return `state["${(program.slots[s.slot] as { name: string }).name}"]`;
  return `v${k}`;
}

function stepLine(program: Program, k: number, names: readonly string[]): string | undefined {
  const s = program.steps[k] as Step;
  const args = 'args' in s ? s.args.map((a) => stepName(program, a)) : [];
  switch (s.op) {
    case 'const':
      return `v${k} = ${numberLiteral(s.value)}`;
    case 'param':
      return `v${k} = float(group["${names[s.param]}"])`;
    case 'leaf':
    case 'prev':
      return undefined;
    case 'scale':
      return `v${k} = ${SCALE[s.prim]}`;
    case 'scalar':
      return `v${k} = ${SCALAR[s.prim](args)}`;
    case 'state':
      return `v${k} = _t(${STATE[s.prim](`state["${(program.slots[s.slot] as { name: string }).name}"]`, args)}, w)`;
    case 'draw':
      return `v${k} = ${s.dist === 'normal' ? 'torch.randn' : 'torch.rand'}(w.shape, generator=self._generator, dtype=w.dtype).to(w.device)`;
    case 'tensor':
      return `v${k} = ${TENSOR[s.prim](args)}`;
  }
}

export function emitPyTorch(rule: CheckedRule, options: EmitOptions = {}): string {
  const provenance = options.provenance ?? { source: 'built-in' };
  const program = lowerRule(rule);
  const raw = checkedParamNames(rule);
  const names = raw.map(pyArgName);
  const cls = className(rule, options.className);
  const lines = program.steps.map((_s, k) => stepLine(program, k, names)).filter((l): l is string => l !== undefined);
  const result = stepName(program, program.result);
  const code = [...lines, `_t(${result}, w)`].join('\n');
  const helpers = helpersUsed(code, HELPERS);
  const hasDraws = program.draws.length > 0;
  const args = rule.params.map((p, i) => `${names[i]}=${numberLiteral(p.default)}`);
  // torch's spellings: betas=(beta1, beta2), weight_decay=wd.
  const hasBetas = raw.includes('beta1') && raw.includes('beta2');
  const hasWd = raw.includes('wd');
  const aliases = [...(hasBetas ? ['betas=None'] : []), ...(hasWd ? ['weight_decay=None'] : [])];
  const aliasLines = [
    ...(hasBetas
      ? ['        if betas is not None:', `            ${pyArgName('beta1')}, ${pyArgName('beta2')} = betas`]
      : []),
    ...(hasWd ? ['        if weight_decay is not None:', `            ${pyArgName('wd')} = weight_decay`] : []),
  ];
  const inits = program.slots.map(
    (s) =>
      `                    state["${s.name}"] = torch.full_like(p, ${s.init === Number.NEGATIVE_INFINITY ? 'float("-inf")' : numberLiteral(s.init)}, memory_format=torch.preserve_format)`,
  );
  const writes = program.slots.map((s, k) => `                state["${s.name}"] = v${program.slotSteps[k]}`);
  const slotDocs = program.slots.map((s) => `        ${s.name}: ${ruleComment(s.key)}`);
  const provText = `${provenance.source}${provenance.detail ? ` (${provenance.detail})` : ''}`;
  const rngMethods = hasDraws
    ? `

    def state_dict(self):
        """The optimizer state, with the random generator's state (noise and dropout resume identically)."""
        sd = super().state_dict()
        sd["nos_rng_state"] = self._generator.get_state()
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        rng = state_dict.pop("nos_rng_state", None)
        super().load_state_dict(state_dict)
        if rng is not None:
            self._generator.set_state(rng)`
    : '';
  return `# Generated by nos (neural optimizer search). Edit the rule, not this file.
"""${cls}: the update rule ${ruleComment(rule.name ?? 'found by nos')} as a torch.optim.Optimizer.

Update, per parameter w with gradient g at step t = 1, 2, ...:
    w <- w - lr * d_t
    d_t = ${ruleComment(printNode(rule.expr))}
${readableLine(rule, '        ')}State per parameter (updated once per step; prev(s) reads it before the update):
${slotDocs.length > 0 ? slotDocs.join('\n') : '        none'}
Hyperparameters (defaults): ${args.length > 0 ? args.join(', ') : 'none'}${hasBetas ? '; betas=(beta1, beta2) is accepted too' : ''}${hasWd ? '; weight_decay= sets wd' : ''}
Semantics: ema(x, b) = b*s + (1-b)*x from s = 0 (no bias correction); log(x) = ln|x|;
sqrt(x) = sqrt(|x|); sign(0) = 0; x^y with x < 0 and non-integer y is -(|x|^y).
Provenance: ${commentText(provText)}; rule hash ${rule.hash.replace(/[^0-9a-f]/g, '')} (exact text in PROVENANCE).
"""
import math

import torch

PROVENANCE = ${stringLiteral(provText)}

${helpers.map((h) => `${h.source}\n`).join('\n')}
class ${cls}(torch.optim.Optimizer):
    """d_t = ${ruleComment(printNode(rule.expr))}"""

    def __init__(self, params, lr=1e-3, ${[...args, '*', ...aliases, 'seed=0'].join(', ')}):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))
${aliasLines.join('\n')}${aliasLines.length > 0 ? '\n' : ''}        defaults = dict(lr=lr${names.map((n) => `, ${n}=${n}`).join('')})
        super().__init__(params, defaults)
        self._generator = torch.Generator().manual_seed(seed)${rngMethods}

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                w = p.detach()
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
${inits.join('\n')}${inits.length > 0 ? '\n' : ''}                state["step"] += 1
                t = state["step"]
${lines.map((l) => `                ${l}`).join('\n')}
                d = _t(${result}, w)
${writes.join('\n')}${writes.length > 0 ? '\n' : ''}                p.add_(d, alpha=-lr)
        return loss
`;
}
