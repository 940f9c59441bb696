/**
 * The replay stage of extract: with --at, the spooled collections of the base backup are replaced by
 * the same collections as they were at TIME (oplog/rebuild.ts does the work), so the stages after it
 * (compare, select, write) judge and copy the state at TIME and never know the difference.
 * With --changed-between it also says which documents operations in the window changed.
 */
import {createReadStream} from 'node:fs';
import path from 'node:path';

import type {ManifestPointInTime} from '../restore-set/manifest.js';
import {rebuild, type ReplayCounts, type ReplayWindow} from '../oplog/rebuild.js';
import {OplogFileSet} from '../oplog/sources/files.js';
import type {OplogSource, OpTime, Operation} from '../oplog/types.js';
import {rawIdKey} from '../target/bson-util.js';
import {stateKey, type NamespaceState} from './read.js';
import type {Keep} from './selector.js';
import {SpoolFile} from './spool.js';
import type {SpaceGuard} from '../dump/disk-space.js';

export interface PointInTime {
  at: OpTime;
  window?: ReplayWindow;
  /** Once the base was read: the replay's start and sources, with the base's own oplog (null: it has none). */
  resolve: (own: OplogSource | null) => Promise<ResolvedReplay>;
}

export interface ResolvedReplay {
  /** Where replay starts: the base backup's own oplog's first entry, else its taken-at. */
  basePoint: OpTime;
  /** The end of the base's capture window (see ReplayOptions.consistentFrom). */
  consistentFrom: OpTime | null;
  base: ManifestPointInTime['base'];
  /** Labels of the oplog sources (secrets masked). */
  sources: string[];
  /** The decoded operations of these `db.coll` namespaces, from basePoint on, in apply order, in batches. */
  operations: (namespaces: string[]) => AsyncIterable<Operation[]>;
  /** Checks once the oplog was read (a transaction that began before the replay's start, say). */
  afterReplay?: () => void;
}

export interface ReplayOutcome {
  counts: Record<string, ReplayCounts>;
  manifest: ManifestPointInTime;
  /** With --changed-between: keeps (collection, ordinal in the rebuilt spool) changed in the window. */
  keep: Keep | null;
}

const toJson = (ts: OpTime) => ({t: ts.t, i: ts.i});

export async function replayStage(
  pit: PointInTime,
  ownOplog: SpoolFile | null,
  states: Map<string, NamespaceState>,
  db: string,
  workDir: string,
  space: SpaceGuard | undefined,
  signal: AbortSignal | undefined,
  onProgress: (p: {operations: number; collection?: string}) => void,
): Promise<ReplayOutcome> {
  const own = ownOplog ? new OplogFileSet('oplog.bson of the base backup', [{name: 'oplog.bson of the base backup', size: ownOplog.bytes, open: async (signal) => createReadStream(ownOplog.file, signal ? {signal} : {})}]) : null;
  const resolved = await pit.resolve(own);
  const collections = [...states.values()].filter((s) => s.ns.db === db).map((s) => s.ns.collection);
  const rebuilt = new Map(collections.map((c) => [c, new SpoolFile(path.join(workDir, 'rebuilt'), db, c, space)]));
  const result = await rebuild({
    db,
    collections,
    base: (collection) => {
      const spool = states.get(stateKey({db, collection}))?.spool;
      return spool ? docsOf(spool, signal) : null;
    },
    operations: resolved.operations(collections.map((c) => `${db}.${c}`)),
    at: pit.at,
    consistentFrom: resolved.consistentFrom,
    ...(pit.window ? {window: pit.window} : {}),
    workDir: path.join(workDir, 'partitions'),
    signal,
    emit: async (collection, docs) => rebuilt.get(collection)!.append(docs),
    onProgress: (p) => onProgress({operations: p.operations, ...(p.collection ? {collection: p.collection} : {})}),
  });
  resolved.afterReplay?.();
  const {changed} = result;
  for (const [collection, spool] of rebuilt) {
    await spool.close();
    const state = states.get(stateKey({db, collection}))!;
    state.spool = spool;
    state.scanned = spool.documents;
    state.bytes = spool.bytes;
  }
  let keep: Keep | null = null;
  if (changed) {
    // One pass over each rebuilt spool turns the changed keys into ordinals (a byte per document).
    const flags = new Map<string, Uint8Array>();
    for (const [collection, spool] of rebuilt) {
      const keys = changed.get(collection)!;
      const bits = new Uint8Array(spool.documents);
      if (keys.size > 0) {
        for await (const {ordinal, doc} of spool.documentsWithOrdinal(signal)) if (keys.has(rawIdKey(doc))) bits[ordinal] = 1;
      }
      flags.set(collection, bits);
    }
    keep = (collection, ordinal) => flags.get(collection)?.[ordinal] === 1;
  }
  return {
    counts: result.collections,
    keep,
    manifest: {
      at: new Date(pit.at.t * 1000).toISOString(),
      atOpTime: toJson(pit.at),
      base: resolved.base,
      oplog: {sources: resolved.sources, from: result.first ? toJson(result.first) : null, to: result.last ? toJson(result.last) : null, operations: result.operations},
      ...(pit.window ? {changedBetween: {since: toJson(pit.window.since), until: toJson(pit.window.until), fields: pit.window.fields}} : {}),
    },
  };
}

async function* docsOf(spool: SpoolFile, signal: AbortSignal | undefined): AsyncGenerator<Buffer> {
  for await (const {doc} of spool.documentsWithOrdinal(signal)) yield doc;
}
