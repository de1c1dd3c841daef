import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CheckedRule, compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { emitPyTorch, pyArgName } from '../../dsl/compile/pytorch.js';
import { emitTypeScript } from '../../dsl/compile/ts.js';
import { nos } from '../helpers/cli.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { torchGolden } from '../helpers/reference.js';
import { typeCheckStrict } from '../helpers/emitted.js';
import { scratchDir } from '../helpers/scratch.js';
import { tfReady } from '../helpers/tf.js';

const golden = torchGolden();

/** Built-ins with T pinned for the decay variants, plus deterministic random rules. */
function subjects(): { id: string; rule: CheckedRule; params: Record<string, number> }[] {
  const out = [...library()].map(([name, rule]) => ({
    id: name,
    rule,
    params: name.includes('-') ? { T: 10 } : ({} as Record<string, number>),
  }));
  const r = rng(99);
  let k = 0;
  while (k < 12) {
    const text = genNosRule(r, 2);
    if (/noise|drop/.test(text)) continue;
    const c = compileRules(`rule random${k} = ${text}`);
    if (!c.ok) continue;
    // A rule that decays over T steps needs T: the exports require it.
    const rule = c.rules[0]!;
    out.push({ id: `random${k}`, rule, params: rule.params.some((p) => p.name === 'T') ? { T: 10 } : {} });
    k++;
  }
  return out;
}

function maxRel(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => {
    row.forEach((x, j) => {
      const y = b[i]![j]!;
      if (Number.isNaN(x) && Number.isNaN(y)) return;
      m = Math.max(m, x === y ? 0 : Math.abs(x - y) / (1 + Math.abs(x)));
    });
  });
  return m;
}

/** Interpreter with float32 intermediates and its float32 sensitivity, per element. */
function reference(rule: CheckedRule, params: Record<string, number>, lr: number) {
  const ref32 = traceInterp(rule, golden, lr, { params, float32Intermediates: true });
  const ref64 = traceInterp(rule, golden, lr, { params });
  return { ref32, wellConditioned: maxRel(ref32, ref64) < 1e-5 };
}

describe('export --format ts', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('emits modules that type-check under strict settings and match the interpreter', async () => {
    const dir = scratchDir('export-ts');
    const items = subjects();
    const files = items.map((s) => {
      const file = join(dir, `${s.id}.ts`);
      writeFileSync(file, emitTypeScript(s.rule, { provenance: { source: 'test' } }));
      return file;
    });
    // In the same program (one tsc run): a decaying rule's T is a required option, unless the
    // export fixed it; a client that leaves it out does not type-check.
    writeFileSync(join(dir, 'ldfree.ts'), emitTypeScript(library().get('powersign-ld')!, { className: 'Free' }));
    writeFileSync(
      join(dir, 'ldfixed.ts'),
      emitTypeScript(library().get('powersign-ld')!, { decaySteps: 250, className: 'Fixed' }),
    );
    writeFileSync(
      join(dir, 'client.ts'),
      "import { FreeOptimizer } from './ldfree.js';\nimport { FixedOptimizer } from './ldfixed.js';\nexport const a = new FreeOptimizer({ learningRate: 0.1 });\nexport const b = new FreeOptimizer({ T: 100 });\nexport const c = new FixedOptimizer();\n",
    );
    const diags = typeCheckStrict([...files, ...['ldfree', 'ldfixed', 'client'].map((f) => join(dir, `${f}.ts`))]);
    expect(diags).toHaveLength(1);
    expect(diags[0]).toMatch(/client\.ts:[\s\S]*'T' is missing/);
    let compared = 0;
    for (const [i, s] of items.entries()) {
      const js = ts.transpileModule(readFileSync(files[i]!, 'utf8'), {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      }).outputText;
      const mjs = join(dir, `${s.id}.mjs`);
      writeFileSync(mjs, js);
      const mod = (await import(pathToFileURL(mjs).href)) as Record<
        string,
        new (
          o: Record<string, number>,
        ) => tf.Optimizer
      >;
      const [clsName, Cls] = Object.entries(mod).find(([k]) => k.endsWith('Optimizer'))!;
      expect(clsName).not.toContain('_');
      const opt = new Cls({ learningRate: 0.01, ...s.params });
      const v = tf.variable(tf.tensor1d(golden.w0));
      const got: number[][] = [];
      for (const g of golden.grads) {
        const gt = tf.tensor1d(g);
        opt.applyGradients({ [v.name]: gt });
        gt.dispose();
        got.push(Array.from(v.dataSync()));
      }
      const { ref32, wellConditioned } = reference(s.rule, s.params, 0.01);
      if (wellConditioned) {
        expect(maxRel(ref32, got), s.id).toBeLessThan(1e-4);
        compared++;
      }
      // Config round trip through tfjs serialization: the rebuilt optimizer takes the same steps.
      const Static = Cls as unknown as { fromConfig(c: typeof Cls, config: tf.serialization.ConfigDict): tf.Optimizer };
      const again = Static.fromConfig(Cls, opt.getConfig());
      expect(again.getConfig()).toEqual(opt.getConfig());
      const v2 = tf.variable(tf.tensor1d(golden.w0));
      const g0 = tf.tensor1d(golden.grads[0]!);
      again.applyGradients({ [v2.name]: g0 });
      expect(Array.from(v2.dataSync())).toEqual(got[0]);
      tf.dispose([g0, v2]);
      again.dispose();
      opt.dispose();
      v.dispose();
    }
    // Every built-in and most random rules are well conditioned in float32.
    expect(compared).toBeGreaterThan(items.length - 5);
  });
});

