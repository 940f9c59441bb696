/**
 * XXH64 (xxHash spec, 64-bit variant), for the content checksum zstd frames end with (RFC 8878
 * §3.1.1: the low 4 bytes of XXH64 of the decompressed frame, seed 0). `fzstd` does not check it,
 * and without it most damaged bytes in a `.zst` file decode silently to wrong data.
 *
 * 64-bit words are pairs of 32-bit halves (JavaScript numbers hold 53 bits exactly; BigInt was far
 * slower); the carry of a product's low words is formed from 16-bit limbs. Results of the helpers land in RH/RL.
 */

let RH = 0;
let RL = 0;

const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;

function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = (al >>> 0) + (bl >>> 0);
  RL = lo >>> 0;
  RH = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function mul(ah: number, al: number, bh: number, bl: number): void {
  // Low 32 bits × low 32 bits in full from 16-bit limbs; the cross terms only touch the high word.
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const p01 = a0 * b1;
  const p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  RL = Math.imul(al, bl) >>> 0;
  RH = (a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
}

function rotl(h: number, l: number, r: number): void {
  if (r >= 32) {
    const t = h;
    h = l;
    l = t;
    r -= 32;
  }
  if (r === 0) {
    RH = h >>> 0;
    RL = l >>> 0;
    return;
  }
  RH = ((h << r) | (l >>> (32 - r))) >>> 0;
  RL = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** acc = rotl(acc + lane * P2, 31) * P1 */
function round(accH: number, accL: number, laneH: number, laneL: number): void {
  mul(laneH, laneL, P2H, P2L);
  add(accH, accL, RH, RL);
  rotl(RH, RL, 31);
  mul(RH, RL, P1H, P1L);
}

function word(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

const P1L0 = P1L & 0xffff;
const P1L1 = P1L >>> 16;
const P2L0 = P2L & 0xffff;
const P2L1 = P2L >>> 16;

/** Folds the 32-byte stripes of `b[i, end)` into the four accumulators `v` (hi, lo pairs). */
function stripes(v: Float64Array, b: Uint8Array, i: number, end: number): void {
  let v1h = v[0]!;
  let v1l = v[1]!;
  let v2h = v[2]!;
  let v2l = v[3]!;
  let v3h = v[4]!;
  let v3l = v[5]!;
  let v4h = v[6]!;
  let v4l = v[7]!;
  for (; i + 32 <= end; i += 32) {
      {
        // v1 = rotl(v1 + lane * P2, 31) * P1
        const ll = (b[i + 0]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
        const lh = (b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24)) >>> 0;
        let a0 = ll & 0xffff;
        let a1 = ll >>> 16;
        let p01 = a0 * P2L1;
        let p10 = a1 * P2L0;
        let p00 = a0 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let ml = Math.imul(ll, P2L) >>> 0;
        let mh = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ll, P2H) + Math.imul(lh, P2L)) >>> 0;
        const sl = v1l + ml;
        const sh = (v1h + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const rl = sl >>> 0;
        // rotl 31 = rotr 33... as halves: new hi = (sh << 31) | (rl >>> 1), new lo = (rl << 31) | (sh >>> 1)
        const xh = ((sh << 31) | (rl >>> 1)) >>> 0;
        const xl = ((rl << 31) | (sh >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        p00 = a0 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        ml = Math.imul(xl, P1L) >>> 0;
        mh = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xl, P1H) + Math.imul(xh, P1L)) >>> 0;
        v1h = mh;
        v1l = ml;
      }
      {
        // v2 = rotl(v2 + lane * P2, 31) * P1
        const ll = (b[i + 8]! | (b[i + 9]! << 8) | (b[i + 10]! << 16) | (b[i + 11]! << 24)) >>> 0;
        const lh = (b[i + 12]! | (b[i + 13]! << 8) | (b[i + 14]! << 16) | (b[i + 15]! << 24)) >>> 0;
        let a0 = ll & 0xffff;
        let a1 = ll >>> 16;
        let p01 = a0 * P2L1;
        let p10 = a1 * P2L0;
        let p00 = a0 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let ml = Math.imul(ll, P2L) >>> 0;
        let mh = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ll, P2H) + Math.imul(lh, P2L)) >>> 0;
        const sl = v2l + ml;
        const sh = (v2h + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const rl = sl >>> 0;
        // rotl 31 = rotr 33... as halves: new hi = (sh << 31) | (rl >>> 1), new lo = (rl << 31) | (sh >>> 1)
        const xh = ((sh << 31) | (rl >>> 1)) >>> 0;
        const xl = ((rl << 31) | (sh >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        p00 = a0 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        ml = Math.imul(xl, P1L) >>> 0;
        mh = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xl, P1H) + Math.imul(xh, P1L)) >>> 0;
        v2h = mh;
        v2l = ml;
      }
      {
        // v3 = rotl(v3 + lane * P2, 31) * P1
        const ll = (b[i + 16]! | (b[i + 17]! << 8) | (b[i + 18]! << 16) | (b[i + 19]! << 24)) >>> 0;
        const lh = (b[i + 20]! | (b[i + 21]! << 8) | (b[i + 22]! << 16) | (b[i + 23]! << 24)) >>> 0;
        let a0 = ll & 0xffff;
        let a1 = ll >>> 16;
        let p01 = a0 * P2L1;
        let p10 = a1 * P2L0;
        let p00 = a0 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let ml = Math.imul(ll, P2L) >>> 0;
        let mh = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ll, P2H) + Math.imul(lh, P2L)) >>> 0;
        const sl = v3l + ml;
        const sh = (v3h + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const rl = sl >>> 0;
        // rotl 31 = rotr 33... as halves: new hi = (sh << 31) | (rl >>> 1), new lo = (rl << 31) | (sh >>> 1)
        const xh = ((sh << 31) | (rl >>> 1)) >>> 0;
        const xl = ((rl << 31) | (sh >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        p00 = a0 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        ml = Math.imul(xl, P1L) >>> 0;
        mh = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xl, P1H) + Math.imul(xh, P1L)) >>> 0;
        v3h = mh;
        v3l = ml;
      }
      {
        // v4 = rotl(v4 + lane * P2, 31) * P1
        const ll = (b[i + 24]! | (b[i + 25]! << 8) | (b[i + 26]! << 16) | (b[i + 27]! << 24)) >>> 0;
        const lh = (b[i + 28]! | (b[i + 29]! << 8) | (b[i + 30]! << 16) | (b[i + 31]! << 24)) >>> 0;
        let a0 = ll & 0xffff;
        let a1 = ll >>> 16;
        let p01 = a0 * P2L1;
        let p10 = a1 * P2L0;
        let p00 = a0 * P2L0;
        let mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        let ml = Math.imul(ll, P2L) >>> 0;
        let mh = (a1 * P2L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(ll, P2H) + Math.imul(lh, P2L)) >>> 0;
        const sl = v4l + ml;
        const sh = (v4h + mh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
        const rl = sl >>> 0;
        // rotl 31 = rotr 33... as halves: new hi = (sh << 31) | (rl >>> 1), new lo = (rl << 31) | (sh >>> 1)
        const xh = ((sh << 31) | (rl >>> 1)) >>> 0;
        const xl = ((rl << 31) | (sh >>> 1)) >>> 0;
        a0 = xl & 0xffff;
        a1 = xl >>> 16;
        p01 = a0 * P1L1;
        p10 = a1 * P1L0;
        p00 = a0 * P1L0;
        mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
        ml = Math.imul(xl, P1L) >>> 0;
        mh = (a1 * P1L1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(xl, P1H) + Math.imul(xh, P1L)) >>> 0;
        v4h = mh;
        v4l = ml;
      }
  }
  v[0] = v1h;
  v[1] = v1l;
  v[2] = v2h;
  v[3] = v2l;
  v[4] = v3h;
  v[5] = v3l;
  v[6] = v4h;
  v[7] = v4l;
}

export class Xxh64 {
  private v = new Float64Array(8); // v1h, v1l, v2h, v2l, v3h, v3l, v4h, v4l
  private total = 0;
  private readonly tail = new Uint8Array(32);
  private tailLength = 0;

  constructor() {
    const v = this.v;
    add(P1H, P1L, P2H, P2L);
    v[0] = RH;
    v[1] = RL;
    v[2] = P2H;
    v[3] = P2L;
    v[4] = 0;
    v[5] = 0;
    // seed - P1 = two's complement of P1 for seed 0
    add(~P1H >>> 0, ~P1L >>> 0, 0, 1);
    v[6] = RH;
    v[7] = RL;
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.tailLength > 0) {
      const take = Math.min(32 - this.tailLength, data.length);
      this.tail.set(data.subarray(0, take), this.tailLength);
      this.tailLength += take;
      i = take;
      if (this.tailLength < 32) return this;
      stripes(this.v, this.tail, 0, 32);
      this.tailLength = 0;
    }
    const whole = data.length - ((data.length - i) & 31);
    stripes(this.v, data, i, whole);
    i = whole;
    this.tail.set(data.subarray(i), 0);
    this.tailLength = data.length - i;
    return this;
  }

  /** The low 32 bits of the digest (what a zstd frame stores). */
  digestLow32(): number {
    return this.digest()[1];
  }

  /** The digest as [high 32 bits, low 32 bits]. */
  digest(): [number, number] {
    const v = this.v;
    let hh: number;
    let hl: number;
    if (this.total >= 32) {
      rotl(v[0]!, v[1]!, 1);
      let sh = RH;
      let sl = RL;
      for (const [k, r] of [[1, 7], [2, 12], [3, 18]] as const) {
        rotl(v[2 * k]!, v[2 * k + 1]!, r);
        add(sh, sl, RH, RL);
        sh = RH;
        sl = RL;
      }
      for (let k = 0; k < 4; k++) {
        round(0, 0, v[2 * k]!, v[2 * k + 1]!);
        sh = (sh ^ RH) >>> 0;
        sl = (sl ^ RL) >>> 0;
        mul(sh, sl, P1H, P1L);
        add(RH, RL, P4H, P4L);
        sh = RH;
        sl = RL;
      }
      hh = sh;
      hl = sl;
    } else {
      hh = P5H;
      hl = P5L;
    }
    add(hh, hl, Math.floor(this.total / 2 ** 32), this.total >>> 0);
    hh = RH;
    hl = RL;
    const t = this.tail;
    let i = 0;
    for (; i + 8 <= this.tailLength; i += 8) {
      round(0, 0, word(t, i + 4), word(t, i));
      hh = (hh ^ RH) >>> 0;
      hl = (hl ^ RL) >>> 0;
      rotl(hh, hl, 27);
      mul(RH, RL, P1H, P1L);
      add(RH, RL, P4H, P4L);
      hh = RH;
      hl = RL;
    }
    if (i + 4 <= this.tailLength) {
      mul(0, word(t, i), P1H, P1L);
      hh = (hh ^ RH) >>> 0;
      hl = (hl ^ RL) >>> 0;
      rotl(hh, hl, 23);
      mul(RH, RL, P2H, P2L);
      add(RH, RL, P3H, P3L);
      hh = RH;
      hl = RL;
      i += 4;
    }
    for (; i < this.tailLength; i++) {
      mul(0, t[i]!, P5H, P5L);
      hh = (hh ^ RH) >>> 0;
      hl = (hl ^ RL) >>> 0;
      rotl(hh, hl, 11);
      mul(RH, RL, P1H, P1L);
      hh = RH;
      hl = RL;
    }
    // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
    hl = (hl ^ (hh >>> 1)) >>> 0;
    mul(hh, hl, P2H, P2L);
    hh = RH;
    hl = (RL ^ ((RH << 3) | (RL >>> 29))) >>> 0;
    hh = (hh ^ (hh >>> 29)) >>> 0;
    mul(hh, hl, P3H, P3L);
    return [RH, (RL ^ RH) >>> 0];
  }
}

export function xxh64(data: Uint8Array): [number, number] {
  return new Xxh64().update(data).digest();
}
