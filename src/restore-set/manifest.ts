import {createHash} from 'node:crypto';
import {readFile, realpath} from 'node:fs/promises';
import path from 'node:path';

import {GravityError} from '../errors.js';
import {splitDocuments} from '../dump/split.js';

/** A relation: documents of `to` whose `foreignField` holds the `localField` of a `from` document depend on it. */
export interface Relation {
  from: string;
  to: string;
  foreignField: string;
  localField?: string;
}

export interface ManifestCollection {
  db: string;
  collection: string;
  documents: number;
  bytes: number;
  /** Path relative to the set folder, e.g. `dump/gravity/artworks.bson`. */
  file: string;
  sha256: string;
  metadataFile: string | null;
  metadataSha256: string | null;
  /** Documents read from the backup for this collection (matched or not). */
  scanned?: number;
  /** How this collection was selected: the query, or a relation from a parent. */
  selectedBy: 'query' | {relation: Relation; level: number};
  /**
   * Where this collection was read from when it is not the set's source backup: a dependent the
   * source backup does not hold, taken from the newest older backup of the same source that does.
   */
  from?: {backup: string | null; location: string; takenAt: string | null; olderByMs: number | null};
  /** With --at: how the collection's documents at TIME came about (before the query selected from them). */
  fromBackup?: number;
  replayed?: number;
  createdAfterBackup?: number;
  deletedBeforeAt?: number;
}

/** `extract --at`: the state at TIME rebuilt from a base backup and the oplog. */
export interface ManifestPointInTime {
  /** TIME (ISO UTC of its second) and the optime replay stopped before. */
  at: string;
  atOpTime: {t: number; i: number};
  /** The base backup, and the optime replay started at (its oplog's first entry, or its taken-at). */
  base: {backup: string | null; location: string; takenAt: string | null; from: {t: number; i: number}; fromOplog: boolean};
  oplog: {sources: string[]; from: {t: number; i: number} | null; to: {t: number; i: number} | null; operations: number};
  /** --changed-between: documents changed by operations in [since, until) (only those fields, with fields). */
  changedBetween?: {since: {t: number; i: number}; until: {t: number; i: number}; fields: string[] | null};
}

/** `extract --missing-in X / --changed-in X`: what the selection was compared with, and what it found. */
export interface ManifestComparison {
  /** Which verdicts kept a document: absent from X, present but different in X. */
  keep: Array<'missing' | 'changed'>;
  against: {kind: 'backup' | 'target'; label: string; backup?: string | null; location?: string; takenAt?: string | null; target?: string; db?: string};
  /** Per collection, of the documents the query (and relations) selected: the verdicts, and how many were kept. */
  counts: Record<string, {missing: number; changed: number; same: number; kept: number}>;
}

export interface ManifestSourceObject {
  key: string;
  size: number;
  etag?: string;
  sha256?: string;
}

/** With extract --at, the manifest also holds the fields of ManifestPointInTime (at, base, oplog…). */
export interface Manifest extends Partial<ManifestPointInTime> {
  formatVersion: 1;
  tool: {name: string; version: string};
  createdAt: string;
  source: {
    /** Backup id when read from a catalog, else null. */
    backup: string | null;
    /** Local path or URL read. */
    location: string;
    takenAt: string | null;
    objects: ManifestSourceObject[];
  };
  query: {collection: string; text: string; canonical: string};
  engine: 'stream' | 'mongod';
  follow: boolean;
  relations: Relation[];
  /** Collection names, parents before dependents: the order push writes them in. */
  order: string[];
  collections: Record<string, ManifestCollection>;
  timings?: Record<string, number>;
  /** Documents were kept only when missing from / changed in another backup or a target. */
  comparison?: ManifestComparison[];
  /** When the incident happened (ISO UTC), as given to extract --incident-at. */
  incidentAt?: string;
  warnings?: string[];
}

export interface RestoreSet {
  dir: string;
  manifest: Manifest;
  /** sha256 of the manifest's canonical JSON: identifies the set. */
  hash: string;
}

