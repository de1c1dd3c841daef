/**
 * Filling two holes of @tensorflow/tfjs-backend-wasm 4.22 (DESIGN.md):
 *
 * 1. matMul gradients: tfjs differentiates `matMul(a, b)` into matMuls with transposed
 *    inputs, which the wasm backend runs ~10x slower than transposing first. `matMul` below
 *    has a custom gradient that transposes explicitly.
 * 2. There is no `Conv2DBackpropFilter` kernel, so no ConvNet can train on wasm. We register
 *    one that runs the backend's own `Conv3DBackpropFilterV2` on the inputs viewed as depth-1
 *    volumes (a reshape is free: it aliases the data), for stride 1 (wasm's 3-D kernel gives
 *    wrong filter gradients for larger strides). Our child ConvNet uses `conv3x3`, whose
 *    custom gradient is faster still.
 */
import * as tf from '@tensorflow/tfjs';

/** matMul(a, b) for 2-D tensors, with gradients that avoid transposed matMuls. */
export const matMul = tf.customGrad((...inputs: unknown[]) => {
  const [a, b, save] = inputs as [tf.Tensor2D, tf.Tensor2D, (ts: tf.Tensor[]) => void];
  save([a, b]);
  const value = tf.matMul(a, b);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sa, sb] = saved as [tf.Tensor2D, tf.Tensor2D];
    return [tf.matMul(dy as tf.Tensor2D, tf.transpose(sb)), tf.matMul(tf.transpose(sa), dy as tf.Tensor2D)];
  };
  return { value, gradFunc };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

interface TensorInfoLike {
  dataId: object;
  shape: number[];
  dtype: tf.DataType;
}

let registered = false;

/** Register Conv2DBackpropFilter for the wasm backend (idempotent). */
export function registerWasmConvFilterGrad(): void {
  if (registered) return;
  registered = true;
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined) return;
  const conv3d = tf.getKernel('Conv3DBackpropFilterV2', 'wasm');
  const reshape = tf.getKernel('Reshape', 'wasm');
  if (conv3d === undefined || reshape === undefined) return; // wasm backend not loaded: nothing to patch
  tf.registerKernel({
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { x, dy } = inputs as unknown as { x: TensorInfoLike; dy: TensorInfoLike };
      const { strides, pad, filterShape, dataFormat, dilations } = attrs as unknown as {
        strides: number | [number, number];
        pad: 'valid' | 'same' | number;
        filterShape: [number, number, number, number];
        dataFormat?: string;
        dilations?: number | [number, number];
      };
      if (dataFormat !== undefined && dataFormat !== 'NHWC') throw new Error('Conv2DBackpropFilter (wasm): only NHWC');
      if (typeof pad !== 'string') throw new Error('Conv2DBackpropFilter (wasm): only "same" and "valid" padding');
      const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
      const [dh, dw] =
        dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
      if (dh !== 1 || dw !== 1) throw new Error('Conv2DBackpropFilter (wasm): dilations are not supported');
      // wasm's Conv3DBackpropFilterV2 disagrees with the cpu backend for strides > 1 (seen with
      // 'same' padding, 4.22): refuse rather than return wrong gradients.
      if (sh !== 1 || sw !== 1) throw new Error('Conv2DBackpropFilter (wasm): only stride 1 is supported');
      const r = (t: TensorInfoLike, shape: number[]) =>
        reshape.kernelFunc({
          inputs: { x: t } as never,
          backend,
          attrs: { shape } as never,
        }) as unknown as TensorInfoLike;
      const [n, h, w, c] = x.shape as [number, number, number, number];
      const [, oh, ow, f] = dy.shape as [number, number, number, number];
      const x5 = r(x, [n, 1, h, w, c]);
      const dy5 = r(dy, [n, 1, oh, ow, f]);
      const out5 = conv3d.kernelFunc({
        inputs: { x: x5, dy: dy5 } as never,
        backend,
        attrs: { strides: [1, sh, sw], pad, filterShape: [1, ...filterShape] } as never,
      }) as unknown as TensorInfoLike;
      const out = r(out5, filterShape);
      const b = backend as unknown as { disposeData(dataId: object): void };
      b.disposeData(x5.dataId);
      b.disposeData(dy5.dataId);
      b.disposeData(out5.dataId);
      return out as never;
    },
  });
}

/**
 * One-hot depthwise filters [3, 3, c, 9]: filter (ky, kx, ch, m) is 1 where m = 3 ky + kx, so a
 * depthwise convolution of x gives its 3x3 neighbourhoods ('same' padding) as channels
 * ch * 9 + (3 ky + kx). Each output is one input times 1 plus zeros: exact. One kernel call in
 * place of a pad, nine slices and a concat (20 ms of a 62 ms ConvNet step in bench/results/profile-before.txt).
 */
const patchFilters = new Map<number, Float32Array>();
function patchFilter(c: number): tf.Tensor4D {
  let f = patchFilters.get(c);
  if (f === undefined) {
    f = new Float32Array(9 * c * 9);
    for (let k = 0; k < 9; k++) for (let ch = 0; ch < c; ch++) f[(k * c + ch) * 9 + k] = 1;
    patchFilters.set(c, f);
  }
  return tf.tensor4d(f, [3, 3, c, 9]);
}

