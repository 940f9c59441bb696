/**
 * A walker over raw BSON elements. Replay works on element bytes, never on decoded objects: decoding
 * moves integer-like keys first and can change numeric types (OPLOG.md §9), and mongod keeps every
 * value's bytes as stored. Names are kept as byte strings (latin1, one char per byte) so matching a
 * diff's field name against a document's is exact even for names that are not valid UTF-8.
 *
 * Value sizes per type: https://bsonspec.org/spec.html
 */

export const T_DOUBLE = 0x01;
export const T_STRING = 0x02;
export const T_DOCUMENT = 0x03;
export const T_ARRAY = 0x04;
export const T_BINARY = 0x05;
export const T_OBJECT_ID = 0x07;
export const T_BOOL = 0x08;
export const T_DATE = 0x09;
export const T_NULL = 0x0a;
export const T_INT32 = 0x10;
export const T_TIMESTAMP = 0x11;
export const T_INT64 = 0x12;
export const T_DECIMAL = 0x13;

/** BSON that cannot be walked: the caller adds what it was reading. */
export class MalformedBson extends Error {}

/** One element of a document: offsets into `doc`, its name read only when asked for. */
export class RawElement {
  private name: string | undefined;

  constructor(
    readonly doc: Buffer,
    readonly type: number,
    /** Offset of the type byte. */
    readonly start: number,
    /** Offset of the name's terminating NUL. */
    readonly nameEnd: number,
    /** Offset just past the value. */
    readonly end: number,
  ) {}

  /** Offset of the value (after the name's NUL). */
  get valueStart(): number {
    return this.nameEnd + 1;
  }

  /** The name's length in bytes: lets a lookup skip names that cannot match without reading them. */
  get nameLength(): number {
    return this.nameEnd - this.start - 1;
  }

  /** The field name's bytes as a latin1 string. */
  get key(): string {
    if (this.name === undefined) this.name = nameKey(this.doc, this.start + 1, this.nameEnd);
    return this.name;
  }
}

function int32At(buf: Buffer, at: number, end: number): number {
  if (at + 4 > end) throw new MalformedBson(`length at byte ${at} runs past the end`);
  return buf.readInt32LE(at);
}

function cstringEnd(buf: Buffer, at: number, end: number): number {
  const nul = buf.indexOf(0, at);
  if (nul < 0 || nul >= end) throw new MalformedBson(`name at byte ${at} has no terminating NUL`);
  return nul;
}

function valueEnd(buf: Buffer, type: number, at: number, end: number): number {
  let size: number;
  switch (type) {
    case T_DOUBLE:
    case T_DATE:
    case T_TIMESTAMP:
    case T_INT64:
      size = 8;
      break;
    case T_STRING:
    case 0x0d: // JavaScript code
    case 0x0e: {
      // symbol
      const n = int32At(buf, at, end);
      if (n < 1) throw new MalformedBson(`string length ${n} at byte ${at}`);
      size = 4 + n;
      break;
    }
    case T_DOCUMENT:
    case T_ARRAY:
    case 0x0f: {
      // code with scope
      const n = int32At(buf, at, end);
      if (n < 5) throw new MalformedBson(`document length ${n} at byte ${at}`);
      size = n;
      break;
    }
    case T_BINARY: {
      const n = int32At(buf, at, end);
      if (n < 0) throw new MalformedBson(`binary length ${n} at byte ${at}`);
      size = 5 + n;
      break;
    }
    case 0x06: // undefined
    case T_NULL:
    case 0xff: // min key
    case 0x7f: // max key
      size = 0;
      break;
    case T_OBJECT_ID:
      size = 12;
      break;
    case T_BOOL:
      size = 1;
      break;
    case 0x0b: {
      // regex: two C strings
      const first = cstringEnd(buf, at, end);
      return cstringEnd(buf, first + 1, end) + 1;
    }
    case 0x0c: {
      // DBPointer: string then 12-byte ObjectId
      const n = int32At(buf, at, end);
      if (n < 1) throw new MalformedBson(`string length ${n} at byte ${at}`);
      size = 4 + n + 12;
      break;
    }
    case T_INT32:
      size = 4;
      break;
    case T_DECIMAL:
      size = 16;
      break;
    default:
      throw new MalformedBson(`unknown BSON type 0x${type.toString(16)} at byte ${at}`);
  }
  if (at + size > end) throw new MalformedBson(`value at byte ${at} runs past its document`);
  return at + size;
}

/** A name's bytes as a latin1 string; short names without a native call (twice as fast for the usual 1–12 bytes). */
function nameKey(doc: Buffer, from: number, to: number): string {
  const n = to - from;
  if (n === 1) return String.fromCharCode(doc[from]!);
  if (n === 2) return String.fromCharCode(doc[from]!, doc[from + 1]!);
  if (n > 12) return doc.toString('latin1', from, to);
  let key = '';
  for (let at = from; at < to; at++) key += String.fromCharCode(doc[at]!);
  return key;
}

