import {stat} from 'node:fs/promises';
import path from 'node:path';

import type {Backup, BackupChoice} from '../catalog/list.js';
import type {BackupStore} from '../catalog/store.js';
import type {Settings} from '../config/settings.js';
import {localSource} from '../dump/local-source.js';
import type {DumpInput, DumpStreamSource} from '../dump/types.js';
import {GravityError} from '../errors.js';
import type {ExtractInput} from './extract.js';

/**
 * The catalog (listing, fetching, the tar member index) loads only for a backup id: a local path,
 * the common case on a laptop, needs none of it, and the command's start-up is what a reader waits for.
 */
const catalog = () => import('../catalog/list.js');

export interface OpenedSource {
  store: BackupStore;
  backups: Backup[];
}

/** The configured backup source, listed. */
export async function openSource(settings: Settings): Promise<OpenedSource> {
  if (!settings.source) {
    throw new GravityError('SOURCE_MISSING', 'No backup source configured', {
      hint: 'Pass --source s3://bucket/prefix/ (or a local folder), or set GRAVITY_RESTORE_SOURCE',
    });
  }
  // The S3 client loads with the first look at the source: a local --from never needs it.
  const {openStore} = await import('../catalog/store.js');
  const store = openStore(settings.source, {endpoint: settings.endpoint, region: settings.region});
  const {listBackups} = await catalog();
  const backups = await listBackups(store, {sourceTz: settings.sourceTz, cacheDir: settings.cache});
  return {store, backups};
}

async function localPath(p: string): Promise<{path: string; size: number; dir: boolean} | null> {
  try {
    const s = await stat(p);
    return {path: path.resolve(p), size: s.size, dir: s.isDirectory()};
  } catch {
    return null;
  }
}

/** Objects of a backup as stream sources: read straight from the store, no full download first. */
export function streamSources(store: BackupStore, backup: Backup): DumpStreamSource[] {
  return backup.objects
    .filter((o) => !/\.(sha256|md5)$/.test(o.key))
    .map((o) => ({name: o.key, size: o.size, open: () => store.open(o.key)}));
}

/**
 * `--from` is a local path (folder, tarball, archive, .bson) when one exists, else a backup id
 * (or `latest`) in the configured source.
 */
/**
 * Where a backup is read from; `files` names the local files of a cached backup (another thread can
 * open them); `choice` says which backup a time given in place of an id selected.
 */
export type ResolvedInput = ExtractInput & {backupInfo: Backup | null; readFrom: 'local' | 'cache' | 'stream'; files?: Array<{name: string; path: string}>; choice?: BackupChoice};

/** A name only a path has (./x, ../x, /x, ~/x, C:\x): never a backup id, so a missing one is a missing file. */
export function looksLikePath(text: string): boolean {
  return /^(\.{1,2}[\\/]|[\\/]|~[\\/]|[A-Za-z]:[\\/])/.test(text) || text === '.' || text === '..';
}

/** The zone a time given in place of a backup id is read in when it has no offset: --tz when given, else the source's. */
export function backupTimeZone(settings: Settings): string {
  return settings.tzGiven ? settings.tz : settings.sourceTz;
}

export async function resolveInput(from: string, settings: Settings): Promise<ResolvedInput> {
  const local = await localPath(from);
  const pbm = local?.dir ? await localPbmBackup(local.path, settings) : null;
  if (pbm) return pbm;
  if (local) {
    return {input: local.path, backup: null, location: local.path, takenAt: null, objects: [{key: path.basename(local.path), size: local.size}], backupInfo: null, readFrom: 'local'};
  }
  if (looksLikePath(from)) {
    throw new GravityError('SOURCE_NOT_FOUND', `No such file or folder: ${from} (${path.resolve(from)})`, {
      hint: 'Check the path; a backup of the source is named by its id from `gravity-restore list`, or a time',
    });
  }
  if (!settings.source) {
    throw new GravityError('SOURCE_NOT_FOUND', `${from} is not a local path, and no backup source is configured to look it up as a backup id`, {
      hint: 'Pass a path that exists, or --source s3://bucket/prefix/ (GRAVITY_RESTORE_SOURCE) with a backup id from `gravity-restore list`',
    });
  }
  const {store, backups} = await openSource(settings);
  const {chooseBackup} = await catalog();
  const {backup, choice} = await chooseBackup(store, backups, from, {sourceTz: settings.sourceTz, timeZone: backupTimeZone(settings), cacheDir: settings.cache});
  return {...(await inputForBackup(store, backup, settings)), ...(choice ? {choice} : {})};
}

