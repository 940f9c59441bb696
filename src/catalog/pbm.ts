/**
 * Percona Backup for MongoDB (PBM) storage in a source: each backup is announced by a
 * `<name>.pbm.json` at the storage root (Go encoding/json of BackupMeta, PBM pbm/backup/types.go)
 * and its files live under `<name>/<rs>/`. Such a backup is listed by its metadata, not by the
 * time in its folder name: its consistent time is `last_write_ts`.
 */

import {GravityError} from '../errors.js';
import type {Backup, BackupObject} from './list.js';
import {parseBackupName} from './names.js';
import type {BackupStore, StoreObject} from './store.js';

export interface PbmTimestamp {
  T: number;
  I: number;
}

export interface PbmReplset {
  name: string;
  status: string;
  /** `<name>/<rs>/metadata.json` (Go field DumpName, JSON key `backup_name`). */
  dumpName: string | null;
  oplogName: string | null;
}

export interface PbmBackupInfo {
  name: string;
  /** logical | physical | incremental | external */
  type: string;
  /** done | error | cancelled | running … */
  status: string;
  compression: string;
  pbmVersion: string;
  /** Namespaces of a selective backup; null for a full one. */
  selective: string[] | null;
  lastWriteTs: PbmTimestamp | null;
  replsets: PbmReplset[];
  error: string | null;
  /** Why the metadata could not be read; the backup is then listed but never read. */
  invalid: string | null;
}

const META_SUFFIX = '.pbm.json';
/** Point-in-time chunks (defs.PITRfsPrefix) and PBM's storage marker are not backups. */
const PBM_SERVICE = /^(pbmPitr\/|\.pbm\.init$)/;

function isTimestamp(value: unknown): value is PbmTimestamp {
  const ts = value as PbmTimestamp | null;
  return typeof ts === 'object' && ts !== null && Number.isInteger(ts.T) && Number.isInteger(ts.I);
}

/** The metadata of one backup, or `invalid` saying what is wrong with it. */
export function parsePbmMeta(name: string, text: string): PbmBackupInfo {
  const info: PbmBackupInfo = {name, type: 'unknown', status: 'unknown', compression: 'none', pbmVersion: '', selective: null, lastWriteTs: null, replsets: [], error: null, invalid: null};
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(text) as Record<string, unknown>;
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error('not a JSON object');
  } catch (error) {
    return {...info, invalid: `${name}${META_SUFFIX} is not valid JSON (${(error as Error).message})`};
  }
  const problems: string[] = [];
  const text_ = (key: string): string => {
    const value = meta[key];
    if (typeof value !== 'string') problems.push(`"${key}" is missing or not a string`);
    return typeof value === 'string' ? value : '';
  };
  info.type = text_('type') || 'unknown';
  info.status = text_('status') || 'unknown';
  info.compression = typeof meta.compression === 'string' && meta.compression !== '' ? meta.compression : 'none';
  info.pbmVersion = typeof meta.pbm_version === 'string' ? meta.pbm_version : '';
  if (typeof meta.error === 'string' && meta.error !== '') info.error = meta.error;
  if (meta.name !== undefined && meta.name !== name) problems.push(`"name" is ${JSON.stringify(meta.name)}, not ${JSON.stringify(name)}`);
  if (Array.isArray(meta.nss) && meta.nss.length > 0) info.selective = meta.nss.filter((ns): ns is string => typeof ns === 'string');
  if (isTimestamp(meta.last_write_ts)) info.lastWriteTs = {T: meta.last_write_ts.T, I: meta.last_write_ts.I};
  else problems.push('"last_write_ts" is not a {"T","I"} timestamp');
  if (!Array.isArray(meta.replsets) || meta.replsets.length === 0) {
    problems.push('"replsets" is missing or empty');
  } else {
    for (const rs of meta.replsets as Array<Record<string, unknown>>) {
      if (typeof rs !== 'object' || rs === null || typeof rs.name !== 'string' || rs.name === '' || rs.name.includes('/')) {
        problems.push('a replica set has no valid "name"');
        continue;
      }
      info.replsets.push({
        name: rs.name,
        status: typeof rs.status === 'string' ? rs.status : 'unknown',
        dumpName: typeof rs.backup_name === 'string' && rs.backup_name !== '' ? rs.backup_name : null,
        oplogName: typeof rs.oplog_name === 'string' && rs.oplog_name !== '' ? rs.oplog_name : null,
      });
    }
  }
  if (problems.length > 0) info.invalid = `${name}${META_SUFFIX} is not PBM backup metadata: ${problems.join('; ')}`;
  return info;
}

