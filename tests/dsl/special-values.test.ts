/**
 * Every primitive on every back end, on special values (NaN, +-Inf, +-0, subnormals, the
 * smallest normal, tiny and huge numbers), against the reference interpreter: the in-process
 * back ends (js, wasm, tf), WGSL on Mesa's software adapter (one child process), the
 * TypeScript export (tfjs here) and the PyTorch export (one python process, foreach on and
 * off). The cases and the protocol are in tests/helpers/special-values.ts. The exports' scalar
 * code (Python floats, JS numbers) is checked on every pair of special values as well.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_NAMES, compileRule, type HostBackendName } from '../../dsl/compile/index.js';
import { emitPyTorch, pyArgName, pyScalarCode } from '../../dsl/compile/pytorch.js';
import { emitTypeScript, tsOptionName, tsScalarCode } from '../../dsl/compile/ts.js';
import { type CheckedRule, lookupRule } from '../../dsl/index.js';
import { Interpreter } from '../../dsl/interp.js';
import { importEmitted } from '../helpers/emitted.js';
import { fixturePath, repoRoot } from '../helpers/reference.js';
import { scratchDir } from '../helpers/scratch.js';
import { inRange, PRIMITIVES } from '../../primitives/registry.js';
import {
  allowance,
  SPECIALS,
  type SpecialCase,
  sameValue,
  specialCases,
  specialInputs,
} from '../helpers/special-values.js';
import { tfReady } from '../helpers/tf.js';

const cases = specialCases();
const { x, y } = specialInputs();
const n = x.length;

function ruleOf(c: SpecialCase): CheckedRule {
  const found = lookupRule(c.text);
  if (!found.ok) throw new Error(`${c.id}: ${found.message}`);
  return found.rule;
}

/** The direction of step 2 by the interpreter (float32 state; float32 intermediates when asked). */
function reference(c: SpecialCase, float32Intermediates: boolean): number[] {
  const it = new Interpreter(ruleOf(c), { size: n, params: c.params, seed: 0, float32Intermediates });
  let w = new Float32Array(n);
  for (const g of [y, x]) {
    w = new Float32Array(n).fill(-0);
    it.step(w, Float32Array.from(g), -1);
  }
  return Array.from(w);
}

/** A number as text for JSON (String(-0) is '0'; JSON has no NaN or Infinity). */
const text = (v: number): string => (Object.is(v, -0) ? '-0' : String(v));

/** A number from JSON: non-finite values come as strings ('NaN', 'Infinity' from JS; 'nan', 'inf' from Python). */
const num = (v: number | string): number =>
  typeof v === 'number'
    ? v
    : (({ inf: Infinity, '-inf': -Infinity, nan: Number.NaN } as Record<string, number>)[v] ?? Number(v));

/** Where `got` differs from `want` beyond the documented allowances, one line per element. */
function mismatches(backend: string, id: string, want: readonly number[], got: readonly number[]): string[] {
  const out: string[] = [];
  want.forEach((w, i) => {
    const g = got[i] as number;
    const xi = x[i] as number;
    const yi = y[i] as number;
    if (sameValue(w, g, 2e-6)) return;
    if (w !== 0 && Math.abs(w) < 2 ** -126 && g === 0 && backend === 'wgsl') return;
    if (allowance(backend, id, xi, yi, g) === undefined)
      out.push(`${backend} ${id}: x=${xi} y=${yi}: want ${w}, got ${g}`);
  });
  return out;
}

/**
 * The exports draw from their own generators (tfjs's, torch's), so their noise and dropout are
 * checked by law: dropout keeps x / (1 - p) or gives 0; noise has the registry's scale at t = 2.
 */
function lawMismatches(backend: string, c: SpecialCase, got: readonly number[]): string[] {
  const out: string[] = [];
  const residuals: number[] = [];
  got.forEach((v, i) => {
    const xi = x[i] as number;
    if (c.id === 'drop') {
      if (!(v === 0 || sameValue(v, Math.fround(xi / Math.fround(0.7)), 2e-6)))
        out.push(`${backend} drop: x=${xi}: got ${v}, neither 0 nor x / 0.7`);
    } else if (Number.isFinite(xi) && Math.abs(xi) <= 3 && xi !== 0) {
      residuals.push(c.id === 'noise' ? v - xi : v / xi);
    } else if (!Number.isFinite(xi) && !sameValue(v, xi, 0) && c.id === 'noise')
      out.push(`${backend} noise: x=${xi}: got ${v}`);
  });
  if (c.id !== 'drop') {
    const mean = residuals.reduce((a, b) => a + b, 0) / residuals.length;
    const std = Math.sqrt(residuals.reduce((a, b) => a + (b - mean) ** 2, 0) / residuals.length);
    const scale = c.id === 'noise' ? 0.1 : Math.sqrt(1 / 2 ** 0.55); // anoise at t = 2
    if (!(Math.abs(mean) < 0.35 * scale && std > 0.7 * scale && std < 1.3 * scale))
      out.push(`${backend} ${c.id}: mean ${mean}, std ${std} over ${residuals.length} draws; want 0 and ${scale}`);
  }
  return out;
}

