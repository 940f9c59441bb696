/**
 * The k-way merge under every multi-file or multi-source read: each lane (a file, a source) yields
 * its entries in `ts` order; the merge yields them all in `ts` order, each once. A lane is opened
 * only when its first entry may come next (lanes are sorted by their first `ts`), so consecutive
 * dumps that share one boundary entry are read with at most two open at once.
 */
import {GravityError} from '../../errors.js';
import type {OpTime, RawOplogEntry} from '../types.js';
import {compareOpTime, formatOpTime} from './entry.js';
import {BATCH_ENTRIES} from './frame.js';

export interface Lane {
  /** For messages. */
  label: string;
  /** Its first entry's `ts`, when known without reading it (null: opened at once). */
  first: OpTime | null;
  open(): AsyncIterable<RawOplogEntry[]>;
}

interface Cursor {
  label: string;
  iterator: AsyncIterator<RawOplogEntry[]>;
  batch: RawOplogEntry[];
  index: number;
}

export interface MergeOptions {
  since?: OpTime | undefined;
  until?: OpTime | undefined;
  signal?: AbortSignal | undefined;
}

async function fill(cursor: Cursor): Promise<boolean> {
  for (;;) {
    const next = await cursor.iterator.next();
    if (next.done) return false;
    if (next.value.length > 0) {
      cursor.batch = next.value;
      cursor.index = 0;
      return true;
    }
  }
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.equals(b);
}

/**
 * Entries of all lanes in `ts` order, in batches, within [since, until). The same `ts` in two lanes
 * is one entry (dumps that share a boundary entry, a dump's oplog and a later oplog dump): kept once
 * when the bytes agree, OPLOG_CORRUPT when they do not (the sources are not one replica set's oplog).
 */
export async function* mergeLanes(lanes: Lane[], options: MergeOptions = {}): AsyncGenerator<RawOplogEntry[]> {
  const pending = [...lanes].sort((a, b) => (a.first === null ? -1 : b.first === null ? 1 : compareOpTime(a.first, b.first)));
  const active: Cursor[] = [];
  const {since, until, signal} = options;
  let out: RawOplogEntry[] = [];
  let last: RawOplogEntry | null = null;
  let lastLabel = '';
  try {
    for (;;) {
      if (signal?.aborted) throw new GravityError('INTERRUPTED', 'Reading the oplog was interrupted', {hint: 'Run the command again'});
      let min: Cursor | null = null;
      for (const cursor of active) if (min === null || compareOpTime(cursor.batch[cursor.index]!.ts, min.batch[min.index]!.ts) < 0) min = cursor;
      const lane = pending[0];
      if (lane !== undefined && (min === null || lane.first === null || compareOpTime(lane.first, min.batch[min.index]!.ts) <= 0)) {
        pending.shift();
        const cursor: Cursor = {label: lane.label, iterator: lane.open()[Symbol.asyncIterator](), batch: [], index: 0};
        if (await fill(cursor)) active.push(cursor);
        continue;
      }
      if (min === null) break;
      // Only one lane can hold the next entries: take its batch up to where another lane could begin.
      const bound = nextBound(active, min, pending[0]);
      const batch = min.batch;
      let k = min.index;
      for (; k < batch.length; k++) {
        const entry = batch[k]!;
        if (bound !== null && compareOpTime(entry.ts, bound) > 0) break;
        if (until !== undefined && compareOpTime(entry.ts, until) >= 0) {
          if (out.length > 0) yield out;
          return;
        }
        if (since !== undefined && compareOpTime(entry.ts, since) < 0) continue;
        if (last !== null && compareOpTime(entry.ts, last.ts) === 0) {
          if (!sameBytes(entry.raw, last.raw)) {
            throw new GravityError('OPLOG_CORRUPT', `${lastLabel} and ${min.label} hold different entries at ${formatOpTime(entry.ts)}`, {
              hint: 'Give --oplog sources of one replica set only (each shard has its own oplog)',
              details: {ts: entry.ts},
            });
          }
          continue;
        }
        last = entry;
        lastLabel = min.label;
        out.push(entry);
        if (out.length >= BATCH_ENTRIES) {
          yield out;
          out = [];
        }
      }
      min.index = k;
      if (min.index >= batch.length && !(await fill(min))) active.splice(active.indexOf(min), 1);
    }
    if (out.length > 0) yield out;
  } finally {
    for (const cursor of active) await cursor.iterator.return?.();
  }
}

/** The smallest head among the other open lanes and the next lane to open: `min` may run up to it. */
function nextBound(active: Cursor[], min: Cursor, lane: Lane | undefined): OpTime | null {
  let bound: OpTime | null = lane?.first ?? null;
  for (const cursor of active) {
    if (cursor === min) continue;
    const head = cursor.batch[cursor.index]!.ts;
    if (bound === null || compareOpTime(head, bound) < 0) bound = head;
  }
  return bound;
}

/** Flattens batches into single entries, for OplogSource.entries. */
export async function* flatten(batches: AsyncIterable<RawOplogEntry[]>): AsyncGenerator<RawOplogEntry> {
  for await (const batch of batches) yield* batch;
}
