/**
 * Writes Percona Backup for MongoDB (PBM) storage the way PBM ≥ 2.4 lays it out, so the reader is
 * tested against PBM's layout and not against itself. Each rule below names the PBM source file
 * (percona/percona-backup-mongodb, summarised in OPLOG.md §6) it follows.
 */

import {mkdir, readFile, readdir, writeFile} from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';

import {PutObjectCommand, type S3Client} from '@aws-sdk/client-s3';
import {BSON, EJSON, Long, type Timestamp} from 'bson';

import {crc64} from '../../src/dump/crc64.js';
import {buildArchive} from './bson-fixtures.js';

/** A bson.Timestamp as Go's encoding/json writes a primitive.Timestamp: {"T": seconds, "I": increment}. */
export interface GoTimestamp {
  T: number;
  I: number;
}

export interface PbmFixtureNamespace {
  db: string;
  collection: string;
  /** Raw BSON documents, in the order the dump cursor returned them. */
  docs: Buffer[];
  /** mongodump's <coll>.metadata.json text, carried as a string inside metadata.json. */
  metadata: string;
}

export interface PbmFixtureReplset {
  name: string;
  namespaces: PbmFixtureNamespace[];
  /** Oplog entries captured during the dump (raw BSON), written as one chunk. */
  oplog?: Buffer[];
  status?: string;
}

export type PbmFixtureCompression = 'none' | 'gzip' | 's2';

export interface PbmFixtureBackup {
  /** PBM's default: the UTC start time in RFC 3339 (`cmd/pbm/main.go`), e.g. 2026-11-18T14:00:00Z. */
  name: string;
  type?: 'logical' | 'physical' | 'incremental' | 'external';
  status?: string;
  compression?: PbmFixtureCompression;
  pbmVersion?: string;
  /** Selective backup namespaces (`nss`, omitted when empty: `json:"nss,omitempty"`). */
  nss?: string[];
  firstWrite: GoTimestamp;
  lastWrite: GoTimestamp;
  replsets: PbmFixtureReplset[];
  /** Split namespace files into `.pbmpart.N` parts of this many bytes, as PBM does past `maxObjSizeGB`. */
  splitAt?: number;
}

/** `CompressionType.Suffix()` (pbm/compress/compress.go): gzip and pgzip → .gz, none → nothing. */
export function pbmSuffix(compression: PbmFixtureCompression): string {
  return compression === 'gzip' ? '.gz' : compression === 's2' ? '.s2' : '';
}

