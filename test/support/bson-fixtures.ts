/**
 * Generated fixtures for the dump readers and writers: documents holding every BSON type, and
 * the same data laid out as each mongodump layout. Nothing here is committed as a blob.
 */
import {spawnSync} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import zlib from 'node:zlib';
import {
  Binary, BSON, BSONRegExp, Code, Decimal128, Double, EJSON, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID,
} from 'bson';
import type {DumpStreamSource} from '../../src/dump/types.js';

/** A deterministic pseudo-random generator so a failure reproduces. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** Builds a BSON document from raw elements (type byte, key, value bytes): for types js-bson will not emit. */
export function rawDocument(elements: Array<{type: number; key: string; value: Buffer}>): Buffer {
  const parts = elements.map((e) => Buffer.concat([Buffer.from([e.type]), Buffer.from(e.key, 'utf8'), Buffer.from([0]), e.value]));
  const body = Buffer.concat(parts);
  const doc = Buffer.alloc(4 + body.length + 1);
  doc.writeInt32LE(doc.length, 0);
  body.copy(doc, 4);
  return doc;
}

function doubleBytes(write: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(8);
  write(b);
  return b;
}

/** Documents holding every BSON type a backup may carry, including the deprecated ones. */
export function everyTypeDocuments(count = 60, seed = 7): Buffer[] {
  const random = rng(seed);
  const docs: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const id = ObjectId.createFromTime(1_600_000_000 + i);
    const variant = i % 4;
    if (variant === 3) {
      // Raw bytes: -0.0, two NaN payloads, +/-Infinity, undefined (0x06), a symbol (0x0E).
      docs.push(rawDocument([
        {type: 0x07, key: '_id', value: Buffer.from(id.id)},
        {type: 0x01, key: 'negZero', value: doubleBytes((b) => b.writeDoubleLE(-0))},
        {type: 0x01, key: 'nan', value: Buffer.from([0, 0, 0, 0, 0, 0, 0xf8, 0x7f])},
        {type: 0x01, key: 'nanPayload', value: Buffer.from([1, 2, 3, 4, 5, 6, 0xf8, 0xff])},
        {type: 0x01, key: 'inf', value: doubleBytes((b) => b.writeDoubleLE(-Infinity))},
        {type: 0x06, key: 'undef', value: Buffer.alloc(0)},
        {type: 0x0e, key: 'sym', value: Buffer.concat([Buffer.from([4, 0, 0, 0]), Buffer.from('sym\0')])},
        {type: 0x10, key: 'n', value: (() => { const b = Buffer.alloc(4); b.writeInt32LE(i); return b; })()},
      ]));
      continue;
    }
    const doc: Record<string, unknown> = {
      _id: id,
      n: new Int32(i),
      long: Long.fromBigInt(BigInt(i) * 9_007_199_254_740_993n - 5n),
      dec: Decimal128.fromString(`${i}.${Math.floor(random() * 1e6)}E-3`),
      dbl: new Double(i + 0.5),
      negZero: new Double(-0),
      nan: new Double(NaN),
      before1970: new Date(-86_400_000 * (i + 1) - 123),
      after: new Date(Date.UTC(2026, 10, 18, 14, 0, i)),
      bin0: new Binary(Buffer.from([i & 255, 1, 2, 3]), 0),
      bin3: new Binary(Buffer.alloc(16, i), 3),
      bin4: new UUID(),
      bin5: new Binary(Buffer.alloc(16, 0xab), 5),
      bin128: new Binary(Buffer.from('custom'), 128),
      re: new BSONRegExp(`^a${i}.*b$`, 'imsx'),
      ts: new Timestamp({t: 1_700_000_000 + i, i: 7}),
      min: new MinKey(),
      max: new MaxKey(),
      code: new Code('function () { return 1; }'),
      codeScope: new Code('function () { return x; }', {x: i}),
      nested: {a: [1, [2, [3, {deep: 'yes'}]], {b: null}], 'ключ': 'значение', '日本': '語', emoji: '😀'},
      nil: null,
      bool: i % 2 === 0,
      str: 'x'.repeat(Math.floor(random() * 300)),
      [`k${variant}`]: variant,
    };
    docs.push(Buffer.from(BSON.serialize(doc)));
  }
  // One large document so it spans chunk boundaries in every reader.
  docs.push(Buffer.from(BSON.serialize({_id: new ObjectId(), big: Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a)})));
  return docs;
}

export interface FixtureNamespace {
  db: string;
  collection: string;
  /** Omitted for a view or a time series' main namespace (no data file). */
  docs?: Buffer[];
  /** The metadata.json text; omitted: no metadata file. */
  metadata?: string;
  /** Data file stem override (e.g. system.buckets.X). */
  stem?: string;
}

/** A metadata.json text as mongodump writes it (canonical Extended JSON). */
export function metadataJson(collection: string, extra: {type?: string; options?: Record<string, unknown>; indexes?: Array<Record<string, unknown>>} = {}): string {
  const doc: Record<string, unknown> = {
    indexes: extra.indexes ?? [{v: new Int32(2), key: {_id: new Int32(1)}, name: '_id_'}],
    uuid: '0123456789abcdef0123456789abcdef',
    collectionName: collection,
    type: extra.type ?? 'collection',
  };
  if (extra.options) doc.options = extra.options;
  return EJSON.stringify(doc, {relaxed: false});
}

