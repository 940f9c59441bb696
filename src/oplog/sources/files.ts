/**
 * Dumps of `local.oplog.rs` (`mongodump -d local -c oplog.rs --query …` writes
 * `<out>/local/oplog.rs.bson`, `.bson.gz` with --gzip; OPLOG.md §8 row b): one file, or every
 * `.bson`/`.bson.gz` file of a local folder or an S3 prefix. Each file holds entries in `ts` order;
 * the files are merged by `ts` (mergeLanes), an entry found in two files (the boundary of a
 * `{ts: {$gte: …}}` dump) kept once.
 *
 * Coverage: each file covers [first, last]. Two files join when the later one starts at or before
 * the earlier one ends (they share the boundary entry); otherwise the stretch between them is a gap,
 * because nothing says what happened there (a `{ts: {$gt: …}}` dump drops the boundary entry, so
 * its joins show as gaps: dump with $gte). Inside a file that holds no-op entries, a silence over
 * IDLE_GAP_SECONDS is a gap too (frame.ts says why).
 */
import type {Readable} from 'node:stream';

import type {OplogCoverage, OplogGap, OplogReadOptions, OplogSource, OpTime, RawOplogEntry} from '../types.js';
import {compareOpTime} from './entry.js';
import {fileEntryBatches, ScanTracker, type FileScan} from './frame.js';
import {flatten, mergeLanes, type Lane} from './merge.js';

/** One file of oplog entries, wherever it lies. */
export interface OplogFile {
  /** Path or key, for messages. */
  name: string;
  size?: number;
  open(signal?: AbortSignal): Promise<Readable | AsyncIterable<Buffer>>;
}

/** Which names in a folder or prefix hold oplog dumps: BSON files, compressed or not; never metadata. */
export function isOplogDumpName(name: string): boolean {
  return /\.bson(\.gz)?$/i.test(name);
}

async function* fileChunks(file: OplogFile, signal: AbortSignal | undefined, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  const stream = await file.open(signal);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      onBytes?.(chunk.length);
      yield chunk;
    }
  } finally {
    (stream as {destroy?: () => void}).destroy?.();
  }
}

/**
 * Gaps of a set of file scans. Each file covers [first, last], cut at its silences when it holds
 * no-ops; the pieces of all files are swept in order, and wherever the next piece starts after the
 * furthest point reached so far (no shared entry), the stretch between is a gap.
 */
export function gapsOf(scans: FileScan[]): OplogGap[] {
  const pieces: Array<{from: OpTime; to: OpTime}> = [];
  for (const scan of scans) {
    if (scan.first === null || scan.last === null) continue;
    let start = scan.first;
    if (scan.noops) {
      for (const silence of scan.silences) {
        pieces.push({from: start, to: silence.from});
        start = silence.to;
      }
    }
    pieces.push({from: start, to: scan.last});
  }
  pieces.sort((x, y) => compareOpTime(x.from, y.from));
  const gaps: OplogGap[] = [];
  let reach: OpTime | null = null;
  for (const piece of pieces) {
    if (reach !== null && compareOpTime(piece.from, reach) > 0) gaps.push({from: reach, to: piece.from});
    if (reach === null || compareOpTime(piece.to, reach) > 0) reach = piece.to;
  }
  return gaps;
}

export class OplogFileSet implements OplogSource {
  private scans: Map<string, FileScan> | null = null;
  private heads = new Map<string, OpTime | null>();

  /**
   * @param label the source as the user named it
   * @param files the files (an empty list is a source without entries)
   */
  constructor(readonly label: string, private readonly files: OplogFile[]) {}

  /** Reads every file once (ts only); remembered for the life of the source. */
  async coverage(signal?: AbortSignal, onProgress?: OplogReadOptions['onProgress']): Promise<OplogCoverage> {
    const scans = await this.scanAll(signal, onProgress);
    const list = [...scans.values()];
    let from: OpTime | null = null;
    let to: OpTime | null = null;
    let entries = 0;
    for (const scan of list) {
      entries += scan.entries;
      if (scan.first !== null && (from === null || compareOpTime(scan.first, from) < 0)) from = scan.first;
      if (scan.last !== null && (to === null || compareOpTime(scan.last, to) > 0)) to = scan.last;
    }
    return {source: this.label, from, to, entries, gaps: gapsOf(list)};
  }

