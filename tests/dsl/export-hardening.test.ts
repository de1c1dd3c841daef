/**
 * Exported optimizers are generated code that users import: untrusted text (a shared run's
 * stored fields) must stay inert, hyperparameter names must never collide or shadow what
 * the file needs, and the files must fit users' builds (noUnused*, one class per rule).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { emitPyTorch, pyArgName } from '../../dsl/compile/pytorch.js';
import { emitTypeScript, tsOptionName } from '../../dsl/compile/ts.js';
import { type CheckedRule, compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { rng } from '../helpers/gen.js';
import { importEmitted, typeCheckStrict } from '../helpers/emitted.js';
import { scratchDir } from '../helpers/scratch.js';
import { tfReady } from '../helpers/tf.js';

const rule = (text: string): CheckedRule => {
  const r = compileRules(text);
  if (!r.ok) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  return r.rules[0]!;
};

const python = (script: string, dir: string): string => {
  const file = join(dir, 'driver.py');
  writeFileSync(file, script);
  return execFileSync('/usr/bin/python3', [file], { encoding: 'utf8', cwd: dir, maxBuffer: 16 << 20 });
};

/** Text that would end a comment, a string, a docstring or a line in TS or Python. */
const BREAKERS = [
  'q\n"""\nimport os;os.system("touch PWNED")\n"""',
  'rl */ require("child_process").execSync("touch PWNED"); /*',
  "x'; import os; os.system('touch PWNED'); '",
  '\\"); process.exit(3); ("',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the hostile name is this literal text
  '`${process.exit(4)}`',
  '\u2028alert(1)\u2029',
  "\r\n# -*- coding: latin-1 -*-\n''' + __import__('os').system('touch PWNED') + '''",
];

describe('exported files stay inert whatever the provenance says (S1)', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('TypeScript: every breaker lands in PROVENANCE verbatim and nowhere else', async () => {
    const dir = scratchDir('export-inert-ts');
    const files = BREAKERS.map((b, i) => {
      const f = join(dir, `p${i}.ts`);
      writeFileSync(
        f,
        emitTypeScript(rule('sign(m) * g'), { provenance: { source: b, detail: b }, className: `P${i}` }),
      );
      return f;
    });
    expect(typeCheckStrict(files)).toEqual([]);
    for (const [i, f] of files.entries()) {
      const mod = await importEmitted(f);
      expect(mod.PROVENANCE).toBe(`${BREAKERS[i]} (${BREAKERS[i]})`);
      expect(Object.keys(mod).sort()).toEqual([`P${i}Optimizer`, 'PROVENANCE']);
    }
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });

  it('Python: every breaker lands in PROVENANCE verbatim; importing runs nothing', () => {
    const dir = scratchDir('export-inert-py');
    BREAKERS.forEach((b, i) => {
      writeFileSync(
        join(dir, `p${i}.py`),
        emitPyTorch(rule('sign(m) * g'), { provenance: { source: b }, className: `P${i}` }),
      );
    });
    const out = python(
      `import importlib.util, json
res = []
for i in range(${BREAKERS.length}):
    s = importlib.util.spec_from_file_location(f"p{i}", f"p{i}.py")
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    res.append(m.PROVENANCE)
print(json.dumps(res))
`,
      dir,
    );
    expect(JSON.parse(out)).toEqual(BREAKERS);
    expect(existsSync(join(dir, 'PWNED'))).toBe(false);
  });
});

/** Hyperparameter names users could pick that collide with something in the emitted files. */
const NASTY = [
  'seed',
  'hpSeed',
  'seedParam',
  'learningRate',
  'lr',
  'dict',
  'super',
  'torch',
  'math',
  'self',
  'params',
  'closure',
  'betas',
  'lambda',
  'None',
  'True',
  'float',
  'state',
  'group',
  'constructor',
  'delete',
  'new',
  'tf',
  'full',
  'hp',
  'hpHp',
  'Hp',
  'DEFAULTS',
  'v0',
  'd',
];

function fuzzRules(): { rule: CheckedRule; names: string[]; values: number[] }[] {
  const r = rng(5);
  const out: { rule: CheckedRule; names: string[]; values: number[] }[] = [];
  for (let k = 0; out.length < 8 && k < 100; k++) {
    const names = [
      ...new Set(Array.from({ length: 2 + Math.floor(r() * 3) }, () => NASTY[Math.floor(r() * NASTY.length)]!)),
    ];
    const values = names.map(() => Math.round((0.2 + r() * 0.7) * 1000) / 1000);
    const c = compileRules(
      `rule fuzz${k}(${names.map((n, i) => `${n} = ${values[i]}`).join(', ')}) = ${names.join(' * ')} * g + ${names[0]} * sign(ema(g, 0.9))`,
    );
    if (c.ok) out.push({ rule: c.rules[0]!, names, values });
  }
  return out;
}

