import type {Document} from 'bson';
import {EJSON} from 'bson';
import {MongoServerError} from 'mongodb';
import type {Collection, Db} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError, isGravityError} from '../errors.js';
import {journalRecords, JournalWriter, listJournals} from '../restore-set/journal.js';
import type {JournalFile, JournalRecord} from '../restore-set/journal.js';
import {appendLedger} from '../restore-set/ledger.js';
import type {PushMode} from '../restore-set/ledger.js';
import {readSetMetadata} from '../restore-set/manifest.js';
import {setDocumentBatches} from '../restore-set/stream.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {digest, docToJson, idKey, idKeyFromJson, idKeyOf, idOf, idToJson, sameBytes, sha256} from './bson-util.js';
import {fieldDiff} from './diff.js';
import {exactForm, exactId, plainForm, toBytes, writeForm} from './exact.js';
import {fieldBytes, fieldsDigest, fieldsEqual, fieldsFilter, repairUpdate} from './fields.js';
import type {ExactDoc} from './exact.js';
import {eachRawById, fetchRawById, isConnectionLoss, LOOKUP_BATCH, planCollection} from './plan.js';
import type {PlanDraft, PlanOptions} from './plan.js';
import {runPool} from './pool.js';
import {insertRaw} from './raw-insert.js';
import type {RawWriteError} from './raw-insert.js';
import {CLASS_CODE} from './types.js';
import type {ClassCounts, Plan, ProgressCallback, PushCounts, PushResult, RefusedDetail, TargetConnection} from './types.js';
import {DEFAULT_RETRY, isTransient, isTransientCode, sleep, unchangedFilter, withRetry, WRITE_CONCERN} from './write.js';

export const PUSH_BATCH_DOCS = 1000;
/** Insert batches written at once, per collection (measured: see bench/RESULTS.md, target case). */
export const PUSH_WRITERS = 4;
/** A batch stays under the server's 16 MB document limit so each journal intent maps to one write. */
export const PUSH_BATCH_BYTES = 16 * 1024 * 1024;
const DUPLICATE_KEY = 11000;

export interface PushOptions {
  onConflict: 'skip' | 'overwrite' | 'fail';
  /**
   * Documents that cannot be written byte for byte (the plan's notExact): stop before writing
   * anything (fail, the default), leave them out (skip, recorded) or write the re-encoded form (write, recorded).
   */
  inexact?: 'fail' | 'skip' | 'write';
  /** Leave out documents whose unique key another `_id` holds (recorded as excluded) instead of reporting them refused. */
  skipClashes?: boolean;
  /** As mongorestore's --bypassDocumentValidation: the target's validator is not applied (recorded in the journal and ledger). */
  bypassDocumentValidation?: boolean;
  /** Insert batches in flight at once (default PUSH_WRITERS). */
  writers?: number;
  /** Retry policy for transient server errors (tests shorten it). */
  retry?: {attempts: number; firstDelayMs: number};
  batchDocs?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** How this push writes, recorded in the ledger: production's gate compares it with staging's. */
  mode?: PushMode;
  /** The recorded reason when the production gate was passed with --skip-staging. */
  overrideReason?: string;
  /**
   * Plan while writing. The plan passed to `pushSet` is then the saved plan the user saw; each batch
   * of the set is planned again against the target just before it is written (into `live.plan`), and
   * a batch that shows a risk that plan did not (a new conflict, key match, clash, or a document that
   * cannot be written exactly) stops the push before that batch, with PLAN_CHANGED.
   */
  live?: {plan: PlanDraft; options: PlanOptions};
}

/** Documents a plan has a push write in one collection: its inserts and repairs, and its conflicts when they are overwritten. */
export function plannedWrites(counts: ClassCounts, overwrite: boolean): number {
  return counts.insert + (counts.repair ?? 0) + (overwrite ? counts.conflict : 0);
}

/** Collects items into batches bounded by count and by total bytes (a batch stays under the 16 MB command limit). */
export class Batcher<T> {
  private current: T[] = [];
  private bytes = 0;

  constructor(
    private readonly maxDocs: number,
    private readonly sizeOf: (item: T) => number,
    private readonly maxBytes = PUSH_BATCH_BYTES,
  ) {}

  /** Add an item; returns the batch it closed, if it closed one. */
  add(item: T): T[] | null {
    let closed: T[] | null = null;
    const size = this.sizeOf(item);
    if (this.current.length > 0 && (this.current.length >= this.maxDocs || this.bytes + size > this.maxBytes)) {
      closed = this.current;
      this.current = [];
      this.bytes = 0;
    }
    this.current.push(item);
    this.bytes += size;
    return closed;
  }

  /** The last, partly filled batch, if any. */
  flush(): T[] | null {
    const last = this.current.length > 0 ? this.current : null;
    this.current = [];
    this.bytes = 0;
    return last;
  }
}

/** Split documents into batches by count and total bytes. */
export function batchesOf<T extends {raw: Uint8Array}>(items: T[], maxDocs: number, maxBytes = PUSH_BATCH_BYTES): T[][] {
  const batcher = new Batcher<T>(maxDocs, (item) => item.raw.length, maxBytes);
  const out: T[][] = [];
  for (const item of items) {
    const closed = batcher.add(item);
    if (closed) out.push(closed);
  }
  const last = batcher.flush();
  if (last) out.push(last);
  return out;
}

