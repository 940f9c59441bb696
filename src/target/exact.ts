/**
 * Documents in the form that carries them to the driver unchanged.
 *
 * The driver takes objects, not raw BSON, and a JavaScript object puts integer-like keys ("2020",
 * "10") first whatever order they were stored in. `bson` serialises a `Map` in insertion order,
 * nested `Map`s too, so a document decoded into `Map`s (values kept as `bson` classes) serialises
 * back to the very bytes it came from. Whether it does is checked per document: a few BSON
 * encodings have no object form that writes them back (the deprecated `undefined` and DBPointer,
 * repeated field names), and mongod rewrites one value on insert (an empty top-level Timestamp).
 * Such a document is reported as not exact, never written silently changed.
 */
import {BSON, EJSON, ObjectId} from 'bson';
import type {Document} from 'bson';

import {storedDepth} from '../dump/validate.js';
import {roundTripsPlainly} from './round-trip.js';

/** A document in field order. */
export type ExactDoc = Map<string, unknown>;

export interface ExactForm {
  /** The document as `Map`s in stored order, values as `bson` classes. */
  doc: ExactDoc;
  /** Why serialising `doc` does not give back the stored bytes (or the server would change them); null when it does. */
  inexact: string | null;
}

const EXACT_VALUES = {promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true} as const;

const TYPE_DOCUMENT = 0x03;
const TYPE_ARRAY = 0x04;
const TYPE_UNDEFINED = 0x06;
const TYPE_DBPOINTER = 0x0c;
const TYPE_TIMESTAMP = 0x11;
const TYPE_OBJECT_ID = 0x07;

/**
 * mongod accepts a document of up to 16 MiB (BSONObjMaxUserSize); the driver refuses an insert of
 * exactly that size (it checks `>=`), so such a document goes as a command of its own.
 */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * mongod stores documents nested at most this deep: BSONDepth::getMaxDepthForUserStorage(), its
 * maxBSONDepth (200) less kExtraSystemDepthLevels (20) (src/mongo/bson/bson_depth.{h,cpp}); a deeper
 * insert fails with Overflow (15). The manual (reference/limits, "Nested Depth for BSON Documents")
 * supports 100 levels.
 */
export const MAX_STORED_DEPTH = 180;
/** Each level costs at least 7 bytes (type, an empty name's NUL, length, terminator): a shorter document cannot be too deep. */
const MIN_BYTES_TOO_DEEP = 7 * MAX_STORED_DEPTH;

/** Why mongod would refuse to store `raw` for its nesting, or null. */
export function tooDeepToStore(raw: Uint8Array): string | null {
  if (raw.length < MIN_BYTES_TOO_DEEP) return null;
  const depth = storedDepth(raw);
  if (depth <= MAX_STORED_DEPTH) return null;
  return `nested ${depth} levels: the server refuses to store a document deeper than ${MAX_STORED_DEPTH} (Overflow, code 15; MongoDB documents 100 levels as its limit)`;
}

type Element = readonly number[];

function nameOf(bytes: Uint8Array, el: Element): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + el[1]!, el[2]!).toString('utf8');
}

function sub(bytes: Uint8Array, el: Element): Uint8Array {
  return bytes.subarray(el[3]!, el[3]! + el[4]!);
}

/** Walks raw elements in stored order, taking each value from the full decode by name. */
function build(bytes: Uint8Array, decoded: Record<string, unknown>, problems: Set<string>, topLevel: boolean): ExactDoc {
  const out: ExactDoc = new Map();
  for (const el of BSON.onDemand.parseToElements(bytes) as Element[]) {
    const name = nameOf(bytes, el);
    if (out.has(name)) problems.add(`field name "${name}" appears twice (a driver cannot write a repeated name)`);
    out.set(name, valueOf(bytes, el, decoded[name], problems, topLevel));
  }
  return out;
}

function valueOf(bytes: Uint8Array, el: Element, decoded: unknown, problems: Set<string>, topLevel: boolean): unknown {
  const type = el[0]!;
  if (type === TYPE_DOCUMENT) {
    // A DBRef-shaped subdocument decodes to a DBRef; rebuilding it from its bytes keeps every field in order.
    return build(sub(bytes, el), plainFields(decoded), problems, false);
  }
  if (type === TYPE_ARRAY) return buildArray(sub(bytes, el), plainFields(decoded), problems);
  if (type === TYPE_UNDEFINED) problems.add('BSON undefined (deprecated) would be written as null');
  if (type === TYPE_DBPOINTER) problems.add('a DBPointer (deprecated) would be written as a DBRef');
  if (topLevel && type === TYPE_TIMESTAMP && isEmptyTimestamp(bytes, el)) {
    // https://www.mongodb.com/docs/manual/reference/bson-types/#timestamps
    problems.add('an empty Timestamp(0, 0) in a top-level field is replaced by the server with the current time on insert');
  }
  return decoded;
}

