/**
 * BSON helpers for the test server: raw-byte surgery (so stored documents stay byte-identical),
 * reply encoding, and the "matchable" view handed to mingo for projections, pipelines after their
 * leading `$match` and operator updates (filters themselves go through match.ts).
 */
import {Decimal128, Double, Int32, Long, ObjectId, deserialize, onDemand, serialize} from 'bson';
import {BArr, BDoc, BVal, type Value, elementBytes, toValue, topLevel, valueFrom} from './tree.js';
import type {Document} from 'bson';

export type {Document};

/** A document that must be written into a reply as is (never re-encoded). */
export class RawDoc {
  constructor(readonly bytes: Buffer) {}
}

const TYPED = {promoteValues: false} as const;

/** Decodes keeping Int32/Double/Long wrappers so types survive a re-encode. */
export function decodeTyped(bytes: Uint8Array): Document {
  return deserialize(bytes, TYPED);
}

export function encode(doc: Document): Buffer {
  return Buffer.from(serialize(doc));
}

function bsonTypeOf(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const t = (v as {_bsontype?: unknown})._bsontype;
  return typeof t === 'string' ? t : undefined;
}

export function isPlainObject(v: unknown): v is Document {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * mingo compares JS numbers natively but compares bson wrappers by their string form, so
 * Long(10) < Long(9) and Int32(5) != 5. mongod compares all numeric types by value: hand
 * mingo plain numbers. Decimal128 and unsafe Longs lose precision here, which only matters for
 * matching and sorting; stored bytes are untouched.
 */
export function toMatchable(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(toMatchable);
  if (isPlainObject(v)) {
    const out: Document = {};
    for (const k of Object.keys(v)) out[k] = toMatchable(v[k]);
    return out;
  }
  switch (bsonTypeOf(v)) {
    case 'Int32':
    case 'Double':
      return (v as Int32 | Double).value;
    case 'Long':
      return (v as Long).toNumber();
    case 'Decimal128':
      return Number((v as Decimal128).toString());
    default:
      return v;
  }
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** The value `n` in the numeric BSON type of `old`, with mongod's int32 → int64 widening. */
function numberLike(type: string, n: number): unknown {
  switch (type) {
    case 'Int32':
      if (Number.isInteger(n) && n >= INT32_MIN && n <= INT32_MAX) return new Int32(n);
      return Number.isInteger(n) ? Long.fromNumber(n) : new Double(n);
    case 'Long':
      return Number.isInteger(n) ? Long.fromNumber(n) : new Double(n);
    case 'Decimal128':
      try {
        return Decimal128.fromString(String(n));
      } catch {
        return new Double(n);
      }
    default:
      return new Double(n);
  }
}

/**
 * Re-attaches BSON types after mingo worked on the matchable view: a value equal to the one at the
 * same path in `typed` keeps that typed value; a changed number keeps its old numeric type.
 */
export function restoreTypes(value: unknown, typed: unknown): unknown {
  if (typeof value === 'number') {
    const t = bsonTypeOf(typed);
    if (t === 'Int32' || t === 'Double' || t === 'Long' || t === 'Decimal128') {
      const old = toMatchable(typed) as number;
      if (old === value || (Number.isNaN(old) && Number.isNaN(value))) return typed;
      return numberLike(t, value);
    }
    return value;
  }
  if (Array.isArray(value)) {
    const olds = Array.isArray(typed) ? typed : [];
    return value.map((x, i) => restoreTypes(x, olds[i]));
  }
  if (isPlainObject(value)) {
    const olds = isPlainObject(typed) ? typed : {};
    const out: Document = {};
    for (const k of Object.keys(value)) out[k] = restoreTypes(value[k], olds[k]);
    return out;
  }
  return value;
}

/**
 * Puts keys in the order of `original` (new keys last), recursively: mingo's projection emits
 * fields in projection order, mongod in document order.
 */
export function orderLike(value: unknown, original: unknown): unknown {
  if (Array.isArray(value)) {
    const olds = Array.isArray(original) ? original : [];
    return value.map((x, i) => orderLike(x, olds[i]));
  }
  if (!isPlainObject(value) || !isPlainObject(original)) return value;
  const out: Document = {};
  for (const k of Object.keys(original)) if (Object.hasOwn(value, k)) out[k] = orderLike(value[k], original[k]);
  for (const k of Object.keys(value)) if (!Object.hasOwn(out, k)) out[k] = value[k];
  return out;
}

/** Sets a dotted path, creating objects on the way; gives up on positional or blocked paths. */
export function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: unknown = doc;
  for (let i = 0; i < parts.length - 1; i++) {
    const p = parts[i]!;
    if (p.startsWith('$')) return;
    if (Array.isArray(cur)) {
      const idx = Number(p);
      if (!Number.isInteger(idx)) return;
      cur[idx] ??= {};
      cur = cur[idx];
    } else if (isPlainObject(cur)) {
      if (cur[p] === undefined) cur[p] = {};
      cur = cur[p];
    } else {
      return;
    }
  }
  const last = parts[parts.length - 1]!;
  if (last.startsWith('$')) return;
  if (Array.isArray(cur) && Number.isInteger(Number(last))) cur[Number(last)] = value;
  else if (isPlainObject(cur)) cur[last] = value;
}

// ---- raw byte helpers -------------------------------------------------------------------------

function isName(bytes: Uint8Array, el: readonly number[], name: string): boolean {
  if (el[2] !== name.length) return false;
  for (let i = 0; i < name.length; i++) if (bytes[el[1]! + i] !== name.charCodeAt(i)) return false;
  return true;
}

/** Wraps element bytes (type, name, value) into a document. */
export function docFromElements(parts: Uint8Array[]): Buffer {
  let len = 5;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(len);
  out.writeInt32LE(len, 0);
  let pos = 4;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  out[pos] = 0;
  return out;
}

/** The element bytes of `{[name]: value}`, encoded by bson. */
export function element(name: string, value: unknown): Buffer {
  const b = serialize({[name]: value});
  return Buffer.from(b.buffer, b.byteOffset + 4, b.length - 5);
}

function cstring(name: string): Buffer {
  return Buffer.from(`${name}\0`, 'utf8');
}

function rawElement(type: number, name: string, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(type), cstring(name), value]);
}

