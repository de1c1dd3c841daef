import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { beforeAll, describe, expect, it } from 'vitest';
import { learnedKernel } from '../../learned/kernel.js';
import {
  GATES,
  HIDDEN,
  initialWeights,
  JsLstm,
  type LstmWeights,
  OUTPUT_SCALE,
  preprocess,
  preprocessTf,
  TfLstm,
} from '../../learned/lstm.js';
import { tfReady } from '../helpers/tf.js';

beforeAll(async () => {
  await tfReady;
});

const pre = (g: number) => {
  const out = [0, 0];
  preprocess(g, out);
  return out;
};

describe('gradient preprocessing (p = 10)', () => {
  it('gives the paper golden values', () => {
    // |g| >= e^-10: (log|g| / 10, sign g)
    expect(pre(1)).toEqual([0, 1]);
    expect(pre(0.5)[0]).toBeCloseTo(-0.069314718, 8);
    expect(pre(0.5)[1]).toBe(1);
    expect(pre(-100)[0]).toBeCloseTo(0.460517019, 8);
    expect(pre(-100)[1]).toBe(-1);
    // |g| < e^-10 = 4.54e-5: (-1, e^10 g)
    expect(pre(1e-5)[0]).toBe(-1);
    expect(pre(1e-5)[1]).toBeCloseTo(0.220264658, 8);
    expect(pre(-2e-5)[1]).toBeCloseTo(-0.440529316, 8);
    expect(pre(0)).toEqual([-1, 0]);
    // Continuous at the threshold: both branches give (-1, ±1) there.
    const at = Math.exp(-10);
    expect(pre(at)[0]).toBeCloseTo(-1, 12);
    expect(pre(at)[1]).toBe(1);
    expect(pre(at * (1 - 1e-12))[1]).toBeCloseTo(1, 9);
  });

  it('tf ops match the scalar version', () => {
    const gs = [1, 0.5, -100, 1e-5, -2e-5, 0, 3e-3, -7, Math.exp(-10) * 1.001];
    const got = tf.tidy(() => preprocessTf(tf.tensor1d(gs)).arraySync());
    gs.forEach((g, i) => {
      expect(got[i]?.[0]).toBeCloseTo(pre(g)[0] as number, 5);
      expect(got[i]?.[1]).toBeCloseTo(pre(g)[1] as number, 5);
    });
  });
});

function zeroWeights(): LstmWeights {
  return {
    w1: new Float32Array((2 + HIDDEN) * GATES),
    b1: new Float32Array(GATES),
    w2: new Float32Array(2 * HIDDEN * GATES),
    b2: new Float32Array(GATES),
    wOut: new Float32Array(HIDDEN),
    bOut: new Float32Array(1),
  };
}

/** An independent reference: nested arrays, gates computed one by one, float64 throughout. */
function referenceStep(
  w: LstmWeights,
  gs: readonly number[],
  state: { h1: number[][]; c1: number[][]; h2: number[][]; c2: number[][] },
): number[] {
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const layer = (W: Float32Array, b: Float32Array, input: number[], h: number[], c: number[]) => {
    const v = [...input, ...h];
    const gate = (block: number, u: number) => {
      let s = b[block * HIDDEN + u] as number;
      for (let r = 0; r < v.length; r++) s += (v[r] as number) * (W[r * GATES + block * HIDDEN + u] as number);
      return s;
    };
    const cNew = c.map((cu, u) => sig(gate(1, u)) * cu + sig(gate(0, u)) * Math.tanh(gate(2, u)));
    const hNew = cNew.map((cu, u) => sig(gate(3, u)) * Math.tanh(cu));
    return { h: hNew, c: cNew };
  };
  return gs.map((g, j) => {
    const x = Math.abs(g) >= Math.exp(-10) ? [Math.log(Math.abs(g)) / 10, Math.sign(g)] : [-1, Math.exp(10) * g];
    const a = layer(w.w1, w.b1, x, state.h1[j] as number[], state.c1[j] as number[]);
    const b = layer(w.w2, w.b2, a.h, state.h2[j] as number[], state.c2[j] as number[]);
    state.h1[j] = a.h;
    state.c1[j] = a.c;
    state.h2[j] = b.h;
    state.c2[j] = b.c;
    return 0.1 * (b.h.reduce((s, hu, u) => s + hu * (w.wOut[u] as number), 0) + (w.bOut[0] as number));
  });
}

