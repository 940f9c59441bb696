/**
 * Structural BSON validation, cheap enough for every document a reader hands on: element headers
 * and lengths are walked (nested documents and arrays too, without recursion), values are not
 * decoded. A document that passes can be split, skipped through and decoded by any reader without
 * reading outside it; it says nothing about UTF-8 or what a value means.
 */
import {BSON, EJSON} from 'bson';

import {GravityError} from '../errors.js';

/**
 * No MongoDB server holds a document nested deeper than this: mongod's `maxBSONDepth` parameter is
 * at most 250 (BSONDepth::kBSONDepthParameterCeiling in src/mongo/bson/bson_depth.h), and a BSON
 * object deeper than it is invalid for the server. Deeper input is refused before any recursive
 * code (a decoder, a matcher) meets it.
 */
export const MAX_BSON_DEPTH = 250;

export interface BsonProblem {
  /** Offset of the offending byte from the start of the document. */
  at: number;
  what: string;
  /** Set when the problem is the nesting depth, not the bytes. */
  tooDeep?: boolean;
}

const FIXED = new Int8Array(256).fill(-1);
FIXED[0x01] = 8; // double
FIXED[0x06] = 0; // undefined
FIXED[0x07] = 12; // ObjectId
FIXED[0x08] = 1; // boolean
FIXED[0x09] = 8; // UTC datetime
FIXED[0x0a] = 0; // null
FIXED[0x10] = 4; // int32
FIXED[0x11] = 8; // timestamp
FIXED[0x12] = 8; // int64
FIXED[0x13] = 16; // decimal128
FIXED[0xff] = 0; // MinKey
FIXED[0x7f] = 0; // MaxKey

/** The end of a string value (int32 length, bytes, NUL) starting at `p`, or -1 when it does not fit before `limit`. */
function stringEnd(buf: Buffer, p: number, limit: number): number {
  if (p + 4 > limit) return -1;
  const size = buf.readInt32LE(p);
  if (size < 1 || p + 4 + size > limit || buf[p + 4 + size - 1] !== 0) return -1;
  return p + 4 + size;
}

/** The end of a cstring starting at `p` (past its NUL), or -1 when no NUL comes before `limit`. */
function cstringEnd(buf: Buffer, p: number, limit: number): number {
  while (p < limit) {
    if (buf[p] === 0) return p + 1;
    p++;
  }
  return -1;
}

/**
 * The first structural problem of the document at [start, end) of `buf`, or null. `end - start`
 * must already be the document's own length prefix (the splitters check that).
 */
/** Ends of the documents being walked, innermost last: one stack for every call, so a check allocates nothing. */
const ENDS = new Float64Array(MAX_BSON_DEPTH + 1);

