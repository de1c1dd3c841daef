/**
 * The MLP's (784-H-K, ReLU) loss and gradients without tfjs: the two large products (x W1 and
 * x^T dz1) run in the sparse-row wasm SIMD kernel (./sparse-rows.ts: MNIST's pixels are ~80%
 * zero; tfjs matMuls where it cannot run), and everything else (bias,
 * ReLU, the softmax head with its 64x10 matMuls, the backward pass down to dz1) runs here on
 * the host over the weights' own Float32Arrays. tfjs spent more time dispatching the ~36
 * small kernels of the tensor version (and re-uploading every weight into its variables)
 * than computing them (bench/results/profile-before.txt). For synchronous CPU backends only:
 * on a GPU backend every host step would be a read-back.
 */
import * as tf from '@tensorflow/tfjs';
import { SparseBatch } from './sparse-rows.js';

const sparseBatches = new Map<number, SparseBatch>();
function sparseFor(width: number): SparseBatch {
  let s = sparseBatches.get(width);
  if (s === undefined) {
    s = new SparseBatch(width);
    sparseBatches.set(width, s);
  }
  return s;
}

export interface HostGradients {
  readonly loss: number;
  readonly grads: Float32Array[];
}

/** a b (or a^T b) through tfjs, as a new Float32Array. */
function hostMatMul(
  a: Float32Array,
  aShape: [number, number],
  transposeA: boolean,
  b: Float32Array,
  bShape: [number, number],
): Float32Array {
  let out: Float32Array | undefined;
  // The result leaves the tidy through a closure: returning a typed array from tf.tidy makes it walk every element.
  tf.tidy(() => {
    const at = tf.tensor2d(a, aShape);
    // An explicit transpose: tfjs-wasm's matMul with a transposed input is ~10x slower (DESIGN.md).
    out = tf.matMul(transposeA ? tf.transpose(at) : at, tf.tensor2d(b, bShape)).dataSync() as Float32Array;
  });
  return out as Float32Array;
}

/**
 * Mean softmax cross-entropy of the MLP on a batch and its gradients, for weights
 * [W1 (d x h), b1 (h), W2 (h x k), b2 (k)] (row-major) and pixels x (n x d).
 */
export function mlpGradientsHost(
  weights: readonly Float32Array[],
  x: Float32Array,
  labels: Int32Array,
  n: number,
): HostGradients {
  const [w1, b1, w2, b2] = weights as [Float32Array, Float32Array, Float32Array, Float32Array];
  const h = b1.length;
  const k = b2.length;
  const d = w1.length / h;
  if (x.length < n * d || labels.length < n) throw new Error(`mlpGradientsHost: expected ${n} examples of ${d} pixels`);
  // z1 = x W1 (sparse x: the wasm SIMD kernel; else tfjs), then + b1 and ReLU here.
  const sparse = h % 4 === 0 && h <= 256 ? sparseFor(h).forward(x, n, d, w1) : undefined;
  const z1 = sparse ? sparse.xw : hostMatMul(x.subarray(0, n * d), [n, d], false, w1, [d, h]);
  const a1 = new Float32Array(n * h);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < h; j++) {
      const z = (z1[i * h + j] as number) + (b1[j] as number);
      z1[i * h + j] = z;
      a1[i * h + j] = Math.max(z, 0); // NaN stays NaN (as tf.relu), so the loss reports it
    }
  }
  // Head: logits = a1 W2 + b2; log-softmax; loss; dlogits = (softmax - onehot) / n.
  const dlogits = new Float32Array(n * k);
  const gw2 = new Float32Array(h * k);
  const gb2 = new Float32Array(k);
  const da1 = new Float32Array(n * h);
  const logits = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) logits[c] = b2[c] as number;
    for (let j = 0; j < h; j++) {
      const a = a1[i * h + j] as number;
      if (a === 0) continue;
      for (let c = 0; c < k; c++) logits[c] = (logits[c] as number) + a * (w2[j * k + c] as number);
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[c] as number);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp((logits[c] as number) - max);
    const lse = max + Math.log(sum);
    const y = labels[i] as number;
    loss -= (logits[y] as number) - lse;
    for (let c = 0; c < k; c++) {
      const g = (Math.exp((logits[c] as number) - lse) - (c === y ? 1 : 0)) / n;
      dlogits[i * k + c] = g;
      gb2[c] = (gb2[c] as number) + g;
    }
  }
  loss /= n;
  // gW2 = a1^T dlogits; da1 = dlogits W2^T; dz1 = da1 * (z1 > 0); gb1 = sum of dz1.
  const gb1 = new Float32Array(h);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < h; j++) {
      const a = a1[i * h + j] as number;
      if (a === 0) continue; // ReLU: no gradient below 0, and a zero row of gW2's sum
      let s = 0;
      for (let c = 0; c < k; c++) {
        const g = dlogits[i * k + c] as number;
        gw2[j * k + c] = (gw2[j * k + c] as number) + a * g;
        s += g * (w2[j * k + c] as number);
      }
      da1[i * h + j] = s;
      gb1[j] = (gb1[j] as number) + s;
    }
  }
  // gW1 = x^T dz1 (tfjs; dz1 is da1, zero where z1 <= 0).
  const gw1 = sparse ? sparse.backward(da1) : hostMatMul(x.subarray(0, n * d), [n, d], true, da1, [n, h]);
  return { loss, grads: [gw1, gb1, gw2, gb2] };
}
