import * as nodeCrypto from 'node:crypto';
import {createHash} from 'node:crypto';

import {ObjectId} from 'bson';

import {exactForm, exactId, leadingObjectId, orderedJson, parseOrderedJson, toBytes} from './exact.js';

/** The `_id` of a raw document, typed exactly and in stored field order. */
export function idOf(raw: Uint8Array): unknown {
  return exactId(raw);
}

/**
 * Canonical Extended JSON of an ObjectId, `{"$oid":"<hex>"}`: the `_id` most collections have,
 * spelled and read back without the general (order-keeping) writer and parser, which cost a few
 * microseconds an id. The same text as `orderedJson` gives.
 */
const OID_JSON = /^\{"\$oid":"([0-9a-f]{24})"\}$/;

function oidJson(id: ObjectId): string {
  return `{"$oid":"${id.toHexString()}"}`;
}

/** Lossless text form of an `_id` (canonical Extended JSON, field order kept): what plans and journals store. */
export function idToJson(id: unknown): string {
  return id instanceof ObjectId ? oidJson(id) : orderedJson(id);
}

export function idFromJson(text: string): unknown {
  const oid = OID_JSON.exec(text);
  return oid ? ObjectId.createFromHexString(oid[1]!) : parseOrderedJson(text);
}

/** A whole document as canonical Extended JSON in stored field order (journal pre-images, for people). */
export function docToJson(raw: Uint8Array): string {
  return orderedJson(exactForm(raw).doc);
}

/** Inverse of docToJson, back to the same bytes. */
export function docFromJson(text: string): Buffer {
  return toBytes(parseOrderedJson(text) as Map<string, unknown>);
}

/**
 * Map key for an `_id`, equal exactly when the server's `_id` index sees the same value: numbers
 * compare by value across Int32, Int64, Double and Decimal128 (5, NumberLong(5), 5.0 and
 * NumberDecimal("5.00") are one `_id`), while subdocuments compare field by field in order
 * ({b: 1, "1": 2} and {"1": 2, b: 1} are two `_id`s).
 * https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/
 */
export function idKey(id: unknown): string {
  return keyOf(id);
}

/**
 * `idKey(idOf(raw))` for a raw document, without building the `_id`: a leading ObjectId `_id`
 * (mongodump's and most collections' layout) is spelled from its 12 bytes.
 */
export function rawIdKey(raw: Uint8Array): string {
  const oid = leadingObjectId(raw);
  return oid ? `{"$oid":"${oid.toString('hex')}"}` : keyOf(idOf(raw));
}

/** `idKey(id)` when its text form `json` is already at hand: for an ObjectId the two are the same text. */
export function idKeyOf(id: unknown, json: string): string {
  return id instanceof ObjectId ? json : keyOf(id);
}

/** Key from the lossless text form. */
export function idKeyFromJson(text: string): string {
  // An ObjectId's key is its canonical text (keyOf below).
  return OID_JSON.test(text) ? text : keyOf(parseOrderedJson(text));
}

function keyOf(value: unknown): string {
  if (value instanceof ObjectId) return oidJson(value);
  if (value instanceof Map) return `{${[...value].map(([k, v]) => `${JSON.stringify(k)}:${keyOf(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(keyOf).join(',')}]`;
  const number = numericKey(value);
  if (number !== undefined) return `n:${number}`;
  if (value && typeof value === 'object' && !(value as {_bsontype?: string})._bsontype && !(value instanceof Date)) {
    // A plain object (a caller's own value): its own key order is all there is.
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${keyOf(v)}`).join(',')}}`;
  }
  return orderedJson(value);
}

/** Exact decimal text of a number of any BSON numeric type, or undefined for a non-number. */
export function numericKey(value: unknown): string | undefined {
  if (typeof value === 'number') return doubleKey(value);
  if (typeof value === 'bigint') return normalise(value < 0n ? '-' : '', (value < 0n ? -value : value).toString(), 0);
  const typed = value as {_bsontype?: string; value?: number; toString(): string} | null;
  switch (typed?._bsontype) {
    case 'Int32':
    case 'Double':
      return doubleKey(Number(typed.value));
    case 'Long':
      return numericKey(BigInt(typed.toString()));
    case 'Decimal128':
      return decimalKey(typed.toString());
    default:
      return undefined;
  }
}

function doubleKey(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (n === 0) return '0';
  // Every finite double is m × 2^e exactly; m × 5^-e / 10^-e gives its exact decimal digits.
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(n));
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biased === 0 ? fraction : fraction | (1n << 52n);
  const exponent = (biased === 0 ? 1 : biased) - 1075;
  const sign = n < 0 ? '-' : '';
  if (exponent >= 0) return normalise(sign, (mantissa << BigInt(exponent)).toString(), 0);
  return normalise(sign, (mantissa * 5n ** BigInt(-exponent)).toString(), exponent);
}

function decimalKey(text: string): string {
  if (/^-?NaN$/i.test(text)) return 'NaN';
  if (/^-?Inf/i.test(text)) return text.startsWith('-') ? '-Infinity' : 'Infinity';
  const m = /^(-)?(\d+)(?:\.(\d+))?(?:E([+-]\d+))?$/i.exec(text);
  if (!m) return `decimal:${text}`;
  const frac = m[3] ?? '';
  return normalise(m[1] ?? '', `${m[2]}${frac}`, Number(m[4] ?? 0) - frac.length);
}

/** sign, digits × 10^exp → one spelling: no leading or trailing zeros, zero unsigned. */
function normalise(sign: string, digits: string, exp: number): string {
  let d = digits.replace(/^0+/, '');
  if (d === '') return '0';
  let e = exp;
  const trailing = /0+$/.exec(d);
  if (trailing) {
    d = d.slice(0, -trailing[0].length);
    e += trailing[0].length;
  }
  return `${sign}${d}e${e}`;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// Node 20.12+ and 21.7+ have crypto.hash; older versions fall back to createHash.
const cryptoHash = (nodeCrypto as unknown as {hash?: (algorithm: string, data: Uint8Array, encoding: 'base64') => string}).hash;

/**
 * sha256 of a document's bytes, base64: what a push journals for each insert. One-shot `crypto.hash`
 * where Node has it (0.4 µs for 500 bytes against 0.8 µs through createHash, measured here).
 */
export function digest(data: Uint8Array): string {
  return typeof cryptoHash === 'function' ? cryptoHash('sha256', data, 'base64') : createHash('sha256').update(data).digest('base64');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