/** The elements of a document (or array) in stored order; its framing is checked. */
export function elements(doc: Buffer): RawElement[] {
  if (doc.length < 5) throw new MalformedBson(`a document of ${doc.length} bytes`);
  const total = doc.readInt32LE(0);
  if (total !== doc.length) throw new MalformedBson(`document length ${total} where ${doc.length} bytes are given`);
  if (doc[total - 1] !== 0) throw new MalformedBson('document does not end with NUL');
  const out: RawElement[] = [];
  const last = total - 1;
  let at = 4;
  while (at < last) {
    const type = doc[at]!;
    const nameEnd = cstringEnd(doc, at + 1, last);
    const valueStart = nameEnd + 1;
    const end = valueEnd(doc, type, valueStart, last);
    out.push(new RawElement(doc, type, at, nameEnd, end));
    at = end;
  }
  return out;
}

export function findElement(doc: Buffer, key: string): RawElement | undefined {
  for (const el of elements(doc)) if (el.key === key) return el;
  return undefined;
}

/** The whole element: type byte, name, value. */
export function elementBytes(doc: Buffer, el: RawElement): Buffer {
  return doc.subarray(el.start, el.end);
}

export function valueBytes(doc: Buffer, el: RawElement): Buffer {
  return doc.subarray(el.valueStart, el.end);
}

/** A sub-document's or array's own bytes (a view, not a copy). */
export function embedded(doc: Buffer, el: RawElement): Buffer {
  return doc.subarray(el.valueStart, el.end);
}

export function isDocumentLike(el: RawElement): boolean {
  return el.type === T_DOCUMENT || el.type === T_ARRAY;
}

/** One element from a name (latin1 byte string) and a value's bytes. */
export function makeElement(type: number, key: string, value: Buffer): Buffer {
  const name = Buffer.from(key, 'latin1');
  const out = Buffer.allocUnsafe(1 + name.length + 1 + value.length);
  out[0] = type;
  name.copy(out, 1);
  out[1 + name.length] = 0;
  value.copy(out, 2 + name.length);
  return out;
}

/** The same element under another name (array elements are renumbered this way). */
export function renamed(doc: Buffer, el: RawElement, key: string): Buffer {
  return makeElement(el.type, key, valueBytes(doc, el));
}

/** A document from whole elements, in the order given. */
export function makeDocument(parts: Buffer[]): Buffer {
  let size = 5;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(size);
  out.writeInt32LE(size, 0);
  let at = 4;
  for (const p of parts) {
    p.copy(out, at);
    at += p.length;
  }
  out[at] = 0;
  return out;
}

/** A byte-string key as text, for messages and field paths. */
export function keyText(key: string): string {
  // ASCII reads the same in latin1 and UTF-8.
  return ASCII.test(key) ? key : Buffer.from(key, 'latin1').toString('utf8');
}

const ASCII = /^[\x20-\x7e]*$/;

/** A key given as text, as a byte string. */
export function textKey(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

export function readString(doc: Buffer, el: RawElement): string | undefined {
  if (el.type !== T_STRING) return undefined;
  return doc.toString('utf8', el.valueStart + 4, el.end - 1);
}

export function readBool(doc: Buffer, el: RawElement): boolean | undefined {
  return el.type === T_BOOL ? doc[el.valueStart] !== 0 : undefined;
}

/** A number of any numeric type (Int64 beyond 2^53 loses precision: used for small counters only). */
export function readNumber(doc: Buffer, el: RawElement): number | undefined {
  switch (el.type) {
    case T_INT32:
      return doc.readInt32LE(el.valueStart);
    case T_INT64:
      return Number(doc.readBigInt64LE(el.valueStart));
    case T_DOUBLE:
      return doc.readDoubleLE(el.valueStart);
    default:
      return undefined;
  }
}

/** Truthy as mongod reads a flag (`{partialTxn: true}`, `{prepare: true}`): true, or a non-zero number. */
export function readFlag(doc: Buffer, el: RawElement | undefined): boolean {
  if (!el) return false;
  const b = readBool(doc, el);
  if (b !== undefined) return b;
  const n = readNumber(doc, el);
  return n !== undefined && n !== 0;
}

export function readTimestamp(doc: Buffer, el: RawElement): {t: number; i: number} | undefined {
  if (el.type !== T_TIMESTAMP) return undefined;
  return {i: doc.readUInt32LE(el.valueStart), t: doc.readUInt32LE(el.valueStart + 4)};
}

/**
 * Builds a document from byte ranges of other buffers, copying once at the end; ranges that follow
 * each other in one source (a run of untouched fields) are merged into one copy.
 */
export class DocumentBuilder {
  private readonly sources: Buffer[] = [];
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private size = 5;

  range(source: Buffer, start: number, end: number): void {
    const last = this.sources.length - 1;
    if (last >= 0 && this.sources[last] === source && this.ends[last] === start) {
      this.ends[last] = end;
    } else {
      this.sources.push(source);
      this.starts.push(start);
      this.ends.push(end);
    }
    this.size += end - start;
  }

  /** A whole element of `doc`, as stored. */
  element(doc: Buffer, el: RawElement): void {
    this.range(doc, el.start, el.end);
  }

  bytes(part: Buffer): void {
    this.range(part, 0, part.length);
  }

  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.size);
    out.writeInt32LE(this.size, 0);
    let at = 4;
    for (let n = 0; n < this.sources.length; n++) {
      at += this.sources[n]!.copy(out, at, this.starts[n], this.ends[n]);
    }
    out[at] = 0;
    return out;
  }
}