describe('export --format pytorch', () => {
  it('emits torch.optim.Optimizer subclasses that match the interpreter to 1e-5 (Debian python3-torch)', () => {
    const torchCheck = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
    });
    expect(torchCheck.status, `python3-torch is needed (apt-get install python3-torch): ${torchCheck.stderr}`).toBe(0);
    const dir = scratchDir('export-pytorch');
    const items = subjects();
    for (const s of items)
      writeFileSync(join(dir, `${s.id}.py`), emitPyTorch(s.rule, { provenance: { source: 'test' } }));
    const driver = join(dir, 'driver.py');
    writeFileSync(
      driver,
      `import importlib.util, json, math, sys
import torch
spec = json.load(open(sys.argv[1]))
out = {}
for item in spec["items"]:
    s = importlib.util.spec_from_file_location(item["id"], item["file"])
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    cls = [getattr(m, k) for k in dir(m) if k.endswith("Optimizer") and k != "Optimizer"][0]
    p = torch.nn.Parameter(torch.tensor(spec["w0"], dtype=torch.float32))
    opt = cls([p], lr=spec["lr"], **item["params"])
    traj = []
    for g in spec["grads"]:
        p.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        traj.append([x if math.isfinite(x) else str(x) for x in p.detach().tolist()])
    out[item["id"]] = traj
print(json.dumps(out))
`,
    );
    const specFile = join(dir, 'spec.json');
    writeFileSync(
      specFile,
      JSON.stringify({
        w0: golden.w0,
        grads: golden.grads,
        lr: 0.01,
        items: items.map((s) => ({
          id: s.id,
          file: join(dir, `${s.id}.py`),
          params: Object.fromEntries(Object.entries(s.params).map(([k, v]) => [pyArgName(k), v])),
        })),
      }),
    );
    let compared = 0;
    const raw = JSON.parse(
      execFileSync('/usr/bin/python3', [driver, specFile], { encoding: 'utf8', maxBuffer: 64 << 20 }),
    ) as Record<string, (number | string)[][]>;
    const num = (x: number | string): number =>
      typeof x === 'number'
        ? x
        : x === 'inf'
          ? Number.POSITIVE_INFINITY
          : x === '-inf'
            ? Number.NEGATIVE_INFINITY
            : Number.NaN;
    const result = Object.fromEntries(Object.entries(raw).map(([k, traj]) => [k, traj.map((row) => row.map(num))]));
    for (const s of items) {
      const { ref32, wellConditioned } = reference(s.rule, s.params, 0.01);
      const got = result[s.id]!;
      if (wellConditioned || library().has(s.id)) {
        expect(maxRel(ref32, got), s.id).toBeLessThan(1e-5);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(items.length - 5);
  });

  it('renames hyperparameters that would clash with Python or the optimizer API', () => {
    const r = compileRules('rule clash(lambda = 0.5, lr = 2) = lambda * lr * g').rules[0]!;
    const py = emitPyTorch(r);
    expect(py).toContain(
      'def __init__(self, params, lr=1e-3, lambda_=0.5, lr_=2, weight_decay=0.0, *, foreach=None, seed=0)',
    );
    expect(r.params.map((p) => pyArgName(p.name))).toEqual(['lambda_', 'lr_']);
  });
});