/** A document of the set on its way to the target. */
interface WriteDoc {
  raw: Uint8Array;
  json: string;
  id: unknown;
  /** The bytes sent and that the target must end up holding: the set's, or the re-encoded form under --inexact write. */
  bytes: Uint8Array;
}

/** Builds the write form of one set document: its bytes, canonical id text, position in the set and `_id`. */
type MakeDoc<T extends WriteDoc> = (raw: Uint8Array, json: string, position: number, id: unknown) => T;

/** A document written through an update statement, which takes the document as an object. */
interface SetDoc extends WriteDoc {
  /** The exact form handed to the driver (a plain decode where that serialises to the same bytes). */
  doc: ExactDoc | Document;
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
  refuseInexact(plan, options);
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
        inexact: options.inexact ?? 'fail',
        ...(plan.fields ? {fields: plan.fields, ...(plan.whereTarget ? {whereTarget: plan.whereTarget} : {})} : {}),
        ...(options.bypassDocumentValidation ? {bypassDocumentValidation: true} : {}),
        time,
      });
  if (previous) await journal.append({type: 'resume', time, planHash: plan.hash});
  // What a resume needs of the interrupted run, read as a stream: its collection creations, its last
  // batch number, and the documents it meant to overwrite or repair (found already written, they count
  // as done by this push). Its inserts need nothing: planned again, they are `same` now.
  const earlierOverwrites = new Set<string>();
  const earlier: JournalRecord[] = [];
  let batch = 0;
  if (previous) {
    for await (const r of journalRecords(previous)) {
      if (r.type === 'creating' || r.type === 'created') earlier.push(r);
      if (r.type !== 'intent') continue;
      batch = Math.max(batch, r.batch);
      for (const o of [...(r.overwrite ?? []), ...(r.repair ?? [])]) earlierOverwrites.add(`${r.collection}\u0000${idKeyFromJson(o.id)}`);
    }
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

  const result: PushResult = {
    target: conn.spec.label,
    planHash: plan.hash,
    collections: {},
    journal: journal.path,
    resumed: Boolean(previous),
    conflictDetails: [],
    refusedDetails: [],
    complete: true,
  };
  const ctx: PushContext = {set, conn, plan: options.live?.plan ?? plan, saved: plan, options, journal, result, earlierOverwrites, batch, earlier, createdHere: []};
  try {
    for (const name of set.manifest.order) await pushCollection(ctx, name);
    const counts = result.collections;
    const refused = Object.values(counts).reduce((n, c) => n + c.refused, 0);
    result.complete = refused === 0;
    const outcome = result.complete ? 'ok' : 'partial';
    await journal.append({type: 'end', outcome, counts, time: new Date().toISOString()});
    await journal.close();
    await appendLedger(set, {...ledgerLine(ctx, outcome, started), ...(result.complete ? {} : {reason: `${refused} document(s) refused by the target`})});
    return result;
  } catch (error) {
    const failure = asFailure(error, options.signal, journal.relPath, conn, written(result));
    await journal.append({type: 'interrupted', reason: failure.message, time: new Date().toISOString()}).catch(() => undefined);
    await journal.close().catch(() => undefined);
    await appendLedger(set, {...ledgerLine(ctx, 'partial', started), reason: failure.message}).catch(() => undefined);
    throw failure;
  }
}

interface PushContext {
  set: RestoreSet;
  conn: TargetConnection;
  /** The plan the writes follow: the saved plan, or under `live` the one being made batch by batch. */
  plan: PlanDraft;
  /** The plan passed in: the one the journal and ledger name. */
  saved: Plan;
  options: PushOptions;
  journal: JournalWriter;
  result: PushResult;
  /** Collection and id key of each overwrite or field repair the resumed journal announced. */
  earlierOverwrites: Set<string>;
  batch: number;
  /** Collection-creation records of the journal this push resumes. */
  earlier: JournalRecord[];
  /** Collection-creation records of this run. */
  createdHere: JournalRecord[];
}

/** Documents that cannot be written byte for byte stop the push before its first write, unless a flag says what to do. */
/**
 * Ids of a collection's documents this push would write that cannot be written byte for byte. The plan
 * names notExact documents among those it would write: inserts, and conflicts (written only when overwritten).
 */
function notExactWritten(plan: PlanDraft, collection: string, overwrite: boolean): string[] {
  const conflicts = new Set(plan.ids[collection]?.conflict ?? []);
  return Object.keys(plan.notExact?.[collection] ?? {}).filter((id) => overwrite || !conflicts.has(id));
}

function refuseInexact(plan: Plan, options: PushOptions): void {
  if ((options.inexact ?? 'fail') !== 'fail') return;
  const found: string[] = [];
  for (const collection of Object.keys(plan.notExact ?? {})) {
    for (const id of notExactWritten(plan, collection, options.onConflict === 'overwrite')) found.push(`${collection} _id ${id}: ${plan.notExact[collection]![id]}`);
  }
  if (found.length === 0) return;
  throw new GravityError('NOT_EXACT', `${found.length} document(s) cannot be written byte for byte, e.g. ${found[0]}; nothing was written`, {
    hint: 'Leave them out with --inexact skip (recorded; verify accepts them), or write the re-encoded form with --inexact write',
    details: {documents: found.slice(0, 100)},
  });
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
    if (!plan.ids[name] || plan.classes?.[name] === undefined || Buffer.from(plan.classes[name], 'base64').length !== set.manifest.collections[name]?.documents) {
      throw new GravityError('PLAN_CHANGED', `The plan ${plan.hash.slice(0, 12)} does not cover collection ${name}`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
    }
  }
}

