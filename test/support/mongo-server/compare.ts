/**
 * mongod's comparison/sort order over tree values
 * (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/): type brackets first,
 * numbers of every type by exact mathematical value, documents field by field in stored order.
 */
import {BArr, BDoc, BT, BVal, type Value, isNumberType, regexParts, stringOf} from './tree.js';

/** Bracket rank of a BSON type; values of different brackets never compare equal. */
export function bracket(type: number): number {
  switch (type) {
    case BT.MINKEY:
      return -1;
    case BT.UNDEFINED:
      return 0;
    case BT.NULL:
      return 5;
    case BT.DOUBLE:
    case BT.INT32:
    case BT.INT64:
    case BT.DECIMAL:
      return 10;
    case BT.STRING:
    case BT.SYMBOL:
      return 15;
    case BT.DOC:
      return 20;
    case BT.ARRAY:
      return 25;
    case BT.BINARY:
      return 30;
    case BT.OID:
      return 35;
    case BT.BOOL:
      return 40;
    case BT.DATE:
      return 45;
    case BT.TIMESTAMP:
      return 47;
    case BT.REGEX:
      return 50;
    case BT.DBPOINTER:
      return 55;
    case BT.CODE:
      return 60;
    case BT.CODE_W_SCOPE:
      return 65;
    case BT.MAXKEY:
      return 127;
    default:
      return 200;
  }
}

// ---- exact numbers ---------------------------------------------------------------------------

/** A number as an exact fraction (den > 0), or one of the non-finite values. */
export type Exact = {kind: 'nan'} | {kind: 'inf'; sign: 1 | -1} | {kind: 'fin'; num: bigint; den: bigint};

const TWO_53 = 2 ** 53;

function exactDouble(x: number): Exact {
  if (Number.isNaN(x)) return {kind: 'nan'};
  if (!Number.isFinite(x)) return {kind: 'inf', sign: x > 0 ? 1 : -1};
  if (Number.isInteger(x) && Math.abs(x) <= TWO_53) return {kind: 'fin', num: BigInt(x), den: 1n};
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const expBits = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exp: number;
  if (expBits === 0) {
    exp = -1074;
  } else {
    mantissa |= 1n << 52n;
    exp = expBits - 1075;
  }
  const signed = negative ? -mantissa : mantissa;
  return exp >= 0 ? {kind: 'fin', num: signed << BigInt(exp), den: 1n} : {kind: 'fin', num: signed, den: 1n << BigInt(-exp)};
}

function exactDecimal(bytes: Buffer): Exact {
  const low = bytes.readBigUInt64LE(0);
  const high = bytes.readBigUInt64LE(8);
  const negative = high >> 63n === 1n;
  const combination = Number((high >> 58n) & 0x1fn);
  if (combination === 0x1f) return {kind: 'nan'};
  if (combination === 0x1e) return {kind: 'inf', sign: negative ? -1 : 1};
  let exponent: number;
  let coefficient: bigint;
  if (((high >> 61n) & 3n) === 3n) {
    // The large-coefficient form always exceeds 10^34 - 1, so it stands for zero.
    exponent = Number((high >> 47n) & 0x3fffn);
    coefficient = 0n;
  } else {
    exponent = Number((high >> 49n) & 0x3fffn);
    coefficient = ((high & ((1n << 49n) - 1n)) << 64n) | low;
    if (coefficient > 10n ** 34n - 1n) coefficient = 0n;
  }
  const e = exponent - 6176;
  const signed = negative ? -coefficient : coefficient;
  return e >= 0 ? {kind: 'fin', num: signed * 10n ** BigInt(e), den: 1n} : {kind: 'fin', num: signed, den: 10n ** BigInt(-e)};
}

export function exactOf(v: BVal): Exact {
  switch (v.type) {
    case BT.DOUBLE:
      return exactDouble(v.bytes.readDoubleLE(0));
    case BT.INT32:
      return {kind: 'fin', num: BigInt(v.bytes.readInt32LE(0)), den: 1n};
    case BT.INT64:
      return {kind: 'fin', num: v.bytes.readBigInt64LE(0), den: 1n};
    case BT.DECIMAL:
      return exactDecimal(v.bytes);
    default:
      throw new Error(`not a number: type ${v.type}`);
  }
}

/** A JavaScript number when the value is a double or int32 (exact there), else undefined. */
function plainNumber(v: BVal): number | undefined {
  if (v.type === BT.DOUBLE) return v.bytes.readDoubleLE(0);
  if (v.type === BT.INT32) return v.bytes.readInt32LE(0);
  return undefined;
}

/** NaN sorts below every other number and equals NaN, as in mongod. */
export function compareExact(a: Exact, b: Exact): number {
  if (a.kind === 'nan' || b.kind === 'nan') return a.kind === b.kind ? 0 : a.kind === 'nan' ? -1 : 1;
  const ra = a.kind === 'inf' ? a.sign : 0;
  const rb = b.kind === 'inf' ? b.sign : 0;
  if (ra !== rb) return ra < rb ? -1 : 1;
  if (ra !== 0) return 0;
  const fa = a as {num: bigint; den: bigint};
  const fb = b as {num: bigint; den: bigint};
  const l = fa.num * fb.den;
  const r = fb.num * fa.den;
  return l < r ? -1 : l > r ? 1 : 0;
}

