/**
 * `nos export --format pytorch`: a Python file defining the rule as a `torch.optim.Optimizer`
 * subclass. Hyperparameters are constructor arguments (and live in each param group, so
 * schedulers and per-group settings work as usual); state lives in `self.state[p]`.
 */
import type { CheckedRule } from '../check.js';
import { printNode } from '../ir.js';
import { classStem, numberLiteral, type Plan, planRule, type Step } from './plan.js';
import type { Provenance } from './ts.js';

const PY_RESERVED = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield lr params seed self closure'.split(' '),
);

/** The keyword-argument name for a hyperparameter in emitted Python. */
export function pyArgName(name: string): string {
  return PY_RESERVED.has(name) ? `${name}_` : name;
}

type A = readonly string[];
const arg = (a: A, i: number): string => a[i] as string;

/** Python floats and tensors share these spellings (operators broadcast both ways). */
const BOTH: Readonly<Record<string, (a: A) => string>> = {
  add: (a) => `(${arg(a, 0)} + ${arg(a, 1)})`,
  sub: (a) => `(${arg(a, 0)} - ${arg(a, 1)})`,
  mul: (a) => `(${arg(a, 0)} * ${arg(a, 1)})`,
  neg: (a) => `(-${arg(a, 0)})`,
  square: (a) => `(${arg(a, 0)} * ${arg(a, 0)})`,
  lerp: (a) => `(${arg(a, 0)} + ${arg(a, 2)} * (${arg(a, 1)} - ${arg(a, 0)}))`,
  keep: (a) => arg(a, 0),
};

const SCALAR: Readonly<Record<string, (a: A) => string>> = {
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
};

const TENSOR: Readonly<Record<string, (a: A) => string>> = {
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
};

const STATE: Readonly<Record<string, (s: string, a: A) => string>> = {
  ema: (s, a) => `(${arg(a, 1)} * ${s} + (1 - ${arg(a, 1)}) * ${arg(a, 0)})`,
  accum: (s, a) => `(${arg(a, 1)} * ${s} + ${arg(a, 0)})`,
  sum: (s, a) => `(${s} + ${arg(a, 0)})`,
  runmax: (s, a) => `_tmax(${s}, ${arg(a, 0)}, w)`,
};

const DRAW: Readonly<Record<string, (draw: string, a: A) => string>> = {
  noise: (d) => `(0.1 * ${d})`,
  anoise: (d) => `(math.sqrt(1 / (1 + (t - 1)) ** 0.55) * ${d})`,
  drop: (d, a) => `torch.where(${d} < ${arg(a, 1)}, torch.zeros_like(w), _t(${arg(a, 0)}, w) / (1 - ${arg(a, 1)}))`,
};

function stepLine(s: Step, plan: Plan): string {
  switch (s.op) {
    case 'const':
      return `${s.name} = ${numberLiteral(s.value)}`;
    case 'param':
      return `${s.name} = float(group["${pyArgName((plan.params[s.param] as { name: string }).name)}"])`;
    case 'leaf':
      return `${s.name} = ${s.leaf === 'g' ? 'g' : s.leaf === 'w' ? 'w' : 't'}`;
    case 'prev':
      return `${s.name} = state["${(plan.slots[s.slot] as { name: string }).name}"]`;
    case 'state': {
      const f = STATE[s.prim];
      if (f === undefined) throw new Error(`no Python template for state primitive ${s.prim}`);
      return `${s.name} = _t(${f(`state["${(plan.slots[s.slot] as { name: string }).name}"]`, s.args)}, w)`;
    }
    case 'draw': {
      const f = DRAW[s.prim];
      if (f === undefined) throw new Error(`no Python template for ${s.prim}`);
      const draw = plan.draws[s.draw] === 'normal' ? 'torch.randn' : 'torch.rand';
      return `${s.name} = ${f(`${draw}(w.shape, generator=self._generator, dtype=w.dtype).to(w.device)`, s.args)}`;
    }
    case 'prim': {
      const f = (s.kind === 'scalar' ? SCALAR : TENSOR)[s.prim];
      if (f === undefined) throw new Error(`no Python template for ${s.prim} on ${s.kind}s`);
      return `${s.name} = ${f(s.args)}`;
    }
  }
}