function ledgerLine(ctx: PushContext, outcome: 'ok' | 'partial', started: number) {
  return {
    time: new Date().toISOString(),
    action: 'push' as const,
    target: ctx.conn.spec.name,
    targetLabel: ctx.conn.spec.label,
    setHash: ctx.set.hash,
    planHash: ctx.saved.hash,
    counts: ctx.result.collections,
    outcome,
    journal: ctx.journal.relPath,
    durationMs: Date.now() - started,
    ...(ctx.options.overrideReason ? {reason: `override: ${ctx.options.overrideReason}`} : {}),
    ...(ctx.options.bypassDocumentValidation ? {bypassDocumentValidation: true} : {}),
    ...(ctx.options.mode ? {mode: ctx.options.mode} : {}),
  };
}

function interrupted(journal: string | null): GravityError {
  return new GravityError('INTERRUPTED', journal ? `Push interrupted; the journal ${journal} records what was written` : 'Push interrupted before anything was written', {
    hint: 'Run the same push again to resume (no document is written twice), or roll it back with `gravity-restore rollback`',
  });
}

/** Documents written so far by this run (inserted, overwritten or repaired). */
function written(result: PushResult): number {
  return Object.values(result.collections).reduce((n, c) => n + c.inserted + c.overwritten + (c.repaired ?? 0), 0);
}

function asFailure(error: unknown, signal: AbortSignal | undefined, journal: string, conn: TargetConnection, done: number): GravityError {
  if (signal?.aborted) return interrupted(journal);
  // A lost connection, met by a write or by a batch's lookups (those, in a push that plans as it
  // writes, come typed from the plan's reads): either way it is the push that resumes.
  if (isGravityError(error) ? error.code === 'TARGET_UNREACHABLE' : isConnectionLoss(error)) {
    const lost = isGravityError(error) && error.cause instanceof Error ? error.cause : error;
    return new GravityError('TARGET_UNREACHABLE', `Lost the connection to ${conn.spec.label} during the push: ${redact(lost instanceof Error ? lost.message : String(lost))}`, {
      hint: `The journal ${journal} is intact; run the same push again to resume`,
      cause: error,
    });
  }
  if (isGravityError(error)) {
    // A stop found while planning as it wrote: say what was written before it.
    if (!(error.details as {whileWriting?: boolean} | undefined)?.whileWriting) return error;
    const already = done > 0 ? `${done} document(s) the plan approved were written before this, journaled in ${journal}` : 'nothing was written';
    return new GravityError(error.code, `${error.message}; ${already}`, {...(error.hint ? {hint: error.hint} : {}), ...(error.details ? {details: error.details} : {}), cause: error});
  }
  return new GravityError('INTERNAL', `Push to ${conn.spec.label} failed: ${redact(error instanceof Error ? error.message : String(error))}`, {
    hint: `The journal ${journal} records what was written; fix the cause and run the push again to resume, or roll back`,
    cause: error,
  });
}

/**
 * Create a missing collection with the backup's options and indexes before the first insert, so
 * unique indexes guard what is written. `creating` is journaled first: a push that dies between
 * createCollection and createIndexes finishes the indexes when it resumes (createIndexes with the
 * same specification is a no-op on the server).
 */
async function ensureCollection(ctx: PushContext, name: string, db: Db, collection: string): Promise<void> {
  const unfinished = [...ctx.earlier, ...ctx.createdHere].some((r) => r.type === 'creating' && r.collection === name) &&
    ![...ctx.earlier, ...ctx.createdHere].some((r) => r.type === 'created' && r.collection === name);
  const existing = await db.listCollections({name: collection}, {nameOnly: true}).toArray();
  if (existing.length > 0 && !unfinished) return;
  const metadata = await readSetMetadata(ctx.set, name);
  const indexes = ((metadata?.indexes as Document[] | undefined) ?? [])
    .map((ix) => EJSON.deserialize(ix, {relaxed: true}) as Document)
    .filter((ix) => ix.name !== '_id_')
    .map((ix) => {
      const {v: _v, ns: _ns, ...spec} = ix;
      return spec;
    });
  const creating = {type: 'creating' as const, collection: name, db: db.databaseName, indexes: indexes.map((ix) => String(ix.name))};
  if (existing.length === 0) {
    await ctx.journal.append(creating);
    ctx.createdHere.push(creating);
    // Metadata is canonical Extended JSON; relaxed decoding gives plain numbers for sizes and limits.
    const options = metadata?.options ? (EJSON.deserialize(metadata.options as Document, {relaxed: true}) as Document) : {};
    await db.createCollection(collection, options);
  }
  if (indexes.length > 0) await db.collection(collection).createIndexes(indexes as Parameters<Collection['createIndexes']>[0]);
  const created = {...creating, type: 'created' as const};
  await ctx.journal.append(created);
  ctx.createdHere.push(created);
}

function setDoc(raw: Uint8Array, json: string, inexactWrite: boolean, plainExact = false): SetDoc {
  if (plainExact) return {raw, json, id: exactId(raw), doc: plainForm(raw), bytes: raw};
  const quick = writeForm(raw);
  if (quick.inexact === null) return {raw, json, id: exactId(raw), doc: quick.doc as Document, bytes: raw};
  const form = exactForm(raw);
  if (!inexactWrite) return {raw, json, id: form.doc.get('_id'), doc: form.doc, bytes: raw};
  return reencoded(raw, json, form.doc);
}

