/**
 * CRC-64 with the ECMA-182 polynomial in the reflected form Go's `hash/crc64` uses
 * (`crc64.MakeTable(crc64.ECMA)`, init and final XOR all ones; known as CRC-64/XZ). mongodump
 * stores it in each namespace's EOF header of an --archive, over the namespace's document bytes.
 *
 * Hand-written because no installed package computes this variant at speed, and it runs over
 * every byte of an archive. Measured on this project's machines (128 MB, best of 3):
 * - BigUint64 tables with BigInt arithmetic: 55 MB/s;
 * - slicing-by-8 or by-16 over two 32-bit halves in JavaScript: 1.1–1.4 GB/s;
 * - slicing-by-16 in a small WebAssembly function with 64-bit table entries: several times that
 *   (see bench/RESULTS.md), which is what long inputs use here. Short inputs (a document or two)
 *   stay in JavaScript, where a call costs less than copying into WebAssembly memory.
 */

const POLY_HI = 0xc96c5795;
const POLY_LO = 0xd7870f42;
const SLICES = 16;

/** TABLE_HI[k * 256 + i] / TABLE_LO[...]: slicing table k for byte i (table 0 is the bytewise one). */
const TABLE_HI = new Int32Array(SLICES * 256);
const TABLE_LO = new Int32Array(SLICES * 256);

for (let i = 0; i < 256; i++) {
  let hi = 0;
  let lo = i;
  for (let bit = 0; bit < 8; bit++) {
    const lsb = lo & 1;
    lo = (lo >>> 1) | ((hi & 1) << 31);
    hi >>>= 1;
    if (lsb) {
      hi ^= POLY_HI;
      lo ^= POLY_LO;
    }
  }
  TABLE_HI[i] = hi;
  TABLE_LO[i] = lo;
}
for (let k = 1; k < SLICES; k++) {
  for (let i = 0; i < 256; i++) {
    const prevHi = TABLE_HI[(k - 1) * 256 + i]!;
    const prevLo = TABLE_LO[(k - 1) * 256 + i]!;
    const idx = prevLo & 0xff;
    TABLE_HI[k * 256 + i] = (prevHi >>> 8) ^ TABLE_HI[idx]!;
    TABLE_LO[k * 256 + i] = ((prevLo >>> 8) | (prevHi << 24)) ^ TABLE_LO[idx]!;
  }
}

/** Slicing-by-8 in JavaScript over [start, end) of `data`; returns the new register halves. */
function updateJs(hi: number, lo: number, data: Uint8Array, start: number, end: number): [number, number] {
  const T = TABLE_LO;
  const H = TABLE_HI;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const l = lo ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const h = hi ^ (data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24));
    const a = 7 * 256 + (l & 0xff);
    const b = 6 * 256 + ((l >>> 8) & 0xff);
    const c = 5 * 256 + ((l >>> 16) & 0xff);
    const d = 4 * 256 + (l >>> 24);
    const e = 3 * 256 + (h & 0xff);
    const f = 2 * 256 + ((h >>> 8) & 0xff);
    const g = 256 + ((h >>> 16) & 0xff);
    const z = h >>> 24;
    lo = T[a]! ^ T[b]! ^ T[c]! ^ T[d]! ^ T[e]! ^ T[f]! ^ T[g]! ^ T[z]!;
    hi = H[a]! ^ H[b]! ^ H[c]! ^ H[d]! ^ H[e]! ^ H[f]! ^ H[g]! ^ H[z]!;
    i += 8;
  }
  while (i < end) {
    const idx = (lo ^ data[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ T[idx]!;
    hi = (hi >>> 8) ^ H[idx]!;
    i++;
  }
  return [hi, lo];
}

// WebAssembly memory: the 16 tables (64-bit entries), the register, then a window for the data.
const TABLES_AT = 0;
const STATE_AT = SLICES * 256 * 8;
const WINDOW_AT = STATE_AT + 64;
const WINDOW = 256 * 1024;
const PAGES = Math.ceil((WINDOW_AT + WINDOW) / 65536);
/** Below this many bytes the JavaScript loop wins (no copy, no call into WebAssembly). */
const WASM_MIN = 256;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128, as `i32.const` immediates are encoded. */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/**
 * The module, assembled here rather than shipped as an opaque blob. One function,
 * `update(p, n)`: folds n bytes at address p (n a multiple of 16) into the register at STATE_AT,
 * 16 bytes a step, each byte looked up in its own table and the sixteen 64-bit entries XORed.
 */
function assemble(): ArrayBuffer {
  const I32 = 0x7f;
  const I64 = 0x7e;
  const op = {
    get: 0x20, set: 0x21, tee: 0x22, i32const: 0x41, i64const: 0x42, i32load: 0x28, i64load: 0x29, i64store: 0x37,
    i32add: 0x6a, i32and: 0x71, i32shl: 0x74, i32shrU: 0x76, i32geU: 0x4f, i64xor: 0x85, i64shrU: 0x88, wrap: 0xa7,
    block: 0x02, loop: 0x03, brIf: 0x0d, br: 0x0c, end: 0x0b, void: 0x40,
  };
  // Locals: 0 p, 1 end (n on entry), 2 crc i64, 3 xl, 4 xh, 5 x i64, 6 yl, 7 yh.
  const lookup = (local: number, byte: number, table: number): number[] => [
    op.get, local,
    op.i32const, ...sleb(byte === 0 ? 3 : 8 * byte - 3), byte === 0 ? op.i32shl : op.i32shrU,
    op.i32const, ...sleb(0x7f8), op.i32and, // the byte times 8
    op.i64load, 3, ...uleb(TABLES_AT + table * 2048),
  ];
  const body: number[] = [
    op.i32const, ...sleb(STATE_AT), op.i64load, 3, 0, op.set, 2,
    op.get, 0, op.get, 1, op.i32add, op.set, 1,
    op.block, op.void, op.loop, op.void,
    op.get, 0, op.get, 1, op.i32geU, op.brIf, 1,
    op.get, 0, op.i64load, 0, 0, op.get, 2, op.i64xor, op.tee, 5, op.wrap, op.set, 3,
    op.get, 5, op.i64const, ...sleb(32), op.i64shrU, op.wrap, op.set, 4,
    op.get, 0, op.i32load, 0, 8, op.set, 6,
    op.get, 0, op.i32load, 0, 12, op.set, 7,
  ];
  const sources = [3, 4, 6, 7];
  for (let m = 0; m < 16; m++) {
    body.push(...lookup(sources[m >> 2]!, m & 3, 15 - m));
    if (m > 0) body.push(op.i64xor);
  }
  body.push(op.set, 2, op.get, 0, op.i32const, ...sleb(16), op.i32add, op.set, 0, op.br, 0, op.end, op.end);
  body.push(op.i32const, ...sleb(STATE_AT), op.get, 2, op.i64store, 3, 0, op.end);
  const locals = [4, 1, I64, 2, I32, 1, I64, 2, I32];
  const fn = [...locals, ...body];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, I32, I32, 0]),
    ...section(3, [1, 0]),
    ...section(5, [1, 0, ...uleb(PAGES)]),
    ...section(7, [2, 6, ...Buffer.from('update'), 0, 0, 3, ...Buffer.from('mem'), 2, 0]),
    ...section(10, [1, ...uleb(fn.length), ...fn]),
  ];
  return Uint8Array.from(bytes).buffer;
}

