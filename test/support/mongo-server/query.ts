/**
 * Query selection through the strict matcher (match.ts) and updates through the order-preserving
 * update engine (update.ts, pipeline-update.ts); projection and pipelines after their leading `$match`
 * stages still go through mingo over the matchable view, and results map back to the stored bytes
 * whenever a document passes through unchanged.
 */
import {Aggregator, find} from 'mingo';
import {ObjectId} from 'bson';
import {type Document, RawDoc, decodeTyped, encode, isPlainObject, orderLike, rawField, restoreTypes, toMatchable, withIdFirst} from './bson-values.js';
import {CommandError} from './command-error.js';
import {compareValues, keyOf, toNumber as toNumberValue} from './compare.js';
import {parseCollation} from './collation.js';
import {compileFilter, compileSort} from './match.js';
import {type Collection, type Rec, type Store, fillEmptyTimestamps, treeOf, typedOf} from './storage.js';
import {BArr, BDoc, BT, BVal, type Value, parseDoc, toValue, valueFrom} from './tree.js';
import {applyOperators, matchedIndex, parseOperators} from './update.js';
import {applyPipeline} from './pipeline-update.js';

/** mingo throws plain Errors for bad operators; mongod answers BadValue. */
export function mingoGuard<T>(fn: () => T, code = 2): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof CommandError) throw e;
    throw new CommandError(code, e instanceof Error ? e.message : String(e));
  }
}

function isEmptyDoc(d: unknown): boolean {
  return d === undefined || d === null || (isPlainObject(d) && Object.keys(d).length === 0);
}

function isOperatorDoc(v: Value): boolean {
  return v instanceof BDoc && v.entries.length > 0 && v.entries[0]![0].startsWith('$');
}

/**
 * Candidate records from the `_id` part of a filter, as mongod narrows by its _id index:
 * `{_id: v}`, `{_id: {$eq: v}}` or `{_id: {$in: [...]}}`. Keys compare as mongod compares values
 * (numbers by value, documents by field order), and the whole filter is still tested on them.
 * null means "scan".
 */
function idCandidates(coll: Collection, filter: BDoc): Rec[] | null {
  const id = filter.get('_id');
  if (id === undefined) return null;
  let values: readonly Value[];
  if (isOperatorDoc(id)) {
    const ops = id as BDoc;
    if (ops.entries.length !== 1) return null;
    const [op, arg] = ops.entries[0]!;
    if (op === '$eq') values = [arg];
    else if (op === '$in' && arg instanceof BArr) values = arg.items;
    else return null;
  } else {
    values = [id];
  }
  const out = new Set<Rec>();
  for (const v of values) {
    // A regex matches by pattern and an array by its elements: those need the scan.
    if (v.type === BT.REGEX || v instanceof BArr) return null;
    const r = coll.records.get(keyOf(v));
    if (r) out.add(r);
  }
  return [...out];
}

export interface SelectOptions {
  sort?: BDoc | undefined;
  /** The command's `collation` field as sent; absent means the collection's default. */
  collation?: Value | undefined;
  skip?: number | undefined;
  limit?: number | undefined;
}

/** Records matching a filter, in natural order unless sorted. The filter is compiled even for a missing collection. */
export function select(coll: Collection | undefined, filter: BDoc | undefined, opts: SelectOptions = {}): Rec[] {
  const f = filter ?? BDoc.fromEntries([]);
  const collator = (opts.collation !== undefined ? parseCollation(opts.collation) : coll?.collation)?.collator;
  const pred = compileFilter(f, collator);
  const natural = opts.sort?.entries[0]?.[0] === '$natural' ? opts.sort.entries[0][1] : undefined;
  if (natural !== undefined && opts.sort!.entries.length > 1) throw new CommandError(2, '$natural sort cannot be combined with other sort fields');
  const sort = natural === undefined && opts.sort && opts.sort.entries.length > 0 ? compileSort(opts.sort, collator) : undefined;
  if (!coll) return [];
  let recs: Rec[] = [];
  let inNaturalOrder = true;
  if (f.entries.length === 0) {
    recs = [...coll.records.values()];
  } else {
    // Under a collation string _ids may match other strings than their own key.
    const candidates = collator ? null : idCandidates(coll, f);
    inNaturalOrder = candidates === null;
    // A filter on `_id` alone is answered by the index: each candidate's key equals a value asked for.
    const onlyId = candidates !== null && f.entries.length === 1;
    for (const r of candidates ?? coll.records.values()) if (onlyId || pred(treeOf(r))) recs.push(r);
    // Found through the _id index, as mongod finds them: results come in _id order.
    if (candidates) recs.sort((a, b) => compareValues(a.id, b.id));
  }
  if (natural !== undefined) {
    const dir = natural instanceof BVal && natural.type !== BT.STRING && toNumberValue(natural) < 0 ? -1 : 1;
    // A scan already yields natural order (an oplog read backwards for its newest entry stays cheap).
    if (inNaturalOrder) {
      if (dir < 0) recs.reverse();
    } else {
      const order = new Map([...coll.records.values()].map((r, i) => [r, i]));
      recs = [...recs].sort((a, b) => (order.get(a)! - order.get(b)!) * dir);
    }
  }
  if (sort) {
    const trees = new Map(recs.map((r) => [r, treeOf(r)]));
    recs = [...recs].sort((a, b) => sort(trees.get(a)!, trees.get(b)!));
  }
  const skip = opts.skip ?? 0;
  const limit = opts.limit ?? 0;
  if (skip > 0 || limit > 0) recs = recs.slice(skip, limit > 0 ? skip + limit : undefined);
  return recs;
}