/** Raw bytes of the embedded document or array named `name`, if present with that type. */
export function rawField(doc: Uint8Array, name: string): {type: number; bytes: Buffer} | undefined {
  for (const el of onDemand.parseToElements(doc)) {
    if (isName(doc, el, name)) {
      return {type: el[0], bytes: Buffer.from(doc.buffer, doc.byteOffset + el[3], el[4])};
    }
  }
  return undefined;
}

/**
 * Puts `_id` first, as mongod stores it, generating an ObjectId when missing. Returns the same
 * buffer when `_id` already leads, so stored bytes equal the bytes sent.
 */
export function withIdFirst(doc: Buffer, fallbackId?: Value): {bytes: Buffer; id: Value} {
  const els = [...topLevel(doc)];
  const idx = els.findIndex((el) => el.name === '_id');
  if (idx >= 0) {
    const el = els[idx]!;
    const id = valueFrom(el.type, doc.subarray(el.valueStart, el.end));
    if (idx === 0) return {bytes: doc, id};
    const parts = [doc.subarray(el.start, el.end), ...els.filter((e) => e !== el).map((e) => doc.subarray(e.start, e.end))];
    return {bytes: docFromElements(parts), id};
  }
  const id = fallbackId ?? toValue(new ObjectId());
  return {bytes: docFromElements([elementBytes('_id', id), ...els.map((e) => doc.subarray(e.start, e.end))]), id};
}

/** Encodes a reply; RawDoc values (alone or in arrays) are spliced in byte for byte. */
export function encodeReply(doc: Document): Buffer {
  if (!containsRaw(doc)) return encode(doc);
  return docFromElements(Object.keys(doc).map((k) => encodeElement(k, doc[k])));
}

function isTreeValue(v: unknown): v is Value {
  return v instanceof BVal || v instanceof BDoc || v instanceof BArr;
}

function containsRaw(v: unknown): boolean {
  if (v instanceof RawDoc || isTreeValue(v)) return true;
  if (Array.isArray(v)) return v.some(containsRaw);
  if (isPlainObject(v)) return Object.keys(v).some((k) => containsRaw(v[k]));
  return false;
}

function encodeElement(name: string, v: unknown): Buffer {
  if (v instanceof RawDoc) return rawElement(3, name, v.bytes);
  if (isTreeValue(v)) return elementBytes(name, v);
  if (!containsRaw(v)) return element(name, v);
  if (Array.isArray(v)) return rawElement(4, name, docFromElements(v.map((x, i) => encodeElement(String(i), x))));
  const d = v as Document;
  return rawElement(3, name, docFromElements(Object.keys(d).map((k) => encodeElement(k, d[k]))));
}