/** Writes a mongodump folder (optionally --gzip) under `root`, with files named by `stemOf`. */
export async function writeFolder(root: string, namespaces: FixtureNamespace[], options: {gzip?: boolean; stemOf?: (c: string) => string; oplog?: Buffer[]} = {}): Promise<void> {
  const gz = (b: Buffer): Buffer => (options.gzip ? zlib.gzipSync(b) : b);
  const ext = options.gzip ? '.gz' : '';
  const stemOf = options.stemOf ?? ((c: string) => c);
  for (const ns of namespaces) {
    const dir = path.join(root, ns.db);
    await fsp.mkdir(dir, {recursive: true});
    if (ns.docs) await fsp.writeFile(path.join(dir, `${ns.stem ?? stemOf(ns.collection)}.bson${ext}`), gz(Buffer.concat(ns.docs)));
    if (ns.metadata !== undefined) await fsp.writeFile(path.join(dir, `${stemOf(ns.collection)}.metadata.json${ext}`), gz(Buffer.from(ns.metadata)));
  }
  if (options.oplog) await fsp.writeFile(path.join(root, `oplog.bson${ext}`), gz(Buffer.concat(options.oplog)));
}

/** Tars a folder with GNU tar (an independent implementation): gnu, pax or ustar headers. */
export function tarFolder(parent: string, members: string | string[], outFile: string, options: {gzip?: boolean; format?: 'gnu' | 'pax' | 'ustar'} = {}): void {
  const args = ['-c', `--format=${options.format ?? 'gnu'}`, '-f', outFile, '-C', parent, ...(Array.isArray(members) ? members : [members])];
  if (options.gzip) args.splice(1, 0, '-z');
  const result = spawnSync('tar', args, {encoding: 'utf8'});
  if (result.status !== 0) throw new Error(`tar failed: ${result.stderr}`);
}

/**
 * An --archive built from the format specification, independently of src/dump/write.ts: segments of
 * `segment` documents, namespaces interleaved round-robin as a concurrent mongodump writes them.
 */
export function buildArchive(namespaces: FixtureNamespace[], options: {segment?: number; crc?: (data: Buffer[]) => bigint; corruptCrcOf?: string; omitEof?: string} = {}): Buffer {
  const parts: Buffer[] = [Buffer.from([0x6d, 0xe2, 0x99, 0x81])];
  const ser = (d: Record<string, unknown>): Buffer => Buffer.from(BSON.serialize(d));
  const term = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  parts.push(ser({concurrent_collections: new Int32(4), version: '0.1', server_version: '7.0.0', tool_version: '100.9.0'}));
  for (const ns of namespaces) {
    const size = (ns.docs ?? []).reduce((s, d) => s + d.length, 0);
    const type = ns.metadata ? (JSON.parse(ns.metadata) as {type?: string}).type ?? '' : '';
    parts.push(ser({db: ns.db, collection: ns.collection, metadata: ns.metadata ?? '', size: new Int32(size), type}));
  }
  parts.push(term);
  const segment = options.segment ?? 7;
  const cursors = namespaces.map((ns) => ({ns, at: 0, data: ns.docs ?? [], done: false}));
  const crcOf = options.crc ?? (() => 0n);
  let active = cursors.filter((c) => !c.done);
  while (active.length > 0) {
    for (const c of active) {
      const name = c.ns.stem ?? c.ns.collection;
      if (c.at < c.data.length) {
        parts.push(ser({db: c.ns.db, collection: name, EOF: false, CRC: Long.fromNumber(0)}));
        for (const d of c.data.slice(c.at, c.at + segment)) parts.push(d);
        parts.push(term);
        c.at += segment;
      } else {
        c.done = true;
        if (options.omitEof === name) continue;
        let crc = BigInt.asIntN(64, crcOf(c.data));
        if (options.corruptCrcOf === name) crc += 1n;
        parts.push(ser({db: c.ns.db, collection: name, EOF: true, CRC: Long.fromBigInt(crc)}));
        parts.push(term);
      }
    }
    active = cursors.filter((c) => !c.done);
  }
  return Buffer.concat(parts);
}

/** A stream source over a buffer, cut into chunks of `chunk` bytes (to exercise boundaries). */
export function bufferSource(name: string, data: Buffer, chunk = 4093): DumpStreamSource & {opens: number} {
  const source = {
    name,
    size: data.length,
    opens: 0,
    open: async () => {
      source.opens++;
      async function* gen(): AsyncGenerator<Buffer> {
        for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
      }
      return Readable.from(gen(), {objectMode: false});
    },
  };
  return source;
}

/** Stream sources for every file under `root`, named by relative path (a virtual folder, like S3 keys). */
export async function folderSources(root: string, prefix = 'backups/2026-11-18T14-00-00Z'): Promise<DumpStreamSource[]> {
  const out: DumpStreamSource[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await fsp.readdir(dir, {withFileTypes: true})) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else out.push(bufferSource(`${prefix}/${path.relative(root, full).split(path.sep).join('/')}`, await fsp.readFile(full), 65536));
    }
  }
  await walk(root);
  return out;
}

export async function tempDir(label: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `gravity-${label}-`));
}
