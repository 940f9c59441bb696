/**
 * Comparisons made on a document's bytes where they stand, for the commonest filters: every
 * condition an `$eq`, `$gt`, `$gte`, `$lt` or `$lte` on a field (or a field of a subdocument) with a
 * number, a date or (for `$eq`) a boolean. No value is decoded and nothing is allocated per
 * document; the generic extract's profile had decoding, the objects it builds and their garbage
 * collection as its largest items (bench/RESULTS.md).
 *
 * The answers are those of the decoded path (operators.ts, itself checked against the MongoDB
 * manual and mingo), of which this is a subset: numbers compare by value across int32, int64 and
 * double; a value of another type never matches (type bracketing); a missing field matches none
 * of these conditions. Whatever the subset does not cover gets "don't know" and the decoded path
 * decides: an array on the path (array matching), NaN, int64 beyond 2^53, Decimal128, a date
 * beyond what a JavaScript Date holds, a subdocument that looks like a DBRef. Malformed bytes may
 * throw (a length read past the end): the caller reports them as the decoded path would. Property test:
 * test/unit/query-lazy-equivalence.test.ts runs random filters and documents through both.
 */

import {valueSize} from './raw.js';
import {isOperatorObject} from './values.js';

/** The decoded path must decide. */
export const UNKNOWN = 2;

type Kind = 'number' | 'date' | 'bool';
type Op = '$eq' | '$gt' | '$gte' | '$lt' | '$lte';

interface Condition {
  op: Op;
  kind: Kind;
  value: number;
}

interface PathTest {
  /** The path's names as bytes, outermost first (one or two). */
  names: Buffer[];
  conditions: Condition[];
}

const OPS = new Set<string>(['$eq', '$gt', '$gte', '$lt', '$lte']);
const MAX_DATE_MS = 8.64e15;

function operand(op: string, value: unknown): Condition | null {
  if (!OPS.has(op)) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? {op: op as Op, kind: 'number', value} : null;
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? {op: op as Op, kind: 'date', value: value.getTime()} : null;
  if (typeof value === 'boolean' && op === '$eq') return {op: '$eq', kind: 'bool', value: value ? 1 : 0};
  return null;
}

/**
 * The in-place test of a prepared filter (implicit AND of field conditions), or null when some
 * condition is outside the subset. The test answers true, false or UNKNOWN.
 */
export function inPlaceTest(prepared: Record<string, unknown>): ((b: Buffer, start: number) => boolean | typeof UNKNOWN) | null {
  const tests: PathTest[] = [];
  for (const [field, expr] of Object.entries(prepared)) {
    const names = field.split('.');
    if (field.startsWith('$') || names.length > 2 || names.some((n) => n === '' || n === '__proto__' || /^\d+$/.test(n))) return null;
    const conditions: Condition[] = [];
    if (isOperatorObject(expr)) {
      for (const [op, value] of Object.entries(expr)) {
        const c = operand(op, value);
        if (!c) return null;
        conditions.push(c);
      }
    } else {
      const c = operand('$eq', expr);
      if (!c) return null;
      conditions.push(c);
    }
    tests.push({names: names.map((n) => Buffer.from(n, 'utf8')), conditions});
  }
  if (tests.length === 0) return null;
  const roots = tests.map((t) => t.names[0]!);
  const found = new Int32Array(tests.length);
  const types = new Uint8Array(tests.length);
  // The document is the one at `start` of `doc` (a whole chunk of documents, say: no subarray is made for it).
  return (doc: Buffer, start: number) => {
    // The last occurrence of each root name, as a full decode keeps it (-1: absent).
    found.fill(-1);
    if (!lastOccurrences(doc, start, roots, found, types)) return UNKNOWN;
    let all = true;
    for (let t = 0; t < tests.length; t++) {
      const test = tests[t]!;
      let type = types[t]!;
      let at = found[t]!;
      if (at >= 0 && test.names.length === 2) {
        if (type === 0x04) return UNKNOWN;
        if (type !== 0x03) at = -1;
        else {
          if (doc[at + 4] !== 0 && doc[at + 5] === 0x24) return UNKNOWN;
          const inner = lastOccurrence(doc, at, test.names[1]!);
          if (inner === null) return UNKNOWN;
          [at, type] = inner;
        }
      }
      const verdict = at < 0 ? false : holds(doc, type, at, test.conditions);
      if (verdict === UNKNOWN) return UNKNOWN;
      if (!verdict) all = false;
    }
    return all;
  };
}

