/**
 * A Percona Backup for MongoDB logical backup as the virtual dump folder the reader already knows:
 * one `<db>/<coll>.bson[.gz]` per namespace (the raw concatenated BSON PBM writes per replica set,
 * PBM pbm/archive/backup.go, joined across the replica sets of a sharded backup) and one
 * `<db>/<coll>.metadata.json` from the mongodump metadata PBM keeps in `<name>/<rs>/metadata.json`.
 */

import {createReadStream} from 'node:fs';
import {Readable} from 'node:stream';
import {createGunzip} from 'node:zlib';

import type {Backup} from '../catalog/list.js';
import {BSON, EJSON, type Document} from 'bson';

import {isLegacyArchive, pbmNamespaceFiles, pbmParts, pbmSuffix, refusePbm, type PbmBackupInfo} from '../catalog/pbm.js';
import {decodeS2Stream} from '../compress/s2.js';
import {GravityError} from '../errors.js';
import {collectionFileStem} from './names.js';
import {findElement, T_TIMESTAMP} from '../oplog/raw.js';
import {localSource} from './local-source.js';
import {BsonSplitter} from './split.js';
import type {DumpInput, DumpStreamSource} from './types.js';

/** Local files are read in 1 MiB chunks, as a dump folder's are (local-source.ts). */
const LOCAL_CHUNK = 1024 * 1024;

export type OpenKey = (key: string) => Promise<NodeJS.ReadableStream | Readable>;

/**
 * How a compression's files reach the reader. The one place another compression plugs in: gzip is
 * handed on as .gz (the reader inflates it, several files side by side); a codec with `decode`
 * is decompressed here, in the stream, and handed on as plain BSON.
 */
interface PbmCodec {
  gzip: boolean;
  decode?: (chunks: AsyncIterable<Buffer>, where: string) => AsyncIterable<Buffer>;
}

/** S2's decoder reads Snappy framing too, and PBM's old `.snappy` files that hold S2 (OPLOG.md §6.3, §6.4). */
const s2: PbmCodec = {gzip: false, decode: (chunks, where) => decodeS2Stream(chunks, {where})};

const CODECS: Record<string, PbmCodec> = {
  none: {gzip: false},
  // PBM reads pgzip output with Go's compress/gzip (pbm/compress/compress.go): it is plain gzip.
  gzip: {gzip: true},
  pgzip: {gzip: true},
  s2,
  snappy: s2,
};

function codecFor(info: PbmBackupInfo): PbmCodec {
  const codec = CODECS[info.compression];
  if (!codec) {
    throw new GravityError('DUMP_UNKNOWN_FORMAT', `PBM backup ${info.name} is compressed with ${info.compression}, which this version cannot read (it reads s2, snappy, gzip, pgzip and none)`, {
      hint: 'Pick a backup taken with --compression=s2, gzip or none, or convert this one with pbm restore and a new backup',
    });
  }
  return codec;
}

interface ArchiveNamespace {
  db: string;
  collection: string;
  metadata: string;
  size: number;
}

function longToNumber(value: unknown): number {
  const long = value as {toNumber?: () => number} | null | undefined;
  return typeof long?.toNumber === 'function' ? long.toNumber() : Number(value ?? 0);
}

function sizeOf(value: unknown): number {
  if (typeof value === 'number') return value;
  const wrapped = value as {$numberLong?: string; $numberInt?: string} | null;
  return Number(wrapped?.$numberLong ?? wrapped?.$numberInt ?? 0);
}