/**
 * An insert sends the set's bytes as they are; only a document the plan found not exact, written
 * under --inexact write, is re-encoded first.
 */
function insertDoc(raw: Uint8Array, json: string, id: unknown, reencode: boolean): WriteDoc {
  return reencode ? reencoded(raw, json, exactForm(raw).doc) : {raw, json, id, bytes: raw};
}

/**
 * What --inexact write promises, spelled out so the bytes expected and the bytes sent are the same:
 * undefined becomes null (a serialiser may drop it or write null, depending on its options).
 */
function reencoded(raw: Uint8Array, json: string, form: ExactDoc): SetDoc {
  const doc = nullForUndefined(form) as ExactDoc;
  return {raw, json, id: doc.get('_id'), doc, bytes: toBytes(doc)};
}

/** Field repairs walk paths: they need the `Map` form whatever the document holds. */
function repairDoc(raw: Uint8Array, json: string): SetDoc {
  const form = exactForm(raw);
  return {raw, json, id: form.doc.get('_id'), doc: form.doc, bytes: raw};
}

function nullForUndefined(value: unknown): unknown {
  if (value === undefined) return null;
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, nullForUndefined(v)]));
  if (Array.isArray(value)) return value.map(nullForUndefined);
  return value;
}

async function pushCollection(ctx: PushContext, name: string): Promise<void> {
  const {set, conn, options, journal, result} = ctx;
  const plan = ctx.plan;
  const entry = set.manifest.collections[name]!;
  const ns = plan.namespaces[name] ?? ctx.saved.namespaces[name] ?? {db: conn.dbName(entry.db), collection: entry.collection};
  const db = conn.client.db(ns.db);
  const coll = db.collection(ns.collection, {writeConcern: WRITE_CONCERN});
  const inexact = options.inexact ?? 'fail';
  const overwrite = options.onConflict === 'overwrite';
  const counts: PushCounts = {inserted: 0, overwritten: 0, skipped: 0, conflicts: 0, refused: 0, excluded: 0, ...(plan.fields ? {repaired: 0} : {})};
  result.collections[name] = counts;
  let done = 0;
  let total = 0;
  const progress = () => options.onProgress?.({collection: name, done, total});
  const batchDocs = options.batchDocs ?? PUSH_BATCH_DOCS;
  const writers = Math.max(1, options.writers ?? PUSH_WRITERS);
  const step = <T extends WriteDoc>(work: (batch: T[]) => Promise<void>) => async (batch: T[]) => {
    if (options.signal?.aborted) throw interrupted(journal.relPath);
    await work(batch);
    done += batch.length;
    progress();
  };
  // The collection is created with the backup's options and indexes before its first insert.
  let creating: Promise<void> | undefined;
  const insert = step((batch: WriteDoc[]) => (creating ??= ensureCollection(ctx, name, db, ns.collection)).then(() => insertBatch(ctx, name, ns.db, db, coll, batch, counts)));
  const make = (raw: Uint8Array, json: string, _position: number, id: unknown) => insertDoc(raw, json, id, inexact === 'write' && plan.notExact[name]?.[json] !== undefined);
  // Written unless the plan found it not exact (then only under --inexact write). Looked up at each call:
  // a plan made as the push goes fills in batch by batch.
  const writable = (json: string) => inexact === 'write' || plan.notExact[name]?.[json] === undefined;

  if (options.live) {
    // Planned while written: the inserts go as each batch is planned; the rest follows once the collection's plan is whole.
    total = plannedWrites(ctx.saved.collections[name]!, overwrite);
    progress();
    await runPool(liveInsertBatches(ctx, name, writable, make, batchDocs), writers, insert);
  }

  const ids = plan.ids[name]!;
  const planned = plan.collections[name]!;
  const classes = Buffer.from(plan.classes[name]!, 'base64');
  // Which documents the plan (made by this process) found to decode plainly and exactly; absent for a plan read from a file.
  const plain = plan.plainExact?.[name]?.length === classes.length ? plan.plainExact[name] : undefined;
  counts.skipped += planned.same;
  const notExact = plan.notExact?.[name] ?? {};
  const conflictIds = new Set(ids.conflict);

  // Left out of the writes: those not exact, unless --inexact write writes them re-encoded.
  const left = inexact === 'write' ? [] : notExactWritten(plan, name, overwrite);
  if (inexact === 'skip') {
    for (const json of left) await record(ctx, 'excluded', name, ns.db, [json], `not written (--inexact skip): ${notExact[json]}`);
  }
  const overwritesLeft = left.filter((json) => conflictIds.has(json)).length;
  const insertsLeft = left.length - overwritesLeft;
  total = (options.live ? done : planned.insert - insertsLeft) + (overwrite ? planned.conflict - overwritesLeft : 0) + (planned.repair ?? 0);
  progress();

  // Inserts: the set is read in batches, in step with the plan's class codes, while earlier batches are being written, by several writers.
  if (!options.live && planned.insert - insertsLeft > 0) {
    await runPool(plannedBatches(ctx, name, classes, CLASS_CODE.insert, writable, make, batchDocs), writers, insert);
  }

  if (ids.keyMatch.length > 0) await record(ctx, 'conflict', name, ns.db, ids.keyMatch, 'natural key held by another _id on the target');
  for (const json of ids.clash ?? []) {
    const clash = plan.clashes?.[name]?.[json];
    const why = clash ? `unique index ${clash.index} already holds this key for _id ${clash.targetId}` : 'a unique index already holds this key for another _id';
    if (options.skipClashes) await record(ctx, 'excluded', name, ns.db, [json], `not written (--skip-clashes): ${why}`);
    else await record(ctx, 'refused', name, ns.db, [json], `not written: ${why} (the server would refuse it with E11000)`, 11000, 'DuplicateKey');
  }

  if (plan.fields) {
    if ((ids.skipped ?? []).length > 0) await record(ctx, 'excluded', name, ns.db, ids.skipped!, 'fields left alone: the target version no longer matches --where-target, or a field path goes through an array');
    // Field repairs write only some fields: the document's exactness is not in question, only the fields'.
    if ((planned.repair ?? 0) > 0) {
      await runPool(plannedBatches(ctx, name, classes, CLASS_CODE.repair, () => true, (raw, json) => repairDoc(raw, json), batchDocs), 1, step((batch) => repairBatch(ctx, name, ns.db, coll, batch, counts, plan.fields!)));
    }
  }

  if (ids.conflict.length > 0 && !overwrite) {
    await record(ctx, 'conflict', name, ns.db, ids.conflict, 'changed on the target since the backup (skipped)');
  } else if (overwrite && planned.conflict - overwritesLeft > 0) {
    const makeSet = (raw: Uint8Array, json: string, position: number) => setDoc(raw, json, inexact === 'write', plain?.[position] === 1);
    await runPool(plannedBatches(ctx, name, classes, CLASS_CODE.conflict, writable, makeSet, batchDocs), 1, step((batch) => overwriteBatch(ctx, name, ns.db, coll, batch, counts)));
  }
}

