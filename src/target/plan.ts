import {mkdir, readFile, rename, writeFile} from 'node:fs/promises';
import path from 'node:path';

import {EJSON} from 'bson';
import type {Document} from 'bson';
import {MongoError, MongoNetworkError, MongoServerError, MongoServerSelectionError} from 'mongodb';
import type {Collection, Db, Filter} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError, isGravityError} from '../errors.js';
import {appendLedger} from '../restore-set/ledger.js';
import {canonicalJson} from '../restore-set/manifest.js';
import {setDocumentBatches} from '../restore-set/stream.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {idKey, idOf, idToJson, rawIdKey, sameBytes, sha256} from './bson-util.js';
import {fieldDiff} from './diff.js';
import {exactForm, orderedJson, tooDeepToStore, writeForm} from './exact.js';
import {roundTripsPlainly} from './round-trip.js';
import {fieldChanges, fieldsDigest, pathProblem} from './fields.js';
import {findRaw} from './raw-find.js';
import {CLASS_CODE} from './types.js';
import type {ClassCounts, ClassIds, ConflictSample, KeyMatchSample, Plan, PlanIds, ProgressCallback, TargetConnection} from './types.js';
import {findClashes, readTargetChecks} from './unique.js';
import type {Clash} from './unique.js';

/** Ids per `$in` round trip: large enough to amortise latency, small enough for a 16 MB command. */
export const LOOKUP_BATCH = 1000;
/** Natural-key `$or` clauses per round trip. */
const KEY_BATCH = 200;
export const PLAN_DIR = 'plans';

export interface PlanOptions {
  /** Natural-key fields (dotted paths): a missing `_id` whose key another `_id` holds is a keyMatch. */
  matchOn?: string[];
  /** Conflicts sampled with a field-level diff (default 20). */
  sample?: number;
  onProgress?: ProgressCallback;
  /** --fields: compare (and later write) only these paths on documents that exist on the target. */
  fields?: string[];
  /** --where-target: only documents whose current target version matches this filter are repaired. */
  whereTarget?: Document;
  /** Documents planned per batch (default LOOKUP_BATCH; tests use fewer). */
  batchDocs?: number;
}

/** What one collection of the set looks like against its target, from plain data (no server). */
export interface CollectionClassification {
  counts: ClassCounts;
  ids: ClassIds;
  /** One class code (CLASS_CODE) per document, in the order given. */
  codes: Uint8Array;
  /** Target raw sha256 per conflicting id (canonical EJSON id). */
  digests: Record<string, string>;
  conflicts: ConflictSample[];
  keyMatches: KeyMatchSample[];
}

/**
 * Classify a collection's set documents against the target's documents with the same `_id`.
 *
 * Comparison is on bytes: the backup's raw BSON against the target's raw BSON (fetched with
 * `raw: true`, never decoded and re-encoded). Consequences, chosen on purpose: field order matters
 * (the server's own equality on subdocuments is order-sensitive too, and a restore should put back
 * exactly what was lost), and so do numeric types (Int32 5 and Double 5.0 differ: a field that
 * changed type has changed). `_id` lookups are numeric-type-insensitive, like the server's.
 */
