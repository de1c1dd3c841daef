/**
 * The RL controller's plain-JS policy (forward pass and backpropagation through time) against
 * the tfjs formulation it replaced, with tfjs's autodiff (tests/helpers/rl-tfjs.ts): the same
 * initial weights, log-probabilities, entropy and updates to float32 tolerance; and its
 * gradients against central differences of its own loss.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RlController } from '../../controller/rl.js';
import { configureSpace } from '../../primitives/nos-space.js';
import type { Proposal } from '../../controller/strategy.js';
import { TfjsRlController } from '../helpers/rl-tfjs.js';
import { tfReady } from '../helpers/tf.js';

const weightsOf = (state: string): Float32Array[] =>
  (JSON.parse(state) as { weights: string[] }).weights.map((b) => {
    const buf = Buffer.from(b, 'base64');
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  });

function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let m = 0;
  a.forEach((x, i) => {
    x.forEach((v, k) => {
      m = Math.max(m, Math.abs(v - (b[i]?.[k] as number)));
    });
  });
  return m;
}

describe('the RL controller in plain JS', () => {
  const made: TfjsRlController[] = [];
  beforeAll(async () => {
    await tfReady;
  });
  afterAll(() => {
    for (const c of made) c.dispose();
  });

  for (const [label, groups, space] of [
    ['the NOS space, 2 groups', 2, undefined],
    [
      'a 3-entry space, 3 groups (operand masks, a one-entry binary list)',
      3,
      configureSpace({ operands: ['g', 'm', 'one'], unary: ['id', 'neg'], binary: ['mul'] }),
    ],
  ] as const) {
    it(`${label}: same weights, log-probabilities, entropy and updates as the tfjs formulation`, () => {
      const options = { seed: 21, groups, learningRate: 0.05, ...(space ? { space } : {}) };
      const js = new RlController(options);
      const tf = new TfjsRlController(options);
      made.push(tf);
      expect(weightsOf(js.save())).toEqual(weightsOf(tf.save()));
      let proposals: Proposal[] = js.propose(24);
      for (let round = 0; round < 4; round++) {
        const a = js.logProb(proposals);
        const b = tf.logProb(proposals);
        for (const [i, x] of a.entries()) expect(x).toBeCloseTo(b[i] as number, 3);
        const rewards = proposals.map((_p, i) => ((i * 7 + round) % 10) / 10);
        const novel = proposals.map((_p, i) => i % 3 !== 0);
        const sa = js.observe(proposals, rewards, [], novel);
        const sb = tf.observe(proposals, rewards, [], novel);
        expect(sa.baseline).toBe(sb.baseline);
        expect(sa.meanReward).toBe(sb.meanReward);
        expect(sa.entropy).toBeCloseTo(sb.entropy as number, 5);
        // Adam's first steps move each weight by about the learning rate: agree far below it.
        expect(maxAbsDiff(weightsOf(js.save()), weightsOf(tf.save()))).toBeLessThan(1e-4);
        proposals = tf.propose(24);
      }
    });
  }

  it('its gradients match central differences of its own loss', () => {
    const c = new RlController({ seed: 3, groups: 2 });
    const proposals = c.propose(6);
    const advantages = [0.3, -0.2, 0.5, -0.4, 0.1, -0.3];
    const beta = 0.02;
    const loss = () => {
      const { logp, entropy } = c.lossGradients(proposals, advantages);
      return -advantages.reduce((s, a, i) => s + a * (logp[i] as number), 0) / proposals.length - beta * entropy;
    };
    const { grads } = c.lossGradients(proposals, advantages);
    const weights = (c as unknown as { weights: Float32Array[] }).weights;
    let checked = 0;
    for (const [array, w] of weights.entries()) {
      const g = grads[array] as Float64Array;
      // The largest gradient of each array, and a few others.
      let top = 0;
      g.forEach((x, i) => {
        if (Math.abs(x) > Math.abs(g[top] as number)) top = i;
      });
      for (const i of [top, 0, Math.floor(w.length / 2)]) {
        const old = w[i] as number;
        const h = 1e-2;
        w[i] = old + h;
        const up = loss();
        w[i] = old - h;
        const down = loss();
        w[i] = old;
        const numeric = (up - down) / (Math.fround(old + h) - Math.fround(old - h));
        expect(g[i] as number, `array ${array}, weight ${i}`).toBeCloseTo(numeric, 4);
        if (Math.abs(numeric) > 1e-4) checked++;
      }
    }
    expect(checked).toBeGreaterThan(10);
  });
});