/** Class codes that need a person's attention: a push must not meet one its plan did not show. */
const RISKY = new Set<number>([CLASS_CODE.conflict, CLASS_CODE.keyMatch, CLASS_CODE.clash]);

/**
 * The inserts of one collection, planned batch by batch just before they are written. Each planned
 * batch is held against the saved plan (the one the user saw) at the same positions: a document that
 * is a conflict, key match or clash now but was not then, or one to be written that cannot be written
 * exactly (under --inexact fail), stops the push before this batch. An insert that became `same` (an
 * interrupted push wrote it) is not a risk.
 */
async function* liveInsertBatches(
  ctx: PushContext,
  name: string,
  keep: (json: string) => boolean,
  make: MakeDoc<WriteDoc>,
  maxDocs: number,
): AsyncGenerator<WriteDoc[]> {
  const live = ctx.options.live!;
  const saved = Buffer.from(ctx.saved.classes[name]!, 'base64');
  const savedNotExact = ctx.saved.notExact?.[name] ?? {};
  const inexact = ctx.options.inexact ?? 'fail';
  const batcher = new Batcher<WriteDoc>(maxDocs, (doc) => doc.bytes.length);
  let position = 0;
  for await (const {docs, ids, codes, notExact} of planCollection(live.plan, ctx.set, ctx.conn, name, live.options)) {
    const risks: string[] = [];
    for (let i = 0; i < docs.length; i++) {
      if (RISKY.has(codes[i]!) && !RISKY.has(saved[position + i]!)) risks.push(`${name} ${idToJson(ids[i])}`);
    }
    if (risks.length > 0) {
      throw new GravityError('PLAN_CHANGED', `The target changed since the plan you saw (${ctx.saved.hash.slice(0, 12)}): ${risks.length} new conflict(s) in the next batch, e.g. ${risks.slice(0, 3).join('; ')}`, {
        hint: `Review with \`gravity-restore plan SET --to TARGET\`, then push again (what was written is journaled and is not written twice), or roll it back`,
        details: {whileWriting: true, risks: risks.slice(0, 100)},
      });
    }
    const unexpected = Object.keys(notExact).filter((json) => savedNotExact[json] === undefined);
    if (inexact === 'fail' && unexpected.length > 0) {
      throw new GravityError('NOT_EXACT', `${unexpected.length} document(s) the plan you saw did not write cannot be written byte for byte, e.g. ${name} _id ${unexpected[0]}: ${notExact[unexpected[0]!]}`, {
        hint: 'Leave them out with --inexact skip (recorded; verify accepts them), or write the re-encoded form with --inexact write',
        details: {whileWriting: true, documents: unexpected.slice(0, 100)},
      });
    }
    for (let i = 0; i < docs.length; i++) {
      if (codes[i] !== CLASS_CODE.insert) continue;
      const json = idToJson(ids[i]);
      if (!keep(json)) continue;
      const closed = batcher.add(make(docs[i]!, json, position + i, ids[i]));
      if (closed) yield closed;
    }
    position += docs.length;
    // A planned batch's inserts go out now, not when the next batch is planned: a stop found there must
    // not hold back what this one approved.
    const rest = batcher.flush();
    if (rest) yield rest;
  }
}

/**
 * The set's documents of one plan class, read from disk in batches by count and bytes, in backup
 * order: the plan's class codes are read in step with the set's documents (one code a document), so
 * no list of ids is held. The count of each class must come out as the plan said.
 */
