import type {Document} from 'bson';
import type {AnyBulkWriteOperation, Filter} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError, isGravityError} from '../errors.js';
import {journalRecords, JournalWriter, listJournals} from '../restore-set/journal.js';
import type {JournalFile, JournalRecord} from '../restore-set/journal.js';
import {appendLedger, type LedgerEntry} from '../restore-set/ledger.js';
import {readSetDocuments} from '../restore-set/manifest.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {digest, docFromJson, idFromJson, idKey, idKeyFromJson, idOf, sameBytes, sha256} from './bson-util.js';
import {exactForm, writeForm} from './exact.js';
import type {ExactDoc} from './exact.js';
import {fieldsDigest, fieldsFilter, restoreUpdate} from './fields.js';
import {fetchRawById, isConnectionLoss} from './plan.js';
import {runPool} from './pool.js';
import {PUSH_BATCH_DOCS} from './push.js';
import {DEFAULT_RETRY, unchangedFilter, withRetry, WRITE_CONCERN} from './write.js';
import type {PushCounts, RollbackCounts, RollbackResult, TargetConnection} from './types.js';
import {pushJournals} from './verify.js';

/** What one push did to one document, as its journal tells it. */
export interface UndoItem {
  collection: string;
  db: string;
  id: string;
  kind: 'insert' | 'overwrite' | 'repair';
  /** The journal recorded the write as done; false when only the intent was written (crash mid-batch). */
  confirmed: boolean;
  /** For inserts: base64 sha256 of the bytes the push inserted (journals written before it was recorded lack it). */
  insertSha256?: string;
  /** For overwrites: the pre-image (canonical EJSON) and the sha256 of what the push wrote. */
  pre?: string;
  preBson?: string;
  writtenSha256?: string;
  /** For inserts that left other bytes than the set's on the target: the sha256 of what it held. */
  storedSha256?: string;
  /** For field repairs: the fields, their values before (base64 BSON, null when absent) and digests before/after. */
  fields?: string[];
  preFields?: Record<string, string | null>;
  preSha256?: string;
}

/**
 * What a push journal wrote to one collection, batch by batch, read as a stream: each batch's
 * intent is held until the record that completes it (the last record a push writes for a batch),
 * so memory holds the batches in flight, not the journal. Intents never completed (the process
 * died mid-batch) come out at the end, unconfirmed: the server may have applied them anyway.
 * An insert the server refused (a duplicate key, a validator) is not ours to undo.
 */
export async function* undoBatches(records: AsyncIterable<JournalRecord> | Iterable<JournalRecord>, collection: string, fields?: string[]): AsyncGenerator<UndoItem[]> {
  const open = new Map<number, Map<string, UndoItem>>();
  const refused = new Set<string>();
  const settle = (items: Map<string, UndoItem>): UndoItem[] =>
    [...items.values()].filter((item) => !(item.kind === 'insert' && !item.confirmed && item.storedSha256 === undefined && refused.has(idKeyFromJson(item.id))));
  for await (const r of records) {
    if (!('collection' in r) || r.collection !== collection) continue;
    if (r.type === 'intent') {
      const items = new Map<string, UndoItem>();
      (r.insert ?? []).forEach((id, i) => {
        const digest = r.insertSha256?.[i];
        items.set(idKeyFromJson(id), {collection, db: r.db, id, kind: 'insert', confirmed: false, ...(digest ? {insertSha256: digest} : {})});
      });
      for (const o of r.overwrite ?? []) items.set(idKeyFromJson(o.id), {collection, db: r.db, id: o.id, kind: 'overwrite', confirmed: false, pre: o.pre, preBson: o.preBson, writtenSha256: o.writtenSha256});
      for (const f of r.repair ?? []) {
        items.set(idKeyFromJson(f.id), {collection, db: r.db, id: f.id, kind: 'repair', confirmed: false, fields: fields ?? Object.keys(f.pre), preFields: f.pre, preSha256: f.preSha256, writtenSha256: f.writtenSha256});
      }
      if (items.size > 0) open.set(r.batch, items);
    } else if (r.type === 'stored') {
      for (const it of r.items) {
        const item = open.get(r.batch)?.get(idKeyFromJson(it.id));
        if (item) {
          item.storedSha256 = it.sha256;
          item.confirmed = true;
        }
      }
    } else if (r.type === 'conflict' || r.type === 'refused' || r.type === 'excluded') {
      // Only ids of batches still open can be affected; anything else names documents never written.
      for (const id of r.ids) {
        const key = idKeyFromJson(id);
        for (const items of open.values()) if (items.has(key)) refused.add(key);
      }
    } else if (r.type === 'inserted' || r.type === 'overwritten' || r.type === 'repaired') {
      const items = open.get(r.batch);
      if (!items) continue;
      for (const id of r.ids) {
        const item = items.get(idKeyFromJson(id));
        if (item) item.confirmed = true;
      }
      open.delete(r.batch);
      const out = settle(items);
      for (const item of items.values()) refused.delete(idKeyFromJson(item.id));
      if (out.length > 0) yield out;
    }
  }
  for (const items of open.values()) {
    const out = settle(items);
    if (out.length > 0) yield out;
  }
}

