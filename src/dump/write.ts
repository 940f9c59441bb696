import {createHash, randomBytes, type Hash} from 'node:crypto';
import {createReadStream, createWriteStream, promises as fsp} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {pipeline} from 'node:stream/promises';
import zlib from 'node:zlib';
import {BSON, Int32, Long} from 'bson';
import {GravityError} from '../errors.js';
import {Crc64} from './crc64.js';
import {SpaceGuard} from './disk-space.js';
import {parseMetadata} from './metadata.js';
import {collectionFileStem} from './names.js';
import {readDump} from './read.js';
import {BsonSplitter} from './split.js';
import {gunzip} from './streams.js';

/** Appended documents are written in blocks of about this size. */
const FLUSH_BYTES = 4 * 1024 * 1024;

interface OpenNamespace {
  db: string;
  collection: string;
  file: string; // relative, posix
  /**
   * Documents are copied into this buffer rather than kept as subarrays: a few matches spread
   * over a large backup would otherwise pin every decompressed chunk they came from.
   */
  stage: Buffer | null;
  staged: number;
  documents: number;
  bytes: number;
  hash: Hash;
  metadataFile: string | null;
  metadataSha256: string | null;
}

export interface WrittenNamespace {
  db: string;
  collection: string;
  file: string;
  metadataFile: string | null;
  documents: number;
  bytes: number;
  sha256: string;
  metadataSha256: string | null;
}