/** Bytes to send for each record: stored bytes, or the projection with BSON types restored. */
export function project(recs: Rec[], projection: Document | undefined): Buffer[] {
  if (isEmptyDoc(projection)) return recs.map((r) => r.bytes);
  const proj = toMatchable(projection) as Document;
  return recs.map((r) => {
    const [out] = mingoGuard(() => find([toMatchable(typedOf(r)) as Document], {}, proj).all());
    const typed = typedOf(r);
    return encode(orderLike(restoreTypes(out, typed), typed) as Document);
  });
}

/**
 * Runs a pipeline; leading `$match` stages use the strict matcher, the rest mingo. Documents that
 * come out untouched are sent as their stored bytes.
 */
export function aggregate(store: Store, coll: Collection | undefined, pipeline: Document[], stages: BArr, collation: Value | undefined): Buffer[] {
  for (const stage of pipeline) {
    const op = Object.keys(stage)[0];
    if (op === '$out' || op === '$merge') throw new CommandError(115, `${op} is not supported by the gravity-restore test server`);
  }
  let recs = coll ? [...coll.records.values()] : [];
  let first = 0;
  while (first < stages.items.length) {
    const stage = stages.items[first];
    if (!(stage instanceof BDoc) || stage.entries.length !== 1 || stage.entries[0]![0] !== '$match') break;
    const filter = stage.entries[0]![1];
    if (!(filter instanceof BDoc)) throw new CommandError(15959, 'the match filter must be an expression in an object');
    const kept = new Set(recs);
    recs = select(coll, filter, {collation}).filter((r) => kept.has(r));
    first++;
  }
  const rest = pipeline.slice(first);
  if (rest.length === 0) return recs.map((r) => r.bytes);
  const byObj = new Map<object, Rec>();
  const docs = recs.map((r) => {
    const m = toMatchable(typedOf(r)) as Document;
    byObj.set(m, r);
    return m;
  });
  const db = coll?.db ?? '';
  const agg = mingoGuard(
    () =>
      new Aggregator(toMatchable(rest) as Document[], {
        collectionResolver: (name: string) =>
          [...(store.get(db, name)?.records.values() ?? [])].map((r) => toMatchable(typedOf(r)) as Document),
      }),
  );
  const out = mingoGuard(() => agg.run(docs));
  return out.map((d) => {
    const rec = byObj.get(d);
    return rec ? rec.bytes : encode(d);
  });
}

/**
 * An update as mongod classifies it (https://www.mongodb.com/docs/manual/reference/method/db.collection.updateOne/):
 * a pipeline (array), operators (every top-level field starts with `$`) or a replacement document;
 * kept as the bytes sent so values keep their field order and types.
 */
export type UpdateSpec = {kind: 'replacement'; bytes: Buffer} | {kind: 'operators'; update: BDoc} | {kind: 'pipeline'; stages: BArr};

