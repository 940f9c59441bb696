/**
 * A set of ObjectIds held in typed arrays: 12 bytes a slot, open addressing with linear probing, and
 * for each id a bit per restore-set collection holding it. A million ids take about 30 MB, where a
 * `Set` of their hex strings took several hundred: the report's loose ends keep every restored
 * ObjectId `_id` while they read the backup, so this is what bounds its memory.
 */
const LOAD = 0.6;
/** Collections beyond this index are kept in a small map (a restore set rarely has this many). */
const MASK_BITS = 32;

export class ObjectIdTable {
  private words: Uint32Array;
  private used: Uint8Array;
  private masks: Uint32Array;
  private extra = new Map<number, Set<number>>();
  private count = 0;

  constructor(expected = 1024) {
    const capacity = ObjectIdTable.capacityFor(expected);
    this.words = new Uint32Array(capacity * 3);
    this.used = new Uint8Array(capacity);
    this.masks = new Uint32Array(capacity);
  }

  private static capacityFor(n: number): number {
    let capacity = 16;
    while (capacity * LOAD < n) capacity *= 2;
    return capacity;
  }

  /** Slots in the table: a per-slot mark array of this length can follow which ids were met. */
  get capacity(): number {
    return this.used.length;
  }

  get size(): number {
    return this.count;
  }

  /** Add a 12-byte ObjectId as held by collection number `collection` of the set. */
  add(id: Uint8Array, collection: number): void {
    if ((this.count + 1) > this.capacity * LOAD) this.grow();
    const slot = this.find(id, true);
    if (!this.used[slot]) {
      this.used[slot] = 1;
      this.words[slot * 3] = word(id, 0);
      this.words[slot * 3 + 1] = word(id, 4);
      this.words[slot * 3 + 2] = word(id, 8);
      this.count++;
    }
    if (collection < MASK_BITS) this.masks[slot]! |= 1 << collection;
    else this.extra.set(slot, (this.extra.get(slot) ?? new Set()).add(collection));
  }

  /** The slot holding `id`, or -1. Slots stay where they are once the table stops growing. */
  slotOf(id: Uint8Array): number {
    const slot = this.find(id, false);
    return slot >= 0 && this.used[slot] ? slot : -1;
  }

  /** The set's collection numbers that hold the id in `slot`. */
  collectionsAt(slot: number): number[] {
    const out: number[] = [];
    const mask = this.masks[slot]!;
    for (let bit = 0; bit < MASK_BITS; bit++) if (mask & (1 << bit)) out.push(bit);
    for (const c of this.extra.get(slot) ?? []) out.push(c);
    return out;
  }

  has(id: Uint8Array, collection: number): boolean {
    const slot = this.slotOf(id);
    return slot >= 0 && this.collectionsAt(slot).includes(collection);
  }

  /** The slot for `id`: its own, or (when `insert`) the free one it would take; -1 when absent and not inserting. */
  private find(id: Uint8Array, insert: boolean): number {
    const a = word(id, 0);
    const b = word(id, 4);
    const c = word(id, 8);
    const mask = this.capacity - 1;
    // ObjectIds vary most in their last bytes (counter) and first (seconds): mix all three words.
    let slot = (Math.imul(c ^ Math.imul(b, 0x9e3779b1) ^ Math.imul(a, 0x85ebca6b), 0xc2b2ae35) >>> 7) & mask;
    for (;;) {
      if (!this.used[slot]) return insert ? slot : -1;
      if (this.words[slot * 3] === a && this.words[slot * 3 + 1] === b && this.words[slot * 3 + 2] === c) return slot;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const {words, used, masks, extra} = this;
    const capacity = used.length * 2;
    this.words = new Uint32Array(capacity * 3);
    this.used = new Uint8Array(capacity);
    this.masks = new Uint32Array(capacity);
    this.extra = new Map();
    this.count = 0;
    const id = new Uint8Array(12);
    const view = new DataView(id.buffer);
    for (let slot = 0; slot < used.length; slot++) {
      if (!used[slot]) continue;
      view.setUint32(0, words[slot * 3]!);
      view.setUint32(4, words[slot * 3 + 1]!);
      view.setUint32(8, words[slot * 3 + 2]!);
      const to = this.find(id, true);
      this.used[to] = 1;
      this.words.set(words.subarray(slot * 3, slot * 3 + 3), to * 3);
      this.masks[to] = masks[slot]!;
      const more = extra.get(slot);
      if (more) this.extra.set(to, more);
      this.count++;
    }
  }
}

function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
