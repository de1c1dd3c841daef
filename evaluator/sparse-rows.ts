/**
 * A WebAssembly SIMD kernel for products with a sparse operand (MNIST's pixels are ~80% zero),
 * in segments of weighted rows: for each segment s, out row s = sum over its entries (r, v) of
 * v * src row r, rows of `width` float32 (a multiple of 4, at most 256). The MLP uses it for
 * x W1 (segments: examples; entries: the example's nonzero pixels and W1's rows) and for
 * x^T dz1 (segments: pixels; entries: the examples where the pixel is nonzero and their dz1
 * rows): a fifth of the multiply-adds of the dense matMuls, accumulated in v128 registers.
 *
 * Memory: one linear memory per instance, regrown (a new instance) when a batch needs more.
 * Entries are 8 bytes, [byte offset of the row in src: i32, v: f32]; segment ends are the
 * absolute byte addresses where each segment's entries end. Sums run in entry order, in
 * float32 (multiply, then add): deterministic.
 */
import { Body, encodeModule, I32, V128 } from '../dsl/compile/wasm-encode.js';

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (
    module: object,
    imports: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  ) => { readonly exports: Readonly<Record<string, unknown>> };
  readonly Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
}
type SegSum = (segEnds: number, segments: number, entries: number, src: number, dst: number) => void;

const PAGE = 65536;
const modules = new Map<number, object>();

function api(): WasmApi {
  const w = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (w === undefined) throw new Error('this JavaScript engine has no WebAssembly');
  return w;
}

/** The module for rows of `width` floats: 16-byte accumulators kept in locals, unrolled across the row. */
function moduleFor(width: number): object {
  let m = modules.get(width);
  if (m !== undefined) return m;
  if (!Number.isInteger(width) || width <= 0 || width % 4 !== 0 || width > 256)
    throw new RangeError(`row width must be a multiple of 4 up to 256, got ${width}`);
  const q = width / 4;
  const [segEnds, segments, entries, src, dst] = [0, 1, 2, 3, 4];
  const b = new Body([I32, I32, I32, I32, I32]);
  const s = b.local(I32);
  const e = b.local(I32);
  const end = b.local(I32);
  const row = b.local(I32);
  const v = b.local(V128);
  const acc = Array.from({ length: q }, () => b.local(V128));
  b.get(entries).set(e);
  b.i32(0).set(s);
  b.begin('block').begin('loop');
  b.get(s).get(segments).plain('i32.lt_u').plain('i32.eqz').brIf(1);
  for (const a of acc) b.f32x4(0).set(a);
  b.get(segEnds).get(s).i32(4).plain('i32.mul').plain('i32.add').loadI32().set(end);
  b.begin('block').begin('loop');
  b.get(e).get(end).plain('i32.lt_u').plain('i32.eqz').brIf(1);
  b.get(src).get(e).loadI32().plain('i32.add').set(row);
  b.get(e).mem('v128.load32_splat', 4).set(v);
  acc.forEach((a, k) => {
    b.get(a)
      .get(v)
      .get(row)
      .mem('v128.load', 16 * k)
      .simd('f32x4.mul')
      .simd('f32x4.add')
      .set(a);
  });
  b.get(e).i32(8).plain('i32.add').set(e);
  b.br(0).end().end();
  b.get(dst)
    .get(s)
    .i32(width * 4)
    .plain('i32.mul')
    .plain('i32.add')
    .set(row);
  acc.forEach((a, k) => {
    b.get(row)
      .get(a)
      .mem('v128.store', 16 * k);
  });
  b.get(s).i32(1).plain('i32.add').set(s);
  b.br(0).end().end();
  m = new (api().Module)(encodeModule({ memoryMinPages: 1, imports: [], body: b, results: [], exportName: 'segsum' }));
  modules.set(width, m);
  return m;
}

/** A bump allocator over one wasm memory: regions are 16-byte aligned Float32Array/Int32Array views. */
export class SparseRows {
  private memory: WasmMemory | undefined;
  private fn: SegSum | undefined;
  private bytes = 0;
  private top = 0;

  constructor(readonly width: number) {
    moduleFor(width);
  }

  /** Start a new layout of at least `bytes` bytes (views from earlier layouts become invalid). */
  reset(bytes: number): void {
    if (this.memory === undefined || bytes > this.bytes) {
      const pages = Math.ceil((bytes + 64) / PAGE);
      if (pages > 65536) throw new RangeError(`${bytes} bytes: more than a wasm32 memory holds`);
      const memory = new (api().Memory)({ initial: pages, maximum: pages });
      const instance = new (api().Instance)(moduleFor(this.width), { env: { memory } });
      this.memory = memory;
      this.fn = instance.exports.segsum as SegSum;
      this.bytes = pages * PAGE;
    }
    this.top = 16;
  }