export function bsonProblem(buf: Buffer, start: number, end: number, maxDepth = MAX_BSON_DEPTH): BsonProblem | null {
  // An explicit stack, so depth costs no call frames.
  const ends = ENDS;
  const most = Math.min(maxDepth, MAX_BSON_DEPTH);
  let depth = 1;
  ends[0] = end;
  let p = start + 4;
  let limit = end - 1; // where the current document's terminating NUL lies
  if (buf[limit] !== 0) return {at: limit - start, what: 'the document does not end with a NUL byte'};
  for (;;) {
    if (p >= limit) {
      if (p > limit) return {at: limit - start, what: 'an element runs past the end of its document'};
      // The terminator of this (sub)document.
      depth--;
      if (depth === 0) return null;
      p = limit + 1;
      limit = ends[depth - 1]! - 1;
      continue;
    }
    const type = buf[p]!;
    const name = cstringEnd(buf, p + 1, limit);
    if (name < 0) return {at: p - start, what: 'a field name without its terminating NUL'};
    const fixed = FIXED[type]!;
    if (fixed >= 0) {
      if (type === 0x08 && name < limit && buf[name]! > 1) return {at: name - start, what: `a boolean byte 0x${buf[name]!.toString(16)}`};
      p = name + fixed;
      continue;
    }
    switch (type) {
      case 0x02: // string
      case 0x0d: // JavaScript code
      case 0x0e: {
        // symbol
        const next = stringEnd(buf, name, limit);
        if (next < 0) return {at: name - start, what: 'a string whose length or terminating NUL is wrong'};
        p = next;
        break;
      }
      case 0x03: // embedded document
      case 0x04: {
        // array
        if (name + 5 > limit) return {at: name - start, what: 'an embedded document past the end of its parent'};
        const size = buf.readInt32LE(name);
        if (size < 5 || name + size > limit) return {at: name - start, what: `an embedded document length ${size} that does not fit its parent`};
        if (buf[name + size - 1] !== 0) return {at: name + size - 1 - start, what: 'an embedded document that does not end with a NUL byte'};
        if (depth >= most) return {at: name - start, what: `nesting deeper than ${most} levels`, tooDeep: true};
        ends[depth++] = name + size;
        limit = name + size - 1;
        p = name + 4;
        break;
      }
      case 0x05: {
        // binary: int32 length, subtype, bytes
        if (name + 5 > limit) return {at: name - start, what: 'a binary value past the end of its document'};
        const size = buf.readInt32LE(name);
        if (size < 0 || name + 5 + size > limit) return {at: name - start, what: `a binary length ${size} that does not fit its document`};
        // The old binary subtype 0x02 repeats its length inside: decoders trust that one.
        if (buf[name + 4] === 0x02 && (size < 4 || buf.readInt32LE(name + 5) !== size - 4)) return {at: name - start, what: 'an old binary (subtype 2) whose inner length is wrong'};
        p = name + 5 + size;
        break;
      }
      case 0x0b: {
        // regular expression: pattern and options, two cstrings
        const pattern = cstringEnd(buf, name, limit);
        const options = pattern < 0 ? -1 : cstringEnd(buf, pattern, limit);
        if (options < 0) return {at: name - start, what: 'a regular expression without its terminating NULs'};
        p = options;
        break;
      }
      case 0x0c: {
        // DBPointer: string, then a 12-byte ObjectId
        const next = stringEnd(buf, name, limit);
        if (next < 0) return {at: name - start, what: 'a DBPointer whose string is wrong'};
        p = next + 12;
        break;
      }
      case 0x0f: {
        // code with scope: int32 total, string, document, which must fill the total exactly
        if (name + 4 > limit) return {at: name - start, what: 'a code-with-scope value past the end of its document'};
        const total = buf.readInt32LE(name);
        const code = stringEnd(buf, name + 4, limit);
        if (total < 14 || name + total > limit || code < 0 || code + 5 > name + total) return {at: name - start, what: 'a code-with-scope value whose lengths are wrong'};
        const size = buf.readInt32LE(code);
        if (code + size !== name + total || buf[code + size - 1] !== 0) return {at: code - start, what: 'a code-with-scope scope whose length is wrong'};
        if (depth >= most) return {at: code - start, what: `nesting deeper than ${most} levels`, tooDeep: true};
        ends[depth++] = code + size;
        limit = code + size - 1;
        p = code + 4;
        break;
      }
      default:
        return {at: p - start, what: `an unknown BSON type byte 0x${type.toString(16).padStart(2, '0')}`};
    }
  }
}

/** The `_id` of a document as canonical Extended JSON, when its element is whole; null otherwise. */
export function readableId(buf: Buffer, start: number, end: number): string | null {
  let p = start + 4;
  const limit = end - 1;
  while (p < limit) {
    const name = cstringEnd(buf, p + 1, limit);
    if (name < 0) return null;
    const isId = name - p - 2 === 3 && buf[p + 1] === 0x5f && buf[p + 2] === 0x69 && buf[p + 3] === 0x64;
    // One element alone as a document: valid when the element is, wherever the document breaks after it.
    const next = elementEnd(buf, p, name, limit);
    if (next < 0) return null;
    if (isId) {
      const doc = Buffer.alloc(4 + (next - p) + 1);
      doc.writeInt32LE(doc.length, 0);
      buf.copy(doc, 4, p, next);
      if (bsonProblem(doc, 0, doc.length) !== null) return null;
      try {
        return EJSON.stringify((BSON.deserialize(doc, {promoteValues: false}) as {_id: unknown})._id, {relaxed: false});
      } catch {
        return null;
      }
    }
    p = next;
  }
  return null;
}