describe('hyperparameter names never collide in exports (W4, W5)', () => {
  const cases = fuzzRules();
  const golden = {
    w0: [0.5, -1, 2],
    grads: [
      [0.1, -0.2, 0.3],
      [0.3, 0.1, -0.2],
      [-0.1, 0.4, 0.2],
    ],
  };

  it('has enough checked cases with clashing names', () => {
    expect(cases.length).toBeGreaterThanOrEqual(6);
    for (const c of cases) {
      expect(new Set(c.names.map(tsOptionName)).size).toBe(c.names.length);
      expect(new Set(c.names.map(pyArgName)).size).toBe(c.names.length);
    }
  });

  it('TypeScript: type-checks, and each option reaches its own hyperparameter', async () => {
    await tfReady;
    const dir = scratchDir('export-names-ts');
    const files = cases.map((c, i) => {
      const f = join(dir, `n${i}.ts`);
      writeFileSync(f, emitTypeScript(c.rule));
      return f;
    });
    expect(typeCheckStrict(files)).toEqual([]);
    for (const [i, c] of cases.entries()) {
      const mod = await importEmitted(files[i]!);
      const Cls = Object.values(mod).find((v) => typeof v === 'function') as new (
        o: Record<string, number>,
      ) => tf.Optimizer;
      // Override every hyperparameter with a distinct value and compare with the interpreter.
      const set = Object.fromEntries(c.names.map((n, j) => [n, (j + 1) / 10]));
      const opt = new Cls({ learningRate: 0.1, ...Object.fromEntries(c.names.map((n) => [tsOptionName(n), set[n]!])) });
      const v = tf.variable(tf.tensor1d(golden.w0));
      const got: number[][] = [];
      for (const g of golden.grads) {
        const gt = tf.tensor1d(g);
        opt.applyGradients({ [v.name]: gt });
        gt.dispose();
        got.push(Array.from(v.dataSync()));
      }
      const ref = traceInterp(c.rule, golden, 0.1, { params: set, float32Intermediates: true });
      ref.forEach((row, s) => {
        row.forEach((x, j) => {
          expect(Math.abs(x - got[s]![j]!), `${c.rule.canonical} step ${s}`).toBeLessThan(1e-5);
        });
      });
      opt.dispose();
      v.dispose();
    }
  });

  it('Python: constructs with every name, and each keyword reaches its own hyperparameter', () => {
    const dir = scratchDir('export-names-py');
    cases.forEach((c, i) => {
      writeFileSync(join(dir, `n${i}.py`), emitPyTorch(c.rule));
    });
    const specs = cases.map((c) => Object.fromEntries(c.names.map((n, j) => [pyArgName(n), (j + 1) / 10])));
    const out = python(
      `import importlib.util, json, torch
specs = json.loads(${JSON.stringify(JSON.stringify(specs))})
res = []
for i, kw in enumerate(specs):
    s = importlib.util.spec_from_file_location(f"n{i}", f"n{i}.py")
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    cls = [getattr(m, k) for k in dir(m) if k.endswith("Optimizer") and k != "Optimizer"][0]
    p = torch.nn.Parameter(torch.tensor(${JSON.stringify(golden.w0)}, dtype=torch.float32))
    opt = cls([p], lr=0.1, **kw)
    traj = []
    for g in ${JSON.stringify(golden.grads)}:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        traj.append(p.detach().tolist())
    res.append(traj)
print(json.dumps(res))
`,
      dir,
    );
    const got = JSON.parse(out) as number[][][];
    cases.forEach((c, i) => {
      const set = Object.fromEntries(c.names.map((n, j) => [n, (j + 1) / 10]));
      const ref = traceInterp(c.rule, golden, 0.1, { params: set, float32Intermediates: true });
      ref.forEach((row, s) => {
        row.forEach((x, j) => {
          expect(Math.abs(x - got[i]![s]![j]!), `${c.rule.canonical} step ${s}`).toBeLessThan(1e-5);
        });
      });
    });
  });
});

