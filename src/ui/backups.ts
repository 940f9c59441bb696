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
  /** A Percona Backup for MongoDB backup; takenAt is then its consistent time (last_write_ts). */
  pbm?: {type: string; status: string; compression: string; replsets: string[]; selective: string[] | null; lastWriteTs: {T: number; I: number} | null; pbmVersion: string; readable: boolean};
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
      ...(b.pbm
        ? {
            pbm: {
              type: b.pbm.type,
              status: b.pbm.status,
              compression: b.pbm.compression,
              replsets: b.pbm.replsets.map((rs) => rs.name),
              selective: b.pbm.selective,
              lastWriteTs: b.pbm.lastWriteTs,
              pbmVersion: b.pbm.pbmVersion,
              readable: b.pbm.invalid === null && b.pbm.type === 'logical' && b.pbm.status === 'done',
            },
          }
        : {}),
    })),
    selected: selected?.id ?? null,
    timezone: tz,
  };
}

/** The kind column: a PBM backup says what it is, and what stops it being read. */
export function kindCell(b: ListedBackup): string {
  if (!b.pbm) return b.kind;
  const notes = [b.pbm.type === 'logical' ? '' : b.pbm.type, b.pbm.status === 'done' ? '' : b.pbm.status, b.pbm.compression, b.pbm.replsets.length > 1 ? `${b.pbm.replsets.length} rs` : '', b.pbm.selective ? 'selective' : ''].filter((note) => note !== '');
  return `pbm ${notes.join(' ')}`.trim();
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
