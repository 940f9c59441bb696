/**
 * From what the user typed (`--oplog SRC`, the `oplog` setting) to sources:
 * - `staging`, `production`, `mongodb://…`: that server's live oplog (live.ts);
 * - `s3://bucket/prefix/`: every `.bson`/`.bson.gz` object under it, dumps of local.oplog.rs (files.ts),
 *   or, when it holds a `mongodump --oplog` dump, that dump's oplog.bson (dump.ts);
 * - a local folder: a `mongodump --oplog` dump (it holds `oplog.bson` beside `.metadata.json` files)
 *   is read for its oplog.bson (dump.ts); any other folder for its `.bson`/`.bson.gz` files (files.ts);
 * - a local file: a `.bson`/`.bson.gz` file is one oplog dump; anything else (a tarball, an
 *   --archive) is read as a mongodump dump for its oplog.
 * A PBM chunk store (pbmPitr/<rs>/<date>/<start>.<end>.oplog<ext>, OPLOG.md §6.3) becomes one more
 * branch here: its files are lanes whose first `ts` is in their names.
 */
import {stat} from 'node:fs/promises';
import path from 'node:path';

import type {BackupStore} from '../../catalog/store.js';
import {resolveTarget, type Settings} from '../../config/settings.js';
import {GravityError} from '../../errors.js';
import type {OplogSource} from '../types.js';
import {DumpOplogSource} from './dump.js';
import {isOplogDumpName, OplogFileSet, type OplogFile} from './files.js';
import {LiveOplogSource} from './live.js';

export interface OpenedOplogSources {
  sources: OplogSource[];
  /** Ends what the sources hold open (connections to live targets). */
  close(): Promise<void>;
}

function isTargetSpec(spec: string): boolean {
  return spec === 'staging' || spec === 'production' || /^mongodb(\+srv)?:\/\//i.test(spec);
}

async function storeFiles(store: BackupStore): Promise<OplogFile[]> {
  const objects = (await store.list()).filter((o) => isOplogDumpName(o.key));
  return objects.map((o) => ({
    name: store.kind === 's3' ? `${store.location}${o.key}` : path.join(store.location, o.key),
    size: o.size,
    open: (signal?: AbortSignal) => store.open(o.key, undefined, signal),
  }));
}

/** A folder written by `mongodump --oplog`: oplog.bson at its top, collections' metadata beside it. */
async function isDumpFolder(store: BackupStore): Promise<boolean> {
  const keys = (await store.list()).map((o) => o.key);
  return keys.some((k) => /^oplog\.bson(\.gz)?$/.test(k)) && keys.some((k) => /\.metadata\.json(\.gz)?$/.test(k) && !k.startsWith('local/oplog.rs'));
}

/** One source from its spec. */
export async function openOplogSource(spec: string, settings: Settings): Promise<OplogSource> {
  const trimmed = spec.trim();
  if (isTargetSpec(trimmed)) return new LiveOplogSource(resolveTarget(trimmed, settings));
  const {openStore} = await import('../../catalog/store.js');
  if (/^s3:\/\//i.test(trimmed)) {
    const store = openStore(trimmed, {endpoint: settings.endpoint, region: settings.region});
    if (await isDumpFolder(store)) {
      // A mongodump --oplog dump under the prefix: read as the dump it is, for its oplog.bson.
      const objects = await store.list();
      return new DumpOplogSource(store.location, objects.map((o) => ({name: o.key, size: o.size, open: () => store.open(o.key)})));
    }
    const files = await storeFiles(store);
    if (files.length === 0) throw noDumps(store.location);
    return new OplogFileSet(store.location, files);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new GravityError('USAGE', `Unsupported oplog source ${trimmed}`, {hint: 'Use a file or folder of oplog dumps, s3://bucket/prefix/, staging, production or mongodb://…'});
  }
  const resolved = path.resolve(trimmed);
  const info = await stat(resolved).catch(() => null);
  if (info === null) {
    throw new GravityError('SOURCE_NOT_FOUND', `No oplog source at ${trimmed}`, {hint: 'Give a file or folder of oplog dumps, s3://bucket/prefix/, staging, production or mongodb://… to --oplog'});
  }
  if (info.isDirectory()) {
    const store = openStore(resolved, {});
    if (await isDumpFolder(store)) return new DumpOplogSource(resolved, resolved);
    const files = await storeFiles(store);
    if (files.length === 0) throw noDumps(resolved);
    return new OplogFileSet(resolved, files);
  }
  if (isOplogDumpName(resolved)) {
    const {createReadStream} = await import('node:fs');
    return new OplogFileSet(resolved, [{name: resolved, size: info.size, open: async (signal?: AbortSignal) => createReadStream(resolved, signal ? {signal} : {})}]);
  }
  return new DumpOplogSource(resolved, resolved);
}

function noDumps(where: string): GravityError {
  return new GravityError('SOURCE_NOT_FOUND', `${where} holds no oplog dumps (.bson or .bson.gz files)`, {
    hint: 'Dump the oplog with mongodump -d local -c oplog.rs --query \'{"ts": {"$gte": {"$timestamp": {"t": …, "i": …}}}}\' and point --oplog at the output',
  });
}

/**
 * The sources a command was given (`--oplog`, else GRAVITY_RESTORE_OPLOG, else the config's `oplog`),
 * each opened once. `required`: none at all is a usage error naming where to set them.
 */
export async function openOplogSources(settings: Settings, options: {required?: boolean} = {}): Promise<OpenedOplogSources> {
  if (settings.oplog.length === 0 && (options.required ?? true)) {
    throw new GravityError('USAGE', 'No oplog source given', {
      hint: 'Pass --oplog SRC (a file or folder of local.oplog.rs dumps, s3://bucket/prefix/, staging, production or mongodb://…), or set GRAVITY_RESTORE_OPLOG',
    });
  }
  const sources: OplogSource[] = [];
  const close = async () => {
    for (const source of sources) await (source as {close?: () => Promise<void>}).close?.();
  };
  try {
    for (const spec of settings.oplog) sources.push(await openOplogSource(spec, settings));
  } catch (error) {
    await close();
    throw error;
  }
  return {sources, close};
}
