import type {Document} from 'bson';
import {EJSON} from 'bson';
import {MongoBulkWriteError, MongoServerError} from 'mongodb';
import type {Collection, Db, Filter, WriteError} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError, isGravityError} from '../errors.js';
import {JournalWriter, listJournals} from '../restore-set/journal.js';
import type {JournalFile, JournalRecord} from '../restore-set/journal.js';
import {appendLedger} from '../restore-set/ledger.js';
import {readSetDocuments, readSetMetadata} from '../restore-set/manifest.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {decodeExact, docToJson, idFromJson, idKey, idKeyFromJson, idOf, sameBytes, sha256} from './bson-util.js';
import {fetchRawById, isConnectionLoss} from './plan.js';
import type {Plan, ProgressCallback, PushCounts, PushResult, TargetConnection} from './types.js';

export const PUSH_BATCH_DOCS = 1000;
/** A batch stays under the server's 16 MB document limit so each journal intent maps to one write. */
export const PUSH_BATCH_BYTES = 16 * 1024 * 1024;
const DUPLICATE_KEY = 11000;

export interface PushOptions {
  onConflict: 'skip' | 'overwrite' | 'fail';
  batchDocs?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** The recorded reason when the production gate was passed with --skip-staging. */
  overrideReason?: string;
}

