/**
 * `history COLLECTION ID`: one document's timeline from the oplog, and its state at the end.
 *
 * Stages: pick the base (a backup: --from, else the newest backup of the source from whose point the
 * oplog runs unbroken), read the document from it, then replay every operation on that `_id` from
 * the base's point to --until with the exact replayer (apply/), listing those at or after --since.
 * The base's point is the start of its own oplog when it is a `mongodump --oplog` dump (that oplog
 * is then read too), else the time in its name, taken as when the dump began: entries between that
 * point and the moment the dump read the document are already in it, and applying them again gives
 * the same document (OPLOG.md §5: every oplog entry is idempotent; MAN-OPLOG) — where one cannot be
 * applied exactly the history stops with OPLOG_UNSUPPORTED rather than show a wrong document.
 * Without a base, the state is known only from an insert inside the window on.
 */

import type {Settings} from '../config/settings.js';
import {readDump} from '../dump/read.js';
import {GravityError} from '../errors.js';
import {parseQuery} from '../query/parse.js';
import {docToJson, idKey, idToJson, rawIdKey} from '../target/bson-util.js';
import {chooseBase, type BaseBackup} from './base.js';
import {OplogDecoder} from './decode.js';
import {replayDocument} from './replay.js';
import {collectionOf} from './namespaces.js';
import {compareOpTime} from './optime.js';
import {assertCovers, CombinedOplog} from './sources/combined.js';
import {LiveOplogSource} from './sources/live.js';
import {opTimeToIso, skippable} from './sources/entry.js';
import type {DocumentOperation, Operation, OplogSource, OpTime} from './types.js';

export interface HistoryEvent {
  ts: {t: number; i: number};
  wall: string | null;
  op: 'insert' | 'update' | 'replace' | 'delete' | 'drop' | 'rename';
  set: string[];
  unset: string[];
  transaction: boolean;
  /** The namespace the operation was on (it changes with a rename). */
  ns: string;
  /** Set when the operation found no document to change (OPLOG.md §5 rules 4 and 5). */
  missing?: boolean;
  /** rename: the new namespace. */
  to?: string;
  /** Inside a dump's capture window: paths written by mongod's re-application rules (the base already held a later state). */
  provisional?: string[];
}

export interface HistoryResult {
  collection: string;
  _id: unknown;
  base: {backup: string; takenAt: string | null; point: {t: number; i: number}; pointTime: string} | null;
  events: HistoryEvent[];
  /** Canonical Extended JSON of the document at the end (null: absent, or unknown: see stateKnown). */
  state: unknown;
  /** The same, as text in the document's stored field order (JSON objects put integer-like keys first). */
  stateJson: string | null;
  /** False when no base and no insert in the window said what the document held. */
  stateKnown: boolean;
  since: {t: number; i: number} | null;
  until: {t: number; i: number} | null;
  replayedFrom: {t: number; i: number};
  sources: string[];
}

export interface HistoryOptions {
  collection: string;
  id: string;
  since: OpTime | null;
  until: OpTime | null;
  /** A backup id, `latest`, or a local dump path. */
  from: string | undefined;
  signal?: AbortSignal;
  onProgress?: (text: string) => void;
}

/** The `_id` the user typed (shell syntax or Extended JSON), as the key operations carry. */
export function parseId(text: string): {value: unknown; key: string} {
  let parsed;
  try {
    parsed = parseQuery(`{"_id": ${text}}`);
  } catch (error) {
    throw new GravityError('USAGE', `Cannot read ${JSON.stringify(text)} as an _id`, {hint: 'Write it in shell syntax or Extended JSON: ObjectId("…"), 5, "abc", {"$numberLong": "5"}', cause: error});
  }
  const value = parsed._id;
  return {value, key: idKey(value)};
}

/** The document with this `_id` in the base backup, by the exact bytes stored there. */
async function baseDocument(base: BaseBackup, collection: string, key: string, signal?: AbortSignal): Promise<{doc: Buffer; ns: string} | null> {
  const wanted = (ns: {db: string; collection: string}) => (collection.includes('.') ? `${ns.db}.${ns.collection}` === collection : ns.collection === collection);
  for await (const event of readDump(base.input, {want: wanted, ...(signal ? {signal} : {})})) {
    if (event.type !== 'documents') continue;
    for (const doc of event.docs) if (rawIdKey(doc) === key) return {doc: Buffer.from(doc), ns: `${event.db}.${event.collection}`};
  }
  return null;
}

