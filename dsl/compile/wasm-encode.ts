/**
 * A small WebAssembly binary encoder: the few sections, instructions and SIMD opcodes the
 * wasm back end (./wasm.ts) emits, and nothing else. Immediates are integers the generator
 * chooses (local and function indices, lane numbers, byte offsets) and the fixed constants
 * of its templates; the encoder has no text input.
 *
 * Reference: the WebAssembly core specification (binary format) and its fixed-width SIMD
 * extension: every SIMD instruction is the prefix 0xFD followed by its opcode as LEB128.
 */

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Block type of a structured instruction with no result. */
const EMPTY = 0x40;

/** Fixed-width SIMD opcodes used (after the 0xFD prefix). */
export const SIMD = {
  'v128.load': 0x00,
  'v128.load32_splat': 0x09,
  'v128.store': 0x0b,
  'v128.const': 0x0c,
  'i32x4.splat': 0x11,
  'f32x4.splat': 0x13,
  'f32x4.extract_lane': 0x1f,
  'f32x4.replace_lane': 0x20,
  'f32x4.eq': 0x41,
  'f32x4.ne': 0x42,
  'f32x4.lt': 0x43,
  'f32x4.gt': 0x44,
  'v128.and': 0x4e,
  'v128.andnot': 0x4f,
  'v128.or': 0x50,
  'v128.bitselect': 0x52,
  'f32x4.floor': 0x68,
  'i32x4.shl': 0xab,
  'i32x4.shr_s': 0xac,
  'i32x4.shr_u': 0xad,
  'i32x4.add': 0xae,
  'i32x4.sub': 0xb1,
  'f32x4.abs': 0xe0,
  'f32x4.neg': 0xe1,
  'f32x4.sqrt': 0xe3,
  'f32x4.add': 0xe4,
  'f32x4.sub': 0xe5,
  'f32x4.mul': 0xe6,
  'f32x4.div': 0xe7,
  'f32x4.min': 0xe8,
  'f32x4.max': 0xe9,
  'f32x4.pmin': 0xea,
  'f32x4.pmax': 0xeb,
  'i32x4.trunc_sat_f32x4_s': 0xf8,
  'f32x4.convert_i32x4_s': 0xfa,
} as const;
export type SimdOp = keyof typeof SIMD;

/** Plain (one-byte) opcodes used. */
const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  call: 0x10,
  'local.get': 0x20,
  'local.set': 0x21,
  'local.tee': 0x22,
  'i32.load': 0x28,
  'i32.const': 0x41,
  'f32.const': 0x43,
  'i32.eqz': 0x45,
  'i32.lt_u': 0x49,
  'f32.eq': 0x5b,
  'i32.add': 0x6a,
  'i32.mul': 0x6c,
  'f32.demote_f64': 0xb6,
  'f64.promote_f32': 0xbb,
} as const;

/** Unsigned LEB128. */
export function uleb(n: number, out: number[] = []): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`uleb: ${n} is not a u32`);
  let v = n;
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 (i32 range). */
export function sleb(n: number, out: number[] = []): number[] {
  if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`sleb: ${n} is not an i32`);
  let v = n;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const f32Bytes = (x: number): number[] => [...new Uint8Array(Float32Array.of(x).buffer)];

/** A function body under construction: its extra locals and its instructions. */
export class Body {
  /** Instructions (without the final `end`). Types of the locals after the parameters are in `locals`, in index order. */
  readonly code: number[] = [];

  /** `locals` may be shared with other bodies (see `fork`), so code can be built in pieces. */
  constructor(
    readonly params: readonly ValType[],
    readonly locals: ValType[] = [],
  ) {}

  /** Another piece of code over the same parameters and locals. */
  fork(): Body {
    return new Body(this.params, this.locals);
  }

  /** Append another piece's instructions. */
  append(other: Body): this {
    this.code.push(...other.code);
    return this;
  }