interface Engine {
  update: (p: number, n: number) => void;
  bytes: Uint8Array;
  words: Int32Array;
}

let engine: Engine | null | undefined;

/** Compiled on first use (only archives need it); null only where the runtime has no WebAssembly. */
function wasm(): Engine | null {
  if (engine !== undefined) return engine;
  if (typeof WebAssembly === 'undefined') {
    engine = null;
    return engine;
  }
  const instance = new WebAssembly.Instance(new WebAssembly.Module(assemble()));
  const memory = instance.exports.mem as WebAssembly.Memory;
  const words = new Int32Array(memory.buffer);
  for (let i = 0; i < SLICES * 256; i++) {
    words[(TABLES_AT >> 2) + 2 * i] = TABLE_LO[i]!;
    words[(TABLES_AT >> 2) + 2 * i + 1] = TABLE_HI[i]!;
  }
  engine = {update: instance.exports.update as (p: number, n: number) => void, bytes: new Uint8Array(memory.buffer), words};
  return engine;
}

/** Incremental CRC-64/XZ (Go's ECMA flavour). */
export class Crc64 {
  // The register, kept inverted between updates as Go does.
  private hi = -1;
  private lo = -1;

  update(data: Uint8Array): this {
    const n = data.length;
    const fast = n >= WASM_MIN ? wasm() : null;
    if (fast === null) {
      [this.hi, this.lo] = updateJs(this.hi, this.lo, data, 0, n);
      return this;
    }
    const {bytes, words, update} = fast;
    words[STATE_AT >> 2] = this.lo;
    words[(STATE_AT >> 2) + 1] = this.hi;
    let at = 0;
    const whole = n - (n & 15);
    while (at < whole) {
      const take = Math.min(WINDOW, whole - at);
      bytes.set(data.subarray(at, at + take), WINDOW_AT);
      update(WINDOW_AT, take);
      at += take;
    }
    [this.hi, this.lo] = updateJs(words[(STATE_AT >> 2) + 1]!, words[STATE_AT >> 2]!, data, at, n);
    return this;
  }

  /** The checksum as an unsigned 64-bit value. */
  digest(): bigint {
    return (BigInt(~this.hi >>> 0) << 32n) | BigInt(~this.lo >>> 0);
  }

  /** The checksum as the signed int64 mongodump stores in the `CRC` field. */
  digestInt64(): bigint {
    return BigInt.asIntN(64, this.digest());
  }
}

export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).digest();
}