export async function runHistory(sources: OplogSource[], options: HistoryOptions, settings: Settings): Promise<HistoryResult> {
  const {value, key} = parseId(options.id);
  const userOplog = new CombinedOplog(sources);
  options.onProgress?.('Choosing the base backup');
  const base = await chooseBase(options, settings, userOplog);
  const all = base?.ownOplog ? [...sources, base.ownOplog] : sources;
  const oplog = new CombinedOplog(all);
  const coverage = await oplog.coverage(options.signal);
  const start = base?.point ?? options.since ?? coverage.from;
  if (start === null) throw new GravityError('OPLOG_GAP', 'The oplog sources hold no entries', {hint: 'Check them with `gravity-restore oplog`'});
  if (options.since && base && compareOpTime(options.since, base.point) < 0) {
    throw new GravityError('USAGE', `--since ${opTimeToIso(options.since)} is before the base backup's point (${opTimeToIso(base.point)})`, {hint: 'Give --from an older backup, or a later --since'});
  }
  assertCovers(coverage, start, options.until, `the history of ${options.collection} ${idToJson(value)} from ${opTimeToIso(start)}`);

  let initial: Buffer | null = null;
  let home: string | null = null;
  const tracked = new Set<string>();
  const matches = (ns: string) => tracked.has(ns) || (options.collection.includes('.') ? ns === options.collection : collectionOf(ns) === options.collection);
  if (base) {
    options.onProgress?.(`Reading ${options.collection} ${idToJson(value)} from ${base.label}`);
    const found = await baseDocument(base, options.collection, key, options.signal);
    if (found) {
      initial = found.doc;
      home = found.ns;
    }
  }
  // One document's operations and the collection operations around them: bounded by its own history.
  // A live oplog is filtered on the server by the collection's namespace; a rename moves the
  // document to a namespace that filter does not hold, so then the read is made again unfiltered.
  let ops: Operation[] = [];
  const homeAtBase = home;
  const filtered = options.collection.includes('.') && all.some((source) => source instanceof LiveOplogSource);
  for (const hint of filtered ? [[options.collection], null] : [null]) {
    ops = [];
    home = homeAtBase;
    tracked.clear();
    let renamed = false;
    const decoder = new OplogDecoder({namespaces: matches});
    options.onProgress?.('Reading the oplog');
    const read = oplog.batches({since: start, namespaces: hint, ...(options.until ? {until: options.until} : {}), ...(options.signal ? {signal: options.signal} : {})});
    for await (const batch of read) {
      for (const entry of batch) {
        if (skippable(entry.raw, matches)) continue;
        for (const op of decoder.decode(entry)) {
          if (isDocumentOperation(op)) {
            if (op.idKey !== key || !matches(op.ns)) continue;
            home ??= op.ns;
          } else if (op.kind === 'rename' && op.to !== undefined && matches(op.ns)) {
            // Later entries of the renamed collection carry its new name.
            tracked.add(op.to);
            renamed = true;
          }
          ops.push(op);
        }
      }
    }
    decoder.finish();
    if (!renamed) break;
  }
  // Inside a mongodump --oplog base's capture window its documents may already reflect an entry:
  // applied as mongod re-applies them there (OPLOG.md §5 rules 1-2); strictly after it.
  const windowEnd = base?.windowEnd ?? null;
  const replay = replayDocument(home ?? options.collection, key, initial, ops, {
    mode: (op) => (windowEnd !== null && compareOpTime(op.ts, windowEnd) <= 0 ? 'idempotent' : 'strict'),
  });
  const stateKnown = base !== null || replay.events.some((e) => e.op === 'insert' || e.op === 'delete' || e.op === 'drop');
  const current = stateKnown ? replay.doc : null;
  const listed = (ts: OpTime) => options.since === null || compareOpTime(ts, options.since) >= 0;
  const events: HistoryEvent[] = replay.events.filter((e) => listed(e.ts) && !e.fromMigrate).map((e) => ({
    ts: {t: e.ts.t, i: e.ts.i},
    wall: e.wall ? e.wall.toISOString() : null,
    op: e.op,
    set: e.set,
    unset: e.unset,
    transaction: e.transaction,
    ns: e.ns,
    ...(e.outcome === 'update-on-missing' || e.outcome === 'delete-on-missing' ? {missing: true} : {}),
    ...(e.provisional.length > 0 ? {provisional: e.provisional} : {}),
    ...(e.op === 'rename' ? {to: renameTarget(ops, e.ts, e.ns)} : {}),
  }));
  const ts = (t: OpTime | null) => (t === null ? null : {t: t.t, i: t.i});
  return {
    collection: options.collection,
    _id: JSON.parse(idToJson(value)),
    base: base ? {backup: base.label, takenAt: base.takenAt, point: {t: base.point.t, i: base.point.i}, pointTime: opTimeToIso(base.point)} : null,
    events,
    state: current === null ? null : JSON.parse(docToJson(current)),
    stateJson: current === null ? null : docToJson(current),
    stateKnown,
    since: ts(options.since),
    until: ts(options.until),
    replayedFrom: {t: start.t, i: start.i},
    sources: all.map((s) => s.label),
  };
}

function isDocumentOperation(op: Operation): op is DocumentOperation {
  return op.kind === 'insert' || op.kind === 'update' || op.kind === 'replace' || op.kind === 'delete';
}

function renameTarget(ops: Operation[], ts: OpTime, from: string): string {
  const op = ops.find((o) => o.kind === 'rename' && o.ns === from && compareOpTime(o.ts, ts) === 0);
  return op?.kind === 'rename' && op.to !== undefined ? op.to : '?';
}
