/**
 * Before extract --at reads anything: which backup is the base, from which point the oplog is
 * replayed, and whether the oplog covers [that point, TIME) without a gap. Refusals name the gap
 * and, where one exists, the backup that would work.
 *
 * The base point is the start of a `mongodump --oplog` dump's own oplog when the base has one
 * (the dump reflects some instant of [start, end], OPLOG.md §5), else the time in the backup's name
 * taken as when the dump began: entries already in the dump are harmless to apply again, because
 * the oplog is idempotent (OPLOG.md §5; the manual's replica-set oplog page: "each operation in the
 * oplog is idempotent"). TIME must be reached: an entry at or after it must exist (a replica set
 * writes a no-op at least every 10 s when idle, so a live oplog always has one), or nothing proves
 * that no write happened between the last entry and TIME.
 */
import type {Backup} from '../catalog/list.js';
import type {Settings} from '../config/settings.js';
import {GravityError} from '../errors.js';
import {newDecodeStats, OplogDecoder, type DecodeOptions} from '../oplog/decode.js';
import {compareOpTime, formatOpTime, describeOpTime} from '../oplog/optime.js';
import {assertCovers, CombinedOplog} from '../oplog/sources/combined.js';
import {openOplogSources} from '../oplog/sources/open.js';
import type {Operation, OplogCoverage, OplogSource, OpTime, RawOplogEntry} from '../oplog/types.js';
import type {ReplayWindow} from '../oplog/rebuild.js';
import type {PointInTime} from './at.js';
import {inputForBackup, openSource, resolveInput, type ResolvedInput} from './source.js';

export interface PointInTimeRequest {
  at: OpTime;
  /** --from: the base, instead of choosing one. */
  from?: string;
  window?: ReplayWindow;
}

export interface PlannedPointInTime {
  source: ResolvedInput;
  pointInTime: PointInTime;
  close(): Promise<void>;
}

const secondsOf = (date: Date): OpTime => ({t: Math.floor(date.getTime() / 1000), i: 0});

/** Whether `coverage` runs unbroken over [since, until] (an entry at or after `until` included). */
function covers(coverage: OplogCoverage, since: OpTime, until: OpTime): boolean {
  if (coverage.from === null || coverage.to === null) return false;
  if (compareOpTime(coverage.from, since) > 0 || compareOpTime(coverage.to, until) < 0) return false;
  return !coverage.gaps.some((gap) => compareOpTime(gap.from, until) < 0 && compareOpTime(gap.to, since) > 0);
}

function reachesTime(coverage: OplogCoverage, until: OpTime): void {
  if (coverage.to !== null && compareOpTime(coverage.to, until) < 0) {
    throw new GravityError('OPLOG_GAP', `The oplog ends at ${describeOpTime(coverage.to)} (${formatOpTime(coverage.to)}), before ${describeOpTime(until)}: nothing shows what happened in between`, {
      hint: 'Add an --oplog source that reaches TIME (a later oplog dump, or the live oplog: --oplog production), or choose an earlier --at',
    });
  }
}

export async function planPointInTime(request: PointInTimeRequest, settings: Settings, signal: AbortSignal, note: (m: string) => void): Promise<PlannedPointInTime> {
  const {at} = request;
  const opened = await openOplogSources(settings, {required: !request.from});
  try {
    const external = new CombinedOplog(opened.sources);
    const externalCoverage = opened.sources.length > 0 ? await external.coverage(signal) : null;
    const source = request.from ? await resolveInput(request.from, settings) : await chooseBase(at, externalCoverage, settings, note);
    const takenAt = source.takenAt ? secondsOf(new Date(source.takenAt)) : null;
    if (takenAt !== null && compareOpTime(takenAt, at) > 0) {
      throw new GravityError('USAGE', `The base backup ${source.backup ?? source.location} is from ${describeOpTime(takenAt)}, after --at ${describeOpTime(at)}`, {
        hint: 'Choose a backup taken before TIME as --from, or leave --from out to have one chosen',
      });
    }
    const stop = request.window && compareOpTime(request.window.until, at) > 0 ? request.window.until : at;
    // The dump's capture ends with its own oplog; a plain dump ended before its last file was written.
    const uploaded = source.backupInfo?.objects.map((o) => (o.lastModified ? Date.parse(o.lastModified) : NaN)).filter((ms) => !Number.isNaN(ms)) ?? [];
    const stats = newDecodeStats();
    const pointInTime: PointInTime = {
      at,
      ...(request.window ? {window: request.window} : {}),
      // Called once the base was read: its own oplog (mongodump --oplog), copied as it streamed by, is a
      // source too, and where it starts is where the replay starts.
      resolve: async (own) => {
        const ownCoverage = own ? await own.coverage(signal) : null;
        const basePoint = ownCoverage?.from ?? takenAt;
        if (basePoint === null) {
          throw new GravityError('USAGE', `${source.location} has no time in its name and no oplog.bson, so the oplog cannot be replayed from it`, {
            hint: 'Give a backup of the source (`gravity-restore list`), or a mongodump --oplog dump, as --from',
          });
        }
        const sources: OplogSource[] = [...(own ? [own] : []), ...opened.sources];
        const combined = new CombinedOplog(sources);
        const coverage = await combined.coverage(signal);
        assertCovers(coverage, basePoint, stop, `the state at ${describeOpTime(at)} from ${source.backup ?? source.location}`);
        reachesTime(coverage, stop);
        note(`Base ${source.backup ?? source.location}: replaying the oplog from ${describeOpTime(basePoint)} to just before ${describeOpTime(at)}`);
        const consistentFrom = ownCoverage?.to ?? (uploaded.length > 0 ? secondsOf(new Date(Math.max(...uploaded) + 1000)) : null);
        return {
          basePoint,
          consistentFrom,
          base: {backup: source.backup, location: source.location, takenAt: source.takenAt, from: {t: basePoint.t, i: basePoint.i}, fromOplog: own !== null},
          sources: sources.map((s) => s.label),
          operations: (namespaces: string[]) =>
            operationBatches(combined.batches({since: basePoint, until: stop, namespaces, signal}), {
              namespaces: (ns) => namespaces.includes(ns),
              stats,
            }),
          afterReplay: () => {
            // A transaction whose operations came before the replay's start, committed after it: what it
            // wrote is unknown here (mongodump starts its own capture at the oldest open transaction for this reason).
            const unknown = stats.commitsWithoutOperations.find((ts) => compareOpTime(ts, at) < 0);
            if (unknown) {
              throw new GravityError('OPLOG_GAP', `A transaction committed at ${describeOpTime(unknown)} (${formatOpTime(unknown)}) began before ${describeOpTime(basePoint)}, where the replay starts: what it wrote is not in the oplog read`, {
                hint: 'Add an --oplog source that reaches further back than the base backup, or use an older base (--from)',
              });
            }
          },
        };
      },
    };
    return {source, pointInTime, close: opened.close};
  } catch (error) {
    await opened.close();
    throw error;
  }
}