/** The exact pre-image bytes: base64 BSON when journaled, else re-encoded from Extended JSON. */
function preImage(item: UndoItem): Uint8Array {
  return item.preBson ? Buffer.from(item.preBson, 'base64') : docFromJson(item.pre ?? '{}');
}

/** Undo batches in flight at once (as push's writers: the next batch is read and compared while others are written). */
export const ROLLBACK_WRITERS = 4;

export interface RollbackOptions {
  signal?: AbortSignal;
  batchDocs?: number;
  writers?: number;
  /** Documents looked at so far, of about `total` (what the pushes' end records say they wrote; an interrupted push adds what it finished). */
  onProgress?: (p: {done: number; total: number}) => void;
}

/** What the pushes say they wrote, from their end records: the total a rollback's progress counts toward. */
function writtenByPushes(pushes: JournalFile[]): number {
  let total = 0;
  for (const p of pushes) {
    for (const c of Object.values((p.end?.counts ?? {}) as Record<string, Partial<PushCounts>>)) total += (c.inserted ?? 0) + (c.overwritten ?? 0) + (c.repaired ?? 0);
  }
  return total;
}

export async function rollbackSet(set: RestoreSet, conn: TargetConnection, options: RollbackOptions = {}): Promise<RollbackResult> {
  const started = Date.now();
  const pushes = await pushJournals(set, conn);
  // A push is done with once a rollback of it finished with nothing left over. A partial or
  // interrupted rollback is not final: the rest is tried again, and what it undid is found as it is
  // on the target (deleted, or holding the pre-image again) and counted as already undone.
  const undone = new Set<string>();
  for (const j of await listJournals(set, conn.spec.name)) {
    if (j.begin.op !== 'rollback' || j.begin.setHash !== set.hash) continue;
    if (j.end?.outcome === 'ok') for (const p of j.begin.rollsBack ?? []) undone.add(p);
  }
  const pending = pushes.filter((p) => !undone.has(p.relPath));
  if (pending.length === 0) {
    throw new GravityError('JOURNAL_MISSING', `No push of this restore set to ${conn.spec.label} is left to roll back`, {
      hint: pushes.length ? 'Every push to this target was already rolled back' : 'Nothing was pushed to this target; check --to',
    });
  }
  if (options.signal?.aborted) throw new GravityError('INTERRUPTED', 'Rollback interrupted before anything was written', {hint: 'Run the rollback again'});
  const journal = await JournalWriter.create(set, {
    type: 'begin',
    op: 'rollback',
    target: conn.spec.name,
    targetLabel: conn.spec.label,
    setHash: set.hash,
    rollsBack: pending.map((p) => p.relPath),
    time: new Date().toISOString(),
  });
  const result: RollbackResult = {target: conn.spec.label, collections: {}, skippedDetails: [], rolledBack: pending.map((p) => p.relPath), journal: journal.path};
  const ledgerLine = (outcome: LedgerEntry['outcome']): LedgerEntry => ({
    time: new Date().toISOString(),
    action: 'rollback',
    target: conn.spec.name,
    targetLabel: conn.spec.label,
    setHash: set.hash,
    counts: result.collections,
    outcome,
    journal: journal.relPath,
    durationMs: Date.now() - started,
  });
  const policy = {...DEFAULT_RETRY, ...(options.signal ? {signal: options.signal} : {})};
  const size = options.batchDocs ?? PUSH_BATCH_DOCS;
  const state: UndoState = {conn, journal, policy, result, batchNo: 0, setDocs: new Map()};
  const total = writtenByPushes(pending);
  let done = 0;
  const step = async (name: string, entry: {db: string; collection: string}, items: UndoItem[], counts: RollbackCounts) => {
    await undoBatch(state, set, name, entry, items, counts, options.signal);
    done += items.length;
    options.onProgress?.({done, total: Math.max(total, done)});
  };
  options.onProgress?.({done, total});
  try {
    // Dependents before parents: the reverse of the push order. Pushes newest first: each undo
    // brings the target back to where it stood before that push.
    for (const name of [...set.manifest.order].reverse()) {
      const counts: RollbackCounts = {deleted: 0, restored: 0, skipped: 0, alreadyUndone: 0};
      result.collections[name] = counts;
      const entry = set.manifest.collections[name]!;
      for (const push of [...pending].reverse()) {
        const once = new OncePerDocument();
        const work = async (items: UndoItem[]) => {
          const mine = once.claim(items);
          if (mine.length === 0) return;
          try {
            await step(name, entry, mine, counts);
          } finally {
            once.release(mine);
          }
        };
        await runPool(inBatches(undoBatches(journalRecords(push), name, push.begin.fields), size), options.writers ?? ROLLBACK_WRITERS, work);
        // Repeats that met their document in flight, one batch at a time now nothing else is.
        while (once.later.length > 0) await work(once.later.splice(0, once.later.length));
      }
      state.setDocs.clear();
    }
    const outcome = result.skippedDetails.length > 0 ? 'partial' : 'ok';
    await journal.append({type: 'end', outcome, counts: result.collections, time: new Date().toISOString()});
    await journal.close();
    await appendLedger(set, {
      ...ledgerLine(outcome),
      ...(outcome === 'partial' ? {reason: `${result.skippedDetails.length} document(s) changed after the push were left as they are`} : {}),
    });
    return result;
  } catch (error) {
    const failure = isGravityError(error)
      ? error
      : new GravityError(
          isConnectionLoss(error) ? 'TARGET_UNREACHABLE' : 'INTERNAL',
          `Rollback on ${conn.spec.label} failed: ${redact(error instanceof Error ? error.message : String(error))}`,
          {hint: `The journal ${journal.relPath} records what was undone; run the rollback again to finish`, cause: error},
        );
    await journal.append({type: 'interrupted', reason: failure.message, time: new Date().toISOString()}).catch(() => undefined);
    await journal.close().catch(() => undefined);
    await appendLedger(set, {...ledgerLine('failed'), reason: failure.message}).catch(() => undefined);
    throw failure;
  }
}