describe('nos export', () => {
  it('prints the tfjs config that RuleOptimizer.fromConfig accepts', async () => {
    const r = await nos('export', '--rule', 'powersign', '--format', 'tfjs', '--lr', '0.02', '--set', 'beta=0.8');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      className: string;
      config: { rule: string; learningRate: number; params: Record<string, number> };
    };
    expect(doc.className).toBe('RuleOptimizer');
    expect(doc.config.learningRate).toBe(0.02);
    expect(doc.config.params).toEqual({ base: Math.E, beta: 0.8 });
    const { RuleOptimizer } = await import('../../optimizer/rule-optimizer.js');
    const opt = RuleOptimizer.fromConfig(RuleOptimizer, doc.config) as InstanceType<typeof RuleOptimizer>;
    expect(opt.rule.hash).toBe(library().get('powersign')!.hash);
    expect(opt.params).toEqual({ base: Math.E, beta: 0.8 });
  });

  it('writes ts and pytorch files with --out, with the equations and provenance in the doc comment', async () => {
    const dir = scratchDir('export-cli');
    const out = join(dir, 'lion.py');
    const r = await nos('export', '--rule', 'lion', '--format', 'pytorch', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const py = readFileSync(out, 'utf8');
    expect(py).toContain('class LionOptimizer(torch.optim.Optimizer)');
    expect(py).toContain('d_t = sign((1 - beta1) * g + beta1 * prev(ema(g, beta2))) + w * wd');
    const tsOut = await nos('export', '--rule', 'powersign-cd', '--format', 'ts');
    expect(tsOut.stdout).toContain('export class PowersignCdOptimizer extends tf.Optimizer');
    expect(tsOut.stdout).toContain('Provenance: built-in; rule hash');
  });

  it('reports user errors', async () => {
    for (const [argv, msg] of [
      [['export', '--rule', 'adam'], /--format is required/],
      [['export', '--rule', 'adam', '--format', 'onnx'], /unknown --format/],
      [['export', '--rule', 'adam', '--format', 'ts', '--set', 'beta=1'], /unknown hyperparameter/],
      [['export', '--run', 'no-such-run', '--rank', '1', '--format', 'ts'], /no run 'no-such-run'/],
      [['export', '--run', 'no-such-run', '--format', 'ts'], /--run needs --rank/],
      [['export', '--rule', 'g +', '--format', 'ts'], /expected an expression/],
    ] as [string[], RegExp][]) {
      const r = await nos(...argv);
      expect(r.code, argv.join(' ')).toBe(1);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe("a decaying rule's T in every export format (no silent default)", () => {
  it('TypeScript: T is a required option (tsc: see the first test), checked at run time too', async () => {
    await tfReady;
    const dir = scratchDir('export-decay-ts');
    const free = join(dir, 'ld.ts');
    writeFileSync(free, emitTypeScript(library().get('powersign-ld')!));
    const fixed = join(dir, 'ldfixed.ts');
    writeFileSync(fixed, emitTypeScript(library().get('powersign-ld')!, { decaySteps: 250, className: 'Fixed' }));
    const { importEmitted } = await import('../helpers/emitted.js');
    const mod = (await importEmitted(free)) as Record<string, new (o: Record<string, number>) => tf.Optimizer>;
    const Cls = mod.PowersignLdOptimizer!;
    expect(() => new Cls({ learningRate: 0.1 })).toThrow(/decays over T steps; pass \{ T: /);
    expect(new Cls({ T: 100 }).getConfig()).toMatchObject({ T: 100 });
    const modFixed = (await importEmitted(fixed)) as Record<string, new (o?: Record<string, number>) => tf.Optimizer>;
    expect(new modFixed.FixedOptimizer!().getConfig()).toMatchObject({ T: 250 });
  });

  it('nos export: tfjs needs --decay-steps (or --set T=); ts and pytorch take it as the default', async () => {
    const refused = await nos('export', '--rule', 'powersign-ld', '--format', 'tfjs');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/decays over T steps: pass --decay-steps N/);
    const r = await nos('export', '--rule', 'addsign-cd', '--format', 'tfjs', '--decay-steps', '300');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { config: { params: Record<string, number> } };
    expect(doc.config.params).toEqual({ alpha: 1, beta: 0.9, periods: 0.5, T: 300 });
    const { RuleOptimizer } = await import('../../optimizer/rule-optimizer.js');
    const opt = RuleOptimizer.fromConfig(RuleOptimizer, doc.config as never) as InstanceType<typeof RuleOptimizer>;
    expect(opt.params.T).toBe(300);
    const viaSet = await nos('export', '--rule', 'powersign-ld', '--format', 'tfjs', '--set', 'T=40');
    expect((JSON.parse(viaSet.stdout) as { config: { params: { T: number } } }).config.params.T).toBe(40);
    const py = await nos('export', '--rule', 'powersign-ld', '--format', 'pytorch', '--decay-steps', '5000');
    expect(py.stdout).toContain('beta=0.9, T=5000, weight_decay=0.0');
    const tsFree = await nos('export', '--rule', 'powersign-ld', '--format', 'ts');
    expect(tsFree.stdout).toContain('  T: number;');
    for (const [argv, msg] of [
      [['--rule', 'adam', '--decay-steps', '10'], /does not decay/],
      [['--rule', 'powersign-ld', '--decay-steps', '-1'], /positive number/],
      [['--rule', 'powersign-ld', '--decay-steps', '10', '--set', 'T=20'], /disagree/],
    ] as [string[], RegExp][]) {
      const bad = await nos('export', ...argv, '--format', 'ts');
      expect(bad.code, argv.join(' ')).toBe(1);
      expect(bad.stderr).toMatch(msg);
    }
  });
});
