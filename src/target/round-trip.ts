/**
 * Whether a document's plain decode serialises back to its very bytes, told from the bytes alone.
 *
 * `writeForm` answers by decoding and serialising every document (about 7.5 µs for 550 B); a plan
 * asks it of every document it would write, and at a million documents that was most of a plan's
 * time. This walk over the bytes (0.8 µs for the same document) answers yes only for what it knows
 * writes back unchanged; anything else (integer-like names out of the order an object gives them, `$` names, repeated names, deprecated types, NaN,
 * -0, dates beyond what a JavaScript Date holds, unsorted regex flags, binary subtypes 2 and 9,
 * invalid UTF-8, a top-level empty Timestamp, malformed lengths) gets "don't know", and the caller
 * decides by the full check. A yes therefore always agrees with `writeForm` (property test:
 * test/unit/round-trip.test.ts).
 */
import {isUtf8} from 'node:buffer';

const TOP = 0;
const SUB = 1;
const ARRAY = 2;

/** The largest time a JavaScript Date holds, in ms either side of 1970. */
const MAX_DATE_MS = 8.64e15;
/** Regex flags `bson` keeps as written when they are in this (alphabetical) order. */
const REGEX_FLAGS = 'ilmsux';

/**
 * The hashes and offsets of the field names seen so far, for the repeated-name check: one stack for
 * every level of every document (a level uses the slots after its parent's), so the walk allocates
 * nothing per document. Grown when a document needs more.
 */
let hashes = new Int32Array(1024);
let starts = new Int32Array(1024);

function ensureSlots(needed: number): void {
  if (needed <= hashes.length) return;
  const size = Math.max(needed, hashes.length * 2);
  const h = new Int32Array(size);
  const s = new Int32Array(size);
  h.set(hashes);
  s.set(starts);
  hashes = h;
  starts = s;
}

/** True when the plain decode of `raw` serialises to the same bytes and mongod stores it as sent. */
export function roundTripsPlainly(raw: Uint8Array): boolean {
  return raw.length >= 5 && int32(raw, 0) === raw.length && documentEnds(raw, 0, TOP, 0) === raw.length;
}

function int32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

/**
 * Walks the document at `start`; its end offset when every element is known to write back, else -1.
 * Its names take the name slots from `base` on.
 */
function documentEnds(b: Uint8Array, start: number, kind: number, base: number): number {
  const length = int32(b, start);
  const end = start + length;
  if (length < 5 || end > b.length || b[end - 1] !== 0) return -1;
  let p = start + 4;
  let index = 0;
  // Repeated names are found by a hash of each name's bytes, confirmed byte by byte.
  let count = 0;
  let seen: Set<number> | null = null;
  let sawText = false;
  let lastNumber = -1;
  while (p < end - 1) {
    const type = b[p++]!;
    const nameStart = p;
    // One pass over the name: its end, a hash of its bytes, whether it is all digits (and their
    // value while it fits), whether it has bytes beyond ASCII.
    let hash = 0x811c9dc5;
    let digits = true;
    let value = 0;
    let high = false;
    // The document ends with a 0 byte (checked above), so the scan stops inside it.
    for (let c = b[p]!; c !== 0; c = b[++p]!) {
      hash = Math.imul(hash ^ c, 0x01000193);
      if (c < 0x30 || c > 0x39) digits = false;
      else value = value * 10 + (c - 0x30);
      if (c >= 0x80) high = true;
    }
    if (p >= end - 1) return -1;
    const nameEnd = p++;
    const nameLength = nameEnd - nameStart;
    if (kind === ARRAY) {
      // A driver names array elements 0, 1, 2, … in order.
      if (!digits || nameLength === 0 || (nameLength > 1 && b[nameStart] === 0x30) || nameLength > 10 || value !== index++) return -1;
    } else {
      // A JavaScript object lists integer-like names first, in ascending order, then the others as
      // added: the stored order survives only when it already is that order. Other digit strings
      // ("007", or beyond 2^31) are left to the full check.
      if (digits && nameLength > 0) {
        if (nameLength > 10 || (nameLength > 1 && b[nameStart] === 0x30) || value > 2 ** 31) return -1;
        if (sawText || value <= lastNumber) return -1;
        lastNumber = value;
      } else sawText = true;
      // `$…` (a DBRef's names decode to a DBRef), `__proto__`, invalid UTF-8: left to the full check.
      if (b[nameStart] === 0x24) return -1;
      if (high && !isUtf8(b.subarray(nameStart, nameEnd))) return -1;
      if (nameLength === 9 && sameBytes(b, nameStart, PROTO)) return -1;
      hash >>>= 1;
      if (count >= 64) seen ??= new Set(hashes.subarray(base, base + count));
      if (seen === null || seen.has(hash)) {
        for (let i = base; i < base + count; i++) {
          if (hashes[i] === hash && sameName(b, starts[i]!, nameStart, nameEnd)) return -1;
        }
      }
      seen?.add(hash);
      ensureSlots(base + count + 1);
      hashes[base + count] = hash;
      starts[base + count] = nameStart;
      count++;
    }
    p = valueEnds(b, p, end - 1, type, kind, base + count);
    if (p < 0) return -1;
  }
  return p === end - 1 ? end : -1;
}

