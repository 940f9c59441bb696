import type {Backup} from '../catalog/list.js';
import {formatInZone} from '../catalog/names.js';
import {formatBytes} from './reporter.js';

export interface ListedBackup {
  id: string;
  kind: Backup['kind'];
  takenAt: string;
  takenAtLocal: string;
  age: string | null;
  size: number;
  sizeHuman: string;
  objects: Array<{key: string; size: number}>;
  collections: string[] | null;
  /** While `collections` is null: some collections it is known to hold (a search stopped at the first match). */
  someCollections?: string[];
  warnings: string[];
}

export interface ListResult {
  backups: ListedBackup[];
  selected: string | null;
  timezone: string;
}

/** "3h 20m before", relative to a reference time. */
export function formatAge(takenAt: Date, reference: Date): string {
  const minutes = Math.round((reference.getTime() - takenAt.getTime()) / 60_000);
  const abs = Math.abs(minutes);
  const days = Math.floor(abs / 1440);
  const hours = Math.floor((abs % 1440) / 60);
  const mins = abs % 60;
  const text = days > 0 ? `${days}d ${hours}h` : hours > 0 ? `${hours}h ${mins}m` : `${mins}m`;
  return minutes >= 0 ? `${text} before` : `${text} after`;
}

export function describeBackups(backups: Backup[], selected: Backup | null, tz: string, reference?: Date): ListResult {
  return {
    backups: backups.map((b) => ({
      id: b.id,
      kind: b.kind,
      takenAt: b.takenAt.toISOString(),
      takenAtLocal: formatInZone(b.takenAt, tz),
      age: reference ? formatAge(b.takenAt, reference) : null,
      size: b.size,
      sizeHuman: formatBytes(b.size),
      objects: b.objects.map((o) => ({key: o.key, size: o.size})),
      collections: b.collections,
      ...(b.collections === null && b.someCollections ? {someCollections: b.someCollections} : {}),
      warnings: b.warnings,
    })),
    selected: selected?.id ?? null,
    timezone: tz,
  };
}

/** UTC and Etc/UTC name the same zone: a second "taken at" column would repeat the first. */
export function isUtc(tz: string): boolean {
  return /^(Etc\/)?(UTC|UCT|Universal|Zulu)$|^(Etc\/)?GMT([+-]0)?$/i.test(tz);
}

/** The collections cell: all of them when known, those known so far then "…", else "?". */
export function collectionsCell(b: ListedBackup): string {
  if (b.collections) return b.collections.join(',');
  if (b.someCollections?.length) return `${b.someCollections.join(',')},…`;
  return '?';
}
