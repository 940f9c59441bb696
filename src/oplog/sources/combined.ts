/**
 * Several sources read as one oplog (a backup's oplog.bson, dumps, a live oplog): their entries
 * merged by `ts`, each once, and what they cover together. A stretch one source misses and
 * another covers is no gap.
 */
import {GravityError} from '../../errors.js';
import type {OplogCoverage, OplogGap, OplogReadOptions, OplogSource, OpTime, RawOplogEntry} from '../types.js';
import {compareOpTime, formatOpTime, opTimeToIso} from './entry.js';
import {flatten, mergeLanes, type Lane} from './merge.js';

/** A source that reads in batches (every source here does); entries() alone works too. */
type BatchingSource = OplogSource & {batches?(options?: OplogReadOptions): AsyncIterable<RawOplogEntry[]>};

/** A source's entries in batches (its own batches() where it has one): the cheap way to read many. */
export async function* batched(source: BatchingSource, options: OplogReadOptions): AsyncGenerator<RawOplogEntry[]> {
  if (source.batches) {
    yield* source.batches(options);
    return;
  }
  let batch: RawOplogEntry[] = [];
  for await (const entry of source.entries(options)) {
    batch.push(entry);
    if (batch.length >= 1024) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** What the coverages cover together: the earliest start, the latest end, the stretches none covers. */
export function unionCoverage(label: string, coverages: OplogCoverage[]): OplogCoverage {
  const pieces: Array<{from: OpTime; to: OpTime}> = [];
  let entries: number | null = 0;
  for (const c of coverages) {
    entries = entries === null || c.entries === null ? null : entries + c.entries;
    if (c.from === null || c.to === null) continue;
    let start = c.from;
    for (const gap of [...c.gaps].sort((a, b) => compareOpTime(a.from, b.from))) {
      pieces.push({from: start, to: gap.from});
      start = gap.to;
    }
    pieces.push({from: start, to: c.to});
  }
  pieces.sort((a, b) => compareOpTime(a.from, b.from));
  const gaps: OplogGap[] = [];
  let from: OpTime | null = null;
  let reach: OpTime | null = null;
  for (const piece of pieces) {
    from ??= piece.from;
    if (reach !== null && compareOpTime(piece.from, reach) > 0) gaps.push({from: reach, to: piece.from});
    if (reach === null || compareOpTime(piece.to, reach) > 0) reach = piece.to;
  }
  return {source: label, from, to: reach, entries, gaps};
}

/**
 * Refuses a range the coverage does not hold unbroken: OPLOG_GAP when the oplog starts after
 * `since` or has a gap inside [since, until). The end is not checked: entries after the last one
 * are simply not there yet (callers say how far the oplog reaches).
 */
export function assertCovers(coverage: OplogCoverage, asked: OpTime, until: OpTime | null, what: string): void {
  // No entry has a counter of 0: mongod starts each new second at (seconds, 1) and counts up from
  // there (LogicalClock::reserveTicks, mongodb/mongo src/mongo/db/logical_clock.cpp). So a time
  // (t, 0) and (t, 1) are the same place in the oplog, and an oplog starting at (t, 1) covers "from t".
  const since = asked.i === 0 ? {t: asked.t, i: 1} : asked;
  if (coverage.from === null) {
    throw new GravityError('OPLOG_GAP', `The oplog sources hold no entries, so they cannot show ${what}`, {hint: 'Check the --oplog sources with `gravity-restore oplog`'});
  }
  if (compareOpTime(coverage.from, since) > 0) {
    throw new GravityError('OPLOG_GAP', `The oplog starts at ${opTimeToIso(coverage.from)} (${formatOpTime(coverage.from)}), after ${opTimeToIso(asked)}: it cannot show ${what}`, {
      hint: 'Add an --oplog source that reaches further back (an older oplog dump), or start later',
      details: {oplogFrom: coverage.from, since: asked},
    });
  }
  for (const gap of coverage.gaps) {
    const beforeEnd = until === null || compareOpTime(gap.from, until) < 0;
    if (beforeEnd && compareOpTime(gap.to, since) > 0) {
      throw new GravityError('OPLOG_GAP', `The oplog has a gap from ${opTimeToIso(gap.from)} (${formatOpTime(gap.from)}) to ${opTimeToIso(gap.to)} (${formatOpTime(gap.to)}): it cannot show ${what}`, {
        hint: 'Add an --oplog source that covers the gap (a dump of local.oplog.rs for that stretch), or choose a window outside it',
        details: {gap},
      });
    }
  }
}

export class CombinedOplog implements OplogSource {
  readonly label: string;
  private covered: OplogCoverage | null = null;
  private readonly parts = new Map<OplogSource, OplogCoverage>();

  constructor(readonly sources: OplogSource[]) {
    this.label = sources.map((s) => s.label).join(' + ');
  }

  /** Each source's own coverage, in the order given (after coverage()). */
  coverages(): OplogCoverage[] {
    return this.sources.map((s) => this.parts.get(s)).filter((c): c is OplogCoverage => c !== undefined);
  }

  async coverage(signal?: AbortSignal, onProgress?: (source: OplogSource, p: {entries: number; bytesRead: number; totalBytes?: number}) => void): Promise<OplogCoverage> {
    if (this.covered) return this.covered;
    for (const source of this.sources) {
      const progress = onProgress ? (p: {entries: number; bytesRead: number; totalBytes?: number}) => onProgress(source, p) : undefined;
      const scanned = (source as {coverage(signal?: AbortSignal, onProgress?: OplogReadOptions['onProgress']): Promise<OplogCoverage>}).coverage(signal, progress);
      this.parts.set(source, await scanned);
    }
    this.covered = unionCoverage(this.label, this.coverages());
    return this.covered;
  }

  async *batches(options: OplogReadOptions = {}): AsyncGenerator<RawOplogEntry[]> {
    const lanes: Lane[] = this.sources.map((source) => ({
      label: source.label,
      first: this.parts.get(source)?.from ?? null,
      open: () => batched(source, {...options, onProgress: undefined}),
    }));
    let entries = 0;
    for await (const batch of mergeLanes(lanes, options)) {
      entries += batch.length;
      options.onProgress?.({entries, bytesRead: 0});
      yield batch;
    }
  }

  entries(options: OplogReadOptions = {}): AsyncIterable<RawOplogEntry> {
    return flatten(this.batches(options));
  }
}