function buildArray(bytes: Uint8Array, decoded: Record<string, unknown>, problems: Set<string>): unknown[] {
  const out: unknown[] = [];
  for (const [i, el] of (BSON.onDemand.parseToElements(bytes) as Element[]).entries()) {
    const name = nameOf(bytes, el);
    if (name !== String(i)) problems.add(`an array stores index "${name}" at position ${i} (a driver writes 0, 1, 2, …)`);
    out.push(valueOf(bytes, el, decoded[name], problems, false));
  }
  return out;
}

/** The fields of a decoded subdocument or array, whatever class decoding gave it. */
function plainFields(decoded: unknown): Record<string, unknown> {
  if (decoded && typeof decoded === 'object') {
    const dbref = decoded as {_bsontype?: string; collection?: string; oid?: unknown; db?: string; fields?: Record<string, unknown>};
    if (dbref._bsontype === 'DBRef') return {$ref: dbref.collection, $id: dbref.oid, ...(dbref.db === undefined ? {} : {$db: dbref.db}), ...dbref.fields};
    return decoded as Record<string, unknown>;
  }
  return {};
}

function isEmptyTimestamp(bytes: Uint8Array, el: Element): boolean {
  const start = el[3]!;
  for (let i = start; i < start + 8; i++) if (bytes[i] !== 0) return false;
  return true;
}

/** The exact form of a raw document, and whether it writes back byte for byte. */
export function exactForm(raw: Uint8Array): ExactForm {
  const problems = new Set<string>();
  const decoded = BSON.deserialize(raw, EXACT_VALUES) as Record<string, unknown>;
  const doc = build(raw, decoded, problems, true);
  if (raw.length > MAX_DOCUMENT_BYTES) problems.add(`the document is ${raw.length} bytes, over the server's 16 MiB limit`);
  const deep = tooDeepToStore(raw);
  if (deep !== null) problems.add(deep);
  if (problems.size === 0 && Buffer.compare(Buffer.from(BSON.serialize(doc)), Buffer.from(raw.buffer, raw.byteOffset, raw.length)) !== 0) {
    problems.add('serialising it does not give back the stored bytes');
  }
  return {doc, inexact: problems.size > 0 ? [...problems].join('; ') : null};
}

/**
 * The form to hand the driver for a write, found the cheap way when it can be: a plain decode
 * (values as `bson` classes) whose serialisation is byte-identical to the stored document is itself
 * an exact form, and needs no `Map`s. Only when the bytes differ (integer-like keys, deprecated types,
 * …) is the document walked into `Map`s and the reason found. Measured on 20,000 documents of ~500 B:
 * 9 µs a document this way against 20 µs for the walk; the byte walk first answers for most of them.
 */
export function writeForm(raw: Uint8Array): {doc: ExactDoc | Record<string, unknown>; inexact: string | null} {
  const decoded = BSON.deserialize(raw, EXACT_VALUES) as Record<string, unknown>;
  if (tooDeepToStore(raw) !== null) return exactForm(raw);
  // Most documents are told plain-exact from their bytes alone (round-trip.ts), without serialising.
  if (roundTripsPlainly(raw)) return {doc: decoded, inexact: null};
  const again = BSON.serialize(decoded);
  if (again.length === raw.length && Buffer.compare(Buffer.from(again.buffer, again.byteOffset, again.length), Buffer.from(raw.buffer, raw.byteOffset, raw.length)) === 0 && !hasEmptyTopLevelTimestamp(raw)) {
    return {doc: decoded, inexact: null};
  }
  return exactForm(raw);
}

/**
 * The plain decode of a document `writeForm` already found to serialise back to its bytes through
 * a plain decode (it is a function of the bytes): the push that planned it does not check twice.
 */
export function plainForm(raw: Uint8Array): Record<string, unknown> {
  return BSON.deserialize(raw, EXACT_VALUES) as Record<string, unknown>;
}

function hasEmptyTopLevelTimestamp(raw: Uint8Array): boolean {
  for (const el of BSON.onDemand.parseToElements(raw) as Element[]) if (el[0] === TYPE_TIMESTAMP && isEmptyTimestamp(raw, el)) return true;
  return false;
}

/**
 * The 12 bytes of a leading ObjectId `_id` (mongodump writes `_id` first, and it is most often an
 * ObjectId), as a view of `raw`; null for any other layout.
 */