/** Entries decoded a batch at a time: the loop over entries stays synchronous (millions pass here). */
async function* operationBatches(batches: AsyncIterable<RawOplogEntry[]>, options: DecodeOptions): AsyncGenerator<Operation[]> {
  const decoder = new OplogDecoder(options);
  try {
    for await (const entries of batches) {
      const out: Operation[] = [];
      for (const entry of entries) for (const op of decoder.decode(entry)) out.push(op);
      if (out.length > 0) yield out;
    }
  } finally {
    decoder.finish();
  }
}

/** The newest backup taken at or before TIME from whose time the oplog runs unbroken to TIME. */
async function chooseBase(at: OpTime, coverage: OplogCoverage | null, settings: Settings, note: (m: string) => void): Promise<ResolvedInput> {
  const {store, backups} = await openSource(settings);
  const before = backups.filter((b) => compareOpTime(secondsOf(b.takenAt), at) <= 0).sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
  if (before.length === 0) {
    const oldest = [...backups].sort((a, b) => a.takenAt.getTime() - b.takenAt.getTime())[0];
    throw new GravityError('BACKUP_NOT_FOUND', `No backup was taken at or before ${describeOpTime(at)}${oldest ? `; the oldest is ${oldest.id} (${oldest.takenAt.toISOString()})` : ''}`, {
      hint: 'Choose a later --at; the state before the oldest backup cannot be rebuilt',
    });
  }
  if (coverage === null || coverage.from === null) {
    throw new GravityError('OPLOG_GAP', 'No oplog source holds entries', {hint: 'Pass --oplog SRC; `gravity-restore oplog --oplog SRC` shows what a source covers'});
  }
  const usable = (b: Backup) => covers(coverage, secondsOf(b.takenAt), at);
  const chosen = before.find(usable);
  if (!chosen) {
    const newest = before[0]!;
    const gap = coverage.gaps.find((g) => compareOpTime(g.to, secondsOf(newest.takenAt)) > 0 && compareOpTime(g.from, at) < 0);
    const why = gap
      ? `the oplog has a gap from ${describeOpTime(gap.from)} to ${describeOpTime(gap.to)}`
      : compareOpTime(coverage.from, secondsOf(newest.takenAt)) > 0
        ? `the oplog starts at ${describeOpTime(coverage.from)}, after the newest backup before TIME (${newest.id}, ${newest.takenAt.toISOString()})`
        : `the oplog ends at ${describeOpTime(coverage.to ?? coverage.from)}, before TIME`;
    throw new GravityError('OPLOG_GAP', `No backup before ${describeOpTime(at)} has the oplog running unbroken from it to TIME: ${why}`, {
      hint: 'Add an --oplog source that covers the stretch (an older oplog dump, or the live oplog), or choose a TIME the oplog reaches',
    });
  }
  if (chosen !== before[0]) {
    const skipped = before.slice(0, before.indexOf(chosen)).map((b) => b.id);
    note(`Not ${skipped.join(', ')}: the oplog does not run unbroken from ${skipped.length > 1 ? 'their times' : 'its time'} to TIME`);
  }
  return inputForBackup(store, chosen, settings);
}