  /** Per file: its range and count (after coverage()). */
  fileScans(): Array<{file: string; scan: FileScan}> {
    return this.files.map((f) => ({file: f.name, scan: this.scans?.get(f.name) ?? {first: null, last: null, entries: 0, bytes: 0, noops: false, silences: []}}));
  }

  private async scanAll(signal?: AbortSignal, onProgress?: OplogReadOptions['onProgress']): Promise<Map<string, FileScan>> {
    if (this.scans !== null) return this.scans;
    const scans = new Map<string, FileScan>();
    const totalBytes = this.files.every((f) => f.size !== undefined) ? this.files.reduce((s, f) => s + (f.size ?? 0), 0) : undefined;
    let bytesRead = 0;
    let entries = 0;
    let lastReport = 0;
    const report = (force = false) => {
      if (onProgress === undefined) return;
      const now = Date.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      onProgress(totalBytes === undefined ? {entries, bytesRead} : {entries, bytesRead, totalBytes});
    };
    for (const file of this.files) {
      const tracker = new ScanTracker();
      for await (const batch of fileEntryBatches(fileChunks(file, signal, (n) => (bytesRead += n)), file.name, (e, op) => tracker.add(e, op), file.size)) {
        entries += batch.length;
        report();
      }
      scans.set(file.name, tracker.scan);
      this.heads.set(file.name, tracker.scan.first);
    }
    report(true);
    this.scans = scans;
    return scans;
  }

  /** The first entry's `ts` of each file (read from its first bytes when no full scan was made). */
  private async head(file: OplogFile, signal?: AbortSignal): Promise<OpTime | null> {
    if (this.heads.has(file.name)) return this.heads.get(file.name)!;
    let first: OpTime | null = null;
    for await (const batch of fileEntryBatches(fileChunks(file, signal), file.name)) {
      first = batch[0]!.ts;
      break;
    }
    this.heads.set(file.name, first);
    return first;
  }

  async *batches(options: OplogReadOptions = {}): AsyncGenerator<RawOplogEntry[]> {
    const lanes: Lane[] = [];
    let bytesRead = 0;
    let entries = 0;
    const totalBytes = this.files.every((f) => f.size !== undefined) ? this.files.reduce((s, f) => s + (f.size ?? 0), 0) : undefined;
    // A whole read scans every file as coverage() would: what it finds is kept, so coverage() after it reads nothing.
    const whole = this.scans === null && options.since === undefined && options.until === undefined;
    const trackers = new Map<string, ScanTracker>();
    for (const file of this.files) {
      const first = await this.head(file, options.signal);
      if (first === null) {
        if (whole) trackers.set(file.name, new ScanTracker());
        continue;
      }
      const scan = this.scans?.get(file.name);
      // A file wholly outside the range asked for is not read at all.
      if (scan?.last && options.since && compareOpTime(scan.last, options.since) < 0) continue;
      if (options.until && compareOpTime(first, options.until) >= 0) continue;
      const tracker = whole ? new ScanTracker() : null;
      if (tracker) trackers.set(file.name, tracker);
      const onEntry = tracker ? (e: RawOplogEntry, op: number) => tracker.add(e, op) : undefined;
      lanes.push({label: file.name, first, open: () => fileEntryBatches(fileChunks(file, options.signal, (n) => (bytesRead += n)), file.name, onEntry, file.size)});
    }
    for await (const batch of mergeLanes(lanes, options)) {
      entries += batch.length;
      options.onProgress?.(totalBytes === undefined ? {entries, bytesRead} : {entries, bytesRead, totalBytes});
      yield batch;
    }
    // Reached only when the consumer read to the end: every file was read whole.
    if (whole && this.scans === null) this.scans = new Map([...trackers].map(([name, t]) => [name, t.scan]));
  }

  entries(options: OplogReadOptions = {}): AsyncIterable<RawOplogEntry> {
    return flatten(this.batches(options));
  }
}
