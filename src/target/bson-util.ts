import {createHash} from 'node:crypto';

import {BSON, EJSON} from 'bson';
import type {Document} from 'bson';

/**
 * Decoding that keeps every BSON type as its own class (Int32, Double, Long, BSONRegExp, Binary),
 * so serialising the result gives back the same bytes. Push writes set documents through this:
 * the driver takes objects, not raw buffers, and this keeps the backup's types and field order.
 */
const EXACT = {promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true} as const;

export function decodeExact(raw: Uint8Array): Document {
  return BSON.deserialize(raw, EXACT);
}

export function encode(doc: Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

/** The `_id` of a raw document, typed exactly. */
export function idOf(raw: Uint8Array): unknown {
  return decodeExact(raw)._id;
}

/** Lossless text form of an `_id` (canonical Extended JSON): what plans and journals store. */
export function idToJson(id: unknown): string {
  return EJSON.stringify(id, {relaxed: false});
}

export function idFromJson(text: string): unknown {
  return EJSON.parse(text, {relaxed: false});
}

/** A whole document as canonical Extended JSON (journal pre-images). */
export function docToJson(raw: Uint8Array): string {
  return EJSON.stringify(decodeExact(raw), {relaxed: false});
}

/** Inverse of docToJson, back to the same bytes. */
export function docFromJson(text: string): Buffer {
  return encode(EJSON.parse(text, {relaxed: false}) as Document);
}

/**
 * Map key for an `_id`: canonical Extended JSON with numbers normalised, because the server
 * treats 5, NumberLong(5) and 5.0 as the same `_id` (a `$in` on one finds the other).
 */
export function idKey(id: unknown): string {
  return JSON.stringify(normaliseNumbers(EJSON.serialize({v: id}, {relaxed: false}).v));
}

/** Key from the lossless text form. */
export function idKeyFromJson(text: string): string {
  return JSON.stringify(normaliseNumbers(JSON.parse(text)));
}

function normaliseNumbers(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normaliseNumbers);
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj);
    if (keys.length === 1) {
      const [k] = keys;
      const v = obj[k!];
      if ((k === '$numberInt' || k === '$numberLong') && typeof v === 'string') return {$num: BigInt(v).toString()};
      if (k === '$numberDouble' && typeof v === 'string') {
        const n = Number(v);
        return {$num: Number.isInteger(n) && Math.abs(n) < 2 ** 63 ? BigInt(n).toString() : String(n)};
      }
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = normaliseNumbers(obj[k]);
    return out;
  }
  return value;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}