/** Value sizes of the fixed-size types the walk meets most (-1: read them otherwise). */
const FIXED_SIZE = new Int8Array(256).fill(-1);
for (const [type, size] of [
  [0x01, 8], // double
  [0x09, 8], // date
  [0x11, 8], // timestamp
  [0x12, 8], // int64
  [0x10, 4], // int32
  [0x08, 1], // bool
  [0x07, 12], // ObjectId
  [0x0a, 0], // null
] as const) {
  FIXED_SIZE[type] = size;
}

/** Whether the name at `at` (NUL-terminated) is `name`. */
function named(b: Buffer, at: number, name: Buffer): boolean {
  for (let i = 0; i < name.length; i++) if (b[at + i] !== name[i]) return false;
  return b[at + name.length] === 0;
}

/**
 * Walks the document at `start` and notes, for each of `names`, the value offset and type of its
 * last occurrence. False when the bytes are not a walkable document (the decoded path then reports it).
 */
function lastOccurrences(b: Buffer, start: number, names: Buffer[], found: Int32Array, types: Uint8Array): boolean {
  if (b.length - start < 5) return false;
  const end = start + b.readInt32LE(start);
  if (end > b.length || end < start + 5 || b[end - 1] !== 0) return false;
  const last = end - 1;
  const count = names.length;
  let p = start + 4;
  while (p < last) {
    const type = b[p]!;
    const nameAt = p + 1;
    let q = nameAt;
    while (q < last && b[q] !== 0) q++;
    if (q >= last) return false;
    const valueAt = q + 1;
    // The commonest types' sizes from a table (this walk visits every field of every document); the rest as raw.ts reads them.
    let size = FIXED_SIZE[type]!;
    if (size < 0) {
      if (type === 0x02 || type === 0x03 || type === 0x04) {
        // string: int32 length, then the bytes; document and array: int32 total length.
        if (valueAt + 4 > last) return false;
        size = (b[valueAt]! | (b[valueAt + 1]! << 8) | (b[valueAt + 2]! << 16) | (b[valueAt + 3]! << 24)) + (type === 0x02 ? 4 : 0);
      } else size = valueSize(b, type, valueAt);
    }
    if (size < 0 || valueAt + size > last) return false;
    const length = q - nameAt;
    for (let i = 0; i < count; i++) {
      const name = names[i]!;
      if (length === name.length && b[nameAt] === name[0] && named(b, nameAt, name)) {
        found[i] = valueAt;
        types[i] = type;
      }
    }
    p = valueAt + size;
  }
  return p === last;
}

const one = new Int32Array(1);
const oneType = new Uint8Array(1);

/** The last occurrence of `name` in the subdocument at `start`: [value offset or -1, type]; null if not walkable. */
function lastOccurrence(b: Buffer, start: number, name: Buffer): [number, number] | null {
  one[0] = -1;
  if (!lastOccurrences(b, start, [name], one, oneType)) return null;
  return [one[0]!, oneType[0]!];
}

/** The conditions on the value of `type` at `at`: all hold, one fails, or UNKNOWN. */
function holds(b: Buffer, type: number, at: number, conditions: Condition[]): boolean | typeof UNKNOWN {
  let kind: Kind;
  let value: number;
  switch (type) {
    case 0x01:
      value = b.readDoubleLE(at);
      if (Number.isNaN(value)) return UNKNOWN;
      kind = 'number';
      break;
    case 0x10:
      value = b.readInt32LE(at);
      kind = 'number';
      break;
    case 0x12: {
      value = b.readInt32LE(at + 4) * 2 ** 32 + b.readUInt32LE(at);
      if (Math.abs(value) > Number.MAX_SAFE_INTEGER) return UNKNOWN;
      kind = 'number';
      break;
    }
    case 0x09: {
      value = b.readInt32LE(at + 4) * 2 ** 32 + b.readUInt32LE(at);
      if (Math.abs(value) > MAX_DATE_MS) return UNKNOWN;
      kind = 'date';
      break;
    }
    case 0x08:
      if (b[at]! > 1) return UNKNOWN;
      value = b[at]!;
      kind = 'bool';
      break;
    case 0x04:
    case 0x13:
      // Arrays match element by element; Decimal128 compares by decimal value: the decoded path decides.
      return UNKNOWN;
    default:
      // Another type bracket than any operand here: no comparison or equality holds.
      return false;
  }
  for (const c of conditions) {
    if (c.kind !== kind) return false;
    const ok =
      c.op === '$eq' ? value === c.value : c.op === '$gt' ? value > c.value : c.op === '$gte' ? value >= c.value : c.op === '$lt' ? value < c.value : value <= c.value;
    if (!ok) return false;
  }
  return true;
}
