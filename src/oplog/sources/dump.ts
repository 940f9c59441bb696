/**
 * The oplog.bson of a `mongodump --oplog` dump, in whatever layout the dump is: a folder, a
 * tarball, an --archive (where the oplog is the namespace with db "" and collection "oplog"),
 * gzipped or not (OPLOG.md §8 row a). The dump reader finds it; every collection is skipped unread.
 * mongodump captures `{ts >= start, ts <= end}` around the data it reads (OPLOG.md §5), so this
 * source's first entry is the dump's starting point.
 */
import {readDump} from '../../dump/read.js';
import type {DumpInput} from '../../dump/types.js';
import type {OplogCoverage, OplogReadOptions, OplogSource, RawOplogEntry} from '../types.js';
import {compareOpTime} from './entry.js';
import {OrderCheck, ScanTracker, toEntries, toOplogError, type FileScan} from './frame.js';
import {gapsOf} from './files.js';
import {flatten} from './merge.js';

const OPLOG_ONLY = (ns: {db: string; collection: string}) => ns.db === '' && ns.collection === 'oplog';

export class DumpOplogSource implements OplogSource {
  private scan: FileScan | null = null;

  constructor(readonly label: string, private readonly input: DumpInput) {}

  async coverage(signal?: AbortSignal, onProgress?: OplogReadOptions['onProgress']): Promise<OplogCoverage> {
    if (this.scan === null) {
      const tracker = new ScanTracker();
      for await (const _batch of this.read({...(signal ? {signal} : {}), ...(onProgress ? {onProgress} : {})}, (e, op) => tracker.add(e, op))) {
        // Counted by the tracker.
      }
      this.scan = tracker.scan;
    }
    const scan = this.scan;
    return {source: this.label, from: scan.first, to: scan.last, entries: scan.entries, gaps: gapsOf([scan])};
  }

  /** Whether the dump holds an oplog at all (after coverage()). */
  get hasOplog(): boolean {
    return (this.scan?.entries ?? 0) > 0;
  }

  async *batches(options: OplogReadOptions = {}): AsyncGenerator<RawOplogEntry[]> {
    const {since, until} = options;
    // A whole read sees every entry coverage() would: what it finds is kept, so coverage() after it reads nothing.
    const tracker = this.scan === null && since === undefined && until === undefined ? new ScanTracker() : null;
    for await (const batch of this.read(options, tracker ? (e, op) => tracker.add(e, op) : undefined)) {
      let start = 0;
      let end = batch.length;
      if (since) while (start < end && compareOpTime(batch[start]!.ts, since) < 0) start++;
      if (until) {
        let k = start;
        while (k < end && compareOpTime(batch[k]!.ts, until) < 0) k++;
        end = k;
      }
      if (end > start) yield start === 0 && end === batch.length ? batch : batch.slice(start, end);
      if (end < batch.length) return;
    }
    if (tracker && this.scan === null) this.scan = tracker.scan;
  }

  entries(options: OplogReadOptions = {}): AsyncIterable<RawOplogEntry> {
    return flatten(this.batches(options));
  }

  private async *read(options: OplogReadOptions, onEntry?: (entry: RawOplogEntry, op: number) => void): AsyncGenerator<RawOplogEntry[]> {
    let order: OrderCheck | null = null;
    let entries = 0;
    const events = readDump(this.input, {
      want: OPLOG_ONLY,
      oplogEntries: true,
      ...(options.signal ? {signal: options.signal} : {}),
      ...(options.onProgress ? {onProgress: (p: {bytesRead: number; totalBytes?: number}) => options.onProgress!({entries, ...p})} : {}),
    });
    try {
      for await (const event of events) {
        if (event.type !== 'oplog' || event.entries === undefined) continue;
        order ??= new OrderCheck(event.where ?? this.label, false);
        const batch = toEntries(event.entries, order, onEntry);
        entries += batch.length;
        yield batch;
      }
    } catch (error) {
      // The reader names the oplog's own damage "<file> (oplog)"; a damaged collection stays DUMP_CORRUPT.
      if (error instanceof Error && / \(oplog\)/.test(error.message)) throw toOplogError(error, (error as {details?: {where?: string}}).details?.where ?? this.label);
      throw error;
    }
  }
}