export function classifyCollection(
  collection: string,
  setDocs: Uint8Array[],
  targetById: Map<string, Uint8Array>,
  keyHolders: Map<string, {targetId: unknown; key: Record<string, unknown>}> = new Map(),
  sample = 20,
  sampleSoFar = 0,
  knownIds?: unknown[],
  clashes: Map<string, Clash> = new Map(),
): CollectionClassification {
  const ids: ClassIds = {insert: [], same: [], conflict: [], keyMatch: [], clash: []};
  const digests: Record<string, string> = {};
  const conflicts: ConflictSample[] = [];
  const keyMatches: KeyMatchSample[] = [];
  const codes = new Uint8Array(setDocs.length);
  for (const [i, raw] of setDocs.entries()) {
    const id = knownIds ? knownIds[i] : idOf(raw);
    const key = idKey(id);
    const json = idToJson(id);
    const current = targetById.get(key);
    if (current === undefined) {
      const holder = keyHolders.get(key);
      if (clashes.has(key)) {
        ids.clash.push(json);
        codes[i] = CLASS_CODE.clash;
      } else if (holder) {
        ids.keyMatch.push(json);
        codes[i] = CLASS_CODE.keyMatch;
        if (keyMatches.length + sampleSoFar < sample) {
          keyMatches.push({collection, _id: JSON.parse(json), targetId: JSON.parse(idToJson(holder.targetId)), key: holder.key});
        }
      } else {
        ids.insert.push(json);
        codes[i] = CLASS_CODE.insert;
      }
    } else if (sameBytes(raw, current)) {
      ids.same.push(json);
      codes[i] = CLASS_CODE.same;
    } else {
      ids.conflict.push(json);
      codes[i] = CLASS_CODE.conflict;
      digests[json] = sha256(current);
      if (conflicts.length + sampleSoFar < sample) conflicts.push({collection, _id: JSON.parse(json), fields: fieldDiff(raw, current)});
    }
  }
  return {
    counts: {insert: ids.insert.length, same: ids.same.length, conflict: ids.conflict.length, keyMatch: ids.keyMatch.length, clash: ids.clash.length, notExact: 0},
    ids,
    codes,
    digests,
    conflicts,
    keyMatches,
  };
}

/** Keys of the target documents (among `current`) that match `filter` now, asked of the server. */
async function idsMatching(coll: Collection, current: Uint8Array[], filter: Document): Promise<Set<string>> {
  const out = new Set<string>();
  const ids = current.map((raw) => idOf(raw));
  for (let i = 0; i < ids.length; i += LOOKUP_BATCH) {
    const chunk = ids.slice(i, i + LOOKUP_BATCH);
    const found = (await coll.find({$and: [{_id: {$in: chunk}}, filter]} as Filter<Document>, {raw: true, projection: {_id: 1}}).toArray()) as unknown as Uint8Array[];
    for (const raw of found) out.add(idKey(idOf(Buffer.from(raw))));
  }
  return out;
}

/**
 * --fields: documents present on the target are not conflicts or whole-document matches; only the
 * named fields decide: equal → same, different → repair (or skipped when the target version no
 * longer matches --where-target). A path through an array cannot be repaired: skipped, with why.
 */
function reclassifyByFields(
  plan: Omit<Plan, 'hash'>,
  name: string,
  result: CollectionClassification,
  docs: Uint8Array[],
  ids: unknown[],
  targetById: Map<string, Uint8Array>,
  fields: string[],
  matching: Set<string> | null,
  sample: number,
): void {
  const present = new Set([...result.ids.same, ...result.ids.conflict]);
  const same: string[] = [];
  const repair: string[] = [];
  const skipped: string[] = [];
  const digests: Record<string, string> = {};
  docs.forEach((raw, i) => {
    const json = idToJson(ids[i]);
    if (!present.has(json)) return;
    const key = idKey(ids[i]);
    const backup = exactForm(raw).doc;
    const target = exactForm(targetById.get(key)!).doc;
    const problem = pathProblem(backup, fields) ?? pathProblem(target, fields);
    const changes = problem ? [{path: problem}] : fieldChanges(backup, target, fields);
    if (!problem && changes.length === 0) {
      same.push(json);
      result.codes[i] = CLASS_CODE.same;
    } else if (problem || (matching && !matching.has(key))) {
      skipped.push(json);
      result.codes[i] = CLASS_CODE.skipped;
      if ((plan.skippedSamples?.length ?? 0) < sample) plan.skippedSamples?.push({collection: name, _id: JSON.parse(json), fields: changes});
    } else {
      repair.push(json);
      result.codes[i] = CLASS_CODE.repair;
      digests[json] = fieldsDigest(target, fields);
      if ((plan.repairs?.length ?? 0) < sample) plan.repairs?.push({collection: name, _id: JSON.parse(json), fields: changes});
    }
  });
  result.ids = {...result.ids, same, conflict: [], repair, skipped};
  result.digests = {};
  result.conflicts = [];
  result.counts = {...result.counts, same: same.length, conflict: 0, repair: repair.length, skipped: skipped.length};
  Object.assign((plan.repairDigests![name] ??= {}), digests);
}

/**
 * Documents about to be written (by canonical id) whose exact form does not serialise back to their
 * bytes, or whose bytes the server would change on insert, with why.
 */