export function leadingObjectId(raw: Uint8Array): Buffer | null {
  if (raw.length >= 21 && raw[4] === TYPE_OBJECT_ID && raw[5] === 0x5f && raw[6] === 0x69 && raw[7] === 0x64 && raw[8] === 0) {
    return Buffer.from(raw.buffer, raw.byteOffset + 9, 12);
  }
  return null;
}

/** The `_id` of a raw document in exact form (subdocuments as `Map`s, in stored order). */
export function exactId(raw: Uint8Array): unknown {
  const oid = leadingObjectId(raw);
  if (oid) return new ObjectId(oid);
  const els = BSON.onDemand.parseToElements(raw) as Element[];
  for (const el of els) {
    if (nameOf(raw, el) !== '_id') continue;
    const one = Buffer.concat([Buffer.from([el[0]!]), Buffer.from('_id\0', 'utf8'), Buffer.from(sub(raw, el))]);
    const wrapper = Buffer.alloc(one.length + 5);
    wrapper.writeInt32LE(wrapper.length, 0);
    one.copy(wrapper, 4);
    return exactForm(wrapper).doc.get('_id');
  }
  return undefined;
}

/** Serialise an exact form (or any document) to BSON. */
export function toBytes(doc: ExactDoc | Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

function isMap(value: unknown): value is Map<string, unknown> {
  return value instanceof Map;
}

/**
 * Canonical Extended JSON text of a value, keeping field order: what plans and journals store for
 * an `_id`. `EJSON.stringify` would go through objects and reorder integer-like keys.
 */
export function orderedJson(value: unknown): string {
  if (isMap(value)) return `{${[...value].map(([k, v]) => `${JSON.stringify(k)}:${orderedJson(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(orderedJson).join(',')}]`;
  return EJSON.stringify(value as Document, {relaxed: false});
}

/** Parses `orderedJson` text back to the exact form: objects as `Map`s, Extended JSON wrappers as `bson` values. */
export function parseOrderedJson(text: string): unknown {
  const parser = new OrderedJsonParser(text);
  const value = parser.value();
  parser.end();
  return fromJsonValue(value);
}

const EJSON_WRAPPERS = new Set([
  '$oid', '$numberInt', '$numberLong', '$numberDouble', '$numberDecimal', '$date', '$binary', '$uuid', '$regularExpression',
  '$timestamp', '$minKey', '$maxKey', '$symbol', '$code', '$undefined', '$dbPointer',
]);

function fromJsonValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJsonValue);
  if (!isMap(value)) return value;
  const first = value.keys().next().value;
  if (first !== undefined && EJSON_WRAPPERS.has(first)) {
    // Wrapper keys are fixed names, never integer-like: an object keeps them as written.
    return EJSON.deserialize({v: toPlain(value)}, {relaxed: false}).v;
  }
  const out: ExactDoc = new Map();
  for (const [k, v] of value) out.set(k, fromJsonValue(v));
  return out;
}

function toPlain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toPlain);
  if (!isMap(value)) return value;
  return Object.fromEntries([...value].map(([k, v]) => [k, toPlain(v)]));
}

/** A minimal JSON parser whose objects are `Map`s, so key order survives. */
class OrderedJsonParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  end(): void {
    this.skip();
    if (this.pos !== this.text.length) this.fail('unexpected text after the value');
  }

  value(): unknown {
    this.skip();
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(this.text.slice(this.pos));
    if (!m) this.fail('unexpected character');
    this.pos += m![0].length;
    return JSON.parse(m![0]) as unknown;
  }

  private object(): Map<string, unknown> {
    const out = new Map<string, unknown>();
    this.pos++;
    this.skip();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skip();
      const key = this.string();
      this.skip();
      this.expect(':');
      out.set(key, this.value());
      this.skip();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect('}');
      return out;
    }
  }

  private array(): unknown[] {
    const out: unknown[] = [];
    this.pos++;
    this.skip();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skip();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect(']');
      return out;
    }
  }

  private string(): string {
    if (this.text[this.pos] !== '"') this.fail('expected a string');
    let i = this.pos + 1;
    while (i < this.text.length && this.text[i] !== '"') i += this.text[i] === '\\' ? 2 : 1;
    if (i >= this.text.length) this.fail('unterminated string');
    const s = JSON.parse(this.text.slice(this.pos, i + 1)) as string;
    this.pos = i + 1;
    return s;
  }

  private expect(c: string): void {
    if (this.text[this.pos] !== c) this.fail(`expected "${c}"`);
    this.pos++;
  }

  private skip(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private fail(what: string): never {
    throw new SyntaxError(`Invalid id text at ${this.pos}: ${what}`);
  }
}