/** CRC-32C (Castagnoli), bit by bit: a second implementation, independent of the product's tables. */
function crc32c(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * An S2 stream as PBM writes it at compression level 1 (`s2.WriterUncompressed()`, pbm/compress/compress.go):
 * the `S2sTwO` stream identifier, then uncompressed chunks (type 0x01, 3-byte little-endian length,
 * masked CRC-32C of the data, the data), each at most 4 MiB (S2 README "Format Extensions").
 */
function s2Uncompressed(data: Buffer, chunkSize = 64 * 1024): Buffer {
  const parts: Buffer[] = [Buffer.from([0xff, 0x06, 0x00, 0x00, ...Buffer.from('S2sTwO', 'latin1')])];
  for (let at = 0; at < data.length; at += chunkSize) {
    const piece = data.subarray(at, Math.min(at + chunkSize, data.length));
    const crc = crc32c(piece);
    const masked = ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
    const header = Buffer.alloc(8);
    const length = piece.length + 4;
    header[0] = 0x01;
    header.writeUIntLE(length, 1, 3);
    header.writeUInt32LE(masked, 4);
    parts.push(header, piece);
  }
  return Buffer.concat(parts);
}

function compress(data: Buffer, compression: PbmFixtureCompression): Buffer {
  return compression === 'gzip' ? zlib.gzipSync(data) : compression === 's2' ? s2Uncompressed(data) : data;
}

/** `FormatChunkName` (pbm/backup/chunk.go): start and end as UTC 20060102150405, each with `-<I>`. */
export function pbmChunkName(start: GoTimestamp, end: GoTimestamp, compression: PbmFixtureCompression): string {
  const stamp = (ts: GoTimestamp) => `${new Date(ts.T * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${ts.I}`;
  return `${stamp(start)}.${stamp(end)}${pbmSuffix(compression)}`;
}

/** metadata.json: canonical Extended JSON of archiveMeta, tab-indented (pbm/archive/archive.go `writeMetadata`). */
function archiveMetadata(replset: PbmFixtureReplset, version: string): string {
  const meta = {
    concurrent_collections: {$numberInt: '1'},
    version: '0.1',
    server_version: '7.0.14',
    tool_version: version,
    namespaces: replset.namespaces.map((ns) => ({
      db: ns.db,
      collection: ns.collection,
      metadata: ns.metadata,
      type: 'collection',
      crc: {$numberLong: '0'},
      size: {$numberLong: String(ns.docs.reduce((sum, doc) => sum + doc.length, 0))},
    })),
  };
  return JSON.stringify(meta, null, '\t');
}

/** Compares dotted versions: PBM picks the layout by `pbm_version` (pbm/version/version.go). */
function versionAtLeast(version: string, wanted: string): boolean {
  const a = version.split('.').map(Number);
  const b = wanted.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * meta.pbm (PBM ≥ 2.8): BSON of ArchiveMetaV2 {version, serverVersion, fcv, specifications[]}
 * (pbm/archive/backup.go `writeMeta`), never compressed; metadata.json is then generated from it
 * (pbm/archive/conv.go `GenerateV1FromV2`, two-space indent; each namespace's metadata is the
 * canonical Extended JSON of {options?, indexes, uuid?, collectionName, type}).
 */
function archiveMetaV2(replset: PbmFixtureReplset, version: string): {metaPbm: Buffer; metadataJson: string} {
  const specs = replset.namespaces.map((ns) => {
    const parsed = EJSON.parse(ns.metadata, {relaxed: false}) as {options?: Record<string, unknown>; indexes?: unknown[]; uuid?: string; type?: string};
    return {
      db: ns.db,
      name: ns.collection,
      type: parsed.type ?? 'collection',
      ...(parsed.uuid ? {uuid: parsed.uuid} : {}),
      ...(parsed.options && Object.keys(parsed.options).length > 0 ? {options: parsed.options} : {}),
      indexes: parsed.indexes ?? [],
      crc: Long.fromBigInt(BigInt.asIntN(64, crc64(Buffer.concat(ns.docs)))),
      size: Long.fromNumber(ns.docs.reduce((sum, doc) => sum + doc.length, 0)),
    };
  });
  const metaPbm = Buffer.from(BSON.serialize({version, serverVersion: '7.0.14', fcv: '7.0', specifications: specs}));
  const v1 = {
    concurrent_collections: {$numberInt: '1'},
    version: '0.1',
    server_version: '7.0.14',
    tool_version: version,
    namespaces: specs.map((spec) => ({
      db: spec.db,
      collection: spec.name,
      metadata: EJSON.stringify({...(spec.options ? {options: spec.options} : {}), indexes: spec.indexes, ...(spec.uuid ? {uuid: spec.uuid} : {}), collectionName: spec.name, type: spec.type}, {relaxed: false}),
      size: {$numberLong: spec.size.toString()},
      type: spec.type,
      crc: {$numberLong: spec.crc.toString()},
    })),
  };
  return {metaPbm, metadataJson: JSON.stringify(v1, null, '  ')};
}

/** The collection metadata string a PBM ≥ 2.8 backup carries for `ns` in metadata.json. */
export function pbmV2MetadataString(ns: PbmFixtureNamespace): string {
  const parsed = JSON.parse(archiveMetaV2({name: 'rs', namespaces: [ns]}, '2.8.0').metadataJson) as {namespaces: Array<{metadata: string}>};
  return parsed.namespaces[0]!.metadata;
}

/**
 * Writes one backup under `root` and returns the keys it wrote (relative, '/'-separated):
 * `<name>.pbm.json` (Go encoding/json of BackupMeta, pbm/backup/types.go, tab indent), and per
 * replica set `<name>/<rs>/metadata.json`, `<name>/<rs>/<db>.<coll><ext>` (raw concatenated BSON,
 * pbm/archive/backup.go; no file for an empty collection) and `<name>/<rs>/oplog/<chunk>`.
 */
export async function writePbmBackup(root: string, backup: PbmFixtureBackup): Promise<string[]> {
  const compression = backup.compression ?? 'gzip';
  const version = backup.pbmVersion ?? '2.5.0';
  const type = backup.type ?? 'logical';
  const status = backup.status ?? 'done';
  const keys: string[] = [];
  const put = async (key: string, data: Buffer | string) => {
    const file = path.join(root, ...key.split('/'));
    await mkdir(path.dirname(file), {recursive: true});
    await writeFile(file, data);
    keys.push(key);
  };
  const startTs = backup.firstWrite.T - 5;
  const replsets = [];
  for (const rs of backup.replsets) {
    const base = `${backup.name}/${rs.name}`;
    let dumpName = `${base}/metadata.json`;
    let oplogName = `${base}/oplog`;
    if (type === 'logical' && !versionAtLeast(version, '2.0.0')) {
      // Before 2.0 (v1.8.1 `getDstName`): one mongodump archive and one oplog file per replica set, beside the metadata.
      dumpName = `${backup.name}_${rs.name}.dump${pbmSuffix(compression)}`;
      oplogName = `${backup.name}_${rs.name}.oplog${pbmSuffix(compression)}`;
      const archive = buildArchive(rs.namespaces.map((ns) => ({db: ns.db, collection: ns.collection, docs: ns.docs, metadata: ns.metadata})), {crc: (docs) => crc64(Buffer.concat(docs))});
      await put(dumpName, compress(archive, compression));
      await put(oplogName, compress(Buffer.concat(rs.oplog ?? []), compression));
    } else if (type === 'logical') {
      for (const ns of rs.namespaces) {
        if (ns.docs.length === 0) continue;
        const key = `${base}/${ns.db}.${ns.collection}${pbmSuffix(compression)}`;
        const data = compress(Buffer.concat(ns.docs), compression);
        // pbm/storage/split_merge_mw.go: the first part keeps the name, the next are <file>.pbmpart.1, .2 …
        const size = backup.splitAt ?? data.length;
        for (let at = 0, index = 0; at < data.length; at += size, index++) {
          await put(index === 0 ? key : `${key}.pbmpart.${index}`, data.subarray(at, at + size));
        }
      }
      // metadata.json and meta.pbm are never compressed (the dump writer adds no suffix for them,
      // pbm/backup/logical.go; `if ns == archive.MetaFileV2 { compression = none }`).
      if (versionAtLeast(version, '2.8.0')) {
        const v2 = archiveMetaV2(rs, version);
        await put(`${base}/meta.pbm`, v2.metaPbm);
        await put(`${base}/metadata.json`, v2.metadataJson);
      } else {
        await put(`${base}/metadata.json`, archiveMetadata(rs, version));
      }
      const oplog = compress(Buffer.concat(rs.oplog ?? []), compression);
      if (versionAtLeast(version, '2.4.0')) {
        const entries = rs.oplog ?? [];
        if (entries.length < 3) {
          await put(`${oplogName}/${pbmChunkName(backup.firstWrite, backup.lastWrite, compression)}`, oplog);
        } else {
          // Two chunks sharing their boundary entry, as PBM's slicer cuts them (the next starts at the
          // previous end, pbm/slicer/slicer.go), each named by its first and last entry.
          const middle = Math.floor(entries.length / 2);
          for (const part of [entries.slice(0, middle + 1), entries.slice(middle)]) {
            const tsOf = (doc: Buffer) => {
              const ts = (BSON.deserialize(doc) as {ts: Timestamp}).ts;
              return {T: ts.high, I: ts.low};
            };
            await put(`${oplogName}/${pbmChunkName(tsOf(part[0]!), tsOf(part[part.length - 1]!), compression)}`, compress(Buffer.concat(part), compression));
          }
        }
      } else {
        // 2.0 – 2.3 (`IsLegacyBackupOplog`): one oplog file, OplogName = <name>/<rs>/local.oplog.rs.bson<ext>.
        oplogName = `${base}/local.oplog.rs.bson${pbmSuffix(compression)}`;
        await put(oplogName, oplog);
      }
    } else {
      await put(`${base}/WiredTiger${pbmSuffix(compression)}`, compress(Buffer.from('WiredTiger\nWiredTiger 11.2.0\n'), compression));
    }
    replsets.push({
      name: rs.name,
      ...(type === 'logical' ? {backup_name: dumpName, oplog_name: oplogName} : {}),
      start_ts: startTs,
      status: rs.status ?? status,
      size: 0,
      size_uncompressed: 0,
      last_transition_ts: backup.lastWrite.T + 2,
      first_write_ts: backup.firstWrite,
      last_write_ts: backup.lastWrite,
      node: `${rs.name}-0.example:27017`,
      conditions: [{timestamp: startTs, status: 'starting'}],
    });
  }
  const meta = {
    type,
    opid: '6750a1b2c3d4e5f601234567',
    name: backup.name,
    ...(backup.nss && backup.nss.length > 0 ? {nss: backup.nss} : {}),
    replsets,
    compression,
    store: {type: 'filesystem', filesystem: {path: '/backups'}},
    size: 0,
    size_uncompressed: 0,
    mongodb_version: '7.0.14-8',
    fcv: '7.0',
    start_ts: startTs,
    last_transition_ts: backup.lastWrite.T + 2,
    first_write_ts: backup.firstWrite,
    last_write_ts: backup.lastWrite,
    hb: backup.lastWrite,
    status,
    conditions: [{timestamp: startTs, status: 'starting'}],
    n: null,
    pbm_version: version,
    balancer: '',
  };
  await put(`${backup.name}.pbm.json`, JSON.stringify(meta, null, '\t'));
  return keys;
}

/** Copies a storage folder written above into an S3 bucket under `prefix`, keys as PBM's S3 storage has them (`path.Join(prefix, name)`). */
export async function uploadStorage(client: S3Client, bucket: string, prefix: string, root: string): Promise<string[]> {
  const keys: string[] = [];
  const walk = async (folder: string, relative: string): Promise<void> => {
    for (const entry of await readdir(folder, {withFileTypes: true})) {
      const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) await walk(path.join(folder, entry.name), key);
      else {
        await client.send(new PutObjectCommand({Bucket: bucket, Key: `${prefix}${key}`, Body: await readFile(path.join(folder, entry.name))}));
        keys.push(key);
      }
    }
  };
  await walk(root, '');
  return keys;
}