function notExactOf(docs: Uint8Array[], ids: unknown[], codes: Uint8Array): {notExact: Record<string, string>; plain: Uint8Array} {
  const notExact: Record<string, string> = {};
  const plain = new Uint8Array(docs.length);
  for (let i = 0; i < docs.length; i++) {
    if (codes[i] !== CLASS_CODE.insert && codes[i] !== CLASS_CODE.conflict) continue;
    const raw = docs[i]!;
    // The server would refuse it whatever form carries it: never planned as a plain write.
    if (roundTripsPlainly(raw) && tooDeepToStore(raw) === null) {
      plain[i] = 1;
      continue;
    }
    const {doc, inexact} = writeForm(raw);
    if (inexact) notExact[idToJson(ids[i])] = inexact;
    else if (!(doc instanceof Map)) plain[i] = 1;
  }
  return {notExact, plain};
}

/** The hash of a plan: the same set against the same target state gives the same hash. */
export function planHash(input: Pick<Plan, 'target' | 'setHash' | 'ids' | 'classes' | 'conflictDigests'> & Partial<Pick<Plan, 'fields' | 'whereTarget' | 'repairDigests'>>): string {
  const base = {target: input.target, setHash: input.setHash, ids: input.ids, classes: input.classes, conflictDigests: input.conflictDigests};
  // A field repair is another plan than a whole-document one for the same state.
  const repair = input.fields ? {fields: input.fields, whereTarget: input.whereTarget ?? null, repairDigests: input.repairDigests ?? {}} : {};
  return sha256(canonicalJson({...base, ...repair}));
}