  /** A new local of this type; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  private op(name: keyof typeof OP): this {
    this.code.push(OP[name]);
    return this;
  }

  get(i: number): this {
    this.op('local.get');
    uleb(i, this.code);
    return this;
  }

  set(i: number): this {
    this.op('local.set');
    uleb(i, this.code);
    return this;
  }

  tee(i: number): this {
    this.op('local.tee');
    uleb(i, this.code);
    return this;
  }

  i32(n: number): this {
    this.op('i32.const');
    sleb(n, this.code);
    return this;
  }

  f32(x: number): this {
    this.op('f32.const');
    this.code.push(...f32Bytes(x));
    return this;
  }

  plain(name: 'i32.eqz' | 'i32.lt_u' | 'f32.eq' | 'i32.add' | 'i32.mul' | 'f32.demote_f64' | 'f64.promote_f32'): this {
    return this.op(name);
  }

  call(fn: number): this {
    this.op('call');
    uleb(fn, this.code);
    return this;
  }

  /** block / loop / if with no result, or with one result of `type`. */
  begin(kind: 'block' | 'loop' | 'if', type?: ValType): this {
    this.op(kind);
    this.code.push(type ?? EMPTY);
    return this;
  }

  else(): this {
    return this.op('else');
  }

  end(): this {
    return this.op('end');
  }

  br(depth: number): this {
    this.op('br');
    uleb(depth, this.code);
    return this;
  }

  brIf(depth: number): this {
    this.op('br_if');
    uleb(depth, this.code);
    return this;
  }

  simd(name: SimdOp): this {
    this.code.push(0xfd);
    uleb(SIMD[name], this.code);
    return this;
  }

  /** v128.load / v128.store / v128.load32_splat with a constant byte offset (16-byte aligned for load/store). */
  mem(name: 'v128.load' | 'v128.store' | 'v128.load32_splat', offset = 0): this {
    this.simd(name);
    uleb(name === 'v128.load32_splat' ? 2 : 4, this.code); // log2 of the alignment
    uleb(offset, this.code);
    return this;
  }

  /** i32.load (4-byte aligned) with a constant byte offset. */
  loadI32(offset = 0): this {
    this.op('i32.load');
    uleb(2, this.code);
    uleb(offset, this.code);
    return this;
  }

  lane(name: 'f32x4.extract_lane' | 'f32x4.replace_lane', lane: number): this {
    if (!Number.isInteger(lane) || lane < 0 || lane > 3) throw new RangeError(`lane ${lane}`);
    this.simd(name);
    this.code.push(lane);
    return this;
  }

  /** v128.const with the same float32 in every lane. */
  f32x4(x: number): this {
    this.simd('v128.const');
    const b = f32Bytes(x);
    for (let k = 0; k < 4; k++) this.code.push(...b);
    return this;
  }

  /** v128.const with the same int32 in every lane. */
  i32x4(n: number): this {
    this.simd('v128.const');
    const b = [...new Uint8Array(Int32Array.of(n).buffer)];
    for (let k = 0; k < 4; k++) this.code.push(...b);
    return this;
  }
}

export interface FuncImport {
  readonly module: string;
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

export interface ModuleSpec {
  /** Imported linear memory (module `env`, name `memory`), with this minimum size in pages. */
  readonly memoryMinPages: number;
  readonly imports: readonly FuncImport[];
  /** The one defined function, exported under `exportName`. */
  readonly body: Body;
  readonly results: readonly ValType[];
  readonly exportName: string;
}

const vec = (items: readonly number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => {
  if (!/^[a-z]{1,16}$/.test(s)) throw new Error(`encoder: unexpected name '${s}'`);
  const bytes = [...s].map((c) => c.charCodeAt(0));
  return [...uleb(bytes.length), ...bytes];
};
const section = (id: number, payload: number[]): number[] => [id, ...uleb(payload.length), ...payload];
const funcType = (params: readonly ValType[], results: readonly ValType[]): number[] => [
  0x60,
  ...vec(params.map((p) => [p])),
  ...vec(results.map((r) => [r])),
];

/** The bytes of a module with one imported memory, some imported functions and one exported function. */
export function encodeModule(spec: ModuleSpec): Uint8Array {
  const types = [...spec.imports.map((f) => funcType(f.params, f.results)), funcType(spec.body.params, spec.results)];
  const imports = [
    [...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(spec.memoryMinPages)],
    ...spec.imports.map((f, i) => [...name(f.module), ...name(f.name), 0x00, ...uleb(i)]),
  ];
  const fnIndex = spec.imports.length; // functions: the imports, then this one
  const typeIndex = spec.imports.length; // types: one per import, then this function's
  const locals = spec.body.locals.map((t) => [1, t]);
  const code = [...vec(locals), ...spec.body.code, OP.end];
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imports)),
    ...section(3, vec([uleb(typeIndex)])),
    ...section(7, vec([[...name(spec.exportName), 0x00, ...uleb(fnIndex)]])),
    ...section(10, vec([[...uleb(code.length), ...code]])),
  ];
  return Uint8Array.from(bytes);
}