/** Split documents into batches by count and total bytes. */
export function batchesOf<T extends {raw: Uint8Array}>(items: T[], maxDocs: number, maxBytes = PUSH_BATCH_BYTES): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const item of items) {
    if (cur.length > 0 && (cur.length >= maxDocs || bytes + item.raw.length > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(item);
    bytes += item.raw.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * A filter that matches the document only while it still equals `doc` field by field: the
 * compare-and-swap half of an overwrite or a rollback (the byte comparison just before it is the
 * precise check; this closes the window between that read and the write). Fields the query
 * language would read as operators or patterns (names with `$` or `.`, regex values) are left
 * out of the filter rather than misread.
 */
export function casFilter(doc: Document): Filter<Document> {
  const filter: Document = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k.startsWith('$') || k.includes('.')) continue;
    if (v && typeof v === 'object' && (v as {_bsontype?: string})._bsontype === 'BSONRegExp') continue;
    if (v instanceof RegExp) continue;
    filter[k] = v;
  }
  return filter as Filter<Document>;
}

interface SetDoc {
  raw: Uint8Array;
  json: string;
}

export async function pushSet(set: RestoreSet, conn: TargetConnection, plan: Plan, options: PushOptions): Promise<PushResult> {
  const started = Date.now();
  checkPlanFits(set, conn, plan);
  const problems = Object.values(plan.collections).reduce((n, c) => n + c.conflict + c.keyMatch, 0);
  if (options.onConflict === 'fail' && problems > 0) {
    throw new GravityError('CONFLICT', `${problems} document(s) of the set differ from ${conn.spec.label} (changed since the backup); nothing was written`, {
      hint: 'See them with `gravity-restore plan`, then push with --on-conflict skip (keep the target\'s) or overwrite',
      details: {collections: plan.collections},
    });
  }
  if (options.signal?.aborted) throw interrupted(null);

  const unfinished = (await listJournals(set, conn.spec.name)).filter(
    (j) => j.begin.op === 'push' && j.begin.setHash === set.hash && j.begin.targetLabel === conn.spec.label && !j.finished,
  );
  const previous: JournalFile | undefined = unfinished.at(-1);
  const time = new Date().toISOString();
  const journal = previous
    ? await JournalWriter.reopen(previous)
    : await JournalWriter.create(set, {
        type: 'begin',
        op: 'push',
        target: conn.spec.name,
        targetLabel: conn.spec.label,
        setHash: set.hash,
        planHash: plan.hash,
        onConflict: options.onConflict,
        time,
      });
  if (previous) await journal.append({type: 'resume', time, planHash: plan.hash});
  const earlierOverwrites = new Set<string>();
  for (const r of previous?.records ?? []) {
    if (r.type === 'intent') for (const o of r.overwrite ?? []) earlierOverwrites.add(`${r.collection}\u0000${idKeyFromJson(o.id)}`);
  }

  if (options.overrideReason) {
    await appendLedger(set, {
      time,
      action: 'override',
      target: conn.spec.name,
      targetLabel: conn.spec.label,
      setHash: set.hash,
      planHash: plan.hash,
      outcome: 'ok',
      reason: options.overrideReason,
    });
  }

  const result: PushResult = {target: conn.spec.label, planHash: plan.hash, collections: {}, journal: journal.path, resumed: Boolean(previous), conflictDetails: []};
  const ctx: PushContext = {set, conn, plan, options, journal, result, earlierOverwrites, batch: lastBatch(previous?.records ?? [])};
  try {
    for (const name of set.manifest.order) await pushCollection(ctx, name);
    const counts = result.collections;
    await journal.append({type: 'end', outcome: 'ok', counts, time: new Date().toISOString()});
    await journal.close();
    await appendLedger(set, ledgerLine(ctx, 'ok', started));
    return result;
  } catch (error) {
    const failure = asFailure(error, options.signal, journal.relPath, conn);
    await journal.append({type: 'interrupted', reason: failure.message, time: new Date().toISOString()}).catch(() => undefined);
    await journal.close().catch(() => undefined);
    await appendLedger(set, {...ledgerLine(ctx, 'partial', started), reason: failure.message}).catch(() => undefined);
    throw failure;
  }
}

interface PushContext {
  set: RestoreSet;
  conn: TargetConnection;
  plan: Plan;
  options: PushOptions;
  journal: JournalWriter;
  result: PushResult;
  earlierOverwrites: Set<string>;
  batch: number;
}

function checkPlanFits(set: RestoreSet, conn: TargetConnection, plan: Plan): void {
  if (plan.setHash !== set.hash) {
    throw new GravityError('PLAN_CHANGED', `The plan ${plan.hash.slice(0, 12)} was made for another version of the restore set`, {
      hint: 'Run `gravity-restore plan SET --to TARGET` again',
    });
  }
  if (plan.targetName !== conn.spec.name || plan.target !== conn.spec.label) {
    throw new GravityError('PLAN_CHANGED', `The plan ${plan.hash.slice(0, 12)} was made for ${plan.target}, not ${conn.spec.label}`, {
      hint: 'Run `gravity-restore plan SET --to TARGET` for this target',
    });
  }
  for (const name of set.manifest.order) {
    if (!plan.ids[name]) {
      throw new GravityError('PLAN_CHANGED', `The plan ${plan.hash.slice(0, 12)} does not cover collection ${name}`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
    }
  }
}

function lastBatch(records: JournalRecord[]): number {
  let n = 0;
  for (const r of records) if (r.type === 'intent') n = Math.max(n, r.batch);
  return n;
}

function ledgerLine(ctx: PushContext, outcome: 'ok' | 'partial', started: number) {
  return {
    time: new Date().toISOString(),
    action: 'push' as const,
    target: ctx.conn.spec.name,
    targetLabel: ctx.conn.spec.label,
    setHash: ctx.set.hash,
    planHash: ctx.plan.hash,
    counts: ctx.result.collections,
    outcome,
    journal: ctx.journal.relPath,
    durationMs: Date.now() - started,
    ...(ctx.options.overrideReason ? {reason: `override: ${ctx.options.overrideReason}`} : {}),
  };
}

function interrupted(journal: string | null): GravityError {
  return new GravityError('INTERRUPTED', journal ? `Push interrupted; the journal ${journal} records what was written` : 'Push interrupted before anything was written', {
    hint: 'Run the same push again to resume (no document is written twice), or roll it back with `gravity-restore rollback`',
  });
}

function asFailure(error: unknown, signal: AbortSignal | undefined, journal: string, conn: TargetConnection): GravityError {
  if (signal?.aborted) return interrupted(journal);
  if (isGravityError(error)) return error;
  const message = redact(error instanceof Error ? error.message : String(error));
  if (isConnectionLoss(error)) {
    return new GravityError('TARGET_UNREACHABLE', `Lost the connection to ${conn.spec.label} during the push: ${message}`, {
      hint: `The journal ${journal} is intact; run the same push again to resume`,
      cause: error,
    });
  }
  return new GravityError('INTERNAL', `Push to ${conn.spec.label} failed: ${message}`, {
    hint: `The journal ${journal} records what was written; fix the cause and run the push again to resume, or roll back`,
    cause: error,
  });
}

async function ensureCollection(ctx: PushContext, name: string, db: Db, collection: string): Promise<void> {
  const existing = await db.listCollections({name: collection}, {nameOnly: true}).toArray();
  if (existing.length > 0) return;
  const metadata = await readSetMetadata(ctx.set, name);
  // Metadata is canonical Extended JSON; relaxed decoding gives plain numbers for sizes and limits.
  const options = metadata?.options ? (EJSON.deserialize(metadata.options as Document, {relaxed: true}) as Document) : {};
  await db.createCollection(collection, options);
  const indexes = ((metadata?.indexes as Document[] | undefined) ?? [])
    .map((ix) => EJSON.deserialize(ix, {relaxed: true}) as Document)
    .filter((ix) => ix.name !== '_id_')
    .map((ix) => {
      const {v: _v, ns: _ns, ...spec} = ix;
      return spec;
    });
  if (indexes.length > 0) await db.collection(collection).createIndexes(indexes as Parameters<Collection['createIndexes']>[0]);
  await ctx.journal.append({type: 'created', collection: name, db: db.databaseName, indexes: indexes.map((ix) => String(ix.name))});
}

async function pushCollection(ctx: PushContext, name: string): Promise<void> {
  const {set, conn, plan, options, journal, result} = ctx;
  const entry = set.manifest.collections[name]!;
  const ns = plan.namespaces[name] ?? {db: conn.dbName(entry.db), collection: entry.collection};
  const db = conn.client.db(ns.db);
  const coll = db.collection(ns.collection, {writeConcern: {w: 'majority'}});
  const ids = plan.ids[name]!;
  const counts: PushCounts = {inserted: 0, overwritten: 0, skipped: ids.same.length, conflicts: 0};
  result.collections[name] = counts;

  const docs = await readSetDocuments(set, name);
  const byKey = new Map<string, SetDoc>();
  for (const raw of docs) {
    const id = idOf(raw);
    byKey.set(idKey(id), {raw, json: ''});
  }
  const pick = (list: string[]): SetDoc[] =>
    list.map((json) => {
      const doc = byKey.get(idKeyFromJson(json));
      if (!doc) throw new GravityError('PLAN_CHANGED', `The plan names ${json} in ${name}, which the set does not hold`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
      return {raw: doc.raw, json};
    });

  const total = ids.insert.length + (options.onConflict === 'overwrite' ? ids.conflict.length : 0);
  let done = 0;
  const progress = () => options.onProgress?.({collection: name, done, total});
  progress();

  if (ids.keyMatch.length > 0) {
    await recordConflicts(ctx, name, ns.db, ids.keyMatch, 'natural key held by another _id on the target');
    counts.conflicts += ids.keyMatch.length;
  }

  const inserts = pick(ids.insert);
  if (inserts.length > 0) await ensureCollection(ctx, name, db, ns.collection);
  for (const batch of batchesOf(inserts, options.batchDocs ?? PUSH_BATCH_DOCS)) {
    if (options.signal?.aborted) throw interrupted(journal.relPath);
    await insertBatch(ctx, name, ns.db, coll, batch, counts);
    done += batch.length;
    progress();
  }

  if (ids.conflict.length > 0 && options.onConflict !== 'overwrite') {
    await recordConflicts(ctx, name, ns.db, ids.conflict, 'changed on the target since the backup (skipped)');
    counts.conflicts += ids.conflict.length;
  } else if (ids.conflict.length > 0) {
    for (const batch of batchesOf(pick(ids.conflict), options.batchDocs ?? PUSH_BATCH_DOCS)) {
      if (options.signal?.aborted) throw interrupted(journal.relPath);
      await overwriteBatch(ctx, name, ns.db, coll, batch, counts);
      done += batch.length;
      progress();
    }
  }
}

async function recordConflicts(ctx: PushContext, collection: string, db: string, ids: string[], reason: string): Promise<void> {
  if (ids.length === 0) return;
  await ctx.journal.append({type: 'conflict', collection, db, ids, reason});
  for (const id of ids.slice(0, Math.max(0, 100 - ctx.result.conflictDetails.length))) {
    ctx.result.conflictDetails.push({collection, _id: JSON.parse(id), reason});
  }
}

function writeErrorsOf(error: MongoBulkWriteError): WriteError[] {
  const list = error.writeErrors;
  return Array.isArray(list) ? list : [list as WriteError];
}

async function insertBatch(ctx: PushContext, name: string, db: string, coll: Collection, batch: SetDoc[], counts: PushCounts): Promise<void> {
  const number = ++ctx.batch;
  await ctx.journal.append({type: 'intent', collection: name, db, batch: number, insert: batch.map((d) => d.json)});
  const failed = new Map<number, WriteError>();
  try {
    await coll.insertMany(
      batch.map((d) => decodeExact(d.raw)),
      {ordered: false},
    );
  } catch (error) {
    // Only per-document failures are handled here. A bulk error with none (the driver reports a
    // connection dropped mid-insert that way) or with a write-concern error means the batch's fate
    // is unknown: rethrow, and let a resume settle it from the journal.
    if (!(error instanceof MongoBulkWriteError) || error.err) throw error;
    const errors = error.writeErrors ? writeErrorsOf(error) : [];
    if (errors.length === 0) throw error;
    for (const we of errors) failed.set(we.index, we);
  }
  const inserted: string[] = [];
  const duplicates: SetDoc[] = [];
  const rejected = new Map<string, string[]>();
  batch.forEach((d, i) => {
    const we = failed.get(i);
    if (!we) inserted.push(d.json);
    else if (we.code === DUPLICATE_KEY) duplicates.push(d);
    else {
      const reason = `rejected by the server: ${redact(we.errmsg ?? `code ${we.code}`)}`;
      rejected.set(reason, [...(rejected.get(reason) ?? []), d.json]);
    }
  });
  if (duplicates.length > 0) {
    // An id already present and identical is a document an interrupted run (or someone else) already
    // wrote: done. Anything else is a unique-key clash: reported, not fatal.
    const current = await fetchRawById(coll, duplicates.map((d) => idFromJson(d.json)));
    const clashes: string[] = [];
    for (const d of duplicates) {
      const now = current.get(idKeyFromJson(d.json));
      if (now && sameBytes(now, d.raw)) inserted.push(d.json);
      else clashes.push(d.json);
    }
    if (clashes.length > 0) rejected.set('duplicate key (a unique index already holds this value)', clashes);
  }
  if (inserted.length > 0) await ctx.journal.append({type: 'inserted', collection: name, db, batch: number, ids: inserted});
  counts.inserted += inserted.length;
  for (const [reason, ids] of rejected) {
    await recordConflicts(ctx, name, db, ids, reason);
    counts.conflicts += ids.length;
  }
}

async function overwriteBatch(ctx: PushContext, name: string, db: string, coll: Collection, batch: SetDoc[], counts: PushCounts): Promise<void> {
  const digests = ctx.plan.conflictDigests[name] ?? {};
  const current = await fetchRawById(coll, batch.map((d) => idFromJson(d.json)));
  const writable: Array<{doc: SetDoc; pre: Uint8Array}> = [];
  const changed: string[] = [];
  const gone: string[] = [];
  for (const d of batch) {
    const now = current.get(idKeyFromJson(d.json));
    if (!now) gone.push(d.json);
    else if (sameBytes(now, d.raw)) {
      // Already holds the backup's version: this push wrote it before an interruption, or someone else did.
      if (ctx.earlierOverwrites.has(`${name}\u0000${idKeyFromJson(d.json)}`)) counts.overwritten++;
      else counts.skipped++;
    } else if (sha256(now) !== digests[d.json]) changed.push(d.json);
    else writable.push({doc: d, pre: now});
  }
  const number = ++ctx.batch;
  if (writable.length > 0) {
    await ctx.journal.append({
      type: 'intent',
      collection: name,
      db,
      batch: number,
      overwrite: writable.map((w) => ({id: w.doc.json, pre: docToJson(w.pre), preBson: Buffer.from(w.pre).toString('base64'), preSha256: sha256(w.pre), writtenSha256: sha256(w.doc.raw)})),
    });
  }
  const written: string[] = [];
  const clashes: string[] = [];
  for (const w of writable) {
    try {
      const res = await coll.replaceOne(casFilter(decodeExact(w.pre)), decodeExact(w.doc.raw));
      if (res.matchedCount === 1) written.push(w.doc.json);
      else changed.push(w.doc.json);
    } catch (error) {
      if (!(error instanceof MongoServerError) || error.code !== DUPLICATE_KEY) throw error;
      clashes.push(w.doc.json);
    }
  }
  if (clashes.length > 0) {
    await recordConflicts(ctx, name, db, clashes, 'duplicate key (a unique index already holds this value)');
    counts.conflicts += clashes.length;
  }
  if (written.length > 0) await ctx.journal.append({type: 'overwritten', collection: name, db, batch: number, ids: written});
  counts.overwritten += written.length;
  if (changed.length > 0) {
    await recordConflicts(ctx, name, db, changed, 'changed on the target since the plan (not overwritten)');
    counts.conflicts += changed.length;
  }
  if (gone.length > 0) {
    await recordConflicts(ctx, name, db, gone, 'deleted on the target since the plan (not written)');
    counts.conflicts += gone.length;
  }
}