const ref32 = new Map(cases.map((c) => [c.id, reference(c, true)]));
const ref64 = new Map(cases.map((c) => [c.id, reference(c, false)]));

describe('every primitive on every back end, on special values', () => {
  beforeAll(async () => {
    await tfReady;
  });

  it('covers every back end in the registry', () => {
    expect([...BACKEND_NAMES].sort()).toEqual(['interp', 'js', 'tf', 'wasm', 'wgsl']);
  });

  it('in-process back ends (js, wasm, tf) agree with the interpreter', () => {
    const bad: string[] = [];
    for (const backend of ['js', 'wasm', 'tf'] as const satisfies readonly HostBackendName[]) {
      for (const c of cases) {
        const compiled = compileRule(ruleOf(c), { backend, params: c.params });
        expect(compiled.backend, `${backend} ${c.id}`).toBe(backend);
        const k = compiled.create(n, 0);
        let w = new Float32Array(n);
        for (const g of [y, x]) {
          w = new Float32Array(n).fill(-0);
          k.step(w, Float32Array.from(g), -1);
        }
        // js computes intermediates in float64 (its reference too); wasm and tf in float32.
        const want = (backend === 'js' ? ref64 : ref32).get(c.id)!;
        bad.push(...mismatches(backend, c.id, want, Array.from(w)));
      }
    }
    expect(bad).toEqual([]);
  }, 60_000);

  it('WGSL (Mesa llvmpipe through Dawn) agrees with the interpreter', () => {
    const dir = scratchDir('special-wgsl');
    // Every case in one process on one device (Dawn does not run inside vitest's workers).
    const spec = join(dir, 'spec.json');
    const items = cases.map((c) => ({ id: c.id, text: c.text, params: c.params }));
    writeFileSync(spec, JSON.stringify({ x: x.map(text), y: y.map(text), cases: items }));
    const r = spawnSync(process.execPath, [fixturePath('special-values-wgsl.mjs'), spec], {
      encoding: 'utf8',
      cwd: repoRoot,
      env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
      timeout: 60_000,
      maxBuffer: 64 << 20,
    });
    expect(r.status, r.stderr).toBe(0);
    const { adapter, out } = JSON.parse(r.stdout) as { adapter: string; out: Record<string, (number | string)[]> };
    const bad: string[] = [];
    for (const c of cases) bad.push(...mismatches('wgsl', c.id, ref32.get(c.id)!, out[c.id]!.map(num)));
    expect(adapter).toMatch(/\w/);
    expect(bad).toEqual([]);
  }, 150_000);

  it('the TypeScript export (tfjs) agrees with the interpreter', async () => {
    const dir = scratchDir('special-ts');
    const bad: string[] = [];
    for (const c of cases) {
      const file = join(dir, `${c.id}.ts`);
      writeFileSync(file, emitTypeScript(ruleOf(c), { className: 'Case' }));
      const mod = (await importEmitted(file)) as Record<string, new (o: Record<string, number>) => tf.Optimizer>;
      const opt = new mod.CaseOptimizer!({
        learningRate: -1,
        ...Object.fromEntries(Object.entries(c.params).map(([k, v]) => [tsOptionName(k), v])),
      });
      const v = tf.variable(tf.zeros([n]));
      for (const g of [y, x]) {
        v.assign(tf.tensor1d(new Float32Array(n).fill(-0)));
        const gt = tf.tensor1d(Float32Array.from(g));
        opt.applyGradients({ [v.name]: gt });
        gt.dispose();
      }
      const got = Array.from(v.dataSync());
      bad.push(...(c.draws === 'none' ? mismatches('ts', c.id, ref32.get(c.id)!, got) : lawMismatches('ts', c, got)));
      opt.dispose();
      v.dispose();
    }
    expect(bad).toEqual([]);
  }, 120_000);

  it('the PyTorch export agrees with the interpreter, foreach on and off', () => {
    const dir = scratchDir('special-torch');
    const items = cases.map((c) => {
      const file = join(dir, `${c.id}.py`);
      writeFileSync(file, emitPyTorch(ruleOf(c)));
      return {
        id: c.id,
        file,
        draws: c.draws,
        params: Object.fromEntries(Object.entries(c.params).map(([k, v]) => [pyArgName(k), v])),
      };
    });
    const spec = join(dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ x: x.map(text), y: y.map(text), cases: items }));
    const doc = JSON.parse(
      execFileSync('/usr/bin/python3', [fixturePath('special-values-torch.py'), spec], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      }),
    ) as Record<string, { foreach: (number | string)[]; perTensor: (number | string)[] }>;
    const bad: string[] = [];
    for (const [k, item] of items.entries())
      for (const mode of ['foreach', 'perTensor'] as const) {
        const got = doc[item.id]![mode].map(num);
        bad.push(
          ...(item.draws === 'none'
            ? mismatches(`torch-${mode}`, item.id, ref32.get(item.id)!, got)
            : lawMismatches(`torch-${mode}`, cases[k]!, got)),
        );
      }
    expect(bad).toEqual([]);
  }, 60_000);
});