describe('the coordinatewise LSTM forward pass', () => {
  it('matches a hand-computed step on tiny weights', () => {
    // Every weight 0 except: the cell input (j) bias of layer 1's unit 0 is 1, layer 2's j gate
    // of unit 0 reads layer 1's unit 0 with weight 2, and the output reads unit 0 with weight 3.
    const w = zeroWeights();
    w.b1[2 * HIDDEN] = 1;
    w.w2[0 * GATES + 2 * HIDDEN] = 2;
    w.wOut[0] = 3;
    w.bOut[0] = 0.5;
    const lstm = new JsLstm(w, 1);
    const out = new Float32Array(1);
    lstm.step([0.3], out);
    // Layer 1, unit 0: i = f = o = σ(0) = 0.5, j = tanh(1); c = 0.5 * tanh(1), h = 0.5 * tanh(c).
    const c1 = 0.5 * Math.tanh(1); // 0.380797
    const h1 = 0.5 * Math.tanh(c1); // 0.181693
    // Layer 2, unit 0: j = tanh(2 h1); c = 0.5 * j, h = 0.5 * tanh(c).
    const c2 = 0.5 * Math.tanh(2 * h1);
    const h2 = 0.5 * Math.tanh(c2);
    expect(lstm.c1[0]).toBeCloseTo(0.380797, 6);
    expect(lstm.h1[0]).toBeCloseTo(h1, 6);
    expect(lstm.c2[0]).toBeCloseTo(c2, 6);
    expect(out[0]).toBeCloseTo(OUTPUT_SCALE * (3 * h2 + 0.5), 6);
    // Other units stay at zero (their j gate is tanh(0) = 0).
    expect(lstm.h1[1]).toBe(0);
    // The second step keeps half the cell (forget gate 0.5): c1 = 0.5 c1 + 0.5 tanh(1).
    lstm.step([0.3], out);
    expect(lstm.c1[0]).toBeCloseTo(0.5 * c1 + 0.5 * Math.tanh(1), 6);
  });

  it('matches an independent reference and the batched tf version over several steps', () => {
    const w = initialWeights(7);
    // Larger, non-trivial weights everywhere (the init's output layer is small).
    const rng = seedrandom.alea('ref');
    for (const k of ['w1', 'b1', 'w2', 'b2', 'wOut', 'bOut'] as const)
      for (let i = 0; i < w[k].length; i++) w[k][i] = 0.8 * (2 * rng() - 1);
    const n = 5;
    const state = { h1: [] as number[][], c1: [] as number[][], h2: [] as number[][], c2: [] as number[][] };
    for (const k of ['h1', 'c1', 'h2', 'c2'] as const)
      state[k] = Array.from({ length: n }, () => new Array(HIDDEN).fill(0));
    const js = new JsLstm(w, n);
    const tfl = new TfLstm(w, n);
    const before = tf.memory().numTensors;
    const streams = [
      [0.5, -2, 1e-6, 0, 3e-3],
      [0.4, -1.5, -3e-6, 1e-3, 3e-3],
      [-0.2, 10, 2e-5, -1e-3, 1],
    ];
    for (const g of streams) {
      const want = referenceStep(w, g, state);
      const a = new Float32Array(n);
      const b = new Float32Array(n);
      js.step(g, a);
      tfl.step(Float32Array.from(g), b);
      want.forEach((v, j) => {
        expect(a[j]).toBeCloseTo(v, 5);
        expect(b[j]).toBeCloseTo(v, 5);
      });
      expect(want.some((v) => Math.abs(v) > 0.01)).toBe(true);
    }
    expect(tf.memory().numTensors).toBe(before);
    tfl.dispose();
  });

  it('as a kernel: w <- w + lr * Δ, the same on both back ends', () => {
    const w = initialWeights(3);
    const n = 64;
    const g = Float32Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 10 ** -(i % 7));
    const a = learnedKernel(w, n, 'js');
    const b = learnedKernel(w, n, 'tf');
    expect([a.backend, b.backend]).toEqual(['js', 'tf']);
    const wa = new Float32Array(n).fill(1);
    const wb = new Float32Array(n).fill(1);
    const delta = new Float32Array(n);
    new JsLstm(w, n).step(g, delta);
    a.step(wa, g, 0.5);
    b.step(wb, g, 0.5);
    for (let j = 0; j < n; j++) {
      expect(wa[j]).toBeCloseTo(1 + 0.5 * (delta[j] as number), 6);
      expect(wb[j]).toBeCloseTo(wa[j] as number, 5);
    }
    expect(a.t).toBe(1);
    b.dispose();
    const big = learnedKernel(w, 4096);
    expect(big.backend).toBe('tf');
    big.dispose();
    expect(learnedKernel(w, 16).backend).toBe('js');
  });
});