export function emitPyTorch(rule: CheckedRule, provenance: Provenance = { source: 'built-in' }): string {
  const plan = planRule(rule);
  const cls = `${classStem(rule.name)}Optimizer`;
  const args = plan.params.map((p) => `${pyArgName(p.name)}=${numberLiteral(p.default)}`);
  const defaults = plan.params.map((p) => `${pyArgName(p.name)}=${pyArgName(p.name)}`);
  const inits = plan.slots.map(
    (s) => `                    state["${s.name}"] = torch.full_like(p, ${s.init === Number.NEGATIVE_INFINITY ? 'float("-inf")' : numberLiteral(s.init)}, memory_format=torch.preserve_format)`,
  );
  const body = plan.steps.map((s) => `                ${stepLine(s, plan)}`);
  const writes = plan.slots.map((s, i) => {
    const st = plan.steps.find((x) => x.op === 'state' && x.slot === i);
    return st ? `                state["${s.name}"] = ${st.name}` : '';
  });
  const slotDocs = plan.slots.map((s) => `        ${s.name}: ${s.key}`);
  return `# Generated by nos (neural optimizer search). Edit the rule, not this file.
"""${cls}: the update rule \`${rule.name ?? 'found rule'}\` as a torch.optim.Optimizer.

Update, per parameter w with gradient g at step t = 1, 2, ...:
    w <- w - lr * d_t
    d_t = ${printNode(rule.expr)}
State per parameter (updated once per step; prev(s) reads it before the update):
${slotDocs.length > 0 ? slotDocs.join('\n') : '        none'}
Hyperparameters (defaults): ${plan.params.length > 0 ? plan.params.map((p) => `${pyArgName(p.name)}=${numberLiteral(p.default)}`).join(', ') : 'none'}
Semantics: ema(x, b) = b*s + (1-b)*x from s = 0 (no bias correction); log(x) = ln|x|;
sqrt(x) = sqrt(|x|); sign(0) = 0; x^y with x < 0 and non-integer y is -(|x|^y).
Provenance: ${provenance.source}${provenance.detail ? ` (${provenance.detail})` : ''}; rule hash ${rule.hash}.
"""
import math

import torch


def _t(x, like):
    if isinstance(x, torch.Tensor):
        return x.expand_as(like) if x.shape != like.shape else x
    return torch.full_like(like, float(x))


def _div(x, y):
    try:
        return x / y
    except ZeroDivisionError:
        return math.copysign(math.inf, x) if x != 0 else math.nan


def _sfloor(x):
    return float(math.floor(x)) if math.isfinite(x) else x


def _slog(x):
    return math.log(abs(x)) if x != 0 else -math.inf


def _ssign(x):
    return 1.0 if x > 0 else -1.0 if x < 0 else 0.0 if x == 0 else math.nan


def _smin(x, y):
    return math.nan if math.isnan(x) or math.isnan(y) else min(x, y)


def _smax(x, y):
    return math.nan if math.isnan(x) or math.isnan(y) else max(x, y)


def _spow(x, y):
    if x < 0 and not float(y).is_integer():
        return -(abs(x) ** y)
    try:
        return x ** y
    except ZeroDivisionError:
        return math.inf


def _tpow(x, y, like):
    x = _t(x, like)
    y = _t(y, like)
    odd = (x < 0) & (torch.floor(y) != y)
    return torch.where(odd, -(torch.abs(x) ** y), x ** y)


def _tmin(x, y, like):
    x = _t(x, like)
    y = _t(y, like)
    return torch.where(torch.isnan(x) | torch.isnan(y), torch.full_like(like, math.nan), torch.minimum(x, y))


def _tmax(x, y, like):
    x = _t(x, like)
    y = _t(y, like)
    return torch.where(torch.isnan(x) | torch.isnan(y), torch.full_like(like, math.nan), torch.maximum(x, y))


def _linear_decay(t, steps):
    s = min(t - 1, steps)
    return max(0.0, (steps - s) / steps)


def _cosine_decay(t, steps, periods):
    s = min(t - 1, steps)
    return 0.5 * (1 + math.cos(math.pi * 2 * periods * (s / steps)))


def _restart_decay(t, steps, periods):
    s = min(t - 1, steps)
    return 0.5 * (1 + math.cos(math.pi * math.fmod(periods * s, steps) / steps))


class ${cls}(torch.optim.Optimizer):
    """d_t = ${printNode(rule.expr)}"""

    def __init__(self, params, lr, ${[...args, 'seed=0'].join(', ')}):
        if not 0.0 <= lr:
            raise ValueError("Invalid learning rate: {}".format(lr))
        defaults = dict(lr=lr${defaults.map((d) => `, ${d}`).join('')})
        super().__init__(params, defaults)
        self._generator = torch.Generator().manual_seed(seed)

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
${inits.join('\n')}
                state["step"] += 1
                t = state["step"]
${body.join('\n')}
                d = _t(${plan.result}, w)
${writes.filter((x) => x !== '').join('\n')}
                p.add_(d, alpha=-lr)
        return loss
`;
}