async function readAll(stream: NodeJS.ReadableStream | Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/**
 * meta.pbm (PBM ≥ 2.8): BSON ArchiveMetaV2 (pbm/archive/backup.go). Each specification becomes the
 * collection metadata PBM itself derives from it (pbm/archive/conv.go `convertCollSpecToV1`):
 * {options?, indexes, uuid?, collectionName, type} as canonical Extended JSON.
 */
function readMetaV2(key: string, data: Buffer): ArchiveNamespace[] {
  try {
    const meta = BSON.deserialize(data, {promoteLongs: false, promoteValues: false}) as {specifications?: Document[]};
    if (!Array.isArray(meta.specifications)) throw new Error('no "specifications" list');
    const specs = meta.specifications;
    // As PBM's own conversion: system collections are left out (but admin's, config's and system.js),
    // and a time series takes the size of its buckets, whose documents are filed under its name.
    const kept = specs.filter((spec) => spec.db === 'admin' || spec.db === 'config' || !String(spec.name).startsWith('system.') || spec.name === 'system.js');
    return kept.map((spec) => {
      const db = String(spec.db);
      const name = String(spec.name);
      const type = String(spec.type ?? 'collection');
      const metadata: Document = {};
      if (spec.options !== undefined) metadata.options = spec.options;
      metadata.indexes = spec.indexes ?? [];
      if (spec.uuid !== undefined) metadata.uuid = spec.uuid;
      metadata.collectionName = name;
      metadata.type = type;
      const buckets = type === 'timeseries' ? specs.find((other) => other.db === spec.db && other.name === `system.buckets.${name}`) : undefined;
      return {db, collection: name, metadata: EJSON.stringify(metadata, {relaxed: false}), size: longToNumber((buckets ?? spec).size)};
    });
  } catch (error) {
    throw new GravityError('DUMP_CORRUPT', `PBM metadata ${key} is not valid BSON metadata (${(error as Error).message})`, {hint: 'Pick another backup (`gravity-restore list`)'});
  }
}

/** `<name>/<rs>/metadata.json`: Extended JSON of PBM's archiveMeta (pbm/archive/archive.go `writeMetadata`); meta.pbm when only that is there. */
async function readArchiveMeta(key: string, open: OpenKey, present: Set<string>): Promise<ArchiveNamespace[]> {
  const v2Key = key.replace(/metadata\.json$/, 'meta.pbm');
  if (!present.has(key) && v2Key !== key && present.has(v2Key)) return readMetaV2(v2Key, await readAll(await open(v2Key)));
  if (!present.has(key)) {
    throw new GravityError('DUMP_CORRUPT', `PBM metadata ${key} is missing`, {hint: 'The backup is incomplete in this source; pick another one (`gravity-restore list`)'});
  }
  const text = (await readAll(await open(key))).toString('utf8');
  try {
    const meta = JSON.parse(text) as {namespaces?: Array<Record<string, unknown>>};
    if (!Array.isArray(meta.namespaces)) throw new Error('no "namespaces" list');
    return meta.namespaces.map((ns) => {
      if (typeof ns.db !== 'string' || typeof ns.collection !== 'string') throw new Error('a namespace without "db" or "collection"');
      return {db: ns.db, collection: ns.collection, metadata: typeof ns.metadata === 'string' ? ns.metadata : '', size: sizeOf(ns.size)};
    });
  } catch (error) {
    throw new GravityError('DUMP_CORRUPT', `PBM metadata ${key} is not valid (${(error as Error).message})`, {hint: 'Pick another backup (`gravity-restore list`)'});
  }
}

function concatenated(keys: string[], open: OpenKey): () => Promise<Readable> {
  return async () => {
    async function* parts() {
      for (const key of keys) yield* (await open(key)) as AsyncIterable<Buffer>;
    }
    // One file is handed on as it is, so a local read keeps its own stream.
    return keys.length === 1 ? Readable.from((await open(keys[0]!)) as AsyncIterable<Buffer>) : Readable.from(parts());
  };
}

/**
 * Before 2.0: `<name>_<rs>.dump<ext>`, a mongodump archive (v1.8.1 `getDstName`), read as one. A
 * sharded backup of that age would give each namespace once per archive, so it is refused.
 */
function legacyArchive(backup: Backup, info: PbmBackupInfo, codec: PbmCodec, open: OpenKey, present: Set<string>): DumpStreamSource {
  if (info.replsets.length !== 1) {
    throw new GravityError('DUMP_UNKNOWN_FORMAT', `PBM backup ${info.name} was written by PBM ${info.pbmVersion} across ${info.replsets.length} replica sets (one archive each), a layout this version reads only for a single replica set`, {
      hint: 'Use a backup taken with PBM 2.0 or later',
    });
  }
  const rs = info.replsets[0]!;
  const key = rs.dumpName ?? `${info.name}_${rs.name}.dump${pbmSuffix(info.compression)}`;
  const object = backup.objects.find((o) => o.key === key);
  if (!object || !present.has(key)) {
    throw new GravityError('DUMP_CORRUPT', `PBM backup ${info.name} names its archive ${key}, which is missing`, {hint: 'The backup is incomplete in this source; pick another one (`gravity-restore list`)'});
  }
  const decode = codec.decode;
  // The reader tells a (gzipped) archive by its content.
  return {name: key, size: object.size, open: decode ? async () => Readable.from(decode((await open(key)) as AsyncIterable<Buffer>, key)) : async () => open(key) as Promise<Readable>};
}

async function* decodedParts(keys: string[], open: OpenKey, decode: NonNullable<PbmCodec['decode']>): AsyncGenerator<Buffer> {
  for (const key of keys) yield* decode((await open(key)) as AsyncIterable<Buffer>, key);
}

/** `<T>-<I>` of a chunk name (pbm/backup/chunk.go `FormatChunkName`): UTC 20060102150405 and the increment. */
function chunkStart(file: string): [number, number] | null {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})-(\d+)\./.exec(file);
  if (!match) return null;
  const [, y, mo, d, h, mi, sec, inc] = match;
  return [Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec)) / 1000, Number(inc)];
}