describe("the exports' scalar code (Python floats, JavaScript numbers) on special values", () => {
  /** Every scalar primitive on every pair of special values its ranges allow, at t = 2, with the registry's value. */
  function scalarCases(): { prim: string; args: number[]; want: number }[] {
    const out: { prim: string; args: number[]; want: number }[] = [];
    const values = [...SPECIALS];
    for (const p of PRIMITIVES) {
      if (p.category === 'state' || p.stochastic !== undefined) continue;
      const domain = (i: number) =>
        values.filter((v) => (p.ranges ?? []).every((r) => r.arg !== i || (!Number.isNaN(v) && inRange(v, r))));
      let tuples: number[][] = [[]];
      for (let i = 0; i < p.arity; i++) tuples = tuples.flatMap((t) => domain(i).map((v) => [...t, v]));
      for (const args of tuples) out.push({ prim: p.name, args, want: p.ref(args, { t: 2 }, 0) });
    }
    return out;
  }
  const items = scalarCases();

  it('TypeScript: every scalar template and helper as emitted', () => {
    const { templates, helpers } = tsScalarCode();
    const js = ts.transpileModule(helpers, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
    const bad: string[] = [];
    for (const item of items) {
      const expr = (templates as Record<string, (a: readonly string[]) => string>)[item.prim]!(['a', 'b', 'c']);
      const got = new Function('t', 'a', 'b', 'c', `${js}\nreturn ${expr};`)(2, ...item.args) as number;
      if (!sameValue(item.want, got, 1e-12))
        bad.push(`ts ${item.prim}(${item.args.join(', ')}): want ${item.want}, got ${got}`);
    }
    expect(bad).toEqual([]);
  });

  it('Python: every scalar template and helper as emitted', () => {
    const { templates, helpers } = pyScalarCode();
    const dir = scratchDir('special-scalar-py');
    const exprs = items.map((item) =>
      (templates as Record<string, (a: readonly string[]) => string>)[item.prim]!(['a', 'b', 'c']),
    );
    const file = join(dir, 'scalars.py');
    writeFileSync(
      file,
      `import json, math, sys\nimport torch\n\n${helpers}\n\nt = 2\nout = []\nfor expr, args in json.load(open(sys.argv[1])):\n    a, b, c = (float(v) for v in (args + ["0", "0"])[:3])\n    v = eval(expr)\n    out.append(v if math.isfinite(v) else str(v))\nprint(json.dumps(out))\n`,
    );
    const spec = join(dir, 'spec.json');
    writeFileSync(spec, JSON.stringify(items.map((item, k) => [exprs[k], item.args.map(text)])));
    const got = (
      JSON.parse(execFileSync('/usr/bin/python3', [file, spec], { encoding: 'utf8' })) as (number | string)[]
    ).map(num);
    const bad: string[] = [];
    items.forEach((item, k) => {
      if (!sameValue(item.want, got[k]!, 1e-12))
        bad.push(`py ${item.prim}(${item.args.join(', ')}): want ${item.want}, got ${got[k]}`);
    });
    expect(bad).toEqual([]);
  });
});