function checkName(kind: string, name: string): void {
  if (name === '' || name.includes('\u0000') || (kind === 'database' && /[/\\. "$]/.test(name))) {
    throw new GravityError('INTERNAL', `Invalid ${kind} name ${JSON.stringify(name)} for a dump folder`, {hint: 'Report this as a bug'});
  }
}

/**
 * Writes <root>/<db>/<coll>.bson and <coll>.metadata.json as mongodump does (same file-name
 * escaping and long-name hashing), so mongorestore reads the folder. Documents are written
 * byte-for-byte in the order appended. Call its methods one at a time (await each).
 */
export class DumpFolderWriter {
  private readonly root: string;
  private readonly open_ = new Map<string, OpenNamespace>();
  private closed = false;
  /** Every byte written is asked for first: a writer stops before the disk fills (disk-space.ts). */
  readonly space: SpaceGuard;

  /** @param space the guard to count writes against (default: one for `root`) */
  constructor(root: string, options: {space?: SpaceGuard} = {}) {
    this.root = root;
    this.space = options.space ?? new SpaceGuard(root, `the dump folder ${root}`);
  }

  private async ns(db: string, collection: string): Promise<OpenNamespace> {
    if (this.closed) throw new GravityError('INTERNAL', 'DumpFolderWriter used after close', {hint: 'Report this as a bug'});
    const key = `${db}\u0000${collection}`;
    let ns = this.open_.get(key);
    if (ns === undefined) {
      checkName('database', db);
      checkName('collection', collection);
      const file = `${db}/${collectionFileStem(collection)}.bson`;
      await fsp.mkdir(path.join(this.root, db), {recursive: true});
      await fsp.writeFile(path.join(this.root, file), Buffer.alloc(0));
      ns = {db, collection, file, stage: null, staged: 0, documents: 0, bytes: 0, hash: createHash('sha256'), metadataFile: null, metadataSha256: null};
      this.open_.set(key, ns);
    }
    return ns;
  }

  /** Creates the namespace's (possibly empty) .bson file. */
  async open(db: string, collection: string): Promise<void> {
    await this.ns(db, collection);
  }

  /** Writes <coll>.metadata.json with exactly `raw`; returns the relative path written. */
  async writeMetadata(db: string, collection: string, raw: string): Promise<string> {
    checkName('database', db);
    checkName('collection', collection);
    const file = `${db}/${collectionFileStem(collection)}.metadata.json`;
    await this.space.reserve(Buffer.byteLength(raw, 'utf8'));
    await fsp.mkdir(path.join(this.root, db), {recursive: true});
    await fsp.writeFile(path.join(this.root, file), raw, 'utf8');
    const ns = await this.ns(db, collection);
    ns.metadataFile = file;
    ns.metadataSha256 = createHash('sha256').update(raw, 'utf8').digest('hex');
    return file;
  }

  async append(db: string, collection: string, docs: Buffer[]): Promise<void> {
    const ns = await this.ns(db, collection);
    for (const doc of docs) {
      if (doc.length < 5 || doc.readInt32LE(0) !== doc.length || doc[doc.length - 1] !== 0) {
        throw new GravityError('INTERNAL', `Not one whole BSON document for ${db}.${collection} (${doc.length} bytes)`, {hint: 'Report this as a bug'});
      }
      if (ns.stage !== null && ns.staged + doc.length > ns.stage.length) await this.flush(ns);
      if (doc.length > FLUSH_BYTES) {
        await this.space.reserve(doc.length);
        await fsp.appendFile(path.join(this.root, ns.file), doc).catch((error: unknown) => {
          throw this.space.full(error);
        });
      } else {
        ns.stage ??= Buffer.allocUnsafe(FLUSH_BYTES);
        doc.copy(ns.stage, ns.staged);
        ns.staged += doc.length;
      }
      ns.hash.update(doc);
      ns.documents++;
      ns.bytes += doc.length;
    }
  }

  private async flush(ns: OpenNamespace): Promise<void> {
    if (ns.stage === null || ns.staged === 0) return;
    const data = ns.stage.subarray(0, ns.staged);
    await this.space.reserve(data.length);
    await fsp.appendFile(path.join(this.root, ns.file), data).catch((error: unknown) => {
      throw this.space.full(error);
    });
    ns.staged = 0;
  }

  async close(): Promise<WrittenNamespace[]> {
    const out: WrittenNamespace[] = [];
    for (const ns of this.open_.values()) {
      await this.flush(ns);
      out.push({
        db: ns.db, collection: ns.collection, file: ns.file, metadataFile: ns.metadataFile,
        documents: ns.documents, bytes: ns.bytes, sha256: ns.hash.digest('hex'), metadataSha256: ns.metadataSha256,
      });
    }
    this.closed = true;
    return out;
  }
}

interface ArchiveNs {
  db: string;
  collection: string;
  raw: string;
  type: string;
  bytes: number;
}

const TERMINATOR = Buffer.from([0xff, 0xff, 0xff, 0xff]);
/** Newer mongorestores parse the header's server version; an empty one fails to parse. */
const UNKNOWN_SERVER_VERSION = '0.0.0';
const MAGIC = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);

function intField(n: number): Int32 | Long {
  return n <= 0x7fffffff ? new Int32(n) : Long.fromNumber(n);
}

/**
 * Writes a mongodump --archive of a dump folder that mongorestore accepts: header, one
 * prelude entry per namespace, each namespace's documents in one segment, then its EOF header
 * with the CRC-64 of its bytes. Written to a temp file beside `outFile`, then renamed.
 * `serverVersion` goes in the header (the source server's version when known; default 0.0.0).
 */
export async function writeArchive(
  dumpRoot: string,
  outFile: string,
  options: {gzip?: boolean; serverVersion?: string} = {},
): Promise<{namespaces: number; documents: number; bytes: number}> {
  // Pass 1: the prelude needs every namespace's metadata and size before any data.
  const list: ArchiveNs[] = [];
  const index = new Map<string, ArchiveNs>();
  let hasOplog = false;
  const entry = (db: string, collection: string): ArchiveNs => {
    const key = `${db}\u0000${collection}`;
    let ns = index.get(key);
    if (ns === undefined) {
      ns = {db, collection, raw: '', type: '', bytes: 0};
      index.set(key, ns);
      list.push(ns);
    }
    return ns;
  };
  for await (const event of readDump(dumpRoot)) {
    if (event.type === 'metadata') {
      const ns = entry(event.db, event.collection);
      ns.raw = event.raw;
      ns.type = event.metadata.type ?? '';
    } else if (event.type === 'end') entry(event.db, event.collection).bytes = event.bytes;
    else if (event.type === 'oplog') hasOplog = true;
  }

  const totals = {namespaces: 0, documents: 0, bytes: 0};
  async function* archiveBytes(): AsyncGenerator<Buffer> {
    yield MAGIC;
    yield Buffer.from(BSON.serialize({concurrent_collections: new Int32(1), version: '0.1', server_version: options.serverVersion ?? UNKNOWN_SERVER_VERSION, tool_version: 'gravity-restore'}));
    for (const ns of list) {
      if (ns.raw !== '') parseMetadata(ns.raw, ns.collection, `${ns.db}.${ns.collection}`);
      yield Buffer.from(BSON.serialize({db: ns.db, collection: ns.collection, metadata: ns.raw, size: intField(ns.bytes), type: ns.type}));
    }
    if (hasOplog) yield Buffer.from(BSON.serialize({db: '', collection: 'oplog', metadata: '', size: new Int32(0), type: ''}));
    yield TERMINATOR;

    const eof = (db: string, collection: string, crc: Crc64): Buffer[] => [
      Buffer.from(BSON.serialize({db, collection, EOF: true, CRC: Long.fromBigInt(crc.digestInt64())})),
      TERMINATOR,
    ];
    let open: {db: string; collection: string; crc: Crc64} | null = null;
    const seen = new Set<string>();
    for await (const event of readDump(dumpRoot, {want: (ns) => !(ns.db === '' && ns.collection === 'oplog')})) {
      if (event.type === 'documents') {
        if (open === null || open.db !== event.db || open.collection !== event.collection) {
          open = {db: event.db, collection: event.collection, crc: new Crc64()};
          yield Buffer.from(BSON.serialize({db: event.db, collection: event.collection, EOF: false, CRC: Long.fromNumber(0)}));
        }
        for (const doc of event.docs) open.crc.update(doc);
        yield event.docs.length === 1 ? event.docs[0]! : Buffer.concat(event.docs, event.bytes);
        totals.documents += event.docs.length;
        totals.bytes += event.bytes;
      } else if (event.type === 'end') {
        const key = `${event.db}\u0000${event.collection}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const meta = index.get(key);
        if (meta?.type === 'timeseries') continue; // its data is system.buckets.<name>
        let crc = new Crc64();
        if (open !== null && open.db === event.db && open.collection === event.collection) {
          crc = open.crc;
          yield TERMINATOR;
          open = null;
        }
        for (const part of eof(event.db, event.collection, crc)) yield part;
        totals.namespaces++;
      }
    }
    if (hasOplog) {
      // The oplog's bytes come straight from the file: the reader only counts them.
      const crc = new Crc64();
      let started = false;
      for (const name of ['oplog.bson', 'oplog.bson.gz']) {
        const file = path.join(dumpRoot, name);
        const exists = await fsp.stat(file).then(() => true, () => false);
        if (!exists) continue;
        let chunks: AsyncIterable<Buffer> = createReadStream(file);
        if (name.endsWith('.gz')) chunks = gunzip(chunks, file);
        const splitter = new BsonSplitter(file);
        for await (const chunk of chunks) {
          const docs = splitter.push(chunk);
          if (docs.length === 0) continue;
          if (!started) {
            started = true;
            yield Buffer.from(BSON.serialize({db: '', collection: 'oplog', EOF: false, CRC: Long.fromNumber(0)}));
          }
          for (const doc of docs) crc.update(doc);
          yield Buffer.concat(docs);
        }
        splitter.end();
        break;
      }
      if (started) yield TERMINATOR;
      for (const part of eof('', 'oplog', crc)) yield part;
    }
  }

  const dir = path.dirname(path.resolve(outFile));
  await fsp.mkdir(dir, {recursive: true});
  const temp = path.join(dir, `.${path.basename(outFile)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const source = Readable.from(archiveBytes(), {objectMode: false});
    if (options.gzip) await pipeline(source, zlib.createGzip(), createWriteStream(temp));
    else await pipeline(source, createWriteStream(temp));
    await fsp.rename(temp, outFile);
  } catch (error) {
    await fsp.rm(temp, {force: true});
    throw error;
  }
  return totals;
}
