/**
 * The PyTorch export as a drop-in for torch.optim (Debian python3-torch 1.13): the same
 * trajectories as torch's optimizers under torch's argument names and per-group settings,
 * foreach and per-tensor updates alike; torch's errors, word for word; T required; sparse
 * gradients refused. And Adam's direction on every back end next to torch.optim.Adam's, step
 * by step: 1 - beta computed once in float64 (torch's 0.001f, not 1 - 0.999f).
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compileRule } from '../../dsl/compile/index.js';
import { emitPyTorch } from '../../dsl/compile/pytorch.js';
import { compileRules, library } from '../../dsl/index.js';
import { rng } from '../helpers/gen.js';
import { fixturePath } from '../helpers/reference.js';
import { scratchDir } from '../helpers/scratch.js';
import { tfReady } from '../helpers/tf.js';

interface Report {
  vsTorch: Record<string, { foreach: number; perTensor: number; modes: number }>;
  foreach: Record<string, number>;
  errors: Record<string, { ours: [string, string] | null; torch?: [string, string] | null }>;
  misc: { groupT: number; generators: string[]; defaultForeach: boolean | null };
  adamTorch: number[][];
  adamExport: number[][];
}

const rule = (text: string) => {
  const c = compileRules(text);
  if (!c.ok) throw new Error(c.diagnostics.map((d) => d.message).join('\n'));
  return c.rules[0]!;
};

/** A gradient stream whose moments never cancel (a fixed sign and scale per element), 400 steps. */
function adamGrads(): number[][] {
  const r = rng(7);
  const scale = Array.from({ length: 256 }, () => (r() < 0.5 ? -1 : 1) * 10 ** (r() * 6 - 4));
  return Array.from({ length: 400 }, () => scale.map((c) => Math.fround(c * (0.5 + r()))));
}

let report: Report;
const grads = adamGrads();

