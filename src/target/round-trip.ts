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

/** True when the plain decode of `raw` serialises to the same bytes and mongod stores it as sent. */
export function roundTripsPlainly(raw: Uint8Array): boolean {
  return raw.length >= 5 && int32(raw, 0) === raw.length && documentEnds(raw, 0, TOP) === raw.length;
}

function int32(b: Uint8Array, p: number): number {
  return b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
}

/** Walks the document at `start`; its end offset when every element is known to write back, else -1. */
function documentEnds(b: Uint8Array, start: number, kind: number): number {
  const length = int32(b, start);
  const end = start + length;
  if (length < 5 || end > b.length || b[end - 1] !== 0) return -1;
  let p = start + 4;
  let index = 0;
  // Repeated names are found by a hash of each name's bytes, confirmed byte by byte.
  const hashes: number[] = [];
  const starts: number[] = [];
  let seen: Set<number> | null = null;
  let sawText = false;
  let lastNumber = -1;
  while (p < end - 1) {
    const type = b[p++]!;
    const nameStart = p;
    while (p < end - 1 && b[p] !== 0) p++;
    if (p >= end - 1) return -1;
    const nameEnd = p++;
    if (kind === ARRAY) {
      if (!isIndex(b, nameStart, nameEnd, index++)) return -1;
    } else {
      // A JavaScript object lists integer-like names first, in ascending order, then the others as
      // added: the stored order survives only when it already is that order.
      const number = integerName(b, nameStart, nameEnd);
      if (number === NOT_CANONICAL || (number >= 0 && (sawText || number <= lastNumber))) return -1;
      if (number >= 0) lastNumber = number;
      else sawText = true;
      const hash = plainNameHash(b, nameStart, nameEnd);
      if (hash === -1) return -1;
      if (hashes.length >= 64) seen ??= new Set(hashes);
      if (seen === null || seen.has(hash)) {
        for (let i = 0; i < hashes.length; i++) {
          if (hashes[i] === hash && sameName(b, starts[i]!, nameStart, nameEnd)) return -1;
        }
      }
      seen?.add(hash);
      hashes.push(hash);
      starts.push(nameStart);
    }
    p = valueEnds(b, p, end - 1, type, kind);
    if (p < 0) return -1;
  }
  return p === end - 1 ? end : -1;
}

/** The end of a value of `type` at `p` (which must not pass `limit`), or -1. */
function valueEnds(b: Uint8Array, p: number, limit: number, type: number, kind: number): number {
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
      return p + 4 <= limit ? within(documentEnds(b, p, SUB), limit) : -1;
    case 0x04:
      return p + 4 <= limit ? within(documentEnds(b, p, ARRAY), limit) : -1;
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

const NOT_CANONICAL = -2;

/**
 * A name of digits only: its value when it is an integer an object orders by value (canonical, up
 * to 2^31; larger ones are left to the full check), NOT_CANONICAL for other digit strings ("007"),
 * -1 for a name with anything else.
 */
function integerName(b: Uint8Array, start: number, end: number): number {
  if (end === start || end - start > 10) return end === start ? -1 : digitsOnly(b, start, end) ? NOT_CANONICAL : -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return -1;
    value = value * 10 + (c - 0x30);
  }
  if ((b[start] === 0x30 && end - start > 1) || value > 2 ** 31) return NOT_CANONICAL;
  return value;
}

function digitsOnly(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return false;
  return true;
}

/**
 * A field name an object keeps as it is (not `$…` as a DBRef's, not `__proto__`, valid UTF-8): a
 * non-negative hash of its bytes; -1 otherwise.
 */
function plainNameHash(b: Uint8Array, start: number, end: number): number {
  if (b[start] === 0x24 /* $ */) return -1;
  let high = false;
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x80) high = true;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (high && !isUtf8(b.subarray(start, end))) return -1;
  if (end - start === 9 && Buffer.from(b.buffer, b.byteOffset + start, 9).toString('latin1') === '__proto__') return -1;
  return hash >>> 1;
}

/** Whether the name at `other` (null-terminated) is the bytes from `start` to `end`. */
function sameName(b: Uint8Array, other: number, start: number, end: number): boolean {
  for (let i = start; i < end; i++, other++) if (b[other] !== b[i]) return false;
  return b[other] === 0;
}

/** An array element's name as a driver writes it: its position. */
function isIndex(b: Uint8Array, start: number, end: number, index: number): boolean {
  let value = 0;
  if (end === start || (b[start] === 0x30 && end - start > 1)) return false;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return false;
    value = value * 10 + (c - 0x30);
  }
  return value === index;
}

function utf8(b: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (b[i]! >= 0x80) return isUtf8(b.subarray(start, end));
  return true;
}