/** Whether a PBM backup can be read for documents; otherwise why not (one line, with the next step). */
export function pbmRefusal(info: PbmBackupInfo): {code: 'DUMP_CORRUPT' | 'DUMP_UNKNOWN_FORMAT'; message: string; hint: string} | null {
  if (info.invalid) return {code: 'DUMP_CORRUPT', message: info.invalid, hint: 'Pick another backup (`gravity-restore list`); `pbm list` shows what PBM knows of this one'};
  if (info.type !== 'logical') {
    return {
      code: 'DUMP_UNKNOWN_FORMAT',
      message: `PBM backup ${info.name} is a ${info.type} backup: it holds WiredTiger data files, not documents`,
      hint: 'Use a logical PBM backup (pbm backup --type logical), or restore this one with pbm and extract from that server',
    };
  }
  if (info.status !== 'done') {
    return {
      code: 'DUMP_CORRUPT',
      message: `PBM backup ${info.name} has status "${info.status}"${info.error ? ` (${info.error})` : ''}, not "done": it is incomplete`,
      hint: 'Pick a backup whose status is done (`gravity-restore list` shows the status)',
    };
  }
  return null;
}

/** Why `--before`, `latest` or a time must pass over this backup; null when it can be chosen. */
export function pbmSkipReason(info: PbmBackupInfo): string | null {
  const refusal = pbmRefusal(info);
  return refusal ? refusal.message : null;
}

/** Before PBM 2.0 a logical backup was one mongodump archive per replica set (`IsLegacyArchive`, pbm/version/version.go). */
export function isLegacyArchive(info: PbmBackupInfo): boolean {
  return /^[01]\./.test(info.pbmVersion);
}

/** `<db>.<coll>` of a namespace file name: database names hold no dot, collection names may. */
export function pbmNamespaceOfFile(file: string, suffix: string): {db: string; collection: string} | null {
  if (suffix !== '' && !file.endsWith(suffix)) return null;
  const stem = suffix === '' ? file : file.slice(0, -suffix.length);
  // local.oplog.rs.bson is the backup's oplog in the 2.0 – 2.3 layout; PBM never dumps the local database.
  if (stem === 'metadata.json' || stem === 'meta.pbm' || stem === 'local.oplog.rs.bson' || /\.pbmpart\.\d+$/.test(stem)) return null;
  const dot = stem.indexOf('.');
  if (dot <= 0 || dot === stem.length - 1) return null;
  return {db: stem.slice(0, dot), collection: stem.slice(dot + 1)};
}

/** `CompressionType.Suffix()` (pbm/compress/compress.go). */
export function pbmSuffix(compression: string): string {
  switch (compression) {
    case 'gzip':
    case 'pgzip':
      return '.gz';
    case 'snappy':
      return '.snappy';
    case 'lz4':
      return '.lz4';
    case 's2':
      return '.s2';
    case 'zstd':
      return '.zst';
    default:
      return '';
  }
}

/** The namespace files of one replica set of a logical backup (≥ 2.0 layout: `<name>/<rs>/<db>.<coll><ext>`). */
export function pbmNamespaceFiles(backup: Backup, info: PbmBackupInfo, rs: string): Array<{key: string; size: number; db: string; collection: string}> {
  const folder = `${info.name}/${rs}/`;
  const suffix = pbmSuffix(info.compression);
  const out: Array<{key: string; size: number; db: string; collection: string}> = [];
  const sizes = new Map(backup.objects.map((object) => [object.key, object.size]));
  for (const object of backup.objects) {
    if (!object.key.startsWith(folder)) continue;
    const file = object.key.slice(folder.length);
    if (file.includes('/')) continue;
    const ns = pbmNamespaceOfFile(file, suffix);
    if (!ns) continue;
    const size = pbmParts(object.key, sizes).reduce((total, part) => total + (sizes.get(part) ?? 0), 0);
    out.push({key: object.key, size, ...ns});
  }
  return out;
}

