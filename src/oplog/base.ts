/**
 * The base backup of a point-in-time read (history, extract --at): `--from`, else the newest backup
 * of the source from whose point the oplog runs unbroken to `until`. A backup's point is the start
 * of its own oplog when it is a `mongodump --oplog` dump (that oplog then joins the sources), else
 * the time in its name, taken as when the dump began (OPLOG.md §5: entries the dump already
 * reflects are harmless to apply again).
 */
import path from 'node:path';

import type {Backup} from '../catalog/list.js';
import {parseBackupName} from '../catalog/names.js';
import type {Settings} from '../config/settings.js';
import type {DumpInput} from '../dump/types.js';
import {GravityError, isGravityError} from '../errors.js';
import {compareOpTime} from './optime.js';
import {assertCovers, type CombinedOplog} from './sources/combined.js';
import {DumpOplogSource} from './sources/dump.js';
import {opTimeToIso} from './sources/entry.js';
import type {OpTime} from './types.js';

export interface BaseBackup {
  label: string;
  takenAt: string | null;
  point: OpTime;
  /** A mongodump --oplog dump's last oplog entry: where its documents are consistent (null: unknown). */
  windowEnd: OpTime | null;
  input: DumpInput;
  ownOplog: DumpOplogSource | null;
}

export function secondOf(iso: string): OpTime {
  return {t: Math.floor(new Date(iso).getTime() / 1000), i: 0};
}

/** A backup's point: its own oplog's first entry, else the time in its name. */
export async function baseFor(label: string, input: DumpInput, takenAt: string | null, settings: Settings, signal?: AbortSignal): Promise<BaseBackup> {
  const own = new DumpOplogSource(`${label} (oplog.bson)`, input);
  const coverage = await own.coverage(signal);
  if (coverage.from !== null) return {label, takenAt, point: coverage.from, windowEnd: coverage.to, input, ownOplog: own};
  const when = takenAt ?? parseBackupName(path.basename(label), settings.sourceTz)?.takenAt.toISOString() ?? null;
  if (when === null) {
    throw new GravityError('USAGE', `Cannot tell when ${label} was taken: it has no oplog.bson and its name holds no time`, {
      hint: 'Give a backup id of --source, or a dump whose name carries its time (e.g. dump-2026-11-18T14-00-00Z)',
    });
  }
  return {label, takenAt: when, point: secondOf(when), windowEnd: null, input, ownOplog: null};
}

/** --from, or the newest backup of the source from whose point the oplog runs unbroken to `until`. */
export async function chooseBase(options: {from?: string | undefined; until: OpTime | null; signal?: AbortSignal | undefined}, settings: Settings, oplog: CombinedOplog): Promise<BaseBackup | null> {
  const {resolveInput, openSource, inputForBackup} = await import('../extract/source.js');
  if (options.from) {
    const resolved = await resolveInput(options.from, settings);
    return baseFor(resolved.backup ?? resolved.location, resolved.input, resolved.takenAt, settings, options.signal);
  }
  if (!settings.source) return null;
  const coverage = await oplog.coverage(options.signal);
  const {store, backups} = await openSource(settings);
  const limit = options.until ?? coverage.to;
  const candidates = backups
    .filter((b: Backup) => limit === null || compareOpTime(secondOf(b.takenAt.toISOString()), limit) < 0)
    .sort((a: Backup, b: Backup) => b.takenAt.getTime() - a.takenAt.getTime());
  for (const backup of candidates) {
    try {
      assertCovers(coverage, secondOf(backup.takenAt.toISOString()), options.until, 'the document since this backup');
    } catch (error) {
      if (isGravityError(error) && error.code === 'OPLOG_GAP') continue;
      throw error;
    }
    const input = await inputForBackup(store, backup, settings);
    return baseFor(backup.id, input.input, backup.takenAt.toISOString(), settings, options.signal);
  }
  const newest = candidates[0];
  throw new GravityError('OPLOG_GAP', `No backup of ${settings.source} is followed by an unbroken oplog${newest ? ` (the newest before the end, ${newest.id}, is taken at ${newest.takenAt.toISOString()}; the oplog starts at ${coverage.from ? opTimeToIso(coverage.from) : 'nothing'})` : ''}`, {
    hint: 'Add an --oplog source reaching back to a backup, or give --from a backup and --since a time the oplog covers',
  });
}