async function* plannedBatches<T extends WriteDoc>(
  ctx: PushContext,
  name: string,
  classes: Uint8Array,
  code: number,
  keep: (json: string) => boolean,
  make: MakeDoc<T>,
  maxDocs: number,
): AsyncGenerator<T[]> {
  const batcher = new Batcher<T>(maxDocs, (doc) => doc.bytes.length);
  let position = 0;
  for await (const docs of setDocumentBatches(ctx.set, name, LOOKUP_BATCH)) {
    for (const raw of docs) {
      const here = position++;
      if (classes[here] !== code) continue;
      const id = idOf(raw);
      const json = idToJson(id);
      if (!keep(json)) continue;
      const closed = batcher.add(make(raw, json, here, id));
      if (closed) yield closed;
    }
  }
  const last = batcher.flush();
  if (last) yield last;
  if (position !== classes.length) {
    throw new GravityError('PLAN_CHANGED', `The plan has ${classes.length} document(s) of ${name}, the set ${position}`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
  }
}

/** Journal documents that were not written, count them, and keep a sample for the result. */
async function record(
  ctx: PushContext,
  type: 'conflict' | 'refused' | 'excluded',
  collection: string,
  db: string,
  ids: string[],
  reason: string,
  code?: number,
  codeName?: string,
): Promise<void> {
  if (ids.length === 0) return;
  const safe = redact(reason);
  await ctx.journal.append({type, collection, db, ids, reason: safe, ...(code === undefined ? {} : {code}), ...(codeName ? {codeName} : {})});
  const counts = ctx.result.collections[collection]!;
  if (type === 'conflict') {
    counts.conflicts += ids.length;
    for (const id of ids.slice(0, Math.max(0, 100 - ctx.result.conflictDetails.length))) ctx.result.conflictDetails.push({collection, _id: JSON.parse(id), reason: safe});
  } else if (type === 'refused') {
    counts.refused += ids.length;
    for (const id of ids.slice(0, Math.max(0, 100 - ctx.result.refusedDetails.length))) {
      const detail: RefusedDetail = {collection, _id: JSON.parse(id), reason: safe};
      if (code !== undefined) detail.code = code;
      if (codeName) detail.codeName = codeName;
      ctx.result.refusedDetails.push(detail);
    }
  } else {
    counts.excluded += ids.length;
  }
}

interface Refusal {
  reason: string;
  code?: number;
  codeName?: string;
}

function refusalOf(we: {code?: number; errmsg?: string; errInfo?: unknown; codeName?: string}): Refusal {
  const info = we.errInfo ? ` ${JSON.stringify(we.errInfo).slice(0, 400)}` : '';
  const name = we.codeName ?? CODE_NAMES[we.code ?? -1];
  return {reason: `refused by the server: ${we.errmsg ?? `code ${we.code}`}${info}`, ...(we.code === undefined ? {} : {code: we.code}), ...(name ? {codeName: name} : {})};
}

const CODE_NAMES: Record<number, string> = {2: 'BadValue', 121: 'DocumentValidationFailure', 10334: 'BSONObjectTooLarge', 11000: 'DuplicateKey', 13: 'Unauthorized'};

/**
 * Insert a batch in exact form, unordered. Per-document outcomes: inserted (read back byte for
 * byte), already there (an earlier run wrote it), conflict (the `_id` now holds something else),
 * refused (with the server's code and reason), or retried while the server says "try again".
 */
async function insertBatch(ctx: PushContext, name: string, dbName: string, db: Db, coll: Collection, batch: WriteDoc[], counts: PushCounts): Promise<void> {
  const number = ++ctx.batch;
  // The digest of each document's bytes lets a rollback recognise what this push wrote without the set at hand.
  await ctx.journal.append({type: 'intent', collection: name, db: dbName, batch: number, insert: batch.map((d) => d.json), insertSha256: batch.map((d) => digest(d.bytes))});
  const policy = {...DEFAULT_RETRY, ...ctx.options.retry, ...(ctx.options.signal ? {signal: ctx.options.signal} : {})};
  const refused = new Map<WriteDoc, Refusal>();
  const duplicates: WriteDoc[] = [];
  let pending = batch;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const failed = await insertOnce(ctx, db, coll, pending);
    const again: WriteDoc[] = [];
    for (const [doc, we] of failed) {
      if (isTransientCode(we.code)) again.push(doc);
      else if (we.code === DUPLICATE_KEY) duplicates.push(doc);
      else refused.set(doc, refusalOf(we));
    }
    if (again.length === 0) break;
    if (attempt >= policy.attempts || ctx.options.signal?.aborted) {
      for (const doc of again) refused.set(doc, {reason: `the server kept answering "try again" (${attempt} attempts); run the push again to retry`});
      break;
    }
    await sleep(policy.firstDelayMs * 2 ** (attempt - 1), policy.signal);
    pending = again;
  }

  const conflicts: string[] = [];
  const written = batch.filter((d) => !refused.has(d) && !duplicates.includes(d));
  if (duplicates.length > 0) {
    // The `_id` holds the very bytes (an interrupted run, or someone else, wrote it): done. Something
    // else under the `_id`: changed since the plan. Nothing under the `_id`: another unique index.
    const current = await fetchRawById(coll, duplicates.map((d) => d.id));
    for (const d of duplicates) {
      const now = current.get(idKey(d.id));
      if (now && sameBytes(now, d.bytes)) written.push(d);
      else if (now) conflicts.push(d.json);
      else refused.set(d, {reason: 'refused by the server: duplicate key (a unique index already holds this key for another _id)', code: DUPLICATE_KEY, codeName: 'DuplicateKey'});
    }
  }
  if (conflicts.length > 0) await record(ctx, 'conflict', name, dbName, conflicts, 'changed on the target since the plan (not written)');
  for (const [doc, why] of refused) await record(ctx, 'refused', name, dbName, [doc.json], why.reason, why.code, why.codeName);
  // Last: the batch's completion record closes it in the journal (a rollback reads journals as a stream).
  await readBack(ctx, name, dbName, coll, number, written, 'inserted', counts);
}