/** The end of a value of `type` at `p` (which must not pass `limit`), or -1. */
function valueEnds(b: Uint8Array, p: number, limit: number, type: number, kind: number, base: number): number {
  let next: number;
  switch (type) {
    case 0x01: {
      // NaN (any payload), ±Infinity and -0: left to the full check.
      next = p + 8;
      if (next > limit) return -1;
      const high = int32(b, p + 4);
      if (((high >>> 20) & 0x7ff) === 0x7ff) return -1;
      if (high === (0x80000000 | 0) && int32(b, p) === 0) return -1;
      return next;
    }
    case 0x02:
    case 0x0d:
      return stringEnds(b, p, limit);
    case 0x03:
      return p + 4 <= limit ? within(documentEnds(b, p, SUB, base), limit) : -1;
    case 0x04:
      return p + 4 <= limit ? within(documentEnds(b, p, ARRAY, base), limit) : -1;
    case 0x05: {
      if (p + 5 > limit) return -1;
      const length = int32(b, p);
      const subtype = b[p + 4]!;
      // Subtype 2 nests a second length, subtype 9 (vector) is validated on write: the full check decides.
      if (length < 0 || subtype === 2 || (subtype > 8 && subtype < 0x80)) return -1;
      next = p + 5 + length;
      return next <= limit ? next : -1;
    }
    case 0x07:
      return within(p + 12, limit);
    case 0x08:
      return p < limit && (b[p] === 0 || b[p] === 1) ? p + 1 : -1;
    case 0x09: {
      if (p + 8 > limit) return -1;
      const ms = int32(b, p + 4) * 2 ** 32 + (int32(b, p) >>> 0);
      return Math.abs(ms) <= MAX_DATE_MS ? p + 8 : -1;
    }
    case 0x0a:
    case 0x7f:
    case 0xff:
      return p;
    case 0x0b:
      return regexEnds(b, p, limit);
    case 0x10:
      return within(p + 4, limit);
    case 0x11:
      // mongod replaces an empty Timestamp in a top-level field on insert.
      if (p + 8 > limit) return -1;
      if (kind === TOP && int32(b, p) === 0 && int32(b, p + 4) === 0) return -1;
      return p + 8;
    case 0x12:
      return within(p + 8, limit);
    case 0x13:
      return within(p + 16, limit);
    default:
      // undefined, DBPointer, symbol, code with scope, and anything unknown.
      return -1;
  }
}

function within(next: number, limit: number): number {
  return next >= 0 && next <= limit ? next : -1;
}

function stringEnds(b: Uint8Array, p: number, limit: number): number {
  if (p + 4 > limit) return -1;
  const length = int32(b, p);
  const next = p + 4 + length;
  if (length < 1 || next > limit || b[next - 1] !== 0) return -1;
  return utf8(b, p + 4, next - 1) ? next : -1;
}

function regexEnds(b: Uint8Array, p: number, limit: number): number {
  const patternStart = p;
  while (p < limit && b[p] !== 0) p++;
  if (p >= limit || !utf8(b, patternStart, p)) return -1;
  p++;
  let last = -1;
  while (p < limit && b[p] !== 0) {
    const at = REGEX_FLAGS.indexOf(String.fromCharCode(b[p]!));
    if (at <= last) return -1;
    last = at;
    p++;
  }
  return p < limit ? p + 1 : -1;
}

const PROTO = Buffer.from('__proto__', 'latin1');

function sameBytes(b: Uint8Array, start: number, want: Uint8Array): boolean {
  for (let i = 0; i < want.length; i++) if (b[start + i] !== want[i]) return false;
  return true;
}

/** Whether the name at `other` (null-terminated) is the bytes from `start` to `end`. */
function sameName(b: Uint8Array, other: number, start: number, end: number): boolean {
  for (let i = start; i < end; i++, other++) if (b[other] !== b[i]) return false;
  return b[other] === 0;
}

/** Valid UTF-8: ASCII is told by OR-ing the bytes (no branch a byte); anything else is checked by Node. */
function utf8(b: Uint8Array, start: number, end: number): boolean {
  let any = 0;
  for (let i = start; i < end; i++) any |= b[i]!;
  return any < 0x80 || isUtf8(b.subarray(start, end));
}