/** Value at a dotted path of a document (plain or exact form), or undefined. Arrays are not descended. */
export function valueAtPath(doc: Document | Map<string, unknown>, dotted: string): unknown {
  let cur: unknown = doc;
  for (const part of dotted.split('.')) {
    if (cur instanceof Map) cur = cur.get(part);
    else if (!cur || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    else cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Did the operation fail because the connection went away? The driver does not always say so with
 * a MongoNetworkError: a connection closed during a bulk insert surfaces as a MongoBulkWriteError
 * with no write errors and the `ResetPool` label.
 */
export function isConnectionLoss(error: unknown): boolean {
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  if (error instanceof MongoError && (error.hasErrorLabel('ResetPool') || error.hasErrorLabel('NetworkError'))) return true;
  return /connection .*closed|ECONNRESET|ECONNREFUSED|socket hang up/i.test(error instanceof Error ? error.message : '');
}

/** Driver failures while reading the target become typed errors that name the target (masked). */
export async function guard<T>(conn: TargetConnection, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (isGravityError(error)) throw error;
    const message = redact(error instanceof Error ? error.message : String(error));
    if (isConnectionLoss(error)) {
      throw new GravityError('TARGET_UNREACHABLE', `Lost the connection to ${conn.spec.label} during ${action}: ${message}`, {
        hint: `Check the network and run ${action} again`,
        cause: error,
      });
    }
    if (error instanceof MongoServerError && (error.code === 13 || error.code === 18)) {
      throw new GravityError('TARGET_AUTH', `${conn.spec.label} refused ${action}: ${message}`, {hint: 'The user needs read (and for push, write) access to the target database', cause: error});
    }
    throw new GravityError('INTERNAL', `${action} on ${conn.spec.label} failed: ${message}`, {hint: 'Run again with --debug for details', cause: error});
  }
}

/**
 * The target's documents with these `_id`s, as raw BSON in batches, each handed to `visit` with its
 * `_id` key while its reply is alive. The bytes share the reply's buffer: `visit` copies what it keeps.
 */
export async function eachRawById(coll: Collection, ids: unknown[], visit: (key: string, raw: Uint8Array) => void): Promise<void> {
  const db = dbOf(coll);
  for (let i = 0; i < ids.length; i += LOOKUP_BATCH) {
    const chunk = i === 0 && ids.length <= LOOKUP_BATCH ? ids : ids.slice(i, i + LOOKUP_BATCH);
    const filter = {_id: {$in: chunk}};
    if (db) {
      await findRaw(db, coll.collectionName, filter, (d) => visit(rawIdKey(d), d), LOOKUP_BATCH);
      continue;
    }
    const docs = (await coll.find(filter as Filter<Document>, {raw: true, batchSize: LOOKUP_BATCH}).toArray()) as unknown as Uint8Array[];
    for (const d of docs) visit(rawIdKey(d), d);
  }
}

/**
 * The database handle of a collection, for commands whose replies are read as bytes (`findRaw`). The
 * driver keeps its client on every collection but leaves it out of its type declarations; without it,
 * the driver's own cursor is used.
 */
function dbOf(coll: Collection): Db | null {
  const client = (coll as unknown as {client?: {db?: (name: string) => Db}}).client;
  return typeof client?.db === 'function' ? client.db(coll.dbName) : null;
}

/** Target documents by `_id` key, fetched as raw BSON in batches. */
export async function fetchRawById(coll: Collection, ids: unknown[]): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  // raw buffers share one allocUnsafe slab per reply; copy what we keep.
  await eachRawById(coll, ids, (key, raw) => out.set(key, Buffer.from(raw)));
  return out;
}

/**
 * `_id` lookups sent before their batch is compared (plan, verify). Measured (bench/RESULTS.md):
 * verify of 100,000 documents through a proxy adding 1 ms each way took 1.86–1.98 s with none
 * ahead, 1.17–1.53 s with one and 1.26 s with three (which also held 30 MB more).
 */
export const LOOKUPS_AHEAD = 1;

/**
 * The set's documents of one collection in batches, in the set's order, each with the target's
 * documents of the same `_id`s. Up to `ahead` lookups are sent before their batch is needed, so
 * round trips to the server overlap the comparing instead of adding to it; memory holds those
 * batches only.
 */
export async function* batchesWithTarget(
  set: RestoreSet,
  name: string,
  coll: Collection,
  conn: TargetConnection,
  action: string,
  ahead = LOOKUPS_AHEAD,
  batchDocs = LOOKUP_BATCH,
): AsyncGenerator<{docs: Buffer[]; ids: unknown[]; target: Map<string, Uint8Array>}> {
  const queue: Array<{docs: Buffer[]; ids: unknown[]; target: Promise<Map<string, Uint8Array>>}> = [];
  const take = async () => {
    const next = queue.shift()!;
    return {docs: next.docs, ids: next.ids, target: await next.target};
  };
  for await (const docs of setDocumentBatches(set, name, batchDocs)) {
    const ids = docs.map(idOf);
    const target = guard(conn, action, () => fetchRawById(coll, ids));
    // Awaited in turn below; until then a failure must not count as unhandled.
    target.catch(() => undefined);
    queue.push({docs, ids, target});
    if (queue.length > ahead) yield await take();
  }
  while (queue.length > 0) yield await take();
}

async function findKeyHolders(
  coll: Collection,
  candidates: Array<{id: unknown; doc: Map<string, unknown>}>,
  matchOn: string[],
): Promise<Map<string, {targetId: unknown; key: Record<string, unknown>}>> {
  const holders = new Map<string, {targetId: unknown; key: Record<string, unknown>}>();
  const withKey = candidates
    .map((c) => ({id: c.id, key: Object.fromEntries(matchOn.map((f) => [f, valueAtPath(c.doc, f)]))}))
    .filter((c) => Object.values(c.key).every((v) => v !== undefined));
  const byKey = new Map<string, Array<{id: unknown; key: Record<string, unknown>}>>();
  for (const c of withKey) {
    const k = idKey(matchOn.map((f) => c.key[f]));
    byKey.set(k, [...(byKey.get(k) ?? []), c]);
  }
  const projection = Object.fromEntries([['_id', 1], ...matchOn.map((f) => [f, 1])]);
  for (let i = 0; i < withKey.length; i += KEY_BATCH) {
    const chunk = withKey.slice(i, i + KEY_BATCH);
    const found = (await coll.find({$or: chunk.map((c) => c.key)}, {raw: true, projection}).toArray()) as unknown as Uint8Array[];
    for (const raw of found) {
      // Exact form: key values and the holder's _id keep their field order (subdocument keys compare in order).
      const doc = exactForm(raw).doc;
      const k = idKey(matchOn.map((f) => valueAtPath(doc, f)));
      for (const c of byKey.get(k) ?? []) {
        if (idKey(c.id) !== idKey(doc.get('_id'))) holders.set(idKey(c.id), {targetId: doc.get('_id'), key: JSON.parse(orderedJson(new Map(Object.entries(c.key)))) as Record<string, unknown>});
      }
    }
  }
  return holders;
}

/** A plan being made: filled collection by collection, hashed when every collection is in. */
export type PlanDraft = Omit<Plan, 'hash'>;

export function newPlan(set: RestoreSet, conn: TargetConnection, options: PlanOptions = {}): PlanDraft {
  return {
    formatVersion: 2,
    target: conn.spec.label,
    targetName: conn.spec.name,
    db: conn.spec.db,
    setHash: set.hash,
    createdAt: new Date().toISOString(),
    matchOn: options.matchOn ?? [],
    collections: {},
    namespaces: {},
    conflicts: [],
    keyMatches: [],
    clashes: {},
    notExact: {},
    targetChecks: {},
    ...(options.fields ? {fields: options.fields, whereTarget: options.whereTarget ? EJSON.stringify(options.whereTarget, {relaxed: false}) : null, repairDigests: {}, repairs: [], skippedSamples: []} : {}),
    ids: {},
    classes: {},
    conflictDigests: {},
  };
}

/** One batch of a collection as planned: the set's documents, their ids and class codes, and which of them are not exact. */
export interface PlannedBatch {
  docs: Buffer[];
  ids: unknown[];
  codes: Uint8Array;
  /** Canonical id of each document of the batch to be written that cannot be written byte for byte, with why. */
  notExact: Record<string, string>;
}

/**
 * Plan one collection, a batch at a time: each batch is classified against the target and added to
 * `plan` before it is handed out, so a caller can act on it (push writes it) while the next is planned.
 * When the generator is done, the collection is complete in `plan`.
 */
export async function* planCollection(plan: PlanDraft, set: RestoreSet, conn: TargetConnection, name: string, options: PlanOptions = {}): AsyncGenerator<PlannedBatch> {
  const matchOn = options.matchOn ?? [];
  const sample = options.sample ?? 20;
  const entry = set.manifest.collections[name];
  if (!entry) throw new GravityError('SET_INVALID', `Manifest order names ${name}, which is not in its collections`, {hint: 'Extract the set again'});
  const dbName = conn.dbName(entry.db);
  const db = conn.client.db(dbName);
  const coll = db.collection(entry.collection);
  options.onProgress?.({collection: name, done: 0, total: entry.documents});
  const {checks, unique} = await guard(conn, 'plan', () => readTargetChecks(db, entry.collection));
  const ids: PlanIds = {conflict: [], keyMatch: [], clash: [], ...(options.fields ? {repair: [], skipped: []} : {})};
  const codes: Uint8Array[] = [];
  const plainChunks: Uint8Array[] = [];
  const counts: ClassCounts = {insert: 0, same: 0, conflict: 0, keyMatch: 0, clash: 0, notExact: 0, ...(options.fields ? {repair: 0, skipped: 0} : {})};
  plan.conflictDigests[name] = {};
  plan.notExact[name] = {};
  plan.clashes[name] = {};
  let done = 0;
  // A batch of the set and its target counterparts at a time: memory holds ids, not documents.
  for await (const {docs, ids: batchIds, target: targetById} of batchesWithTarget(set, name, coll, conn, 'plan', LOOKUPS_AHEAD, options.batchDocs)) {
    // Documents absent by _id, in exact form once, for the natural-key and unique-key lookups that need it.
    const absent =
      matchOn.length > 0 || unique.length > 0
        ? docs.flatMap((raw, i) => (targetById.has(idKey(batchIds[i])) ? [] : [{id: batchIds[i], raw, doc: exactForm(raw).doc}]))
        : [];
    let holders = new Map<string, {targetId: unknown; key: Record<string, unknown>}>();
    if (matchOn.length > 0) holders = await guard(conn, 'plan', () => findKeyHolders(coll, absent, matchOn));
    const clashes = unique.length > 0 ? await guard(conn, 'plan', () => findClashes(coll, absent, unique)) : new Map<string, Clash>();
    const result = classifyCollection(name, docs, targetById, holders, sample, plan.conflicts.length, batchIds, clashes);
    if (options.fields) {
      const matching = options.whereTarget ? await guard(conn, 'plan', () => idsMatching(coll, [...targetById.values()], options.whereTarget!)) : null;
      reclassifyByFields(plan, name, result, docs, batchIds, targetById, options.fields, matching, sample);
    }
    const {notExact, plain} = notExactOf(docs, batchIds, result.codes);
    plainChunks.push(plain);
    Object.assign(plan.notExact[name], notExact);
    Object.assign(plan.conflictDigests[name], result.digests);
    for (const k of Object.keys(ids) as Array<keyof PlanIds>) for (const id of result.ids[k] ?? []) ids[k]!.push(id);
    codes.push(result.codes);
    for (const k of Object.keys(counts) as Array<keyof ClassCounts>) counts[k] = (counts[k] ?? 0) + (result.counts[k] ?? 0);
    counts.notExact += Object.keys(notExact).length;
    for (const id of batchIds) {
      const clash = clashes.get(idKey(id));
      if (clash) plan.clashes[name][idToJson(id)] = clash;
    }
    plan.conflicts.push(...result.conflicts.slice(0, Math.max(0, sample - plan.conflicts.length)));
    plan.keyMatches.push(...result.keyMatches.slice(0, Math.max(0, sample - plan.keyMatches.length)));
    done += docs.length;
    yield {docs, ids: batchIds, codes: result.codes, notExact};
    options.onProgress?.({collection: name, done, total: entry.documents});
  }
  plan.collections[name] = counts;
  plan.ids[name] = ids;
  plan.classes[name] = Buffer.concat(codes).toString('base64');
  (plan.plainExact ??= {})[name] = Buffer.concat(plainChunks);
  plan.namespaces[name] = {db: dbName, collection: entry.collection};
  plan.targetChecks[name] = checks;
}

/** The finished plan: every collection planned, and its hash. */
export function finishPlan(plan: PlanDraft): Plan {
  return {...plan, hash: planHash(plan)};
}

export async function planSet(set: RestoreSet, conn: TargetConnection, options: PlanOptions = {}): Promise<Plan> {
  const plan = newPlan(set, conn, options);
  for (const name of set.manifest.order) {
    for await (const _batch of planCollection(plan, set, conn, name, options)) {
      // Planning only: each batch is already in the plan.
    }
  }
  return finishPlan(plan);
}

/** A plan as the commands print it (`--json`): without the per-document class codes (a byte a document) kept in the plan file and in memory. */
export type ShownPlan = Omit<Plan, 'classes' | 'plainExact'>;

export function shownPlan(plan: Plan): ShownPlan {
  const {classes: _classes, plainExact: _plainExact, ...shown} = plan;
  return shown;
}

/** Write `plans/<target>-<hash12>.json` atomically (temp file + rename); returns its path. */
export async function savePlan(set: RestoreSet, plan: Plan): Promise<string> {
  const dir = path.join(set.dir, PLAN_DIR);
  await mkdir(dir, {recursive: true, mode: 0o700});
  const file = path.join(dir, `${plan.targetName}-${plan.hash.slice(0, 12)}.json`);
  const temp = `${file}.${process.pid}.tmp`;
  const {plainExact: _inMemoryOnly, ...saved} = plan;
  await writeFile(temp, `${JSON.stringify(saved, null, 2)}\n`, {mode: 0o600});
  await rename(temp, file);
  await appendLedger(set, {
    time: new Date().toISOString(),
    action: 'plan',
    target: plan.targetName,
    targetLabel: plan.target,
    setHash: plan.setHash,
    planHash: plan.hash,
    counts: plan.collections,
    outcome: 'ok',
  });
  return file;
}

export async function readPlan(file: string): Promise<Plan> {
  let plan: Plan;
  try {
    plan = JSON.parse(await readFile(file, 'utf8')) as Plan;
  } catch (error) {
    throw new GravityError('SET_INVALID', `Cannot read plan ${file}: ${(error as Error).message}`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
  }
  if (plan.formatVersion !== 2 || !plan.ids || !plan.classes || !plan.hash) {
    throw new GravityError('SET_INVALID', `Plan ${file} has an unknown layout`, {hint: 'Run `gravity-restore plan SET --to TARGET` again'});
  }
  return plan;
}