describe('hyperparameters named like Python builtins (issue 24)', () => {
  it("a hyperparameter named ValueError, Exception or TypeError keeps the file's own checks working", () => {
    const dir = scratchDir('export-builtin-names');
    const c = compileRules(
      'rule weird(ValueError = 0.5, Exception = 0.25, TypeError = 2) = ValueError * Exception * TypeError * g',
    );
    expect(c.ok).toBe(true);
    if (!c.ok) return;
    writeFileSync(join(dir, 'weird.py'), emitPyTorch(c.rules[0]!));
    const out = python(
      `import importlib.util, torch
s = importlib.util.spec_from_file_location("weird", "weird.py")
m = importlib.util.module_from_spec(s)
s.loader.exec_module(m)
cls = [getattr(m, k) for k in dir(m) if k.endswith("Optimizer") and k != "Optimizer"][0]
p = torch.nn.Parameter(torch.tensor([1.0]))
try:
    cls([p], lr=-1)
    print("accepted")
except ValueError as e:
    print("ValueError:", e)
opt = cls([p], lr=0.1, ValueError_=1.0, Exception_=1.0, TypeError_=1.0)
p.grad = torch.tensor([2.0])
opt.step()
print(round(p.item(), 6))
`,
      dir,
    );
    expect(out.trim().split('\n')).toEqual(['ValueError: Invalid learning rate: -1', '0.8']);
  });
});

describe("exports fit users' code", () => {
  it('names classes after the rule, or after its hash: two found rules never share a class name', () => {
    const a = emitTypeScript(rule('sign(m) * g'));
    const b = emitTypeScript(rule('sign(v) * g'));
    const name = (src: string) => /export class (\w+) extends/.exec(src)?.[1];
    expect(name(a)).toMatch(/^Rule[0-9a-f]{8}Optimizer$/);
    expect(name(b)).toMatch(/^Rule[0-9a-f]{8}Optimizer$/);
    expect(name(a)).not.toBe(name(b));
    expect(name(emitTypeScript(rule('sign(m) * g'), { className: 'MySign' }))).toBe('MySignOptimizer');
    expect(emitPyTorch(library().get('lion')!)).toContain('class LionOptimizer(torch.optim.Optimizer)');
  });

  it('emits only the helpers a rule uses', () => {
    const sgd = emitTypeScript(library().get('sgd')!);
    for (const h of ['nosPow', 'tPow', 'tMinMax', 'linearDecay', 'tSign']) expect(sgd).not.toContain(`function ${h}(`);
    const ld = emitPyTorch(library().get('powersign-ld')!);
    expect(ld).toContain('def _linear_decay(');
    expect(ld).not.toContain('def _cosine_decay(');
    expect(emitPyTorch(library().get('sgd')!)).not.toContain('def _tpow(');
  });

  it('names built-ins in the doc comment when a rule contains one', () => {
    const src = emitTypeScript(rule('adam * exp(sign(g) * sign(m))'));
    expect(src).toMatch(/\* {7}= adam \* exp\(/);
  });

  it('PyTorch: betas= and weight_decay= as torch spells them; noise resumes identically from state_dict', () => {
    const dir = scratchDir('export-torch-api');
    writeFileSync(join(dir, 'adamw.py'), emitPyTorch(library().get('adamw')!));
    writeFileSync(join(dir, 'noisy.py'), emitPyTorch(rule('rule noisy = g + noise + drop(m, 0.3)')));
    const out = python(
      `import json, torch
from adamw import AdamwOptimizer
from noisy import NoisyOptimizer
def run(make, steps, resume_at=None):
    p = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))
    opt = make([p])
    out = []
    for k in range(steps):
        if k == resume_at:
            sd = opt.state_dict()
            q = torch.nn.Parameter(p.detach().clone())
            opt2 = make([q])
            opt2.load_state_dict(sd)
            p, opt = q, opt2
        p.grad = torch.tensor([0.1, -0.2, 0.3]) * (k + 1)
        opt.step()
        out.append(p.detach().tolist())
    return out
a = run(lambda ps: AdamwOptimizer(ps, lr=0.01, betas=(0.8, 0.95), weight_decay=0.1), 3)
b = run(lambda ps: AdamwOptimizer(ps, lr=0.01, beta1=0.8, beta2=0.95, wd=0.1), 3)
c = run(lambda ps: AdamwOptimizer(ps, lr=0.01), 3)
n1 = run(lambda ps: NoisyOptimizer(ps, lr=0.1, seed=3), 6)
n2 = run(lambda ps: NoisyOptimizer(ps, lr=0.1, seed=3), 6, resume_at=3)
print(json.dumps({"alias": a == b, "differs": a != c, "resume": n1 == n2}))
`,
      dir,
    );
    expect(JSON.parse(out)).toEqual({ alias: true, differs: true, resume: true });
  });
});