/**
 * A local folder that is PBM storage, or one backup's folder in it (`<name>/` beside `<name>.pbm.json`):
 * read as that backup of a folder source. Storage holding several backups needs the one to read named.
 */
async function localPbmBackup(folder: string, settings: Settings): Promise<ResolvedInput | null> {
  const {readdir} = await import('node:fs/promises');
  const parent = path.dirname(folder);
  const name = path.basename(folder);
  const besideMeta = (await stat(path.join(parent, `${name}.pbm.json`)).catch(() => null))?.isFile() === true;
  const metas = besideMeta ? [] : (await readdir(folder).catch(() => [] as string[])).filter((entry) => entry.endsWith('.pbm.json'));
  if (!besideMeta && metas.length === 0) return null;
  const {openStore} = await import('../catalog/store.js');
  const store = openStore(besideMeta ? parent : folder, {});
  const {listBackups} = await catalog();
  const backups = await listBackups(store, {sourceTz: settings.sourceTz, cacheDir: settings.cache});
  const id = besideMeta ? name : metas.length === 1 ? metas[0]!.slice(0, -'.pbm.json'.length) : null;
  const backup = id === null ? undefined : backups.find((b) => b.id === id);
  if (!backup) {
    const names = metas.map((m) => m.slice(0, -'.pbm.json'.length)).sort().reverse();
    throw new GravityError('USAGE', `${folder} is Percona Backup for MongoDB storage holding ${names.length} backups`, {
      hint: `Name one: --source ${folder} with a backup id (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}), or the path ${path.join(folder, names[0] ?? '')}`,
    });
  }
  return inputForBackup(store, backup, settings);
}

/** Local files read as a backup's objects, by name (a fetched backup's cache, on whichever thread reads it). */
export function fileSources(files: Array<{name: string; path: string}>): DumpStreamSource[] {
  return files.map((f) => localSource(f.path, f.name));
}

/** A backup of the source as an extract input: from the cache when fetched earlier, else streamed. */
export async function inputForBackup(store: BackupStore, backup: Backup, settings: Settings): Promise<ResolvedInput & {backupInfo: Backup; readFrom: 'cache' | 'stream'}> {
  // A backup fetched earlier is read from the cache; otherwise it streams from the store
  // (GetObject → gunzip → tar → documents), with no full download first.
  const {cachedBackupFiles} = await import('../catalog/fetch.js');
  const cached = await cachedBackupFiles(store, backup, settings.cache);
  let files = cached?.map((f) => ({name: f.key, path: f.path}));
  let input: DumpInput;
  if (backup.pbm) {
    // A PBM backup is read through its own layout; its files are not a dump folder for another thread.
    const {pbmDumpSources} = await import('../dump/pbm-input.js');
    const paths = new Map(files?.map((f) => [f.name, f.path]));
    input = await pbmDumpSources(backup, (key) => store.open(key), (key) => paths.get(key) ?? (store.kind === 'local' && store.localPath ? store.localPath(key) : undefined));
    files = undefined;
  } else {
    input = files ? fileSources(files) : streamSources(store, backup);
  }
  return {
    input,
    backup: backup.id,
    location: `${store.location}${store.location.endsWith('/') ? '' : '/'}${backup.id}`,
    takenAt: backup.takenAt.toISOString(),
    readFrom: cached ? 'cache' : 'stream',
    ...(files ? {files} : {}),
    objects: backup.objects.map((o) => ({key: o.key, size: o.size, ...(o.etag ? {etag: o.etag} : {})})),
    backupInfo: backup,
  };
}

/**
 * The newest backup of the source taken at or before `from` (and not `from` itself) that holds
 * `collection`, or null: where a dependent an hourly backup lacks comes from.
 */
export async function olderBackupHolding(from: Backup, collection: string, settings: Settings, signal?: AbortSignal): Promise<(ExtractInput & {backupInfo: Backup}) | null> {
  const {store, backups} = await openSource(settings);
  const candidates = backups.filter((b) => b.id !== from.id && b.takenAt.getTime() <= from.takenAt.getTime());
  const {selectBackup} = await catalog();
  const found = await selectBackup(store, candidates, {before: from.takenAt, collection, cacheDir: settings.cache, ...(signal ? {signal} : {})});
  return found ? inputForBackup(store, found, settings) : null;
}