/**
 * A file and the parts it was split into past the storage's object size limit: `<file>`,
 * `<file>.pbmpart.1`, `.2` … up to the first one missing (pbm/storage/split_merge_mw.go), read one after the other.
 */
export function pbmParts(key: string, present: {has(key: string): boolean}): string[] {
  const parts = [key];
  for (let index = 1; present.has(`${key}.pbmpart.${index}`); index++) parts.push(`${key}.pbmpart.${index}`);
  return parts;
}

export interface PbmScan {
  backups: Backup[];
  /** Keys that belong to PBM (its backups, its point-in-time chunks): not to be grouped as other backups. */
  claimed: Set<string>;
}

function toBackupObject(object: StoreObject): BackupObject {
  const entry: BackupObject = {key: object.key, size: object.size};
  if (object.etag !== undefined) entry.etag = object.etag;
  if (object.lastModified) entry.lastModified = object.lastModified.toISOString();
  return entry;
}

async function readText(store: BackupStore, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.open(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The PBM backups of a source, from its `<name>.pbm.json` files (one small read each). */
export async function scanPbm(store: BackupStore, objects: StoreObject[]): Promise<PbmScan> {
  const claimed = new Set<string>();
  const backups: Backup[] = [];
  const metas = objects.filter((object) => object.key.endsWith(META_SUFFIX) && !object.key.includes('/'));
  if (metas.length === 0) return {backups, claimed};
  for (const object of objects) if (PBM_SERVICE.test(object.key)) claimed.add(object.key);
  // Small reads, one per backup: a few at a time, so a bucket of hundreds lists in a few round trips.
  const texts: string[] = new Array<string>(metas.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < metas.length; index = next++) texts[index] = await readText(store, metas[index]!.key);
  };
  await Promise.all(Array.from({length: Math.min(8, metas.length)}, worker));
  for (const [index, metaObject] of metas.entries()) {
    const name = metaObject.key.slice(0, -META_SUFFIX.length);
    const info = parsePbmMeta(name, texts[index]!);
    // Before 2.0 a backup was one archive per replica set beside the metadata: <name>_<rs>.dump<ext>.
    const legacy = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}_[^/]+\\.(dump|oplog)`);
    const members = objects.filter((object) => object.key === metaObject.key || object.key.startsWith(`${name}/`) || legacy.test(object.key));
    for (const member of members) claimed.add(member.key);
    const named = parseBackupName(name, 'UTC');
    const consistent = info.lastWriteTs && info.lastWriteTs.T > 0 ? new Date(info.lastWriteTs.T * 1000) : null;
    const takenAt = consistent ?? named?.takenAt ?? metaObject.lastModified ?? new Date(0);
    const backup: Backup = {
      id: name,
      kind: 'unknown',
      takenAt,
      size: members.reduce((total, member) => total + member.size, 0),
      objects: members.map(toBackupObject),
      collections: null,
      namespaces: null,
      warnings: [],
      pbm: info,
    };
    if (info.type === 'logical' && !info.invalid && !isLegacyArchive(info)) {
      const namespaces = new Set<string>();
      for (const rs of info.replsets) for (const file of pbmNamespaceFiles(backup, info, rs.name)) namespaces.add(`${file.db}.${file.collection}`);
      backup.namespaces = [...namespaces].sort();
      backup.collections = [...new Set(backup.namespaces.map((ns) => ns.slice(ns.indexOf('.') + 1)))].sort();
    }
    if (info.invalid) backup.warnings.push(info.invalid);
    backups.push(backup);
  }
  return {backups, claimed};
}

/** Thrown where a PBM backup that cannot be read is asked for. */
export function refusePbm(info: PbmBackupInfo): void {
  const refusal = pbmRefusal(info);
  if (refusal) throw new GravityError(refusal.code, refusal.message, {hint: refusal.hint});
}