/** The oplog files of one replica set, in time order: the chunks under <name>/<rs>/oplog/ (≥ 2.4), or the one file of 2.0 – 2.3. */
function oplogKeys(backup: Backup, info: PbmBackupInfo, rs: PbmBackupInfo['replsets'][number]): string[] {
  const suffix = pbmSuffix(info.compression);
  const single = `${info.name}/${rs.name}/local.oplog.rs.bson${suffix}`;
  if (backup.objects.some((object) => object.key === single)) return [single];
  const folder = `${rs.oplogName ?? `${info.name}/${rs.name}/oplog`}/`;
  const chunks: Array<{key: string; start: [number, number]}> = [];
  for (const object of backup.objects) {
    if (!object.key.startsWith(folder) || /\.pbmpart\.\d+$/.test(object.key)) continue;
    const start = chunkStart(object.key.slice(folder.length));
    if (start) chunks.push({key: object.key, start});
  }
  return chunks.sort((a, b) => a.start[0] - b.start[0] || a.start[1] - b.start[1]).map((chunk) => chunk.key);
}

/** The `ts` of an oplog entry as one comparable number (seconds × 2^32 + increment). */
function tsOf(doc: Buffer, where: string): bigint {
  const element = findElement(doc, 'ts');
  if (!element || element.type !== T_TIMESTAMP) throw new GravityError('DUMP_CORRUPT', `${where}: an oplog entry has no timestamp "ts"`, {hint: 'The backup\'s oplog is damaged; pick another backup (`gravity-restore list`)'});
  return doc.readBigUInt64LE(element.valueStart);
}

/** One replica set's entries, in order, each once: consecutive chunks share their boundary entry (pbm/oplog/restore.go). */
async function* replsetEntries(keys: string[], open: (key: string) => AsyncIterable<Buffer>): AsyncGenerator<{ts: bigint; doc: Buffer}> {
  let last = -1n;
  for (const key of keys) {
    const splitter = new BsonSplitter(key);
    for await (const chunk of open(key)) {
      for (const doc of splitter.push(chunk)) {
        const ts = tsOf(doc, key);
        if (ts <= last) continue;
        last = ts;
        yield {ts, doc};
      }
    }
    splitter.end();
  }
}

/** The backup's oplog as one stream, the replica sets' entries merged by `ts` (OPLOG.md §6.3: per-shard oplogs merge by ts). */
async function* mergedOplog(perReplset: string[][], open: (key: string) => AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const heads = perReplset.map((keys) => replsetEntries(keys, open));
  const current = await Promise.all(heads.map(async (head) => (await head.next()).value as {ts: bigint; doc: Buffer} | undefined));
  for (;;) {
    let pick = -1;
    for (let i = 0; i < current.length; i++) if (current[i] && (pick < 0 || current[i]!.ts < current[pick]!.ts)) pick = i;
    if (pick < 0) return;
    yield current[pick]!.doc;
    current[pick] = (await heads[pick]!.next()).value as {ts: bigint; doc: Buffer} | undefined;
  }
}

