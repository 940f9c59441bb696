/**
 * Query, projection, aggregation and update semantics, delegated to mingo over the matchable
 * view; results map back to the stored bytes whenever a document passes through unchanged.
 */
import {Aggregator, Query, find, update as mingoUpdate} from 'mingo';
import {ObjectId} from 'bson';
import {
  type Document,
  RawDoc,
  decodeTyped,
  encode,
  isPlainObject,
  keyOf,
  orderLike,
  rawField,
  restoreTypes,
  setPath,
  toMatchable,
  withIdFirst,
} from './bson-values.js';
import {CommandError} from './command-error.js';
import {type Collection, type Rec, type Store, matchOf, typedOf} from './storage.js';

/** mingo throws plain Errors for bad operators; mongod answers BadValue. */
export function mingoGuard<T>(fn: () => T, code: 2 | 9 = 2): T {
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

/** `{_id: <scalar>}` can be answered from the primary key without a scan. */
function idEquality(filter: Document): unknown {
  const keys = Object.keys(filter);
  if (keys.length !== 1 || keys[0] !== '_id') return undefined;
  const v = filter._id;
  if (v === null || v === undefined || v instanceof RegExp || Array.isArray(v) || isPlainObject(v)) return undefined;
  return v;
}

/**
 * Candidate records from the `_id` part of a filter, as mongod narrows by its _id index:
 * `{_id: <scalar>, …}` or `{_id: {$in: [ObjectId | string, …]}, …}`. The whole filter is
 * still tested on them. Only types whose key equality is BSON equality use `$in` this way
 * (5 and 5.0 take the general path); null means "scan".
 */
function idCandidates(coll: Collection, filter: Document): Rec[] | null {
  if (!('_id' in filter)) return null;
  const id = filter._id;
  let values: unknown[];
  if (isPlainObject(id)) {
    const ops = id as Document;
    if (Object.keys(ops).length !== 1 || !Array.isArray(ops.$in)) return null;
    values = ops.$in as unknown[];
    if (!values.every((v) => typeof v === 'string' || v instanceof ObjectId)) return null;
  } else {
    if (idEquality({_id: id}) === undefined) return null;
    values = [id];
  }
  const seen = new Set<Rec>();
  for (const v of values) {
    const r = coll.records.get(keyOf(v));
    if (r) seen.add(r);
  }
  return [...seen];
}

export interface SelectOptions {
  sort?: Document | undefined;
  skip?: number | undefined;
  limit?: number | undefined;
}

/** Records matching a filter, in natural order unless sorted. */
export function select(coll: Collection | undefined, filter: Document | undefined, opts: SelectOptions = {}): Rec[] {
  if (!coll) return [];
  let recs: Rec[];
  const f = filter ?? {};
  const id = idEquality(f);
  if (isEmptyDoc(f)) {
    recs = [...coll.records.values()];
  } else if (id !== undefined) {
    const r = coll.records.get(keyOf(id));
    recs = r ? [r] : [];
  } else {
    const candidates = idCandidates(coll, f);
    if (candidates && Object.keys(f).length === 1) {
      // The key lookup was the whole filter, and exact for these types.
      recs = candidates;
    } else {
      const q = mingoGuard(() => new Query(toMatchable(f) as Document));
      recs = [];
      for (const r of candidates ?? coll.records.values()) if (q.test(matchOf(r))) recs.push(r);
    }
  }
  if (opts.sort && !isEmptyDoc(opts.sort)) {
    const byObj = new Map<object, Rec>();
    const docs = recs.map((r) => {
      const m = matchOf(r);
      byObj.set(m, r);
      return m;
    });
    const sort = toMatchable(opts.sort) as Record<string, 1 | -1>;
    const sorted = mingoGuard(() => find(docs, {}).sort(sort).all());
    recs = sorted.map((d) => byObj.get(d as object)!);
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

/** Runs a pipeline; documents that come out untouched are sent as their stored bytes. */
export function aggregate(store: Store, coll: Collection | undefined, pipeline: Document[]): Buffer[] {
  for (const stage of pipeline) {
    const op = Object.keys(stage)[0];
    if (op === '$out' || op === '$merge') throw new CommandError(115, `${op} is not supported by the gravity-restore test server`);
  }
  const byObj = new Map<object, Rec>();
  const docs = (coll ? [...coll.records.values()] : []).map((r) => {
    const m = toMatchable(typedOf(r)) as Document;
    byObj.set(m, r);
    return m;
  });
  const db = coll?.db ?? '';
  const agg = mingoGuard(
    () =>
      new Aggregator(toMatchable(pipeline) as Document[], {
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

const UPDATE_OPERATORS = new Set([
  '$set', '$unset', '$inc', '$mul', '$rename', '$min', '$max', '$currentDate', '$push', '$pull',
  '$pullAll', '$addToSet', '$pop', '$bit', '$setOnInsert',
]);

export type UpdateSpec = {kind: 'replacement'; bytes: Buffer} | {kind: 'operators'; ops: Document} | {kind: 'pipeline'; stages: Document[]};

/** Classifies an update `u` the way mongod does, keeping a replacement's raw bytes. */
export function parseUpdate(statement: Buffer, u: unknown, field = 'u'): UpdateSpec {
  if (Array.isArray(u)) return {kind: 'pipeline', stages: u as Document[]};
  if (!isPlainObject(u)) throw new CommandError(14, 'Update argument must be either an object or an array');
  const keys = Object.keys(u);
  const dollar = keys.filter((k) => k.startsWith('$'));
  if (dollar.length === 0) {
    const raw = rawField(statement, field);
    return {kind: 'replacement', bytes: raw && raw.type === 3 ? raw.bytes : encode(u)};
  }
  if (dollar.length !== keys.length) {
    throw new CommandError(9, `Unknown modifier: ${keys.find((k) => !k.startsWith('$'))}. Expected a valid update modifier or pipeline-style update specified as an array`);
  }
  for (const k of keys) {
    if (!UPDATE_OPERATORS.has(k)) {
      throw new CommandError(9, `Unknown modifier: ${k}. Expected a valid update modifier or pipeline-style update specified as an array`);
    }
  }
  return {kind: 'operators', ops: u};
}

/** Fields an upsert copies from the filter: top-level and `$and` equalities. */
function equalityFields(filter: Document, into: Document): void {
  for (const k of Object.keys(filter)) {
    const v = filter[k];
    if (k === '$and' && Array.isArray(v)) {
      for (const c of v) if (isPlainObject(c)) equalityFields(c, into);
      continue;
    }
    if (k.startsWith('$')) continue;
    if (isPlainObject(v) && Object.keys(v).some((x) => x.startsWith('$'))) {
      if ('$eq' in v) setPath(into, k, v.$eq);
      continue;
    }
    if (v instanceof RegExp) continue;
    setPath(into, k, v);
  }
}

function checkIdUnchanged(oldId: unknown, newId: unknown): void {
  if (keyOf(oldId) !== keyOf(newId)) {
    throw new CommandError(66, "After applying the update, the (immutable) field '_id' was found to have been altered");
  }
}

/** mongod refuses operators on `_id` unless they leave it as it is (a `$set` to the same value). */
function guardId(ops: Document, id: unknown): void {
  for (const op of Object.keys(ops)) {
    const spec = ops[op];
    if (!isPlainObject(spec)) continue;
    for (const path of Object.keys(spec)) {
      const target = op === '$rename' ? String(spec[path]) : path;
      for (const p of [path, target]) {
        if (p !== '_id' && !p.startsWith('_id.')) continue;
        if ((op === '$set' || op === '$setOnInsert') && p === '_id' && keyOf(spec[path]) === keyOf(id)) {
          delete spec[path];
          continue;
        }
        throw new CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
      }
    }
    if (Object.keys(spec).length === 0) delete ops[op];
  }
}

/** Copies objects and arrays; BSON values are immutable here and keep their prototypes. */
function cloneContainers(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(cloneContainers);
  if (isPlainObject(v)) {
    const out: Document = {};
    for (const k of Object.keys(v)) out[k] = cloneContainers(v[k]);
    return out;
  }
  return v;
}

/** The typed values an operator update writes verbatim, so their BSON types survive. */
function overlay(base: Document, ops: Document, insert: boolean): Document {
  const out = cloneContainers(base) as Document;
  for (const op of insert ? ['$set', '$setOnInsert'] : ['$set']) {
    const spec = ops[op];
    if (isPlainObject(spec)) for (const path of Object.keys(spec)) setPath(out, path, spec[path]);
  }
  return out;
}

/**
 * Applies an operator or pipeline update to a typed document; returns its new bytes. `filter`
 * drives the positional `$` operator.
 */
function applyToTyped(typed: Document, spec: Exclude<UpdateSpec, {kind: 'replacement'}>, filter: Document, arrayFilters: Document[] | undefined, insert: boolean): Document {
  const m = toMatchable(typed) as Document;
  if (spec.kind === 'pipeline') {
    const [out] = mingoGuard(() => new Aggregator(toMatchable(spec.stages) as Document[]).run([m]));
    return restoreTypes(out, typed) as Document;
  }
  const ops: Document = {...(toMatchable(spec.ops) as Document)};
  guardId(ops, m._id);
  if (insert && ops.$setOnInsert) ops.$set = {...((ops.$set as Document | undefined) ?? {}), ...(ops.$setOnInsert as Document)};
  delete ops.$setOnInsert;
  if (Object.keys(ops).length > 0) {
    const af = arrayFilters ? (toMatchable(arrayFilters) as Document[]) : undefined;
    // mingo skips the update when the condition fails; an upsert's seed need not match its filter.
    const condition = insert ? undefined : (toMatchable(filter) as Document);
    mingoGuard(() => mingoUpdate(m, ops, af, condition), 9);
  }
  return restoreTypes(m, overlay(typed, spec.ops, insert)) as Document;
}

/** New bytes for `rec` under `spec`, or the same buffer when nothing changed. */
export function updatedBytes(rec: Rec, spec: UpdateSpec, filter: Document, arrayFilters?: Document[]): Buffer {
  if (spec.kind === 'replacement') {
    const {bytes, id} = withIdFirst(spec.bytes, rec.id);
    checkIdUnchanged(rec.id, id);
    return bytes.equals(rec.bytes) ? rec.bytes : bytes;
  }
  const next = applyToTyped(typedOf(rec), spec, filter, arrayFilters, false);
  checkIdUnchanged(rec.id, next._id);
  const bytes = encode(next);
  return bytes.equals(rec.bytes) ? rec.bytes : bytes;
}

/** The document an upsert inserts when nothing matched. */
export function upsertBytes(spec: UpdateSpec, filter: Document, arrayFilters?: Document[]): {bytes: Buffer; fallbackId: unknown} {
  const base: Document = {};
  equalityFields(filter, base);
  const fallbackId = base._id === undefined ? new ObjectId() : base._id;
  if (spec.kind === 'replacement') return {bytes: spec.bytes, fallbackId};
  const seeded: Document = {_id: fallbackId, ...base};
  const next = applyToTyped(seeded, spec, filter, arrayFilters, true);
  checkIdUnchanged(fallbackId, next._id);
  return {bytes: encode(next), fallbackId};
}

export {RawDoc, decodeTyped};
