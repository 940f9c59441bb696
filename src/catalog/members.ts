/**
 * Which collections a packed backup object holds, learnt as cheaply as the format allows:
 * - uncompressed .tar: ranged reads of the 512-byte headers only, jumping over the data;
 * - .tar.gz / .tgz / other .gz: stream and gunzip until the collection is seen (gzip cannot seek);
 * - mongodump --archive (plain or gzipped): the prelude at the start lists every collection.
 * What was learnt is kept in a small local index so the next run does not read the object again.
 */

import {createHash} from 'node:crypto';
import {mkdir, readFile, rename, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {Readable} from 'node:stream';
import {createGunzip} from 'node:zlib';

import {deserialize} from 'bson';
import tar from 'tar-stream';

import {GravityError} from '../errors.js';
import {peek} from '../dump/streams.js';
import type {BackupStore} from './store.js';

/** A namespace as seen in a dump: `db.coll`, or just `coll` when the member path names no database. */
export function namespaceOfMember(memberPath: string): string | null {
  const parts = memberPath.replace(/\\/g, '/').replace(/^\.\//, '').split('/').filter((part) => part !== '' && part !== '.');
  const file = parts[parts.length - 1];
  if (file === undefined) return null;
  const match = /^(.+?)\.(?:bson|metadata\.json)(?:\.gz)?$/.exec(file);
  if (!match) return null;
  const collection = match[1] as string;
  // mongodump --oplog writes oplog.bson beside the database folders; it is not a collection.
  if (file === 'oplog.bson' || file === 'oplog.bson.gz') return null;
  const db = parts[parts.length - 2];
  return db === undefined ? collection : `${db}.${collection}`;
}

/** The collection part of `db.coll` (a collection name may itself contain dots; a database name may not). */
export function collectionOfNamespace(namespace: string, hasDb = true): string {
  if (!hasDb) return namespace;
  const dot = namespace.indexOf('.');
  return dot < 0 ? namespace : namespace.slice(dot + 1);
}

/** True when `wanted` ('coll' or 'db.coll') names this namespace. */
export function namespaceMatches(namespace: string, wanted: string): boolean {
  return namespace === wanted || collectionOfNamespace(namespace) === wanted;
}

export type PackedFormat = 'tar' | 'tar.gz' | 'archive' | 'archive.gz' | 'gz';

/** The packed format a key suggests, or null for files that are not packed backups (.bson, .json, sidecars). */
export function packedFormatOf(key: string): PackedFormat | null {
  const name = key.toLowerCase();
  if (name.endsWith('.tar')) return 'tar';
  if (name.endsWith('.tar.gz') || name.endsWith('.tgz')) return 'tar.gz';
  if (name.endsWith('.archive') || name.endsWith('.dump')) return 'archive';
  if (name.endsWith('.archive.gz') || name.endsWith('.agz')) return 'archive.gz';
  if (name.endsWith('.bson.gz') || name.endsWith('.json.gz')) return null;
  if (name.endsWith('.gz')) return 'gz';
  return null;
}

export interface MemberScan {
  /** Namespaces seen, in order. */
  namespaces: string[];
  /** Every member was seen (false when the scan stopped early at the wanted collection). */
  complete: boolean;
  format: 'tar' | 'archive';
}

const BLOCK = 512;
/** Bytes fetched per ranged read: small members (metadata.json) sit inside one window with their neighbours. */
const WINDOW = 64 * 1024;
const ARCHIVE_MAGIC = 0x8199e26d;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

class RangeReader {
  private windowStart = 0;
  private window: Buffer = Buffer.alloc(0);

  constructor(
    private readonly store: BackupStore,
    private readonly key: string,
    private readonly size: number,
    private readonly signal?: AbortSignal,
  ) {}

  requests = 0;

  async read(start: number, length: number): Promise<Buffer> {
    const end = Math.min(start + length, this.size);
    if (start >= this.windowStart && end <= this.windowStart + this.window.length) {
      return this.window.subarray(start - this.windowStart, end - this.windowStart);
    }
    const fetchEnd = Math.min(this.size, start + Math.max(length, WINDOW));
    this.requests++;
    this.window = await readAll(await this.store.open(this.key, {start, end: fetchEnd - 1}, this.signal));
    this.windowStart = start;
    return this.window.subarray(0, end - start);
  }
}

function cString(block: Buffer, offset: number, length: number): string {
  const slice = block.subarray(offset, offset + length);
  const nul = slice.indexOf(0);
  return (nul < 0 ? slice : slice.subarray(0, nul)).toString('utf8');
}

function tarNumber(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  // GNU base-256 encoding for sizes above 8 GiB: high bit of the first byte set.
  if (((field[0] as number) & 0x80) !== 0) {
    let value = (field[0] as number) & 0x7f;
    for (let index = 1; index < field.length; index++) value = value * 256 + (field[index] as number);
    return value;
  }
  const text = cString(field, 0, length).trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

function validTarHeader(block: Buffer): boolean {
  const stored = tarNumber(block, 148, 8);
  let sum = 0;
  for (let index = 0; index < BLOCK; index++) sum += index >= 148 && index < 156 ? 32 : (block[index] as number);
  return sum === stored;
}

function paxPath(data: Buffer): string | null {
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(32, offset);
    if (space < 0) break;
    const length = Number.parseInt(data.subarray(offset, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0 && record.slice(0, equals) === 'path') return record.slice(equals + 1);
    offset += length;
  }
  return null;
}

/**
 * Walk the headers of an uncompressed tar with ranged reads. tar-stream can only parse a
 * stream, which would download every byte; this reads headers (and long-name records) only.
 */
async function scanTarRanged(
  store: BackupStore,
  key: string,
  size: number,
  stopAt: (namespace: string) => boolean,
  signal?: AbortSignal,
): Promise<MemberScan> {
  const reader = new RangeReader(store, key, size, signal);
  const namespaces: string[] = [];
  let offset = 0;
  let longName: string | null = null;
  while (offset + BLOCK <= size) {
    const header = await reader.read(offset, BLOCK);
    if (header.length < BLOCK || header.every((byte) => byte === 0)) return {namespaces, complete: true, format: 'tar'};
    if (!validTarHeader(header)) {
      throw new GravityError('DUMP_CORRUPT', `${key} is not a valid tar file (bad header checksum at byte ${offset})`, {
        hint: 'Check that the backup upload finished; fetch it and run `tar tf` on it to confirm',
      });
    }
    const memberSize = tarNumber(header, 124, 12);
    const type = String.fromCharCode(header[156] as number);
    const dataStart = offset + BLOCK;
    const next = dataStart + Math.ceil(memberSize / BLOCK) * BLOCK;
    if (type === 'x' || type === 'L') {
      const data = await reader.read(dataStart, memberSize);
      longName = type === 'x' ? (paxPath(data) ?? longName) : cString(data, 0, data.length);
    } else if (type !== 'g') {
      const magic = header.subarray(257, 262).toString('ascii');
      const prefix = magic === 'ustar' ? cString(header, 345, 155) : '';
      const name = longName ?? (prefix ? `${prefix}/${cString(header, 0, 100)}` : cString(header, 0, 100));
      longName = null;
      if (type === '0' || type === '\0' || type === '7') {
        const namespace = namespaceOfMember(name);
        if (namespace !== null && !namespaces.includes(namespace)) {
          namespaces.push(namespace);
          if (stopAt(namespace)) return {namespaces, complete: false, format: 'tar'};
        }
      }
    }
    offset = next;
  }
  return {namespaces, complete: true, format: 'tar'};
}

async function scanTarStream(stream: Readable, stopAt: (namespace: string) => boolean): Promise<MemberScan> {
  const extract = tar.extract();
  const namespaces: string[] = [];
  stream.on('error', (error) => extract.destroy(error));
  stream.pipe(extract);
  try {
    for await (const entry of extract) {
      const namespace = entry.header.type === 'file' ? namespaceOfMember(entry.header.name) : null;
      entry.resume();
      if (namespace !== null && !namespaces.includes(namespace)) {
        namespaces.push(namespace);
        if (stopAt(namespace)) return {namespaces, complete: false, format: 'tar'};
      }
    }
  } finally {
    stream.unpipe(extract);
    stream.destroy();
    extract.destroy();
  }
  return {namespaces, complete: true, format: 'tar'};
}

/** The collection list from a mongodump archive's prelude; reads only the start of the stream. */
async function scanArchivePrelude(stream: Readable, key: string): Promise<MemberScan> {
  let buffer = Buffer.alloc(0);
  let offset = 0;
  const namespaces: string[] = [];
  const corrupt = (why: string) =>
    new GravityError('DUMP_CORRUPT', `${key} is not a readable mongodump archive (${why})`, {
      hint: 'Check that it was written by `mongodump --archive` and that the upload finished',
    });
  let headerSeen = false;
  try {
    for await (const chunk of stream) {
      buffer = Buffer.concat([buffer, chunk as Buffer]);
      if (offset === 0) {
        if (buffer.length < 4) continue;
        if (buffer.readUInt32LE(0) !== ARCHIVE_MAGIC) throw corrupt('no archive magic number');
        offset = 4;
      }
      while (buffer.length >= offset + 4) {
        const length = buffer.readInt32LE(offset);
        if (length === -1) return {namespaces, complete: true, format: 'archive'};
        if (length < 5 || length > 16 * 1024 * 1024) throw corrupt(`bad document length ${length}`);
        if (buffer.length < offset + length) break;
        const document = deserialize(buffer.subarray(offset, offset + length));
        offset += length;
        if (!headerSeen) {
          headerSeen = true;
          continue;
        }
        if (typeof document.db === 'string' && typeof document.collection === 'string') {
          const namespace = `${document.db}.${document.collection}`;
          if (!namespaces.includes(namespace)) namespaces.push(namespace);
        }
      }
    }
  } finally {
    stream.destroy();
  }
  throw corrupt('the prelude ends early');
}

/**
 * Namespaces held by one packed object. `stopAt` returning true ends the scan early (the result is
 * then incomplete). Returns null for an object that is neither a tar nor a mongodump archive.
 */
export async function scanPackedObject(
  store: BackupStore,
  object: {key: string; size: number},
  stopAt: (namespace: string) => boolean = () => false,
  signal?: AbortSignal,
): Promise<MemberScan | null> {
  const format = packedFormatOf(object.key);
  if (format === null) return null;
  try {
    if (format === 'tar') return await scanTarRanged(store, object.key, object.size, stopAt, signal);
    const raw = await store.open(object.key, undefined, signal);
    try {
      let stream: Readable = raw;
      if (format !== 'archive') {
        const gunzip = createGunzip();
        raw.on('error', (error) => gunzip.destroy(error));
        stream = raw.pipe(gunzip);
      }
      const {head, all} = await peek(stream, BLOCK);
      const rest = Readable.from(all, {objectMode: false});
      if (head.length >= 4 && head.readUInt32LE(0) === ARCHIVE_MAGIC) return await scanArchivePrelude(rest, object.key);
      if (head.length >= 262 && head.subarray(257, 262).toString('ascii') === 'ustar') return await scanTarStream(rest, stopAt);
      rest.destroy();
      return null;
    } finally {
      // Stopping early must release the connection, not leave it half-read in the pool.
      raw.destroy();
    }
  } catch (error) {
    if (error instanceof GravityError) throw error;
    if ((error as {code?: string}).code === 'Z_DATA_ERROR' || (error as {code?: string}).code === 'Z_BUF_ERROR') {
      throw new GravityError('DUMP_CORRUPT', `${object.key} is not valid gzip data`, {
        cause: error,
        hint: 'Check that the backup upload finished; fetch it and test it with `gzip -t`',
      });
    }
    throw store.mapError(error, object.key);
  }
}

// ---------------------------------------------------------------------------------------------
// The local index: what was learnt about a packed object, keyed by source, key and ETag (or size).

export interface IndexEntry {
  location: string;
  key: string;
  etag?: string;
  size: number;
  format: 'tar' | 'archive';
  complete: boolean;
  namespaces: string[];
  updatedAt: string;
}

function indexPath(cacheDir: string, identity: string, object: {key: string; size: number; etag?: string}): string {
  const digest = createHash('sha256')
    .update(`${identity}\0${object.key}\0${object.etag ?? ''}\0${object.size}`)
    .digest('hex');
  return path.join(cacheDir, 'index', `${digest}.json`);
}

export async function readIndex(
  cacheDir: string,
  store: BackupStore,
  object: {key: string; size: number; etag?: string},
): Promise<IndexEntry | null> {
  try {
    const entry = JSON.parse(await readFile(indexPath(cacheDir, store.identity, object), 'utf8')) as IndexEntry;
    return Array.isArray(entry.namespaces) ? entry : null;
  } catch {
    return null;
  }
}

/** Record what was learnt; an incomplete scan never replaces a complete one, and partial scans accumulate. */
export async function writeIndex(
  cacheDir: string,
  store: BackupStore,
  object: {key: string; size: number; etag?: string},
  scan: MemberScan,
): Promise<IndexEntry> {
  const file = indexPath(cacheDir, store.identity, object);
  const previous = await readIndex(cacheDir, store, object);
  if (previous?.complete && !scan.complete) return previous;
  const namespaces = scan.complete ? scan.namespaces : [...new Set([...(previous?.namespaces ?? []), ...scan.namespaces])];
  const entry: IndexEntry = {
    location: store.location,
    key: object.key,
    size: object.size,
    format: scan.format,
    complete: scan.complete,
    namespaces,
    updatedAt: new Date().toISOString(),
  };
  if (object.etag !== undefined) entry.etag = object.etag;
  await mkdir(path.dirname(file), {recursive: true});
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(entry, null, 2));
  await rename(temporary, file);
  return entry;
}