/** Classifies an update `u` the way mongod does, from the statement's raw bytes. */
export function parseUpdate(statement: Buffer, u: unknown, field = 'u'): UpdateSpec {
  const raw = rawField(statement, field);
  if (Array.isArray(u)) return {kind: 'pipeline', stages: raw && raw.type === BT.ARRAY ? (valueFrom(BT.ARRAY, raw.bytes) as BArr) : (toValue(u) as BArr)};
  if (!isPlainObject(u)) throw new CommandError(14, 'Update argument must be either an object or an array');
  const doc = raw && raw.type === BT.DOC ? parseDoc(raw.bytes) : parseDoc(encode(u));
  const keys = doc.keys();
  const dollar = keys.filter((k) => k.startsWith('$'));
  if (dollar.length === 0) return {kind: 'replacement', bytes: doc.bytes};
  if (dollar.length !== keys.length) {
    throw new CommandError(9, `Unknown modifier: ${keys.find((k) => !k.startsWith('$'))}. Expected a valid update modifier or pipeline-style update specified as an array`);
  }
  return {kind: 'operators', update: doc};
}

/**
 * Fields an upsert copies from the filter, in filter order: top-level and `$and` equalities, dotted
 * paths as embedded documents (https://www.mongodb.com/docs/manual/reference/method/db.collection.update/#upsert-behavior).
 */
function equalityFields(filter: BDoc, into: Array<[string, Value]>): void {
  for (const [k, v] of filter.entries) {
    if (k === '$and' && v instanceof BArr) {
      for (const c of v.items) if (c instanceof BDoc) equalityFields(c, into);
      continue;
    }
    if (k.startsWith('$')) continue;
    let value: Value | undefined = v;
    if (isOperatorDoc(v)) value = (v as BDoc).entries.length === 1 && (v as BDoc).entries[0]![0] === '$eq' ? (v as BDoc).entries[0]![1] : undefined;
    if (value === undefined || value.type === BT.REGEX) continue;
    into.push([k, value]);
  }
}

function seedDocument(filter: BDoc | undefined): BDoc {
  const fields: Array<[string, Value]> = [];
  if (filter) equalityFields(filter, fields);
  let doc = BDoc.fromEntries([]);
  for (const [path, value] of fields) {
    const spec = parseOperators(BDoc.fromEntries([['$set', BDoc.fromEntries([[path, value]])]]));
    doc = applyOperators(doc, spec);
  }
  return doc;
}

function checkIdUnchanged(oldId: Value, newId: Value): void {
  if (keyOf(oldId) !== keyOf(newId)) {
    throw new CommandError(66, "After applying the update, the (immutable) field '_id' was found to have been altered");
  }
}

/** New document for `doc` under an operator or pipeline update; the same object when nothing changed. */
function applyUpdate(doc: BDoc, spec: Exclude<UpdateSpec, {kind: 'replacement'}>, filter: BDoc | undefined, arrayFilters: BArr | undefined, insert: boolean): BDoc {
  if (spec.kind === 'pipeline') {
    if (arrayFilters) throw new CommandError(72, 'arrayFilters may not be specified for pipeline-style updates');
    return applyPipeline(doc, spec.stages);
  }
  const parsed = parseOperators(spec.update, arrayFilters);
  const matched = insert ? undefined : matchedIndex(doc, parsed, filter ? compileFilter(filter) : undefined);
  return applyOperators(doc, parsed, {insert, matched});
}

/** New bytes for `rec` under `spec`, or the same buffer when nothing changed. */
export function updatedBytes(rec: Rec, spec: UpdateSpec, filter: BDoc | undefined, arrayFilters?: BArr): Buffer {
  if (spec.kind === 'replacement') {
    const {bytes: ordered, id} = withIdFirst(spec.bytes, rec.id);
    checkIdUnchanged(rec.id, id);
    const bytes = fillEmptyTimestamps(ordered);
    return bytes.equals(rec.bytes) ? rec.bytes : bytes;
  }
  const before = treeOf(rec);
  const after = applyUpdate(before, spec, filter, arrayFilters, false);
  return after === before || after.bytes.equals(rec.bytes) ? rec.bytes : after.bytes;
}

/** The document an upsert inserts when nothing matched. */
export function upsertBytes(spec: UpdateSpec, filter: BDoc | undefined, arrayFilters?: BArr): {bytes: Buffer; fallbackId: Value} {
  const seed = seedDocument(filter);
  const seededId = seed.get('_id');
  const fallbackId = seededId ?? toValue(new ObjectId());
  if (spec.kind === 'replacement') return {bytes: fillEmptyTimestamps(spec.bytes), fallbackId};
  // Without an _id from the filter, the update may give one ($setOnInsert: {_id: …}); else it is generated.
  const next = applyUpdate(seed, spec, filter, arrayFilters, true);
  const {bytes, id} = withIdFirst(next.bytes, fallbackId);
  if (seededId) checkIdUnchanged(seededId, id);
  return {bytes: fillEmptyTimestamps(bytes), fallbackId: id};
}

export {RawDoc, decodeTyped};
