/**
 * An order-preserving view of raw BSON: every value keeps its type byte and value bytes, documents
 * keep their fields in stored order (JavaScript objects would put "2020" before "b"), so matching,
 * index keys and replies see exactly what was sent.
 */
import {serialize} from 'bson';

export const BT = {
  DOUBLE: 0x01,
  STRING: 0x02,
  DOC: 0x03,
  ARRAY: 0x04,
  BINARY: 0x05,
  UNDEFINED: 0x06,
  OID: 0x07,
  BOOL: 0x08,
  DATE: 0x09,
  NULL: 0x0a,
  REGEX: 0x0b,
  DBPOINTER: 0x0c,
  CODE: 0x0d,
  SYMBOL: 0x0e,
  CODE_W_SCOPE: 0x0f,
  INT32: 0x10,
  TIMESTAMP: 0x11,
  INT64: 0x12,
  DECIMAL: 0x13,
  MINKEY: 0xff,
  MAXKEY: 0x7f,
} as const;

/** A scalar: its BSON type and the bytes of its value (no name). */
export class BVal {
  constructor(
    readonly type: number,
    readonly bytes: Buffer,
  ) {}
}

/** A document in stored field order. `get` answers the first field of a name, as mongod does. */
export class BDoc {
  readonly type = BT.DOC;
  private index: Map<string, Value> | undefined;

  constructor(
    readonly entries: ReadonlyArray<readonly [string, Value]>,
    readonly bytes: Buffer,
  ) {}

  static fromEntries(entries: ReadonlyArray<readonly [string, Value]>): BDoc {
    return new BDoc(entries, encodeEntries(entries));
  }

  get(name: string): Value | undefined {
    if (this.entries.length < 8) {
      for (const [k, v] of this.entries) if (k === name) return v;
      return undefined;
    }
    if (!this.index) {
      this.index = new Map();
      for (const [k, v] of this.entries) if (!this.index.has(k)) this.index.set(k, v);
    }
    return this.index.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  keys(): string[] {
    return this.entries.map(([k]) => k);
  }
}

export class BArr {
  readonly type = BT.ARRAY;

  constructor(
    readonly items: readonly Value[],
    readonly bytes: Buffer,
  ) {}

  static fromItems(items: readonly Value[]): BArr {
    return new BArr(items, encodeEntries(items.map((v, i) => [String(i), v] as const)));
  }
}

export type Value = BVal | BDoc | BArr;

function cstringEnd(buf: Buffer, pos: number): number {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new Error('unterminated cstring in BSON');
  return end;
}

/** Length of the value that starts at `pos`. */
function valueLength(buf: Buffer, type: number, pos: number): number {
  switch (type) {
    case BT.DOUBLE:
    case BT.DATE:
    case BT.TIMESTAMP:
    case BT.INT64:
      return 8;
    case BT.STRING:
    case BT.CODE:
    case BT.SYMBOL:
      return 4 + buf.readInt32LE(pos);
    case BT.DOC:
    case BT.ARRAY:
    case BT.CODE_W_SCOPE:
      return buf.readInt32LE(pos);
    case BT.BINARY:
      return 5 + buf.readInt32LE(pos);
    case BT.UNDEFINED:
    case BT.NULL:
    case BT.MINKEY:
    case BT.MAXKEY:
      return 0;
    case BT.OID:
      return 12;
    case BT.BOOL:
      return 1;
    case BT.REGEX: {
      const p = cstringEnd(buf, pos);
      return cstringEnd(buf, p + 1) + 1 - pos;
    }
    case BT.DBPOINTER:
      return 4 + buf.readInt32LE(pos) + 12;
    case BT.INT32:
      return 4;
    case BT.DECIMAL:
      return 16;
    default:
      throw new Error(`unknown BSON type 0x${type.toString(16)}`);
  }
}

/** Top-level elements of a document as byte offsets, without decoding any value. */
export function* topLevel(bytes: Buffer): Generator<{type: number; name: string; start: number; valueStart: number; end: number}> {
  const end = bytes.readInt32LE(0) - 1;
  let pos = 4;
  while (pos < end) {
    const type = bytes[pos]!;
    const nameEnd = cstringEnd(bytes, pos + 1);
    const at = nameEnd + 1;
    const next = at + valueLength(bytes, type, at);
    yield {type, name: bytes.toString('utf8', pos + 1, nameEnd), start: pos, valueStart: at, end: next};
    pos = next;
  }
}

function parseEntries(bytes: Buffer): Array<[string, Value]> {
  const out: Array<[string, Value]> = [];
  const end = bytes.readInt32LE(0) - 1;
  let pos = 4;
  while (pos < end) {
    const type = bytes[pos]!;
    const nameEnd = cstringEnd(bytes, pos + 1);
    const name = bytes.toString('utf8', pos + 1, nameEnd);
    const at = nameEnd + 1;
    const len = valueLength(bytes, type, at);
    out.push([name, valueFrom(type, bytes.subarray(at, at + len))]);
    pos = at + len;
  }
  return out;
}

export function valueFrom(type: number, bytes: Buffer): Value {
  if (type === BT.DOC) return new BDoc(parseEntries(bytes), bytes);
  if (type === BT.ARRAY) return new BArr(parseEntries(bytes).map(([, v]) => v), bytes);
  return new BVal(type, bytes);
}

/** Parses a whole BSON document (the bytes are shared, not copied). */
export function parseDoc(bytes: Uint8Array): BDoc {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return new BDoc(parseEntries(buf), buf.subarray(0, buf.readInt32LE(0)));
}

export function elementBytes(name: string, v: Value): Buffer {
  return Buffer.concat([Buffer.of(v.type), Buffer.from(name, 'utf8'), Buffer.of(0), v.bytes]);
}

export function encodeEntries(entries: ReadonlyArray<readonly [string, Value]>): Buffer {
  const parts = entries.map(([k, v]) => elementBytes(k, v));
  const len = 5 + parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(len);
  out.writeInt32LE(len, 0);
  let pos = 4;
  for (const p of parts) {
    p.copy(out, pos);
    pos += p.length;
  }
  out[pos] = 0;
  return out;
}

/** A tree value for a JavaScript/bson value, through bson's own encoder. */
export function toValue(v: unknown): Value {
  const doc = parseDoc(Buffer.from(serialize({v}, {ignoreUndefined: false})));
  return doc.entries[0]![1];
}

export const NULL_VALUE = new BVal(BT.NULL, Buffer.alloc(0));

export function isNumberType(type: number): boolean {
  return type === BT.DOUBLE || type === BT.INT32 || type === BT.INT64 || type === BT.DECIMAL;
}

/** The text of a string, symbol or code value. */
export function stringOf(v: BVal): string {
  return v.bytes.toString('utf8', 4, v.bytes.length - 1);
}

export function regexParts(v: BVal): {pattern: string; flags: string} {
  const p = v.bytes.indexOf(0);
  return {pattern: v.bytes.toString('utf8', 0, p), flags: v.bytes.toString('utf8', p + 1, v.bytes.length - 1)};
}