interface UndoState {
  conn: TargetConnection;
  journal: JournalWriter;
  policy: typeof DEFAULT_RETRY & {signal?: AbortSignal};
  result: RollbackResult;
  batchNo: number;
  /** Only for journals written before inserts carried their digest: the set's documents of one collection by id key. */
  setDocs: Map<string, Uint8Array>;
}

/** Did the push leave these bytes? By the digest it journaled, or (older journals) by the set's own bytes. */
async function insertedBytes(state: UndoState, set: RestoreSet, name: string, item: UndoItem, now: Uint8Array): Promise<boolean> {
  if (item.storedSha256 !== undefined && sha256(now) === item.storedSha256) return true;
  if (item.insertSha256 !== undefined) return digest(now) === item.insertSha256;
  if (state.setDocs.size === 0) for (const raw of await readSetDocuments(set, name)) state.setDocs.set(idKey(idOf(raw)), raw);
  const wrote = state.setDocs.get(idKeyFromJson(item.id));
  return wrote !== undefined && sameBytes(now, wrote);
}

/** Undo one batch of a push's writes: compare each document with what the push left, then delete or put back what still matches. */
async function undoBatch(state: UndoState, set: RestoreSet, name: string, entry: {db: string; collection: string}, batch: UndoItem[], counts: RollbackCounts, signal?: AbortSignal): Promise<void> {
  const {conn, journal, policy, result} = state;
  if (signal?.aborted) throw new GravityError('INTERRUPTED', `Rollback interrupted; the journal ${journal.relPath} records what was undone`, {hint: 'Run the rollback again to finish'});
  const skip = (id: string, reason: string) => {
    counts.skipped++;
    result.skippedDetails.push({collection: name, _id: JSON.parse(id), reason});
  };
  const db = batch[0]!.db;
  const coll = conn.client.db(db || conn.dbName(entry.db)).collection(entry.collection, {writeConcern: WRITE_CONCERN});
  const current = await fetchRawById(coll, batch.map((item) => idFromJson(item.id)));
  const deletes: Array<{id: string; now: Uint8Array}> = [];
  const restores: Array<{id: string; now: Uint8Array; pre: Uint8Array}> = [];
  const fieldRestores: Array<{item: UndoItem; now: ExactDoc}> = [];
  for (const item of batch) {
    const now = current.get(idKeyFromJson(item.id));
    if (item.kind === 'repair') {
      const fields = item.fields ?? [];
      const doc = now ? exactForm(now).doc : null;
      const held = doc ? fieldsDigest(doc, fields) : null;
      if (!doc) skip(item.id, 'deleted after the push (fields not restored)');
      else if (held === item.writtenSha256) fieldRestores.push({item, now: doc});
      else if (held === item.preSha256) counts.alreadyUndone += item.confirmed ? 1 : 0;
      else if (item.confirmed) skip(item.id, 'fields changed after the push (left as is)');
      continue;
    }
    if (item.kind === 'insert') {
      if (!now) {
        if (item.confirmed) counts.alreadyUndone++;
      } else if (await insertedBytes(state, set, name, item, now)) deletes.push({id: item.id, now});
      else if (item.confirmed) skip(item.id, 'changed after the push (left as is)');
    } else {
      const pre = preImage(item);
      const inexact = exactForm(pre).inexact;
      const held = now ? sha256(now) : null;
      if (!now) skip(item.id, 'deleted after the push (pre-image not restored)');
      else if (held === item.writtenSha256 && inexact) skip(item.id, `the pre-image cannot be written back byte for byte (${inexact}); it is in the journal`);
      else if (held === item.writtenSha256) restores.push({id: item.id, now, pre});
      else if (sameBytes(now, pre)) counts.alreadyUndone += item.confirmed ? 1 : 0;
      else if (item.confirmed) skip(item.id, 'changed after the push (left as is)');
    }
  }
  if (deletes.length === 0 && restores.length === 0 && fieldRestores.length === 0) return;
  const number = ++state.batchNo;
  await journal.append({type: 'intent', collection: name, db, batch: number, delete: deletes.map((d) => d.id), restore: [...restores.map((r) => r.id), ...fieldRestores.map((r) => r.item.id)]});
  if (deletes.length > 0) {
    const ops = deleteStatements(deletes.map((d) => ({id: idFromJson(d.id), now: d.now})));
    const res = await withRetry(() => coll.bulkWrite(ops, {ordered: false}), policy);
    let deleted = deletes.map((d) => d.id);
    if (res.deletedCount < deletes.length) {
      // Someone changed a few between our read and the delete: find which, and leave them.
      const still = await fetchRawById(coll, deletes.map((d) => idFromJson(d.id)));
      deleted = deletes.filter((d) => !still.has(idKeyFromJson(d.id))).map((d) => d.id);
      for (const d of deletes) if (still.has(idKeyFromJson(d.id))) skip(d.id, 'changed during the rollback (left as is)');
    }
    await journal.append({type: 'deleted', collection: name, db, batch: number, ids: deleted});
    counts.deleted += deleted.length;
  }
  // Whole pre-images, and field repairs put back only while the fields hold what the push wrote.
  const replaced: Array<{id: string; holds: (now: Uint8Array) => boolean; mismatch: string}> = [];
  for (const r of restores) {
    const res = await withRetry(() => coll.replaceOne(unchangedFilter(idFromJson(r.id), r.now, r.pre.length), exactForm(r.pre).doc), policy);
    if (res.matchedCount === 1) replaced.push({id: r.id, holds: (now) => sameBytes(now, r.pre), mismatch: 'restored, but the target holds other bytes than the pre-image'});
    else skip(r.id, 'changed during the rollback (left as is)');
  }
  for (const {item, now} of fieldRestores) {
    const fields = item.fields ?? [];
    const res = await withRetry(() => coll.updateOne(fieldsFilter(idFromJson(item.id), now, fields), restoreUpdate(item.preFields ?? {})), policy);
    if (res.matchedCount === 1) replaced.push({id: item.id, holds: (raw) => fieldsDigest(exactForm(raw).doc, fields) === item.preSha256, mismatch: 'fields restored, but the target holds other values when read back'});
    else skip(item.id, 'fields changed during the rollback (left as is)');
  }
  // Read back in one round trip: counted as restored only when the target holds what was put back.
  const back = replaced.length > 0 ? await fetchRawById(coll, replaced.map((r) => idFromJson(r.id))) : new Map<string, Uint8Array>();
  const exact: string[] = [];
  for (const r of replaced) {
    const now = back.get(idKeyFromJson(r.id));
    if (now && r.holds(now)) exact.push(r.id);
    else skip(r.id, r.mismatch);
  }
  if (exact.length > 0) await journal.append({type: 'restored', collection: name, db, batch: number, ids: exact});
  counts.restored += exact.length;
}

