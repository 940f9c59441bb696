/**
 * Listing backups and choosing one: group the objects of a source into backups by the time in
 * their names, then select by time (--before) and by the collections a backup holds.
 */

import {GravityError} from '../errors.js';
import {collectionOfNamespace, namespaceMatches, namespaceOfMember, packedFormatOf, readIndex, scanPackedObject, writeIndex} from './members.js';
import {formatInZone, kindFromWords, parseBackupName, parseUserTime, zoneOffsetMs, type BackupKind} from './names.js';
import {pbmSkipReason, scanPbm, type PbmBackupInfo} from './pbm.js';
import type {BackupStore, StoreObject} from './store.js';

export interface BackupObject {
  key: string;
  size: number;
  etag?: string;
  lastModified?: string;
}

export interface Backup {
  /** The folder prefix or object key relative to the source, without trailing '/'. */
  id: string;
  kind: BackupKind;
  takenAt: Date;
  size: number;
  /** Keys relative to the source. */
  objects: BackupObject[];
  /** Collection names, from the keys of a dump tree or the local index of a packed object; null if unknown. */
  collections: string[] | null;
  /** The same as `db.coll` where the database is known. */
  namespaces: string[] | null;
  /** While `collections` is unknown: collections it was found to hold when a search stopped at the first match. */
  someCollections?: string[];
  /** E.g. the name's time and the upload time disagree: the source timezone is probably wrong. */
  warnings: string[];
  /** A Percona Backup for MongoDB backup: its metadata (takenAt is then its consistent time, last_write_ts). */
  pbm?: PbmBackupInfo;
}

export interface ListOptions {
  sourceTz: string;
  cacheDir?: string;
}

const SIDECAR = /\.(sha256|md5)$/i;

export function isSidecarKey(key: string): boolean {
  return SIDECAR.test(key);
}

interface Group {
  id: string;
  single: boolean;
  objects: StoreObject[];
}

type SegmentMemo = Map<string, {dateOnly: boolean} | null>;

function segmentHasTime(segment: string, tz: string, memo: SegmentMemo): {dateOnly: boolean} | null {
  // Thousands of keys share the same folder segments; zone conversion per segment is the cost.
  let found = memo.get(segment);
  if (found === undefined) {
    const parsed = parseBackupName(segment, tz);
    found = parsed ? {dateOnly: parsed.dateOnly} : null;
    memo.set(segment, found);
  }
  return found;
}

/**
 * The backup a key belongs to: the shallowest path segment holding a time, unless that is only a
 * date and a deeper folder holds a full time (daily/2026-11-18/2026-11-18T14-00/…).
 */
