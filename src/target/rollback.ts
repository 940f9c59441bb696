import type {Document} from 'bson';
import type {AnyBulkWriteOperation} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError, isGravityError} from '../errors.js';
import {JournalWriter, listJournals} from '../restore-set/journal.js';
import type {JournalFile} from '../restore-set/journal.js';
import {appendLedger, type LedgerEntry} from '../restore-set/ledger.js';
import {readSetDocuments} from '../restore-set/manifest.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {docFromJson, idFromJson, idKey, idKeyFromJson, idOf, sameBytes, sha256} from './bson-util.js';
import {exactForm} from './exact.js';
import type {ExactDoc} from './exact.js';
import {fieldsDigest, fieldsFilter, restoreUpdate} from './fields.js';
import {fetchRawById, isConnectionLoss} from './plan.js';
import {PUSH_BATCH_DOCS} from './push.js';
import {DEFAULT_RETRY, unchangedFilter, withRetry, WRITE_CONCERN} from './write.js';
import type {RollbackCounts, RollbackResult, TargetConnection} from './types.js';
import {pushJournals} from './verify.js';

/** What one push did to one document, as its journal tells it. */
export interface UndoItem {
  collection: string;
  db: string;
  id: string;
  kind: 'insert' | 'overwrite' | 'repair';
  /** The journal recorded the write as done; false when only the intent was written (crash mid-batch). */
  confirmed: boolean;
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
 * Everything the given push journals wrote, newest journal first winning for a document both
 * touched. Intents without a completion record are included (unconfirmed): the process may have
 * died after the server applied the batch but before the journal said so.
 */
export function undoItems(journals: JournalFile[]): UndoItem[] {
  const seen = new Map<string, UndoItem>();
  for (const journal of [...journals].reverse()) {
    const local = new Map<string, UndoItem>();
    const conflicted = new Set<string>();
    for (const r of journal.records) {
      if (r.type === 'intent') {
        for (const id of r.insert ?? []) {
          const k = `${r.collection}\u0000${idKeyFromJson(id)}`;
          if (!local.has(k)) local.set(k, {collection: r.collection, db: r.db, id, kind: 'insert', confirmed: false});
        }
        for (const o of r.overwrite ?? []) {
          const k = `${r.collection}\u0000${idKeyFromJson(o.id)}`;
          local.set(k, {collection: r.collection, db: r.db, id: o.id, kind: 'overwrite', confirmed: false, pre: o.pre, preBson: o.preBson, writtenSha256: o.writtenSha256});
        }
        for (const f of r.repair ?? []) {
          const k = `${r.collection}\u0000${idKeyFromJson(f.id)}`;
          local.set(k, {collection: r.collection, db: r.db, id: f.id, kind: 'repair', confirmed: false, fields: journal.begin.fields ?? Object.keys(f.pre), preFields: f.pre, preSha256: f.preSha256, writtenSha256: f.writtenSha256});
        }
      } else if (r.type === 'inserted' || r.type === 'overwritten' || r.type === 'repaired') {
        for (const id of r.ids) {
          const item = local.get(`${r.collection}\u0000${idKeyFromJson(id)}`);
          if (item) item.confirmed = true;
        }
      } else if (r.type === 'conflict' || r.type === 'refused' || r.type === 'excluded') {
        for (const id of r.ids) conflicted.add(`${r.collection}\u0000${idKeyFromJson(id)}`);
      } else if (r.type === 'stored') {
        for (const it of r.items) {
          const item = local.get(`${r.collection}\u0000${idKeyFromJson(it.id)}`);
          if (item) {
            item.storedSha256 = it.sha256;
            item.confirmed = true;
          }
        }
      }
    }
    for (const [k, item] of local) {
      // An insert the server refused (duplicate key, validator) was never ours to undo.
      if (item.kind === 'insert' && !item.confirmed && conflicted.has(k) && item.storedSha256 === undefined) continue;
      if (!seen.has(k)) seen.set(k, item);
    }
  }
  return [...seen.values()];
}

/** The exact pre-image bytes: base64 BSON when journaled, else re-encoded from Extended JSON. */
function preImage(item: UndoItem): Uint8Array {
  return item.preBson ? Buffer.from(item.preBson, 'base64') : docFromJson(item.pre ?? '{}');
}

export async function rollbackSet(set: RestoreSet, conn: TargetConnection, options: {signal?: AbortSignal; batchDocs?: number} = {}): Promise<RollbackResult> {
  const started = Date.now();
  const pushes = await pushJournals(set, conn);
  // A push is done with once a rollback of it finished with nothing left over. A partial or
  // interrupted rollback is not final: what it undid is left out, the rest is tried again.
  const undone = new Set<string>();
  const alreadyUndone = new Set<string>();
  for (const j of await listJournals(set, conn.spec.name)) {
    if (j.begin.op !== 'rollback' || j.begin.setHash !== set.hash) continue;
    const end = j.records.find((r) => r.type === 'end');
    if (end && end.type === 'end' && end.outcome === 'ok') for (const p of j.begin.rollsBack ?? []) undone.add(p);
    for (const r of j.records) {
      if (r.type === 'deleted' || r.type === 'restored') for (const id of r.ids) alreadyUndone.add(`${r.collection}\u0000${idKeyFromJson(id)}`);
    }
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
  const items = undoItems(pending).filter((i) => !alreadyUndone.has(`${i.collection}\u0000${idKeyFromJson(i.id)}`));
  const policy = {...DEFAULT_RETRY, ...(options.signal ? {signal: options.signal} : {})};
  let batchNo = 0;
  try {
    // Dependents before parents: the reverse of the push order.
    for (const name of [...set.manifest.order].reverse()) {
      const mine = items.filter((i) => i.collection === name);
      const counts: RollbackCounts = {deleted: 0, restored: 0, skipped: 0, alreadyUndone: 0};
      result.collections[name] = counts;
      if (mine.length === 0) continue;
      const entry = set.manifest.collections[name]!;
      const setDocs = new Map<string, Uint8Array>();
      for (const raw of await readSetDocuments(set, name)) setDocs.set(idKey(idOf(raw)), raw);
      const skip = (id: string, reason: string) => {
        counts.skipped++;
        result.skippedDetails.push({collection: name, _id: JSON.parse(id), reason});
      };
      const db = mine[0]!.db;
      const coll = conn.client.db(db || conn.dbName(entry.db)).collection(entry.collection, {writeConcern: WRITE_CONCERN});
      const size = options.batchDocs ?? PUSH_BATCH_DOCS;
      for (let start = 0; start < mine.length; start += size) {
        const batch = mine.slice(start, start + size).map((item) => ({item}));
        if (options.signal?.aborted) throw new GravityError('INTERRUPTED', `Rollback interrupted; the journal ${journal.relPath} records what was undone`, {hint: 'Run the rollback again to finish'});
        const current = await fetchRawById(coll, batch.map((b) => idFromJson(b.item.id)));
        const deletes: Array<{id: string; now: Uint8Array}> = [];
        const restores: Array<{id: string; now: Uint8Array; pre: Uint8Array}> = [];
        const fieldRestores: Array<{item: UndoItem; now: ExactDoc}> = [];
        for (const {item} of batch) {
          const now = current.get(idKeyFromJson(item.id));
          if (item.kind === 'repair') {
            const fields = item.fields ?? [];
            const doc = now ? exactForm(now).doc : null;
            if (!doc) skip(item.id, 'deleted after the push (fields not restored)');
            else if (fieldsDigest(doc, fields) === item.writtenSha256) fieldRestores.push({item, now: doc});
            else if (item.confirmed || fieldsDigest(doc, fields) !== item.preSha256) skip(item.id, 'fields changed after the push (left as is)');
            continue;
          }
          if (item.kind === 'insert') {
            const wrote = setDocs.get(idKeyFromJson(item.id));
            if (!now) {
              if (item.confirmed) counts.alreadyUndone++;
            } else if ((wrote && sameBytes(now, wrote)) || (item.storedSha256 !== undefined && sha256(now) === item.storedSha256)) deletes.push({id: item.id, now});
            else if (item.confirmed) skip(item.id, 'changed after the push (left as is)');
          } else {
            const pre = preImage(item);
            const inexact = exactForm(pre).inexact;
            if (!now) skip(item.id, 'deleted after the push (pre-image not restored)');
            else if (sha256(now) === item.writtenSha256 && inexact) skip(item.id, `the pre-image cannot be written back byte for byte (${inexact}); it is in the journal`);
            else if (sha256(now) === item.writtenSha256) restores.push({id: item.id, now, pre});
            else if (item.confirmed || sha256(now) !== sha256(pre)) skip(item.id, 'changed after the push (left as is)');
          }
        }
        if (deletes.length === 0 && restores.length === 0 && fieldRestores.length === 0) continue;
        const number = ++batchNo;
        await journal.append({type: 'intent', collection: name, db, batch: number, delete: deletes.map((d) => d.id), restore: [...restores.map((r) => r.id), ...fieldRestores.map((r) => r.item.id)]});
        if (deletes.length > 0) {
          const ops: AnyBulkWriteOperation<Document>[] = deletes.map((d) => ({deleteOne: {filter: unchangedFilter(idFromJson(d.id), d.now)}}));
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