export function compareNumbers(a: BVal, b: BVal): number {
  const x = plainNumber(a);
  const y = plainNumber(b);
  if (x !== undefined && y !== undefined) {
    if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) === Number.isNaN(y) ? 0 : Number.isNaN(x) ? -1 : 1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return compareExact(exactOf(a), exactOf(b));
}

export function isNaNValue(v: Value): boolean {
  return v instanceof BVal && isNumberType(v.type) && exactOf(v).kind === 'nan';
}

/** The value as a JavaScript number (lossy above 2^53; for limits and counts only). */
export function toNumber(v: BVal): number {
  const e = exactOf(v);
  if (e.kind === 'nan') return Number.NaN;
  if (e.kind === 'inf') return e.sign * Number.POSITIVE_INFINITY;
  return e.den === 1n ? Number(e.num) : Number(e.num) / Number(e.den);
}

// ---- general comparison ----------------------------------------------------------------------

/** UTF-8 byte order, which is code point order (JavaScript's `<` compares UTF-16 units). */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function sign(n: number): number {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

function compareEntries(a: ReadonlyArray<readonly [string, Value]>, b: ReadonlyArray<readonly [string, Value]>, names: boolean, collator: Intl.Collator | undefined): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const [ka, va] = a[i]!;
    const [kb, vb] = b[i]!;
    const t = bracket(va.type) - bracket(vb.type);
    if (t !== 0) return sign(t);
    if (names) {
      const k = compareStrings(ka, kb);
      if (k !== 0) return k;
    }
    const c = compareValues(va, vb, collator);
    if (c !== 0) return c;
  }
  return sign(a.length - b.length);
}

/** mongod's total order over BSON values: <0, 0 or >0. Strings compare under `collator` when given. */
export function compareValues(a: Value, b: Value, collator?: Intl.Collator): number {
  const ba = bracket(a.type);
  const bb = bracket(b.type);
  if (ba !== bb) return sign(ba - bb);
  if (a instanceof BDoc) return compareEntries(a.entries, (b as BDoc).entries, true, collator);
  if (a instanceof BArr) {
    const ib = (b as BArr).items;
    return compareEntries(
      a.items.map((v) => ['', v] as const),
      ib.map((v) => ['', v] as const),
      false,
      collator,
    );
  }
  const x = a as BVal;
  const y = b as BVal;
  switch (ba) {
    case 10:
      return compareNumbers(x, y);
    case 15:
      return collator ? sign(collator.compare(stringOf(x), stringOf(y))) : compareStrings(stringOf(x), stringOf(y));
    case 60:
      return compareStrings(stringOf(x), stringOf(y));
    case 30: {
      const l = x.bytes.readInt32LE(0) - y.bytes.readInt32LE(0);
      if (l !== 0) return sign(l);
      const s = x.bytes[4]! - y.bytes[4]!;
      if (s !== 0) return sign(s);
      return Buffer.compare(x.bytes.subarray(5), y.bytes.subarray(5));
    }
    case 45: {
      const p = x.bytes.readBigInt64LE(0);
      const q = y.bytes.readBigInt64LE(0);
      return p < q ? -1 : p > q ? 1 : 0;
    }
    case 47: {
      const p = x.bytes.readBigUInt64LE(0);
      const q = y.bytes.readBigUInt64LE(0);
      return p < q ? -1 : p > q ? 1 : 0;
    }
    case 50: {
      const p = regexParts(x);
      const q = regexParts(y);
      return compareStrings(p.pattern, q.pattern) || compareStrings(p.flags, q.flags);
    }
    case -1:
    case 0:
    case 5:
    case 127:
      return 0;
    default:
      return Buffer.compare(x.bytes, y.bytes);
  }
}

export function equalValues(a: Value, b: Value, collator?: Intl.Collator): boolean {
  if (bracket(a.type) !== bracket(b.type)) return false;
  return compareValues(a, b, collator) === 0;
}

// ---- index keys ------------------------------------------------------------------------------

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

function numberKey(v: BVal): string {
  if (v.type === BT.INT32) return `n${v.bytes.readInt32LE(0)}`;
  const e = exactOf(v);
  if (e.kind === 'nan') return 'nNaN';
  if (e.kind === 'inf') return e.sign > 0 ? 'n+inf' : 'n-inf';
  if (e.den === 1n) return `n${e.num}`;
  const g = gcd(e.num, e.den);
  return g === e.den ? `n${e.num / g}` : `n${e.num / g}/${e.den / g}`;
}

/**
 * A string that is equal exactly when two values compare equal in mongod: numbers by value across
 * types, documents by field order, names and values. `undefined` stands for a missing field, which
 * indexes store as null.
 */
export function keyOf(v: Value | undefined): string {
  if (v === undefined) return 'z';
  if (v instanceof BDoc) return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${keyOf(x)}`).join(',')}}`;
  if (v instanceof BArr) return `[${v.items.map(keyOf).join(',')}]`;
  switch (bracket(v.type)) {
    case 5:
      return 'z';
    case 10:
      return numberKey(v);
    case 15:
      return `s${JSON.stringify(stringOf(v))}`;
    default:
      return `${v.type}:${v.bytes.toString('hex')}`;
  }
}