function backupIdOf(key: string, tz: string, memo: SegmentMemo): {id: string; single: boolean} | null {
  const segments = key.split('/');
  let chosen = -1;
  for (let index = 0; index < segments.length; index++) {
    const found = segmentHasTime(segments[index] as string, tz, memo);
    if (!found) continue;
    if (chosen < 0) {
      chosen = index;
      if (!found.dateOnly) break;
    } else if (!found.dateOnly && index < segments.length - 1) {
      chosen = index;
      break;
    }
  }
  if (chosen < 0) return null;
  return {id: segments.slice(0, chosen + 1).join('/'), single: chosen === segments.length - 1};
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const HOUR = 3_600_000;

function timezoneWarnings(backups: Backup[], sourceTz: string, parsed: Map<string, NonNullable<ReturnType<typeof parseBackupName>>>): void {
  const gapsByKind = new Map<BackupKind, number>();
  for (const kind of ['hourly', 'daily', 'unknown'] as const) {
    const times = backups.filter((backup) => backup.kind === kind).map((backup) => backup.takenAt.getTime());
    const gaps: number[] = [];
    for (let index = 1; index < times.length; index++) gaps.push(Math.abs((times[index - 1] as number) - (times[index] as number)));
    const typical = median(gaps.filter((gap) => gap > 0));
    gapsByKind.set(kind, typical ?? (kind === 'hourly' ? HOUR : 24 * HOUR));
  }
  for (const backup of backups) {
    const info = parsed.get(backup.id);
    if (!info) continue;
    if (info.ambiguity === 'repeated') {
      backup.warnings.push(`${info.matched} happens twice in ${sourceTz} (clocks go back); read as the first, ${formatInZone(backup.takenAt, sourceTz)}`);
    } else if (info.ambiguity === 'skipped') {
      backup.warnings.push(`${info.matched} does not exist in ${sourceTz} (clocks go forward); read as ${formatInZone(backup.takenAt, sourceTz)}`);
    }
    const uploads = backup.objects.map((object) => (object.lastModified ? Date.parse(object.lastModified) : NaN)).filter((time) => !Number.isNaN(time));
    if (uploads.length === 0) continue;
    const written = Math.min(...uploads);
    const difference = written - backup.takenAt.getTime();
    const gap = Math.max(gapsByKind.get(backup.kind) ?? HOUR, HOUR);
    // A backup is written after it is taken, and well within the interval to the next one.
    if (difference >= -15 * 60_000 && difference <= gap) continue;
    const hours = difference / HOUR;
    const wholeHours = Math.round(hours);
    const looksLikeZone = !info.hasOffset && wholeHours !== 0 && Math.abs(wholeHours) <= 14 && Math.abs(hours - wholeHours) < 0.25;
    const when = `${Math.abs(hours).toFixed(1)} h ${difference < 0 ? 'before' : 'after'}`;
    if (looksLikeZone) {
      backup.warnings.push(
        `${backup.id} was written ${when} the time in its name read in ${sourceTz}: the timezone is probably wrong (set --source-tz / GRAVITY_RESTORE_SOURCE_TZ)`,
      );
    } else if (difference < 0) {
      // Written long after is common (copied or re-uploaded buckets); written before it was taken cannot be right.
      backup.warnings.push(`${backup.id} was written ${when} the time in its name; check --source-tz and that the name is the backup time`);
    }
  }
}

function dumpTreeNamespaces(backup: Backup): string[] {
  const namespaces: string[] = [];
  for (const object of backup.objects) {
    const relative = object.key.slice(backup.id.length + 1);
    const namespace = namespaceOfMember(relative);
    if (namespace !== null && !namespaces.includes(namespace)) namespaces.push(namespace);
  }
  return namespaces;
}

function setNamespaces(backup: Backup, namespaces: string[]): void {
  backup.namespaces = [...namespaces].sort();
  backup.collections = [...new Set(namespaces.map((namespace) => collectionOfNamespace(namespace)))].sort();
}

/** Packed objects (tarballs, archives) of a backup; sidecars and dump-tree files are not. */
export function packedObjects(backup: Backup): BackupObject[] {
  return backup.objects.filter((object) => !isSidecarKey(object.key) && packedFormatOf(object.key) !== null);
}

async function knownNamespaces(store: BackupStore, backup: Backup, cacheDir: string | undefined): Promise<string[] | null> {
  const packed = packedObjects(backup);
  const fromTree = dumpTreeNamespaces(backup);
  if (packed.length === 0) return fromTree.length > 0 || backup.objects.some((object) => /\.bson(\.gz)?$/.test(object.key)) ? fromTree : null;
  if (!cacheDir) return null;
  const namespaces = [...fromTree];
  for (const object of packed) {
    const entry = await readIndex(cacheDir, store, object);
    if (!entry?.complete) return null;
    for (const namespace of entry.namespaces) if (!namespaces.includes(namespace)) namespaces.push(namespace);
  }
  return namespaces;
}

/** Packed objects up to this size are read whole when searched for a collection (see backupHolds). */
const READ_WHOLE_BYTES = 16 * 1024 * 1024;

/** Backups in the source, newest first. NO_BACKUPS (saying what was looked at) when there are none. */
export async function listBackups(store: BackupStore, options: ListOptions): Promise<Backup[]> {
  const objects = await store.list();
  const pbm = await scanPbm(store, objects);
  const groups = new Map<string, Group>();
  const unmatched: string[] = [];
  const memo: SegmentMemo = new Map();
  for (const object of objects) {
    if (object.key === '' || object.key.endsWith('/') || pbm.claimed.has(object.key)) continue;
    const found = backupIdOf(object.key, options.sourceTz, memo);
    if (!found) {
      unmatched.push(object.key);
      continue;
    }
    let group = groups.get(found.id);
    if (!group) {
      group = {id: found.id, single: found.single, objects: []};
      groups.set(found.id, group);
    }
    group.objects.push(object);
  }
  // A checksum beside a single-object backup (x.tar.gz.sha256) belongs to it, not to a backup of its own.
  for (const group of [...groups.values()]) {
    if (!group.single || !isSidecarKey(group.id)) continue;
    const owner = groups.get(group.id.replace(SIDECAR, ''));
    if (owner) {
      owner.objects.push(...group.objects);
      groups.delete(group.id);
    }
  }

  const parsed = new Map<string, NonNullable<ReturnType<typeof parseBackupName>>>();
  const backups: Backup[] = [];
  for (const group of groups.values()) {
    const info = parseBackupName(group.id, options.sourceTz);
    if (!info) continue;
    parsed.set(group.id, info);
    const kind = kindFromWords(group.id) ?? kindFromWords(store.location) ?? (info.dateOnly ? 'daily' : 'unknown');
    const backup: Backup = {
      id: group.id,
      kind,
      takenAt: info.takenAt,
      size: group.objects.reduce((total, object) => total + object.size, 0),
      objects: group.objects.map((object) => {
        const entry: BackupObject = {key: object.key, size: object.size};
        if (object.etag !== undefined) entry.etag = object.etag;
        if (object.lastModified) entry.lastModified = object.lastModified.toISOString();
        return entry;
      }),
      collections: null,
      namespaces: null,
      warnings: [],
    };
    const namespaces = await knownNamespaces(store, backup, options.cacheDir);
    if (namespaces) setNamespaces(backup, namespaces);
    backups.push(backup);
  }
  backups.push(...pbm.backups);
  if (backups.length === 0) {
    const examples = unmatched.slice(0, 3).join(', ');
    throw new GravityError('NO_BACKUPS', objects.length === 0 ? `${store.location} holds no objects` : `No backups found in ${store.location}`, {
      hint:
        objects.length === 0
          ? 'Check --source (bucket and prefix, or folder); the prefix must end where the backups start'
          : `Looked at ${objects.length} objects (${examples}${unmatched.length > 3 ? ', …' : ''}); none has a time in its name such as 2026-11-18T14:00:00Z, 2026-11-18-14-00, 20261118 or an epoch. Check --source`,
      details: {location: store.location, objects: objects.length},
    });
  }
  backups.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  timezoneWarnings(backups, options.sourceTz, parsed);
  return backups;
}

export interface SelectOptions {
  /** Newest backup taken at or before this instant. */
  before?: Date;
  /** Only backups that hold this collection ('coll' or 'db.coll'). */
  collection?: string;
  /** Where the index of what packed backups hold lives; without it nothing is remembered. */
  cacheDir?: string;
  onSkip?: (id: string, reason: string) => void;
  /** Called before a packed object is read to learn its collections (it may take a while). */
  onScan?: (id: string, key: string) => void;
  signal?: AbortSignal;
}

/**
 * Whether the backup holds `collection`: from its keys, the local index, or by reading the packed
 * objects' headers (recorded in the index). Null when it cannot be told (an unknown format).
 * When every packed object was read to the end, `backup.collections` is filled in.
 */
export async function backupHolds(store: BackupStore, backup: Backup, collection: string, options: Omit<SelectOptions, 'before' | 'collection' | 'onSkip'> = {}): Promise<boolean | null> {
  if (backup.namespaces) return backup.namespaces.some((namespace) => namespaceMatches(namespace, collection));
  const tree = dumpTreeNamespaces(backup);
  if (tree.some((namespace) => namespaceMatches(namespace, collection))) return true;
  const packed = packedObjects(backup);
  if (packed.length === 0) return tree.length > 0 ? false : null;
  const all = [...tree];
  let complete = true;
  let unknown = false;
  const found = (namespaces: string[], whole: boolean) => {
    // One packed object read to its end: the backup's whole list is known.
    if (whole && packed.length === 1) setNamespaces(backup, [...new Set([...all, ...namespaces])]);
    else backup.someCollections = [...new Set([...(backup.someCollections ?? []), ...all, ...namespaces].map((namespace) => collectionOfNamespace(namespace)))].sort();
    return true;
  };
  for (const object of packed) {
    const cached = options.cacheDir ? await readIndex(options.cacheDir, store, object) : null;
    if (cached?.namespaces.some((namespace) => namespaceMatches(namespace, collection))) return found(cached.namespaces, cached.complete);
    if (cached?.complete) {
      all.push(...cached.namespaces);
      continue;
    }
    options.onScan?.(backup.id, object.key);
    // A small object is read to its end even past the collection: then its whole list is known (and
    // remembered), which `list` shows, for little more than stopping early would cost.
    const stopAt = object.size <= READ_WHOLE_BYTES ? () => false : (namespace: string) => namespaceMatches(namespace, collection);
    const scan = await scanPackedObject(store, object, stopAt, options.signal);
    if (!scan) {
      unknown = true;
      continue;
    }
    if (options.cacheDir) await writeIndex(options.cacheDir, store, object, scan);
    if (scan.namespaces.some((namespace) => namespaceMatches(namespace, collection))) return found(scan.namespaces, scan.complete);
    all.push(...scan.namespaces);
    complete &&= scan.complete;
  }
  if (unknown) return null;
  if (complete) setNamespaces(backup, [...new Set(all)]);
  return false;
}

/** The newest backup at or before `before`, holding `collection` when given; null if none. */
export async function selectBackup(store: BackupStore, backups: Backup[], options: SelectOptions = {}): Promise<Backup | null> {
  const sorted = [...backups].sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
  for (const backup of sorted) {
    if (options.before && backup.takenAt.getTime() > options.before.getTime()) continue;
    const refused = backup.pbm ? pbmSkipReason(backup.pbm) : null;
    if (refused) {
      options.onSkip?.(backup.id, refused);
      continue;
    }
    if (options.collection === undefined) return backup;
    const scanOptions: Omit<SelectOptions, 'before' | 'collection' | 'onSkip'> = {};
    if (options.cacheDir) scanOptions.cacheDir = options.cacheDir;
    if (options.onScan) scanOptions.onScan = options.onScan;
    if (options.signal) scanOptions.signal = options.signal;
    let holds: boolean | null;
    try {
      holds = await backupHolds(store, backup, options.collection, scanOptions);
    } catch (error) {
      // A damaged backup should not stop the search for an older good one; network and credential failures should.
      if (error instanceof GravityError && (error.code === 'DUMP_CORRUPT' || error.code === 'DUMP_UNKNOWN_FORMAT')) {
        options.onSkip?.(backup.id, error.message);
        continue;
      }
      throw error;
    }
    if (holds) return backup;
    options.onSkip?.(backup.id, holds === false ? `does not hold ${options.collection}` : 'its format does not tell which collections it holds');
  }
  return null;
}

/**
 * UNKNOWN_COLLECTION when no backup whose collections are known holds `collection` (after a
 * selection looked, which fills in what packed backups hold), listing those that are known; null
 * when some backup holds it (then no backup matched for another reason, such as --before).
 */
export function unknownCollectionError(store: BackupStore, backups: Backup[], collection: string, before?: Date): GravityError | null {
  const known = backups.filter((backup) => backup.namespaces !== null);
  if (known.some((backup) => backup.namespaces!.some((namespace) => namespaceMatches(namespace, collection)))) return null;
  // Backups after --before were not searched: one of them may hold it, so no backup matched only for the time.
  if (before && backups.some((backup) => backup.namespaces === null && backup.takenAt.getTime() > before.getTime())) return null;
  const unknown = backups.length - known.length;
  if (known.length === 0) {
    return new GravityError('UNKNOWN_COLLECTION', `No backup in ${store.location} is known to hold ${collection}`, {
      hint: `Which collections the ${unknown} backup(s) hold cannot be told from their names or contents; run \`gravity-restore inspect <backup>\` to see one`,
      details: {collection, knownCollections: [], backupsNotRead: unknown},
    });
  }
  const names = [...new Set(known.flatMap((backup) => backup.collections ?? []))].sort();
  const caveat = unknown > 0 ? ` (${unknown} backup(s) whose collections cannot be told from their names or contents are not counted)` : '';
  return new GravityError('UNKNOWN_COLLECTION', `No backup in ${store.location} holds a collection ${collection}`, {
    hint: `Known collections: ${names.join(', ')}${caveat}`,
    details: {collection, knownCollections: names, backupsNotRead: unknown},
  });
}

export interface ResolveOptions extends SelectOptions {
  /** To find ids near a mistyped one by time (default UTC). */
  sourceTz?: string;
  /** The zone a time without an offset given in place of an id is read in (default: sourceTz). */
  timeZone?: string;
}

/** A time given where a backup id was expected, and the backup it selected. */
export interface BackupChoice {
  /** As typed. */
  asked: string;
  /** The instant it was read as (ISO UTC). */
  time: string;
  /** The zone it was read in; null when it carried its own offset. */
  readIn: string | null;
  backup: string;
  takenAt: string;
}

/** "2026-11-18 14:30 (read in America/New_York: 2026-11-18T19:30:00.000Z) selects X, taken …, the newest backup at or before it". */
export function describeChoice(choice: BackupChoice): string {
  const read = choice.readIn ? ` (read in ${choice.readIn}: ${choice.time})` : '';
  const gap = Date.parse(choice.time) - Date.parse(choice.takenAt);
  const minutes = Math.round(gap / 60_000);
  const before = minutes === 0 ? 'taken at that time' : `taken ${choice.takenAt}, ${minutes >= 120 ? `${(minutes / 60).toFixed(1)} h` : `${minutes} min`} before it`;
  return `${choice.asked}${read} is a time, not a backup id: using ${choice.backup}, the newest backup at or before it (${before})`;
}

/** Whether `text` is a whole time (and not a backup name that merely carries one): ISO 8601, the name forms, an epoch, 'now'. */
function userTimeOf(text: string, tz: string): {date: Date; hasOffset: boolean} | null {
  try {
    const date = parseUserTime(text, tz);
    if (/^now$/i.test(text.trim())) return {date, hasOffset: true};
    // Read it a second time in a zone at another offset: if the instant does not move, the text carried its own offset.
    const elsewhere = ['UTC', 'Asia/Tokyo'].find((zone) => zoneOffsetMs(date.getTime(), zone) !== zoneOffsetMs(date.getTime(), tz)) ?? 'Asia/Tokyo';
    return {date, hasOffset: parseUserTime(text, elsewhere).getTime() === date.getTime()};
  } catch {
    return null;
  }
}

/** 'latest' (newest matching --before/--collection) or an exact id; BACKUP_NOT_FOUND names nearby ids. */
export async function resolveBackup(store: BackupStore, backups: Backup[], idOrLatest: string, options: ResolveOptions = {}): Promise<Backup> {
  return (await chooseBackup(store, backups, idOrLatest, options)).backup;
}

/**
 * An exact id, 'latest', or a time: the newest backup taken at or before it (holding
 * `options.collection` when given), with the choice described so the caller can say which it took.
 * An id that names a backup exactly wins over reading it as a time.
 */
export async function chooseBackup(store: BackupStore, backups: Backup[], idOrLatest: string, options: ResolveOptions = {}): Promise<{backup: Backup; choice: BackupChoice | null}> {
  const wanted = idOrLatest.trim();
  if (wanted !== '' && wanted.toLowerCase() !== 'latest') {
    let id = wanted.replace(/\/+$/, '');
    if (id.startsWith(store.location)) id = id.slice(store.location.length).replace(/^\/+/, '');
    const exact = backups.find((backup) => backup.id === id);
    if (exact) return {backup: exact, choice: null};
    const zone = options.timeZone ?? options.sourceTz ?? 'UTC';
    const time = userTimeOf(wanted, zone);
    if (time) {
      const selected = await selectBackup(store, backups, {...options, before: time.date});
      const unknown = !selected && options.collection ? unknownCollectionError(store, backups, options.collection, time.date) : null;
      if (unknown) throw unknown;
      if (!selected) {
        const oldest = backups[backups.length - 1];
        throw new GravityError('BACKUP_NOT_FOUND', `No backup in ${store.location} was taken at or before ${time.date.toISOString()}${options.collection ? ` holding ${options.collection}` : ''} (${wanted}${time.hasOffset ? '' : ` read in ${zone}`})`, {
          hint: oldest ? `The oldest is ${oldest.id} (${oldest.takenAt.toISOString()}); run \`gravity-restore list\` to see them all` : 'Run `gravity-restore list` to see the backups',
        });
      }
      return {
        backup: selected,
        choice: {asked: wanted, time: time.date.toISOString(), readIn: time.hasOffset ? null : zone, backup: selected.id, takenAt: selected.takenAt.toISOString()},
      };
    }
  }
  return {backup: await resolveExact(store, backups, wanted, options), choice: null};
}

async function resolveExact(store: BackupStore, backups: Backup[], wanted: string, options: ResolveOptions): Promise<Backup> {
  if (wanted === '' || wanted.toLowerCase() === 'latest') {
    const selected = await selectBackup(store, backups, options);
    if (selected) return selected;
    const conditions = [
      options.before ? `taken at or before ${options.before.toISOString()}` : '',
      options.collection ? `holding ${options.collection}` : '',
    ].filter((part) => part !== '');
    const oldest = backups[backups.length - 1];
    throw new GravityError('NO_BACKUPS', `No backup in ${store.location}${conditions.length ? ` ${conditions.join(' and ')}` : ''}`, {
      hint: oldest
        ? `The oldest is ${oldest.id} (${oldest.takenAt.toISOString()}); run \`gravity-restore list\` to see them all`
        : 'Run `gravity-restore list` to see what the source holds',
    });
  }
  let id = wanted.replace(/\/+$/, '');
  if (id.startsWith(store.location)) id = id.slice(store.location.length).replace(/^\/+/, '');
  const found = backups.find((backup) => backup.id === id);
  if (found) return found;
  const parsed = parseBackupName(id, options.sourceTz ?? 'UTC');
  const nearby = parsed
    ? [...backups].sort((a, b) => Math.abs(a.takenAt.getTime() - parsed.takenAt.getTime()) - Math.abs(b.takenAt.getTime() - parsed.takenAt.getTime()))
    : backups;
  const names = nearby.slice(0, 5).map((backup) => backup.id);
  throw new GravityError('BACKUP_NOT_FOUND', `Backup ${id} not found in ${store.location}`, {
    hint: names.length ? `Nearby: ${names.join(', ')}. Run \`gravity-restore list\` to see all` : 'Run `gravity-restore list` to see the backups',
    details: {nearby: names},
  });
}
