/**
 * One stream of oplog documents (a .bson or .bson.gz file, an oplog.bson, a reply batch) turned into
 * entries in batches: split by length prefix (an entry is at most 16 MiB + 16 KiB, mongorestore's own
 * bound, OPLOG.md §3.2 rule 8), `ts` read from each, order checked. Nothing is decoded or copied.
 */
import {isGzipHead} from '../../dump/detect.js';
import {BsonSplitter, MAX_DOC} from '../../dump/split.js';
import {gunzip, peek, type Chunks} from '../../dump/streams.js';
import {GravityError, isGravityError} from '../../errors.js';
import type {OpTime, RawOplogEntry} from '../types.js';
import {compareOpTime, corruptEntry, formatOpTime, OP_NOOP, readEntryHead} from './entry.js';

/**
 * A stretch longer than this between two entries of an unfiltered oplog is a gap. mongod's primary
 * writes a no-op entry whenever it has written nothing for `periodicNoopIntervalSecs` (default 10 s,
 * at most 10; jira SERVER-23892, the "idle writes" of the max-staleness specification), so a complete
 * oplog has no silent stretch much over 10 s; 60 s leaves room for a stalled or lagging writer.
 * Only an oplog that holds no-op entries is judged this way: a dump filtered by namespace or
 * operation (or a PBM chunk, which drops no-ops, OPLOG.md §6.3) is silent for good reasons.
 */
export const IDLE_GAP_SECONDS = 60;
/** At most this many silent stretches are kept per file (memory stays flat on a damaged file). */
const MAX_SILENCES = 1000;

/** A worker thread costs its start-up: only gzip files this large inflate on one. */
const OFF_THREAD_BYTES = 16 * 1024 * 1024;

/** Entries a batch holds at most: big enough that per-batch costs vanish, small enough to stay flat. */
export const BATCH_ENTRIES = 1024;

/** What a full read of one file found: its range, its count, and where it fell silent. */
export interface FileScan {
  first: OpTime | null;
  last: OpTime | null;
  entries: number;
  /** Bytes of entries (uncompressed). */
  bytes: number;
  /** Whether any entry was a no-op ('n'): the file is an unfiltered oplog, so silences are gaps. */
  noops: boolean;
  silences: Array<{from: OpTime; to: OpTime}>;
}

/** Counts and silences of a stream of entries, in order. */
export class ScanTracker {
  readonly scan: FileScan = {first: null, last: null, entries: 0, bytes: 0, noops: false, silences: []};

  add(entry: RawOplogEntry, op: number): void {
    const scan = this.scan;
    if (scan.first === null) scan.first = entry.ts;
    else if (entry.ts.t - scan.last!.t > IDLE_GAP_SECONDS && scan.silences.length < MAX_SILENCES) scan.silences.push({from: scan.last!, to: entry.ts});
    scan.last = entry.ts;
    scan.entries++;
    scan.bytes += entry.raw.length;
    if (op === OP_NOOP) scan.noops = true;
  }
}

/** A splitter's DUMP_CORRUPT (truncated, a length out of range) as OPLOG_CORRUPT naming the file and offset. */
export function toOplogError(error: unknown, where: string): unknown {
  if (!isGravityError(error) || error.code !== 'DUMP_CORRUPT') return error;
  const offset = typeof error.details?.offset === 'number' ? error.details.offset : null;
  const said = typeof error.details?.where === 'string' ? `${error.details.where}: ` : '';
  const tooLong = /length (-?\d+) out of range/.exec(error.message);
  const what = tooLong && Number(tooLong[1]) > MAX_DOC
    ? `an entry of ${tooLong[1]} bytes at byte ${offset}, over the 16 MiB + 16 KiB an oplog entry can have`
    : said !== '' && error.message.startsWith(said) ? error.message.slice(said.length) : error.message;
  return new GravityError('OPLOG_CORRUPT', `${where}: ${what}`, {
    hint: 'The oplog file is truncated or damaged; copy or dump it again, or leave it out of --oplog',
    details: {where, offset},
    cause: error,
  });
}

/**
 * Entries of one file's bytes, in batches, gunzipped when its first bytes are gzip's (whatever its
 * name says). `onEntry` sees each entry with its `op` byte (for ScanTracker). Entries must come in
 * strictly increasing `ts` order, as an oplog holds them.
 */
export async function* fileEntryBatches(
  chunks: Chunks,
  where: string,
  onEntry?: (entry: RawOplogEntry, op: number) => void,
  /** Size of the file when known: a large gzip inflates on a thread of its own while entries are split here. */
  size?: number,
): AsyncGenerator<RawOplogEntry[]> {
  const peeked = await peek(chunks, 2);
  const gzipped = isGzipHead(peeked.head);
  const label = gzipped ? `${where} (gunzipped)` : where;
  const splitter = new BsonSplitter(label);
  const order = new OrderCheck(label);
  try {
    for await (const chunk of gzipped ? gunzip(peeked.all, where, {offThread: (size ?? 0) >= OFF_THREAD_BYTES}) : peeked.all) {
      const docs = splitter.push(chunk);
      if (docs.length > 0) yield toEntries(docs, order, onEntry);
    }
    splitter.end();
  } catch (error) {
    throw toOplogError(error, label);
  } finally {
    await peeked.close();
  }
}

/** Entries of documents already split (a dump reader's batch, a server reply), order checked across calls. */
export function toEntries(docs: Buffer[], order: OrderCheck, onEntry?: (entry: RawOplogEntry, op: number) => void): RawOplogEntry[] {
  const out: RawOplogEntry[] = new Array(docs.length);
  for (let k = 0; k < docs.length; k++) {
    const raw = docs[k]!;
    const head = readEntryHead(raw, order.where, order.offset);
    const entry = {ts: head.ts, raw};
    order.check(entry);
    onEntry?.(entry, head.op);
    out[k] = entry;
  }
  return out;
}

/**
 * Strictly increasing `ts` within one stream. In a file the documents lie back to back, so the
 * bytes seen so far are the next entry's offset, which messages name; a server reply has none.
 */
export class OrderCheck {
  private last: OpTime | null = null;
  private position = 0;
  constructor(readonly where: string, private readonly fileOffsets = true) {}

  get offset(): number | null {
    return this.fileOffsets ? this.position : null;
  }

  check(entry: RawOplogEntry): void {
    if (this.last !== null && compareOpTime(entry.ts, this.last) <= 0) {
      throw corruptEntry(this.where, this.offset,
        `entries out of order (${formatOpTime(entry.ts)} after ${formatOpTime(this.last)}); an oplog holds them in ts order`);
    }
    this.last = entry.ts;
    this.position += entry.raw.length;
  }
}