/** JSON with object keys sorted, so the same manifest always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

export function manifestHash(manifest: Manifest): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

export const MANIFEST_FILE = 'manifest.json';

export async function readRestoreSet(dir: string): Promise<RestoreSet> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new GravityError('SET_INVALID', code === 'ENOENT' ? `Not a restore set: ${file} not found` : `Cannot read ${file}: ${code}`, {
      hint: 'Create one with `gravity-restore extract --out DIR`',
    });
  }
  let manifest: Manifest;
  try {
    manifest = JSON.parse(text) as Manifest;
  } catch {
    throw new GravityError('SET_INVALID', `Restore set manifest ${file} is not valid JSON`, {hint: 'Extract the set again'});
  }
  if (manifest.formatVersion !== 1 || !manifest.collections || !Array.isArray(manifest.order)) {
    throw new GravityError('SET_INVALID', `Restore set manifest ${file} has an unknown layout`, {hint: 'Extract the set again with this version'});
  }
  const root = path.resolve(dir);
  await assertPathsInside(root, manifest);
  return {dir: root, manifest, hash: manifestHash(manifest)};
}

/**
 * Every path the manifest names must stay inside the set: relative, no `..` out of it, and no
 * symbolic link that leads out of it. A manifest edited to name `../../etc/secret.bson` (with that
 * file's sha256) would otherwise have a push write another file's documents.
 */
async function assertPathsInside(root: string, manifest: Manifest): Promise<void> {
  const realRoot = await realpath(root);
  const tampered = (what: string, problem: string) =>
    new GravityError('SET_INVALID', `Restore set tampered with: ${what} ${problem}`, {hint: 'Do not edit a restore set by hand; extract it again'});
  for (const [name, entry] of Object.entries(manifest.collections)) {
    if (!entry || typeof entry !== 'object') throw tampered(`manifest.json collection ${name}`, 'is not an object');
    for (const [field, value] of [['file', entry.file], ['metadataFile', entry.metadataFile]] as const) {
      if (value === null && field === 'metadataFile') continue;
      const what = `manifest.json ${name}.${field}`;
      if (typeof value !== 'string' || value === '') throw tampered(what, 'is not a path');
      if (path.isAbsolute(value) || path.win32.isAbsolute(value) || value.includes('\0')) throw tampered(`${what} (${value})`, 'is not a path inside the set');
      const resolved = path.resolve(root, value);
      if (!isInside(root, resolved)) throw tampered(`${what} (${value})`, 'points outside the set');
      let real: string;
      try {
        real = await realpath(resolved);
      } catch (error) {
        // A missing file is reported, with its name, by the reader that needs it.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      if (!isInside(realRoot, real)) throw tampered(`${what} (${value})`, 'leads outside the set through a symbolic link');
    }
  }
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

export function tampered(what: string, problem: string): GravityError {
  return new GravityError('SET_INVALID', `${what} ${problem} (changed after extract)`, {
    hint: 'Do not edit a restore set by hand; extract it again',
  });
}

/** Raw BSON documents of one collection of a set, verified against the manifest (sha256, size, count). */
export async function readSetDocuments(set: RestoreSet, collection: string): Promise<Buffer[]> {
  const entry = set.manifest.collections[collection];
  if (!entry) {
    throw new GravityError('UNKNOWN_COLLECTION', `Collection ${collection} is not in the restore set`, {
      hint: `The set holds: ${Object.keys(set.manifest.collections).join(', ')}`,
    });
  }
  const file = path.join(set.dir, entry.file);
  const data = await readFile(file);
  const sha = createHash('sha256').update(data).digest('hex');
  if (sha !== entry.sha256) throw tampered(entry.file, 'does not match its sha256 in the manifest');
  // The sha256 alone would accept a manifest edited to say another count or size of the same file.
  if (data.length !== entry.bytes) throw tampered(entry.file, `holds ${data.length} bytes but the manifest says ${entry.bytes}`);
  const docs = splitDocuments(data, entry.file);
  if (docs.length !== entry.documents) throw tampered(entry.file, `holds ${docs.length} documents but the manifest says ${entry.documents}`);
  return docs;
}

/** Metadata JSON text of a collection in the set (indexes and options), verified against its sha256, or null. */
export async function readSetMetadata(set: RestoreSet, collection: string): Promise<Record<string, unknown> | null> {
  const entry = set.manifest.collections[collection];
  if (!entry?.metadataFile) return null;
  const text = await readFile(path.join(set.dir, entry.metadataFile));
  // Indexes and collection options are created from this file: an edit must not slip through.
  if (entry.metadataSha256 && createHash('sha256').update(text).digest('hex') !== entry.metadataSha256) {
    throw tampered(entry.metadataFile, 'does not match its sha256 in the manifest');
  }
  return JSON.parse(text.toString('utf8')) as Record<string, unknown>;
}

/** Every file of the set checked against the manifest, before something is made from them. */
export async function verifySetFiles(set: RestoreSet): Promise<void> {
  for (const name of set.manifest.order) {
    await readSetDocuments(set, name);
    await readSetMetadata(set, name);
  }
}