beforeAll(() => {
  const dir = scratchDir('export-torch');
  const rules = {
    adam: library().get('adam')!,
    amsgrad: library().get('amsgrad')!,
    adamw: library().get('adamw')!,
    sgd: library().get('sgd')!,
    momentum: library().get('momentum')!,
    nesterov: library().get('nesterov')!,
    rmsprop: library().get('rmsprop')!,
    adagrad: library().get('adagrad')!,
    lion: library().get('lion')!,
    powersignld: library().get('powersign-ld')!,
    noisy: rule('rule noisy = g + noise + drop(m, 0.3)'),
    special: rule(
      'rule special = clip(g, 0.5) * sign(m) + lerp(g, w, 0.3) + drop(g, 0.2) + anoise + max(g, 0.1) + 2 / (1 + abs(g)) + g^3 - prev(sum(g)) + runmax(g^2)',
    ),
  };
  const modules: Record<string, string> = {};
  for (const [name, r] of Object.entries(rules)) {
    modules[name] = join(dir, `${name}.py`);
    writeFileSync(modules[name], emitPyTorch(r));
  }
  const spec = join(dir, 'spec.json');
  writeFileSync(spec, JSON.stringify({ modules, grads }));
  report = JSON.parse(
    execFileSync('/usr/bin/python3', [fixturePath('torch-export-check.py'), spec], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ) as Report;
}, 120_000);

describe('nos export --format pytorch as torch.optim', () => {
  it("takes the same steps as torch's optimizers under torch's names, per group too", () => {
    // Bit-identical where the rule's operations are torch's (the update is written as torch writes it).
    for (const name of [
      'adam',
      'adam-torch-names',
      'adam-rule-names',
      'adam-groups',
      'adam-groups-rule-names',
      'amsgrad',
      'sgd',
      'momentum',
      'momentum-groups',
      'rmsprop',
      'adagrad',
    ]) {
      const r = report.vsTorch[name]!;
      expect([r.foreach, r.perTensor], name).toEqual([0, 0]);
    }
    // AdamW decays first (w * (1 - lr wd)) and Nesterov adds with alpha: the same rule, rounded in another order.
    for (const name of ['adamw', 'nesterov']) {
      const r = report.vsTorch[name]!;
      expect(Math.max(r.foreach, r.perTensor), name).toBeLessThan(2e-6);
      expect(r.modes, name).toBe(0);
    }
  });

  it('gives the same update with foreach on and off, noise and dropout included', () => {
    expect(report.foreach).toEqual({ lion: 0, powersignld: 0, noisy: 0, special: 0 });
    expect(report.misc.defaultForeach).toBeNull(); // as torch: None, resolved at the step (True where torch has _foreach_*)
  });

  it("refuses bad values with torch's ValueError, word for word", () => {
    for (const key of [
      'adam-lr',
      'adam-beta0',
      'adam-beta1',
      'adam-eps',
      'adam-weight_decay',
      'momentum-momentum',
      'rmsprop-alpha',
    ]) {
      const e = report.errors[key]!;
      expect(e.torch, key).not.toBeNull();
      expect(e.ours, key).toEqual(e.torch);
    }
    expect(report.errors['group-beta']!.ours).toEqual(['ValueError', 'Invalid beta parameter at index 0: 2.0']);
    expect(report.errors['group-rule-beta']!.ours).toEqual(['ValueError', 'Invalid beta parameter at index 1: -0.1']);
    expect(report.errors['ema-range']!.ours).toEqual([
      'ValueError',
      "Invalid beta value: 1.5 (ema's beta must be in [0, 1])",
    ]);
    expect(report.errors.sparse!.ours).toEqual(['RuntimeError', 'AdamOptimizer does not support sparse gradients']);
  });

  it('requires T of a rule that decays (no silent default), and takes it per group', () => {
    expect(report.errors['T-missing']!.ours![0]).toBe('TypeError');
    expect(report.errors['T-missing']!.ours![1]).toMatch(/decays over T steps; pass T=/);
    expect(report.errors['T-negative']!.ours![1]).toMatch(/Invalid T value: -3/);
    expect(report.errors['T-group']!.ours![1]).toMatch(/Invalid T value: 0/);
    expect(report.misc.groupT).toBe(7);
    const fixed = emitPyTorch(library().get('powersign-ld')!, { decaySteps: 500 });
    expect(fixed).toContain('T=500,');
    expect(emitPyTorch(library().get('powersign-ld')!)).toContain('T=None,');
  });

  it("draws noise from a generator on the parameter's device", () => {
    expect(report.misc.generators).toEqual(['cpu']);
    const src = emitPyTorch(rule('g + noise'));
    // The bucket's device (a bucket holds the parameters of one device), buffers made like w.
    expect(src).toContain('gen = self._generator(ws[0].device)');
    expect(src).toContain('bufs[0].normal_(generator=gen)');
    expect(src).toContain('torch.empty_like(w, ');
    expect(src).not.toContain('.to(');
  });
});

describe("Adam's direction next to torch.optim.Adam's, 400 steps (float32)", () => {
  beforeAll(async () => {
    await tfReady;
  });

  /** The largest relative difference of d over all steps and elements. */
  const worst = (a: number[][], b: number[][]) => {
    let m = 0;
    a.forEach((row, s) => {
      row.forEach((x, i) => {
        const y = b[s]![i]!;
        m = Math.max(m, Math.abs(x - y) / Math.abs(y));
      });
    });
    return m;
  };

  it('the export is torch.optim.Adam, bit for bit', () => {
    expect(worst(report.adamExport, report.adamTorch)).toBe(0);
  });

  it('the wasm and tf back ends stay within a few float32 ulps (1 - beta in float64, not 1 - 0.999f)', () => {
    const adam = library().get('adam')!;
    for (const backend of ['wasm', 'tf'] as const) {
      const compiled = compileRule(adam, { backend });
      expect(compiled.backend).toBe(backend);
      const k = compiled.create(grads[0]!.length, 0);
      const d = grads.map((g) => {
        const w = new Float32Array(g.length).fill(-0);
        k.step(w, Float32Array.from(g), -1); // w = -0 + d
        return Array.from(w);
      });
      // Was 7.7e-6 with 1 - beta2 in float32 (1.3e-5 relative off in v, half of it in sqrt(v)).
      expect(worst(d, report.adamTorch), backend).toBeLessThan(8e-7);
    }
  });
});