/**
 * One unordered insert of `docs`, as their bytes; the documents that failed, with why. Whole-command
 * transient errors are retried here. A command that fails as a whole otherwise, or with a
 * write-concern error, leaves the batch's fate unknown: it is rethrown, and a resume settles it from
 * the journal.
 */
async function insertOnce(ctx: PushContext, db: Db, coll: Collection, docs: WriteDoc[]): Promise<Map<WriteDoc, RawWriteError>> {
  const failed = new Map<WriteDoc, RawWriteError>();
  const policy = {...DEFAULT_RETRY, ...ctx.options.retry, ...(ctx.options.signal ? {signal: ctx.options.signal} : {})};
  const options = {writeConcern: WRITE_CONCERN, bypassDocumentValidation: ctx.options.bypassDocumentValidation ?? false};
  const errors = await withRetry(() => insertRaw(db, coll.collectionName, docs.map((d) => d.bytes), options), policy);
  for (const we of errors) {
    const doc = docs[we.index];
    if (!doc) throw new Error(`the server reported a write error at position ${we.index} of ${docs.length}`);
    failed.set(doc, we);
  }
  return failed;
}

/**
 * Read written documents back raw and compare bytes: the promise is the set's bytes on the target,
 * and only what reads back so counts as done. Anything else is journaled with the sha256 of what the
 * target holds (so verify and rollback can recognise it) and reported as refused, never as restored.
 */
async function readBack(
  ctx: PushContext,
  name: string,
  db: string,
  coll: Collection,
  batch: number,
  written: WriteDoc[],
  kind: 'inserted' | 'overwritten',
  counts: PushCounts,
): Promise<void> {
  // Compared where the reply holds them: only a document that reads back other than the set's bytes is copied.
  const byKey = new Map<string, WriteDoc>();
  for (const d of written) byKey.set(idKeyOf(d.id, d.json), d);
  const asSet = new Set<WriteDoc>();
  const current = new Map<WriteDoc, Uint8Array>();
  if (written.length > 0) {
    await eachRawById(coll, written.map((d) => d.id), (key, raw) => {
      const d = byKey.get(key);
      if (!d) return;
      if (sameBytes(raw, d.raw)) asSet.add(d);
      else current.set(d, Buffer.from(raw));
    });
  }
  const good: string[] = [];
  const stored: Array<{id: string; sha256: string}> = [];
  const differing: Array<{doc: WriteDoc; why: string}> = [];
  for (const d of written) {
    if (asSet.has(d)) {
      good.push(d.json);
      continue;
    }
    const now = current.get(d);
    if (now && sameBytes(now, d.bytes)) {
      good.push(d.json);
      stored.push({id: d.json, sha256: sha256(now)});
    } else if (now) {
      stored.push({id: d.json, sha256: sha256(now)});
      const diff = fieldDiff(d.bytes, now, 3).map((f) => f.path).join(', ');
      differing.push({doc: d, why: `written, but the target holds other bytes (${diff || 'encoding'})`});
    } else differing.push({doc: d, why: 'written, but it is not on the target when read back'});
  }
  const inexact = stored.filter((s) => good.includes(s.id));
  const mismatch = stored.filter((s) => !good.includes(s.id));
  if (inexact.length > 0) await ctx.journal.append({type: 'stored', collection: name, db, batch, items: inexact, reason: 're-encoded on purpose (--inexact write)', kind: 'inexact'});
  if (mismatch.length > 0) await ctx.journal.append({type: 'stored', collection: name, db, batch, items: mismatch, reason: 'the target holds other bytes than the set', kind: 'mismatch'});
  for (const {doc, why} of differing) await record(ctx, 'refused', name, db, [doc.json], why);
  // Written even when empty: the batch's last record, so a reader of the journal knows it is complete.
  await ctx.journal.append({type: kind, collection: name, db, batch, ids: good});
  if (kind === 'inserted') counts.inserted += good.length;
  else counts.overwritten += good.length;
}