/** Documents whose deletion one statement proves document by document (see `unchangedGroupFilter`). */
export const DELETE_GROUP_DOCS = 32;
/** Bytes of documents one grouped statement may carry, far below the 16 MiB a statement may take. */
const DELETE_GROUP_BYTES = 1024 * 1024;

/**
 * One filter that matches each of `docs` only while it is still the version read (`now`, its raw
 * bytes, compared byte for byte by the caller just before), atomically with the delete: `_id` among
 * theirs, and the pair (BSON size, whole document) equal to one of theirs. As `_id` is part of the
 * document, a document can only equal the version read of its own `_id`, so this is
 * `unchangedFilter` for each document, in one statement the server plans once instead of once per
 * document. Equality is aggregation equality (field order included), as in `unchangedFilter`.
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/in/
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/bsonSize/
 * https://www.mongodb.com/docs/manual/reference/aggregation-variables/#mongodb-variable-variable.ROOT
 */
export function unchangedGroupFilter(docs: Array<{id: unknown; now: Uint8Array; form: ExactDoc | Record<string, unknown>}>): Filter<Document> {
  return {
    _id: {$in: docs.map((d) => d.id)},
    $expr: {$in: [[{$bsonSize: '$$ROOT'}, '$$ROOT'], {$literal: docs.map((d) => [d.now.length, d.form])}]},
  } as Filter<Document>;
}

