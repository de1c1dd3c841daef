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
      const [dh, dw] = dilations === undefined ? [1, 1] : typeof dilations === 'number' ? [dilations, dilations] : dilations;
      if (dh !== 1 || dw !== 1) throw new Error('Conv2DBackpropFilter (wasm): dilations are not supported');
      // wasm's Conv3DBackpropFilterV2 disagrees with the cpu backend for strides > 1 (seen with
      // 'same' padding, 4.22): refuse rather than return wrong gradients.
      if (sh !== 1 || sw !== 1) throw new Error('Conv2DBackpropFilter (wasm): only stride 1 is supported');
      const r = (t: TensorInfoLike, shape: number[]) => reshape.kernelFunc({ inputs: { x: t } as never, backend, attrs: { shape } as never }) as unknown as TensorInfoLike;
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

/** The 3x3 neighbourhoods of x ('same' padding) as rows: [N*H*W, 9*C], in filter order (ky, kx, c). */
function im2col3x3(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  const padded = tf.pad(x, [
    [0, 0],
    [1, 1],
    [1, 1],
    [0, 0],
  ]);
  const cols: tf.Tensor4D[] = [];
  for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) cols.push(tf.slice(padded, [0, ky, kx, 0], [n, h, w, c]));
  return tf.reshape(tf.concat(cols, 3), [n * h * w, 9 * c]);
}

/**
 * conv2d with a 3x3 filter, stride 1, 'same' padding, and a gradient built from fast wasm
 * kernels: the input gradient is a forward convolution with the flipped filter (10x faster than
 * wasm's Conv2DBackpropInput here) and the filter gradient one matMul over im2col patches
 * (4.5x faster than going through Conv3DBackpropFilterV2).
 */
export const conv3x3 = tf.customGrad((...inputs: unknown[]) => {
  const [x, w, save] = inputs as [tf.Tensor4D, tf.Tensor4D, (ts: tf.Tensor[]) => void];
  save([x, w]);
  const value = tf.conv2d(x, w, 1, 'same');
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
    const flipped = tf.reverse(tf.transpose(sw, [0, 1, 3, 2]), [0, 1]) as tf.Tensor4D;
    const dx = tf.conv2d(dy as tf.Tensor4D, flipped, 1, 'same');
    const f = sw.shape[3];
    const dw = tf.reshape(tf.matMul(tf.transpose(im2col3x3(sx)), tf.reshape(dy, [-1, f]) as tf.Tensor2D), sw.shape);
    return [dx, dw];
  };
  return { value, gradFunc };
}) as (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D;

