/**
 * MongoDB wire protocol framing: OP_MSG (kind 0 body, kind 1 document sequences, optional
 * checksum) and the legacy OP_QUERY / OP_REPLY pair that drivers use for the first handshake.
 */
import {deserialize, onDemand} from 'bson';
import type {Document} from 'bson';
import {rawField} from './bson-values.js';

export const OP_REPLY = 1;
export const OP_QUERY = 2004;
export const OP_COMPRESSED = 2012;
export const OP_MSG = 2013;

/** hello's maxMessageSizeBytes. */
export const MAX_MESSAGE_BYTES = 48_000_000;
const CHECKSUM_PRESENT = 1;
const MORE_TO_COME = 2;
/** OP_REPLY flag mongod always sets. */
const AWAIT_CAPABLE = 8;

export interface Message {
  requestId: number;
  opCode: number;
  /** Whole message, header included. */
  bytes: Buffer;
}

/** Splits a byte stream into messages without re-copying the buffered bytes per chunk. */
export class MessageReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): Message[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const out: Message[] = [];
    for (;;) {
      if (this.length < 16) break;
      const head = this.peek(4);
      const size = head.readInt32LE(0);
      // mongod closes the connection on a length outside [16, maxMessageSizeBytes].
      if (size < 16 || size > MAX_MESSAGE_BYTES) throw new Error(`recv(): message msgLen ${size} is invalid. Min 16 Max: ${MAX_MESSAGE_BYTES}`);
      if (this.length < size) break;
      const bytes = this.take(size);
      out.push({requestId: bytes.readInt32LE(4), opCode: bytes.readInt32LE(12), bytes});
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!;
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!;
  }

  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      let have = 0;
      let k = 0;
      while (have < n) have += this.chunks[k++]!.length;
      first = Buffer.concat(this.chunks.slice(0, k));
      this.chunks.splice(0, k, first);
    }
    const msg = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.length -= n;
    return msg;
  }
}

export interface ParsedCommand {
  db: string;
  body: Document;
  raw: Buffer;
  sequences: Map<string, Buffer[]>;
  /** The client expects no reply (unacknowledged write). */
  moreToCome: boolean;
  legacy: boolean;
}

/** Write commands whose statements stay raw so documents keep their exact bytes. */
const RAW_ARRAYS: Record<string, Document> = {
  insert: {documents: true},
  update: {updates: true},
  delete: {deletes: true},
};

function firstKey(doc: Buffer): string {
  for (const el of onDemand.parseToElements(doc)) return doc.toString('utf8', el[1], el[1] + el[2]);
  return '';
}

function decodeBody(raw: Buffer): Document {
  const fieldsAsRaw = RAW_ARRAYS[firstKey(raw)];
  return deserialize(raw, fieldsAsRaw ? {promoteValues: false, fieldsAsRaw} : {promoteValues: false});
}

function readCString(buf: Buffer, pos: number): [string, number] {
  const end = buf.indexOf(0, pos);
  if (end < 0) throw new Error('unterminated cstring');
  return [buf.toString('utf8', pos, end), end + 1];
}

export function parseOpMsg(bytes: Buffer): ParsedCommand {
  const flags = bytes.readUInt32LE(16);
  const end = flags & CHECKSUM_PRESENT ? bytes.length - 4 : bytes.length;
  let pos = 20;
  let raw: Buffer | undefined;
  const sequences = new Map<string, Buffer[]>();
  while (pos < end) {
    const kind = bytes[pos++];
    const size = bytes.readInt32LE(pos);
    if (kind === 0) {
      raw = bytes.subarray(pos, pos + size);
      pos += size;
    } else if (kind === 1) {
      const sectionEnd = pos + size;
      const [id, docsAt] = readCString(bytes, pos + 4);
      const docs: Buffer[] = [];
      let p = docsAt;
      while (p < sectionEnd) {
        const dsize = bytes.readInt32LE(p);
        docs.push(bytes.subarray(p, p + dsize));
        p += dsize;
      }
      sequences.set(id, docs);
      pos = sectionEnd;
    } else {
      throw new Error(`unknown OP_MSG section kind ${kind}`);
    }
  }
  if (!raw) throw new Error('OP_MSG without a body section');
  const body = decodeBody(raw);
  const db = typeof body.$db === 'string' ? body.$db : 'admin';
  return {db, body, raw, sequences, moreToCome: (flags & MORE_TO_COME) !== 0, legacy: false};
}

/** OP_QUERY is accepted only for commands (`<db>.$cmd`), as mongod 6 does. */
export function parseOpQuery(bytes: Buffer): ParsedCommand {
  const [ns, after] = readCString(bytes, 20);
  const queryAt = after + 8;
  const size = bytes.readInt32LE(queryAt);
  let raw = bytes.subarray(queryAt, queryAt + size);
  let body = decodeBody(raw);
  const dot = ns.indexOf('.');
  const db = dot > 0 ? ns.slice(0, dot) : ns;
  if (ns.slice(dot + 1) !== '$cmd') throw new Error(`OP_QUERY on ${ns} is not supported; use OP_MSG`);
  const first = Object.keys(body)[0];
  if (first === '$query' || first === 'query') {
    const inner = rawField(raw, first);
    if (inner && inner.type === 3) {
      raw = inner.bytes;
      body = decodeBody(raw);
    }
  }
  return {db, body, raw, sequences: new Map(), moreToCome: false, legacy: true};
}

function header(length: number, requestId: number, responseTo: number, opCode: number): Buffer {
  const h = Buffer.allocUnsafe(16);
  h.writeInt32LE(length, 0);
  h.writeInt32LE(requestId, 4);
  h.writeInt32LE(responseTo, 8);
  h.writeInt32LE(opCode, 12);
  return h;
}

export function opMsgReply(doc: Buffer, requestId: number, responseTo: number): Buffer {
  const flagsAndKind = Buffer.alloc(5);
  return Buffer.concat([header(16 + 5 + doc.length, requestId, responseTo, OP_MSG), flagsAndKind, doc]);
}

export function opReply(doc: Buffer, requestId: number, responseTo: number): Buffer {
  const fixed = Buffer.alloc(20);
  fixed.writeInt32LE(AWAIT_CAPABLE, 0);
  fixed.writeInt32LE(1, 16);
  return Buffer.concat([header(16 + 20 + doc.length, requestId, responseTo, OP_REPLY), fixed, doc]);
}
