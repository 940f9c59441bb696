/**
 * A set of `_id` keys that answers "maybe" or "certainly not", in 8 bytes per key.
 *
 * The replay asks, for every document of the base backup, whether the oplog touched it. Most were
 * not touched and must pass through untouched without a lookup that costs memory per key. A
 * false "maybe" is harmless there: the document goes the slow way (its partition), finds no
 * operation, and comes out unchanged. So a 52-bit hash of the key is enough, in an open-addressing
 * table of two Uint32Arrays: flat memory of about 16 bytes per touched key, whatever the key's size.
 */
export class KeyFilter {
  private hi: Uint32Array;
  private lo: Uint32Array;
  private used = 0;

  constructor(capacity = 1 << 16) {
    let size = 1 << 4;
    while (size < capacity * 2) size <<= 1;
    this.hi = new Uint32Array(size);
    this.lo = new Uint32Array(size);
  }

  get size(): number {
    return this.used;
  }

  add(key: string): void {
    const [h, l] = hashKey(key);
    if (this.used * 2 >= this.hi.length) this.grow();
    this.insert(h, l);
  }

  mightHave(key: string): boolean {
    const [h, l] = hashKey(key);
    const mask = this.hi.length - 1;
    for (let at = l & mask; ; at = (at + 1) & mask) {
      const slotHi = this.hi[at]!;
      const slotLo = this.lo[at]!;
      if (slotHi === 0 && slotLo === 0) return false;
      if (slotHi === h && slotLo === l) return true;
    }
  }

  private insert(h: number, l: number): void {
    const mask = this.hi.length - 1;
    for (let at = l & mask; ; at = (at + 1) & mask) {
      const slotHi = this.hi[at]!;
      const slotLo = this.lo[at]!;
      if (slotHi === h && slotLo === l) return;
      if (slotHi === 0 && slotLo === 0) {
        this.hi[at] = h;
        this.lo[at] = l;
        this.used++;
        return;
      }
    }
  }

  private grow(): void {
    const {hi, lo} = this;
    this.hi = new Uint32Array(hi.length * 2);
    this.lo = new Uint32Array(lo.length * 2);
    this.used = 0;
    for (let i = 0; i < hi.length; i++) if (hi[i] !== 0 || lo[i] !== 0) this.insert(hi[i]!, lo[i]!);
  }
}

/** Two independent 32-bit FNV-1a variants over the key's UTF-16 units; (0, 0) is reserved for "empty". */
export function hashKey(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 13);
  }
  a >>>= 0;
  b >>>= 0;
  return a === 0 && b === 0 ? [0, 1] : [a, b];
}