/** A PBM logical backup as a dump input, or one clear refusal (physical, not done, unreadable metadata, a missing file). */
export async function pbmDumpSources(backup: Backup, openStored: OpenKey, localFile?: (key: string) => string | undefined): Promise<DumpInput> {
  const present = new Set(backup.objects.map((object) => object.key));
  const openKey: OpenKey = async (key) => {
    const file = localFile?.(key);
    return file === undefined ? openStored(key) : createReadStream(file, {highWaterMark: LOCAL_CHUNK});
  };
  // A file split into .pbmpart.N parts reads as the one file it was.
  const open: OpenKey = async (key) => {
    const parts = pbmParts(key, present);
    if (parts.length === 1) return openKey(key);
    async function* joined() {
      for (const part of parts) yield* (await openKey(part)) as AsyncIterable<Buffer>;
    }
    return Readable.from(joined());
  };
  const info = backup.pbm;
  if (!info) throw new GravityError('INTERNAL', `${backup.id} is not a PBM backup`);
  refusePbm(info);
  const codec = codecFor(info);
  const suffix = pbmSuffix(info.compression);
  if (isLegacyArchive(info)) return legacyArchive(backup, info, codec, open, present);
  const byNamespace = new Map<string, {db: string; collection: string; keys: string[]; size: number; metadata: string | null}>();
  for (const rs of info.replsets) {
    // The layout fixes where the metadata is (DumpName = <name>/<rs>/metadata.json, pbm/backup/logical.go).
    const metaKey = rs.dumpName?.endsWith('/metadata.json') ? rs.dumpName : `${info.name}/${rs.name}/metadata.json`;
    const listed = await readArchiveMeta(metaKey, open, present);
    const files = pbmNamespaceFiles(backup, info, rs.name);
    for (const ns of listed) {
      // PBM writes no file for a collection it found empty; one it counted bytes for must be there.
      const key = `${info.name}/${rs.name}/${ns.db}.${ns.collection}${suffix}`;
      if (ns.size > 0 && !present.has(key)) {
        throw new GravityError('DUMP_CORRUPT', `PBM backup ${info.name} lists ${ns.db}.${ns.collection} (${ns.size} bytes) on ${rs.name}, but ${key} is missing`, {
          hint: 'The backup is incomplete in this source; pick another one (`gravity-restore list`)',
        });
      }
      const id = `${ns.db}.${ns.collection}`;
      const entry = byNamespace.get(id) ?? {db: ns.db, collection: ns.collection, keys: [], size: 0, metadata: null};
      entry.metadata ??= ns.metadata || null;
      byNamespace.set(id, entry);
    }
    for (const file of files) {
      const id = `${file.db}.${file.collection}`;
      const entry = byNamespace.get(id) ?? {db: file.db, collection: file.collection, keys: [], size: 0, metadata: null};
      entry.keys.push(file.key);
      entry.size += file.size;
      byNamespace.set(id, entry);
    }
  }
  const sources: DumpStreamSource[] = [];
  // The oplog captured during the dump, as mongodump --oplog's oplog.bson: what makes the data consistent at last_write_ts.
  const oplogs = info.replsets.map((rs) => oplogKeys(backup, info, rs)).filter((keys) => keys.length > 0);
  if (oplogs.length > 0) {
    const decodeKey = (key: string): AsyncIterable<Buffer> => {
      async function* decoded() {
        const raw = (await open(key)) as AsyncIterable<Buffer>;
        if (codec.decode) yield* codec.decode(raw, key);
        else if (codec.gzip) yield* Readable.from(raw).pipe(createGunzip());
        else yield* raw;
      }
      return decoded();
    };
    sources.push({name: 'oplog.bson', size: oplogs.flat().reduce((total, key) => total + (backup.objects.find((o) => o.key === key)?.size ?? 0), 0), open: async () => Readable.from(mergedOplog(oplogs, decodeKey))});
  }
  for (const ns of byNamespace.values()) {
    const stem = `${ns.db}/${collectionFileStem(ns.collection)}`;
    if (ns.metadata !== null) {
      const text = ns.metadata;
      sources.push({name: `${stem}.metadata.json`, size: Buffer.byteLength(text), open: async () => Readable.from([Buffer.from(text, 'utf8')])});
    }
    if (ns.keys.length === 0) continue;
    const decode = codec.decode;
    const only = ns.keys.length === 1 && pbmParts(ns.keys[0]!, present).length === 1 ? localFile?.(ns.keys[0]!) : undefined;
    if (only !== undefined && !decode) {
      // One local file as it is: read in place, and a gzip one inflated on a worker as a dump folder's would be.
      sources.push(localSource(only, `${stem}.bson${codec.gzip ? '.gz' : ''}`, ns.size));
      continue;
    }
    const raw = concatenated(ns.keys, open);
    sources.push({
      name: `${stem}.bson${codec.gzip ? '.gz' : ''}`,
      size: ns.size,
      // Each replica set's file is its own stream: decoded one after the other, then joined.
      open: decode ? async () => Readable.from(decodedParts(ns.keys, open, decode)) : raw,
    });
  }
  return sources;
}