/** Where the element starting at `p` (its value at `value`) ends, by its lengths alone; -1 when it does not fit. */
function elementEnd(buf: Buffer, p: number, value: number, limit: number): number {
  const type = buf[p]!;
  const fixed = FIXED[type]!;
  if (fixed >= 0) return value + fixed <= limit ? value + fixed : -1;
  switch (type) {
    case 0x02:
    case 0x0d:
    case 0x0e:
      return stringEnd(buf, value, limit);
    case 0x03:
    case 0x04:
    case 0x0f: {
      if (value + 4 > limit) return -1;
      const size = buf.readInt32LE(value);
      return size >= 5 && value + size <= limit ? value + size : -1;
    }
    case 0x05: {
      if (value + 5 > limit) return -1;
      const size = buf.readInt32LE(value);
      return size >= 0 && value + 5 + size <= limit ? value + 5 + size : -1;
    }
    case 0x0b: {
      const pattern = cstringEnd(buf, value, limit);
      return pattern < 0 ? -1 : cstringEnd(buf, pattern, limit);
    }
    case 0x0c: {
      const next = stringEnd(buf, value, limit);
      return next < 0 || next + 12 > limit ? -1 : next + 12;
    }
    default:
      return -1;
  }
}

/**
 * Refuses the document at [start, end) of `buf` when its structure is broken or it is nested too
 * deep, naming where it lies: `where` (the file and namespace) and `offset`, the document's first
 * byte in that file.
 */
export function checkDocument(buf: Buffer, start: number, end: number, where: string, offset: number): void {
  const problem = bsonProblem(buf, start, end);
  if (problem === null) return;
  throw documentError(problem, buf, start, end, where, offset);
}

export function documentError(problem: BsonProblem, buf: Buffer, start: number, end: number, where: string, offset: number): GravityError {
  const id = readableId(buf, start, end);
  const which = `the document at byte ${offset}${id === null ? ' (its _id cannot be read)' : ` (_id ${id})`}`;
  const details = {where, offset, byte: offset + problem.at, ...(id === null ? {} : {_id: id})};
  if (problem.tooDeep) {
    return new GravityError('RESOURCE_LIMIT', `${where}: ${which} is nested deeper than ${MAX_BSON_DEPTH} levels, more than any MongoDB server stores`, {
      hint: 'mongod stores at most 180 levels (maxBSONDepth 200 less 20; the manual supports 100); this backup was not written by mongodump from a MongoDB server, or is damaged',
      details,
    });
  }
  return new GravityError('DUMP_CORRUPT', `${where}: ${which} is not valid BSON: ${problem.what} at byte ${offset + problem.at}`, {
    hint: 'The backup is damaged; use another backup, or fetch this one again',
    details,
  });
}

/**
 * The nesting depth mongod counts for a stored document: the top document is level 1, and each
 * non-empty embedded document or array one more (an empty one adds none: fixDocumentForInsert in
 * src/mongo/db/ops/insert.cpp). For a document that passed `bsonProblem`; walks it without recursion.
 */
export function storedDepth(buf: Uint8Array, start = 0, end = buf.length): number {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const ends: number[] = [end];
  let deepest = 1;
  let p = start + 4;
  while (ends.length > 0) {
    const limit = ends[ends.length - 1]! - 1;
    if (p >= limit) {
      ends.pop();
      p = limit + 1;
      continue;
    }
    const type = b[p]!;
    const value = cstringEnd(b, p + 1, limit);
    if (value < 0) return deepest;
    if (type === 0x03 || type === 0x04) {
      const size = b.readInt32LE(value);
      if (size > 5) {
        ends.push(value + size);
        if (ends.length > deepest) deepest = ends.length;
        p = value + 4;
        continue;
      }
    }
    const next = elementEnd(b, p, value, limit);
    if (next < 0) return deepest;
    p = next;
  }
  return deepest;
}
