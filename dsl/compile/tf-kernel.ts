/** The tf back end for plain vectors (trace, tests, benchmarks); importing it registers it. */
import * as tf from '@tensorflow/tfjs';
import { DrawSource } from '../draws.js';
import type { Vec } from '../interp.js';
import type { Program } from '../lower.js';
import { registerTfBackend, type VectorKernel } from './index.js';
import { tfDirection } from './tf.js';

export class TfKernel implements VectorKernel {
  readonly backend = 'tf' as const;
  t = 0;
  state: tf.Tensor[];
  private readonly drawSource: DrawSource;

  constructor(
    readonly program: Program,
    private readonly params: Float64Array,
    readonly size: number,
    seed: number,
  ) {
    this.state = program.slots.map((s) => tf.fill([size], s.init));
    this.drawSource = new DrawSource(seed);
  }

  /** One step on tensors: returns the new weights (the caller owns them). */
  stepTensor(w: tf.Tensor, g: tf.Tensor, lr: number): tf.Tensor {
    const t = ++this.t;
    const draws = this.program.draws.map((kind) => {
      const buf = new Float64Array(this.size);
      this.drawSource.fill(kind, buf);
      return buf;
    });
    const { next, state } = tf.tidy(() => {
      const r = tfDirection(this.program, {
        w,
        g,
        t,
        params: this.params,
        state: this.state,
        draws: draws.map((b) => tf.tensor1d(Float32Array.from(b))),
      });
      return { next: tf.sub(w, tf.mul(lr, r.d)), state: r.state };
    });
    for (const s of this.state) s.dispose();
    this.state = state;
    return next;
  }

  step(w: Vec, g: Vec, lr: number): void {
    const wt = tf.tensor1d(Float32Array.from(w));
    const gt = tf.tensor1d(Float32Array.from(g));
    const next = this.stepTensor(wt, gt, lr);
    w.set(next.dataSync());
    tf.dispose([wt, gt, next]);
  }

  dispose(): void {
    tf.dispose(this.state);
  }
}

registerTfBackend((program, params, size, seed) => new TfKernel(program, params, size, seed));
