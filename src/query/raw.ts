/**
 * Walks the top-level element list of one raw BSON document by hand and copies out only the
 * elements whose names are wanted, framed as a small BSON document that bson then decodes.
 * Written by hand because it is the hot path: it skips unwanted values by their size without
 * decoding names to strings (bson's onDemand.parseToElements builds a tuple per element).
 */
import {BSON, type Document} from 'bson';

/**
 * Index of the NUL ending a cstring, or -1. A JS loop: names are short, and a native
 * `Buffer.indexOf` call per element cost more than the scan itself.
 */
function cstringEnd(doc: Buffer, from: number): number {
  for (let i = from; i < doc.length; i++) if (doc[i] === 0) return i;
  return -1;
}

/** Size in bytes of the value of an element of `type` starting at `at`, or -1 if unknown. */
function valueSize(doc: Buffer, type: number, at: number): number {
  switch (type) {
    case 0x01: // double
    case 0x09: // date
    case 0x11: // timestamp
    case 0x12: // int64
      return 8;
    case 0x02: // string
    case 0x0d: // code
    case 0x0e: // symbol
      return 4 + doc.readInt32LE(at);
    case 0x03: // document
    case 0x04: // array
    case 0x0f: // code with scope
      return doc.readInt32LE(at);
    case 0x05: // binary
      return 5 + doc.readInt32LE(at);
    case 0x06: // undefined
    case 0x0a: // null
    case 0xff: // min key
    case 0x7f: // max key
      return 0;
    case 0x07: // ObjectId
      return 12;
    case 0x08: // bool
      return 1;
    case 0x0b: {
      // regex: two cstrings
      const end = cstringEnd(doc, cstringEnd(doc, at) + 1);
      return end < 0 ? -1 : end - at + 1;
    }
    case 0x0c: // DBPointer
      return 4 + doc.readInt32LE(at) + 12;
    case 0x10: // int32
      return 4;
    case 0x13: // decimal128
      return 16;
    default:
      return -1;
  }
}

export class FieldPicker {
  private readonly names: Buffer[];
  private readonly firstBytes: Uint8Array;

  constructor(fields: string[]) {
    this.names = fields.map((f) => Buffer.from(f, 'utf8'));
    this.firstBytes = new Uint8Array(256);
    for (const n of this.names) this.firstBytes[n.length > 0 ? n[0] : 0] = 1;
  }

  private wanted(doc: Buffer, start: number, end: number): boolean {
    if (this.firstBytes[doc[start]] === 0 && !(start === end && this.firstBytes[0] === 1)) return false;
    const len = end - start;
    for (const n of this.names) {
      if (n.length !== len) continue;
      let i = 0;
      while (i < len && n[i] === doc[start + i]) i++;
      if (i === len) return true;
    }
    return false;
  }

  /**
   * Decodes only the wanted top-level fields. Repeated names are kept in document order so the
   * result is what a full decode would give for them. Returns null if the document is malformed
   * (the caller then decodes it fully, which throws bson's own error).
   */
  pick(doc: Buffer): Document | null {
    const total = doc.readInt32LE(0);
    if (total > doc.length || total < 5) return null;
    const ranges: number[] = [];
    let size = 5;
    let pos = 4;
    const last = total - 1;
    while (pos < last) {
      const type = doc[pos];
      const nameStart = pos + 1;
      const nameEnd = cstringEnd(doc, nameStart);
      if (nameEnd < 0 || nameEnd >= last) return null;
      const valueStart = nameEnd + 1;
      const vsize = valueSize(doc, type, valueStart);
      if (vsize < 0) return null;
      const next = valueStart + vsize;
      if (next > last) return null;
      if (this.wanted(doc, nameStart, nameEnd)) {
        ranges.push(pos, next);
        size += next - pos;
      }
      pos = next;
    }
    if (ranges.length === 0) return {};
    const out = Buffer.allocUnsafe(size);
    out.writeInt32LE(size, 0);
    let at = 4;
    for (let i = 0; i < ranges.length; i += 2) at += doc.copy(out, at, ranges[i], ranges[i + 1]);
    out[at] = 0;
    return BSON.deserialize(out);
  }
}