/**
 * Delete statements for documents read just before: grouped (`unchangedGroupFilter`) where the exact
 * form stands for the document, one `unchangedFilter` each where it cannot (deprecated types, a
 * document too large to repeat in a statement) and only `_id` and the size are checked.
 */
export function deleteStatements(docs: Array<{id: unknown; now: Uint8Array}>, groupDocs = DELETE_GROUP_DOCS): AnyBulkWriteOperation<Document>[] {
  const ops: AnyBulkWriteOperation<Document>[] = [];
  let group: Array<{id: unknown; now: Uint8Array; form: ExactDoc | Record<string, unknown>}> = [];
  let bytes = 0;
  const flush = () => {
    if (group.length === 1) ops.push({deleteOne: {filter: unchangedFilter(group[0]!.id, group[0]!.now)}});
    else if (group.length > 1) ops.push({deleteMany: {filter: unchangedGroupFilter(group)}});
    group = [];
    bytes = 0;
  };
  for (const d of docs) {
    const form = d.now.length < DELETE_GROUP_BYTES ? writeForm(d.now) : null;
    if (!form || form.inexact !== null) {
      ops.push({deleteOne: {filter: unchangedFilter(d.id, d.now)}});
      continue;
    }
    if (group.length >= groupDocs || bytes + d.now.length > DELETE_GROUP_BYTES) flush();
    group.push({id: d.id, now: d.now, form: form.doc});
    bytes += d.now.length;
  }
  flush();
  return ops;
}

/** Items regrouped into batches of `size`, in order. */
async function* inBatches<T>(source: AsyncIterable<T[]>, size: number): AsyncGenerator<T[]> {
  const queue: T[] = [];
  for await (const items of source) {
    queue.push(...items);
    while (queue.length >= size) yield queue.splice(0, size);
  }
  if (queue.length > 0) yield queue;
}

/**
 * A document is never in two undo batches in flight: a resumed push can name one twice (a batch in
 * flight when it died, written again), and two batches comparing and deleting it at once would both
 * count it. A repeat within a batch is merged; one whose document is in flight waits in `later`,
 * to be met as the first batch left it.
 */
class OncePerDocument {
  private readonly inFlight = new Set<string>();
  readonly later: UndoItem[] = [];

  claim(items: UndoItem[]): UndoItem[] {
    const mine = new Map<string, UndoItem>();
    for (const item of items) {
      const key = idKeyFromJson(item.id);
      const earlier = mine.get(key);
      if (earlier) mine.set(key, {...item, confirmed: earlier.confirmed || item.confirmed});
      else if (this.inFlight.has(key)) this.later.push(item);
      else mine.set(key, item);
    }
    for (const key of mine.keys()) this.inFlight.add(key);
    return [...mine.values()];
  }

  release(items: UndoItem[]): void {
    for (const item of items) this.inFlight.delete(idKeyFromJson(item.id));
  }
}