/** The 3x3 neighbourhoods of x ('same' padding) as rows: [N*H*W, C*9], columns in the order (c, ky, kx). */
export function patches3x3(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.depthwiseConv2d(x, patchFilter(c), 1, 'same'), [n * h * w, c * 9]);
}

/**
 * The filter gradient of a 3x3 'same' convolution: dw(ky, kx, c, f) = sum over images and
 * pixels of x(y + ky, x + kx, c) * dy(y, x, f). Few input channels (9C <= F, the first layer):
 * one matMul of the transposed patches with dy. Many: the same sum as one 'valid' convolution
 * of the padded input, channels and images swapped, with dy as the filter (half the time of
 * the patch matMul at 32 channels, and no 9x-sized patch matrix).
 */
export function conv3x3FilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const c = x.shape[3];
  const f = dy.shape[3];
  if (9 * c <= f) {
    const p = patches3x3(x);
    // [C*9, F] in the order (c, ky, kx), to (ky, kx, c).
    return tf.transpose(
      tf.reshape(tf.matMul(tf.transpose(p), tf.reshape(dy, [-1, f]) as tf.Tensor2D), [c, 3, 3, f]),
      [1, 2, 0, 3],
    ) as tf.Tensor4D;
  }
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const byChannel = tf.conv2d(
    tf.transpose(padded, [3, 1, 2, 0]) as tf.Tensor4D,
    tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D,
    1,
    'valid',
  );
  return tf.transpose(byChannel, [1, 2, 0, 3]) as tf.Tensor4D;
}

function makeConv3x3(inputGrad: boolean): (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D {
  return tf.customGrad((...inputs: unknown[]) => {
    const [x, w, save] = inputs as [tf.Tensor4D, tf.Tensor4D, (ts: tf.Tensor[]) => void];
    save([x, w]);
    const value = tf.conv2d(x, w, 1, 'same');
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
      const dw = conv3x3FilterGrad(sx, dy as tf.Tensor4D);
      if (!inputGrad) return [tf.zerosLike(sx), dw];
      const flipped = tf.reverse(tf.transpose(sw, [0, 1, 3, 2]), [0, 1]) as tf.Tensor4D;
      return [tf.conv2d(dy as tf.Tensor4D, flipped, 1, 'same'), dw];
    };
    return { value, gradFunc };
  }) as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;
}

/**
 * conv2d with a 3x3 filter, stride 1, 'same' padding, and a gradient built from fast wasm
 * kernels: the input gradient is a forward convolution with the flipped filter (10x faster than
 * wasm's Conv2DBackpropInput here) and the filter gradient one matMul over patches
 * (`conv3x3FilterGrad`).
 */
export const conv3x3 = makeConv3x3(true);

/**
 * conv3x3 on the network's input (the images): its gradient with respect to the images is
 * zeros, never computed (training needs only the filter's; saves a full-size convolution per step).
 */
export const conv3x3OnInput = makeConv3x3(false);

/**
 * 2x2 max pooling, stride 2, whose gradient runs on the host in one pass (tfjs-wasm's
 * MaxPoolGrad took 12 of a 62 ms ConvNet step). The gradient goes to the first maximum of each
 * window in row-major order, as tfjs's cpu backend does (NaN never wins; a window without a value
 * above -Infinity passes it to none).
 * For synchronous CPU backends (wasm, cpu): on a GPU backend use tf.maxPool.
 */
export const maxPool2x2 = tf.customGrad((...inputs: unknown[]) => {
  const [x, save] = inputs as [tf.Tensor4D, (ts: tf.Tensor[]) => void];
  save([x]);
  const value = tf.maxPool(x, 2, 2, 'valid');
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const sx = saved[0] as tf.Tensor4D;
    const [n, h, w, c] = sx.shape;
    const oh = Math.floor(h / 2);
    const ow = Math.floor(w / 2);
    const xs = sx.dataSync() as Float32Array;
    const ds = dy.dataSync() as Float32Array;
    const dx = new Float32Array(xs.length);
    const row = w * c;
    for (let b = 0; b < n; b++) {
      for (let y = 0; y < oh; y++) {
        for (let xo = 0; xo < ow; xo++) {
          const o = ((b * oh + y) * ow + xo) * c;
          const i00 = ((b * h + 2 * y) * w + 2 * xo) * c;
          for (let ch = 0; ch < c; ch++) {
            // Window positions in row-major order; the first strictly greater value wins.
            const a = i00 + ch;
            let best = -1;
            let m = Number.NEGATIVE_INFINITY;
            let v = xs[a] as number;
            if (v > m) {
              m = v;
              best = a;
            }
            v = xs[a + c] as number;
            if (v > m) {
              m = v;
              best = a + c;
            }
            v = xs[a + row] as number;
            if (v > m) {
              m = v;
              best = a + row;
            }
            v = xs[a + row + c] as number;
            if (v > m) best = a + row + c;
            if (best >= 0) dx[best] = ds[o + ch] as number;
          }
        }
      }
    }
    return [tf.tensor4d(dx, sx.shape)];
  };
  return { value, gradFunc };
}) as (x: tf.Tensor4D) => tf.Tensor4D;
