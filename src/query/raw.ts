/**
 * Decodes only what a filter reads from one raw BSON document. Written by hand because it is the
 * hot path: it skips unwanted values by their size without decoding names to strings, reads common
 * scalars in place and descends into subdocuments only along the filter's paths. On the same data
 * and load (bench/query-matcher.ts) walking + decoding the needed values this way ran at 163 MB/s,
 * while bson's onDemand.parseToElements walk alone (plus name decoding) ran at 134 MB/s.
 */
import {isUtf8} from 'node:buffer';

import {BSON, ObjectId} from 'bson';

import {canonical} from './values.js';

/**
 * Index of the NUL ending a cstring, or -1. A JS loop: names are short, and a native
 * `Buffer.indexOf` call per element cost more than the scan itself.
 */
function cstringEnd(doc: Buffer, from: number): number {
  for (let i = from; i < doc.length; i++) if (doc[i] === 0) return i;
  return -1;
}

/** Size in bytes of the value of an element of `type` starting at `at`, or -1 if unknown. */
export function valueSize(doc: Buffer, type: number, at: number): number {
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

/** Values the picker decodes itself; everything else goes to bson in one batch. */
function decodeScalar(doc: Buffer, type: number, at: number, size: number): unknown {
  switch (type) {
    case 0x01:
      return doc.readDoubleLE(at);
    case 0x02:
      // Invalid UTF-8 goes to bson, which rejects it as a full decode would.
      return isUtf8(doc.subarray(at + 4, at + size - 1)) ? doc.toString('utf8', at + 4, at + size - 1) : NOT_SCALAR;
    case 0x07:
      return new ObjectId(doc.subarray(at, at + 12));
    case 0x08:
      return doc[at] === 1;
    case 0x09:
      return new Date(Number(doc.readBigInt64LE(at)));
    case 0x0a:
      return null;
    case 0x10:
      return doc.readInt32LE(at);
    case 0x12:
      return doc.readBigInt64LE(at);
    default:
      return NOT_SCALAR;
  }
}

const NOT_SCALAR = Symbol('not scalar');

/** One level of the paths a filter reads: a child is null when its whole value is needed. */
class PathNode {
  readonly fields: string[] = [];
  readonly names: Buffer[] = [];
  readonly children: (PathNode | null)[] = [];
  readonly firstBytes = new Uint8Array(256);

  add(parts: string[]): void {
    const [head, ...rest] = parts;
    let k = this.fields.indexOf(head);
    if (k < 0) {
      k = this.fields.length;
      this.fields.push(head);
      const name = Buffer.from(head, 'utf8');
      this.names.push(name);
      this.firstBytes[name.length > 0 ? name[0] : 0] = 1;
      this.children.push(rest.length === 0 ? null : new PathNode());
    }
    const child = this.children[k];
    if (child === null) return;
    if (rest.length === 0) this.children[k] = null;
    else child.add(rest);
  }

  /** Index of the field named by doc[start, end), or -1. */
  find(doc: Buffer, start: number, end: number): number {
    if (this.firstBytes[doc[start]] === 0) return -1;
    const len = end - start;
    for (let k = 0; k < this.names.length; k++) {
      const n = this.names[k];
      if (n.length !== len) continue;
      let i = 0;
      while (i < len && n[i] === doc[start + i]) i++;
      if (i === len) return k;
    }
    return -1;
  }
}

/**
 * Decodes only what a filter reads from one raw BSON document, already in canonical form
 * (see values.ts). For a dotted path through a subdocument only the named subfields are decoded;
 * a field read whole, an array, or a field of another type is decoded whole. Common scalars are
 * read in place; the rest of one level is framed as one small BSON document and decoded by bson in
 * a single call. Repeated names resolve as in a full decode (the last one wins).
 */
export class FieldPicker {
  private readonly root = new PathNode();

  /** `paths` are the dotted paths the filter reads. */
  constructor(paths: string[]) {
    for (const p of paths) this.root.add(p.split('.'));
  }

  /** Returns null if the document is malformed (the caller then decodes it fully, which throws bson's error). */
  pick(doc: Buffer): Record<string, unknown> | null {
    if (doc.length < 5) return null;
    const total = doc.readInt32LE(0);
    if (total > doc.length || total < 5) return null;
    return pickLevel(doc, 0, total, this.root);
  }
}

function pickLevel(doc: Buffer, start: number, total: number, node: PathNode): Record<string, unknown> | null {
  const out: Record<string, unknown> = {};
  let ranges: number[] | null = null;
  // Names whose last occurrence so far went to bson: a repeated name ends with its last value.
  let batchedLast: Set<string> | null = null;
  let size = 5;
  let pos = start + 4;
  const last = start + total - 1;
  if (doc[last] !== 0) return null;
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
    const k = node.find(doc, nameStart, nameEnd);
    if (k >= 0) {
      const name = node.fields[k];
      const child = node.children[k];
      let v: unknown;
      if (child !== null && type === 0x03) {
        v = pickLevel(doc, valueStart, vsize, child);
        if (v === null) return null;
      } else {
        v = decodeScalar(doc, type, valueStart, vsize);
      }
      if (v === NOT_SCALAR) {
        (ranges ??= []).push(pos, next);
        size += next - pos;
        (batchedLast ??= new Set()).add(name);
      } else {
        out[name] = type === 0x03 ? v : canonical(v);
        batchedLast?.delete(name);
      }
    }
    pos = next;
  }
  if (ranges === null || batchedLast === null) return out;
  const framed = Buffer.allocUnsafe(size);
  framed.writeInt32LE(size, 0);
  let at = 4;
  for (let i = 0; i < ranges.length; i += 2) at += doc.copy(framed, at, ranges[i], ranges[i + 1]);
  framed[at] = 0;
  // Regex values stay BSON regexes: a PCRE-only pattern is not a JavaScript RegExp, and only its text counts.
  const batched = BSON.deserialize(framed, {bsonRegExp: true}) as Record<string, unknown>;
  for (const name of batchedLast) out[name] = canonical(batched[name]);
  return out;
}