  /** A region of n float32 (or int32: the same bytes) and its byte address. */
  alloc(n: number): { f: Float32Array; i: Int32Array; at: number } {
    const at = this.top;
    this.top += Math.ceil((4 * n) / 16) * 16;
    if (this.top > this.bytes || this.memory === undefined)
      throw new RangeError('SparseRows: layout larger than reset() asked for');
    return { f: new Float32Array(this.memory.buffer, at, n), i: new Int32Array(this.memory.buffer, at, n), at };
  }

  /** out row s (at dst) = sum of v * row (src + offset) over the entries of segment s. */
  segsum(segEnds: number, segments: number, entries: number, src: number, dst: number): void {
    (this.fn as SegSum)(segEnds, segments, entries, src, dst);
  }
}

/**
 * x W (x: n x d, sparse; W: d x width) and x^T D (D: n x width) with the same sparsity
 * pattern, for one batch: `forward` returns x W, then `backward(D)` returns x^T D.
 */
export class SparseBatch {
  private readonly rows: SparseRows;

  constructor(width: number) {
    this.rows = new SparseRows(width);
  }

  private csrP = new Int32Array(0);
  private csrV = new Float32Array(0);

  /** Lay out the batch's nonzeros (by example and by pixel) and W; returns x W (n x width, a copy). */
  forward(
    x: Float32Array,
    n: number,
    d: number,
    w: Float32Array,
  ): { xw: Float32Array; backward: (dz: Float32Array) => Float32Array } {
    const width = this.rows.width;
    const rowBytes = width * 4;
    if (this.csrP.length < n * d) {
      this.csrP = new Int32Array(n * d);
      this.csrV = new Float32Array(n * d);
    }
    const csrP = this.csrP;
    const csrV = this.csrV;
    // One scan of x: the nonzeros by example (CSR), and how many each pixel has.
    const count = new Int32Array(d + 1);
    const exEnd = new Int32Array(n);
    let nnz = 0;
    for (let i = 0; i < n; i++) {
      const base = i * d;
      for (let p = 0; p < d; p++) {
        const v = x[base + p] as number;
        if (v !== 0) {
          csrP[nnz] = p;
          csrV[nnz] = v;
          nnz++;
          count[p + 1] = (count[p + 1] as number) + 1;
        }
      }
      exEnd[i] = nnz;
    }
    this.rows.reset(4 * (2 * d * width + 2 * n * width + 4 * nnz + n + d) + 16 * 8);
    const wR = this.rows.alloc(d * width);
    wR.f.set(w);
    const byEx = this.rows.alloc(2 * nnz);
    const exEnds = this.rows.alloc(n);
    const byPx = this.rows.alloc(2 * nnz);
    const pxEnds = this.rows.alloc(d);
    const out = this.rows.alloc(n * width);
    const dzR = this.rows.alloc(n * width);
    const gw = this.rows.alloc(d * width);
    for (let e = 0; e < nnz; e++) {
      byEx.i[2 * e] = (csrP[e] as number) * rowBytes;
      byEx.f[2 * e + 1] = csrV[e] as number;
    }
    for (let i = 0; i < n; i++) exEnds.i[i] = byEx.at + 8 * (exEnd[i] as number);
    for (let p = 0; p < d; p++) {
      count[p + 1] = (count[p + 1] as number) + (count[p] as number);
      pxEnds.i[p] = byPx.at + 8 * (count[p + 1] as number);
    }
    // By pixel, examples in ascending order.
    let e = 0;
    for (let i = 0; i < n; i++) {
      const stop = exEnd[i] as number;
      for (; e < stop; e++) {
        const p = csrP[e] as number;
        const slot = count[p] as number;
        count[p] = slot + 1;
        byPx.i[2 * slot] = i * rowBytes;
        byPx.f[2 * slot + 1] = csrV[e] as number;
      }
    }
    this.rows.segsum(exEnds.at, n, byEx.at, wR.at, out.at);
    const xw = out.f.slice();
    return {
      xw,
      backward: (dz: Float32Array) => {
        dzR.f.set(dz.subarray(0, n * width));
        this.rows.segsum(pxEnds.at, d, byPx.at, dzR.at, gw.at);
        return gw.f.slice();
      },
    };
  }
}