async function overwriteBatch(ctx: PushContext, name: string, db: string, coll: Collection, batch: SetDoc[], counts: PushCounts): Promise<void> {
  const digests = ctx.plan.conflictDigests[name] ?? {};
  const current = await fetchRawById(coll, batch.map((d) => d.id));
  const writable: Array<{doc: SetDoc; pre: Uint8Array}> = [];
  const changed: string[] = [];
  const gone: string[] = [];
  for (const d of batch) {
    const now = current.get(idKey(d.id));
    if (!now) gone.push(d.json);
    else if (sameBytes(now, d.bytes)) {
      // Already holds the backup's version: this push wrote it before an interruption, or someone else did.
      if (ctx.earlierOverwrites.has(`${name}\u0000${idKey(d.id)}`)) counts.overwritten++;
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
      overwrite: writable.map((w) => ({id: w.doc.json, pre: docToJson(w.pre), preBson: Buffer.from(w.pre).toString('base64'), preSha256: sha256(w.pre), writtenSha256: sha256(w.doc.bytes)})),
    });
  }
  const written = await writeEach(ctx, name, db, writable, changed, (w, bypass) => coll.replaceOne(unchangedFilter(w.doc.id, w.pre, w.doc.bytes.length), w.doc.doc, bypass));
  await readBack(ctx, name, db, coll, number, written, 'overwritten', counts);
  if (changed.length > 0) await record(ctx, 'conflict', name, db, changed, 'changed on the target since the plan (not overwritten)');
  if (gone.length > 0) await record(ctx, 'conflict', name, db, gone, 'deleted on the target since the plan (not written)');
}

/**
 * Field repair: for each document, only the plan's fields are written ($set to the backup's value,
 * $unset where the backup lacks it), and only while those fields still hold what the plan saw and
 * the document still matches --where-target. Each repaired document is read back and its fields
 * compared byte for byte with the backup's.
 */
async function repairBatch(ctx: PushContext, name: string, db: string, coll: Collection, batch: SetDoc[], counts: PushCounts, fields: string[]): Promise<void> {
  const digests = ctx.plan.repairDigests?.[name] ?? {};
  const where = ctx.plan.whereTarget ? (EJSON.parse(ctx.plan.whereTarget, {relaxed: false}) as Document) : undefined;
  const current = await fetchRawById(coll, batch.map((d) => d.id));
  const writable: Array<{doc: SetDoc; now: ExactDoc}> = [];
  const changed: string[] = [];
  const gone: string[] = [];
  for (const d of batch) {
    const raw = current.get(idKey(d.id));
    if (!raw) {
      gone.push(d.json);
      continue;
    }
    const now = exactForm(raw).doc;
    if (fieldsEqual(now, d.doc as ExactDoc, fields)) {
      // Already repaired: by this push before an interruption, or by someone else.
      if (ctx.earlierOverwrites.has(`${name}\u0000${idKey(d.id)}`)) counts.repaired = (counts.repaired ?? 0) + 1;
      else counts.skipped++;
    } else if (fieldsDigest(now, fields) !== digests[d.json]) changed.push(d.json);
    else writable.push({doc: d, now});
  }
  const number = ++ctx.batch;
  if (writable.length > 0) {
    await ctx.journal.append({
      type: 'intent',
      collection: name,
      db,
      batch: number,
      repair: writable.map((w) => ({id: w.doc.json, pre: fieldBytes(w.now, fields), preSha256: fieldsDigest(w.now, fields), writtenSha256: fieldsDigest(w.doc.doc as ExactDoc, fields)})),
    });
  }
  const written = await writeEach(ctx, name, db, writable, changed, (w, bypass) => coll.updateOne(fieldsFilter(w.doc.id, w.now, fields, where), repairUpdate(w.doc.doc as ExactDoc, fields), bypass));
  if (written.length > 0) {
    const back = await fetchRawById(coll, written.map((d) => d.id));
    const good: string[] = [];
    for (const d of written) {
      const now = back.get(idKey(d.id));
      if (now && fieldsEqual(exactForm(now).doc, d.doc as ExactDoc, fields)) good.push(d.json);
      else await record(ctx, 'refused', name, db, [d.json], 'repaired, but the target holds other values in the fields when read back');
    }
    await ctx.journal.append({type: 'repaired', collection: name, db, batch: number, ids: good});
    counts.repaired = (counts.repaired ?? 0) + good.length;
  } else if (writable.length > 0) {
    // Nothing written: the batch is still closed in the journal.
    await ctx.journal.append({type: 'repaired', collection: name, db, batch: number, ids: []});
  }
  if (changed.length > 0) await record(ctx, 'conflict', name, db, changed, 'fields changed on the target since the plan, or it no longer matches --where-target (not written)');
  if (gone.length > 0) await record(ctx, 'conflict', name, db, gone, 'deleted on the target since the plan (not written)');
}

/**
 * One compare-and-swap write per document, retried while the server says "try again". Matched: written;
 * not matched: changed since it was read (added to `changed`); refused: journaled with the server's reason.
 */
async function writeEach<T extends {doc: SetDoc}>(
  ctx: PushContext,
  name: string,
  db: string,
  items: T[],
  changed: string[],
  write: (item: T, options: {bypassDocumentValidation?: boolean}) => Promise<{matchedCount: number}>,
): Promise<SetDoc[]> {
  const policy = {...DEFAULT_RETRY, ...ctx.options.retry, ...(ctx.options.signal ? {signal: ctx.options.signal} : {})};
  const bypass = ctx.options.bypassDocumentValidation ? {bypassDocumentValidation: true} : {};
  const written: SetDoc[] = [];
  for (const item of items) {
    try {
      const res = await withRetry(() => write(item, bypass), policy);
      if (res.matchedCount === 1) written.push(item.doc);
      else changed.push(item.doc.json);
    } catch (error) {
      if (!(error instanceof MongoServerError) || isTransient(error)) throw error;
      const why = refusalOf({code: error.code as number, errmsg: error.message, errInfo: (error as {errInfo?: unknown}).errInfo});
      await record(ctx, 'refused', name, db, [item.doc.json], why.reason, why.code, why.codeName);
    }
  }
  return written;
}
