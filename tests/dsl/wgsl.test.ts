import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { checkWgsl, generateWgsl, WGSL_PRIMITIVES } from '../../dsl/compile/wgsl.js';
import { type CheckedRule, compileRules, library } from '../../dsl/index.js';
import { traceInterp } from '../../dsl/interp.js';
import { lowerRule } from '../../dsl/lower.js';
import { PRIMITIVES } from '../../primitives/registry.js';
import { nosBin, tempFile } from '../helpers/cli.js';
import { genNosRule, rng } from '../helpers/gen.js';
import { repoRoot, torchGolden } from '../helpers/reference.js';

const golden = torchGolden();

/** Relative agreement where the float32 reference is finite, within the rule's own float32 sensitivity. */
function agree(ref64: number[][], ref32: number[][], got: number[][], rel: number): string | undefined {
  for (let i = 0; i < ref32.length; i++) {
    for (let j = 0; j < ref32[i]!.length; j++) {
      const x = ref32[i]![j]!;
      const y = got[i]![j]!;
      if (!Number.isFinite(x) || Math.abs(x) > 1e6) return undefined; // past here WGSL's NaN/Inf rules differ
      const slack = 4 * Math.abs(ref64[i]![j]! - x);
      if (!(Math.abs(x - y) <= rel * (1 + Math.abs(x)) + slack)) return `step ${i} [${j}]: ${x} vs ${y}`;
    }
  }
  return undefined;
}

/**
 * Trace rules on the GPU back end in child processes, a few rules each: Dawn does not run in
 * vitest's workers, and Mesa 22's llvmpipe adapter sometimes crashes or hangs (glibc
 * `__pthread_tpp_change_priority` assertion, SIGSEGV) once a process has built a few dozen
 * pipelines. A chunk whose process died of a signal or timed out is run again, up to three times in all.
 */
function gpuTrace(
  w0: number[],
  grads: number[][],
  lr: number,
  items: { rule: string; params?: Record<string, number>; seed?: number }[],
) {
  const weights: number[][][] = [];
  let adapter = '';
  for (let start = 0; start < items.length; start += 4) {
    const file = tempFile('wgsl-spec.json', JSON.stringify({ w0, grads, lr, items: items.slice(start, start + 4) }));
    const run = () =>
      spawnSync(process.execPath, [join(repoRoot, 'tests', 'fixtures', 'wgsl-trace.mjs'), file], {
        encoding: 'utf8',
        env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
        timeout: 60_000,
        maxBuffer: 64 << 20,
      });
    let r = run();
    for (let attempt = 1; attempt < 3 && r.status !== 0 && (r.signal !== null || r.error !== undefined); attempt++)
      r = run();
    if (r.status !== 0)
      throw new Error(
        `wgsl-trace failed (${r.status ?? r.signal}): ${r.stderr
          .split('\n')
          .filter((l) => !l.startsWith('Warning'))
          .join('\n')}`,
      );
    const doc = JSON.parse(r.stdout) as { adapter: string; weights: (number | string)[][][] };
    adapter = doc.adapter;
    for (const t of doc.weights) weights.push(t.map((row) => row.map((x) => (typeof x === 'number' ? x : Number(x)))));
  }
  return { adapter, weights };
}

describe('WGSL back end (WebGPU via Dawn; Mesa llvmpipe here)', () => {
  it('has a WGSL template for every per-element and state primitive (scalars are computed on the host)', () => {
    const perElement = PRIMITIVES.filter((p) => p.category !== 'schedule' && !('scale' in (p.stochastic ?? {})));
    expect([...WGSL_PRIMITIVES].sort()).toEqual(perElement.map((p) => p.name).sort());
  });

  it('keeps rule text out of the shader: numbers and hyperparameters go through the uniform buffer', () => {
    const r = compileRules('rule r(secret = 0.123456789) = secret * g + 31337 * sign(m) + exp(0.25 * w)').rules[0]!;
    const shader = generateWgsl(lowerRule(r));
    for (const bad of ['secret', '31337', '0.123456789', '0.25', 'ema']) expect(shader.source).not.toContain(bad);
    expect(shader.uniforms.length).toBeGreaterThanOrEqual(3);
    expect(() => checkWgsl(`${shader.source}\nfn evil() {}`)).toThrow(/unexpected name 'evil'/);
  });

  it('matches the interpreter for every built-in rule and for random NOS rules, noise included', () => {
    const items: { rule: string; params: Record<string, number>; seed: number; text: CheckedRule }[] = [];
    for (const [name, rule] of library())
      items.push({ rule: rule.canonical, params: name.includes('-') ? { T: 12 } : {}, seed: 0, text: rule });
    const r = rng(31);
    while (items.length < library().size + 30) {
      const c = compileRules(genNosRule(r, 1 + Math.floor(r() * 2)));
      if (c.ok) items.push({ rule: c.rules[0]!.canonical, params: {}, seed: items.length, text: c.rules[0]! });
    }
    const grads = golden.grads.slice(0, 10);
    const { adapter, weights } = gpuTrace(golden.w0, grads, 0.01, items);
    expect(adapter.length).toBeGreaterThan(3);
    items.forEach((item, k) => {
      const input = { w0: golden.w0, grads };
      const ref32 = traceInterp(item.text, input, 0.01, {
        params: item.params,
        seed: item.seed,
        float32Intermediates: true,
      });
      const ref64 = traceInterp(item.text, input, 0.01, { params: item.params, seed: item.seed });
      expect(agree(ref64, ref32, weights[k]!, k < library().size ? 1e-5 : 1e-4), item.rule).toBeUndefined();
    });
  }, 200_000);

  it('nos trace --backend wgsl gives the same weights as the fused kernel, to float32 tolerance', () => {
    const input = tempFile('g.json', JSON.stringify({ w0: golden.w0, grads: golden.grads.slice(0, 6) }));
    const gpu = nosBin(['trace', '--rule', 'lion', '--lr', '0.01', '--input', input, '--backend', 'wgsl', '--json']);
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(gpu.stderr).toMatch(/WebGPU adapter: /);
    const cpu = nosBin(['trace', '--rule', 'lion', '--lr', '0.01', '--input', input, '--json']);
    const a = (JSON.parse(gpu.stdout) as { weights: number[][] }).weights;
    const b = (JSON.parse(cpu.stdout) as { weights: number[][] }).weights;
    a.forEach((row, i) => {
      row.forEach((x, j) => {
        expect(Math.abs(x - b[i]![j]!)).toBeLessThan(1e-5);
      });
    });
  }, 60_000);
});
