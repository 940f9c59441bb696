/**
 * Query selection through the strict matcher (match.ts); projection, pipelines after their leading
 * `$match` stages and operator updates still go through mingo over the matchable view, and results
 * map back to the stored bytes whenever a document passes through unchanged.
 */
import {Aggregator, find, update as mingoUpdate} from 'mingo';
import {ObjectId} from 'bson';
import {
  type Document,
  RawDoc,
  decodeTyped,
  encode,
  isPlainObject,
  orderLike,
  rawField,
  restoreTypes,
  setPath,
  toMatchable,
  withIdFirst,
} from './bson-values.js';
import {CommandError} from './command-error.js';
import {compareValues, keyOf, toNumber as toNumberValue} from './compare.js';
import {parseCollation} from './collation.js';
import {compileFilter, compileSort} from './match.js';
import {type Collection, type Rec, type Store, fillEmptyTimestamps, treeOf, typedOf} from './storage.js';
import {BArr, BDoc, BT, BVal, type Value, parseDoc, toValue} from './tree.js';

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
  if (f.entries.length === 0) {
    recs = [...coll.records.values()];
  } else {
    // Under a collation string _ids may match other strings than their own key.
    const candidates = collator ? null : idCandidates(coll, f);
    // A filter on `_id` alone is answered by the index: each candidate's key equals a value asked for.
    const onlyId = candidates !== null && f.entries.length === 1;
    for (const r of candidates ?? coll.records.values()) if (onlyId || pred(treeOf(r))) recs.push(r);
    // Found through the _id index, as mongod finds them: results come in _id order.
    if (candidates) recs.sort((a, b) => compareValues(a.id, b.id));
  }
  if (natural !== undefined) {
    const order = new Map([...coll.records.values()].map((r, i) => [r, i]));
    const dir = natural instanceof BVal && natural.type !== BT.STRING && toNumberValue(natural) < 0 ? -1 : 1;
    recs = [...recs].sort((a, b) => (order.get(a)! - order.get(b)!) * dir);
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

const UPDATE_OPERATORS = new Set([
  '$set', '$unset', '$inc', '$mul', '$rename', '$min', '$max', '$currentDate', '$push', '$pull',
  '$pullAll', '$addToSet', '$pop', '$bit', '$setOnInsert',
]);

/** `raw`: the update document in sent order, so `$set` values keep their field order and types. */
export type UpdateSpec = {kind: 'replacement'; bytes: Buffer} | {kind: 'operators'; ops: Document; raw?: BDoc} | {kind: 'pipeline'; stages: Document[]};

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
  const sent = rawField(statement, field);
  return {kind: 'operators', ops: u, ...(sent && sent.type === BT.DOC ? {raw: parseDoc(sent.bytes)} : {})};
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

function sameId(a: unknown, b: unknown): boolean {
  return keyOf(a instanceof BVal || a instanceof BDoc || a instanceof BArr ? a : toValue(a)) === keyOf(b instanceof BVal || b instanceof BDoc || b instanceof BArr ? b : toValue(b));
}

function checkIdUnchanged(oldId: unknown, newId: unknown): void {
  if (!sameId(oldId, newId)) {
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
        if ((op === '$set' || op === '$setOnInsert') && p === '_id' && sameId(spec[path], id)) {
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
    // The filter only drives the positional `$` operator here: the strict matcher already chose the
    // document, and mingo (which skips the update when its own, looser reading of the filter fails)
    // must not second-guess it. An upsert's seed need not match its filter.
    const positional = Object.values(ops).some((spec) => isPlainObject(spec) && Object.keys(spec).some((p) => p.split('.').includes('$')));
    const condition = insert || !positional ? undefined : (toMatchable(filter) as Document);
    mingoGuard(() => mingoUpdate(m, ops, af, condition), 9);
  }
  return restoreTypes(m, overlay(typed, spec.ops, insert)) as Document;
}

/** New bytes for `rec` under `spec`, or the same buffer when nothing changed. */
export function updatedBytes(rec: Rec, spec: UpdateSpec, filter: Document, arrayFilters?: Document[]): Buffer {
  if (spec.kind === 'replacement') {
    const {bytes: ordered, id} = withIdFirst(spec.bytes, rec.id);
    checkIdUnchanged(rec.id, id);
    const bytes = fillEmptyTimestamps(ordered);
    return bytes.equals(rec.bytes) ? rec.bytes : bytes;
  }
  const exact = spec.kind === 'operators' && spec.raw ? setUnsetInPlace(treeOf(rec), spec.raw) : null;
  if (exact) {
    const bytes = exact.bytes;
    return bytes.equals(rec.bytes) ? rec.bytes : bytes;
  }
  const next = applyToTyped(typedOf(rec), spec, filter, arrayFilters, false);
  checkIdUnchanged(rec.id, next._id);
  const bytes = encode(next);
  return bytes.equals(rec.bytes) ? rec.bytes : bytes;
}

/**
 * `$set` / `$unset` on plain dotted paths, applied to the stored bytes as mongod does: a field that
 * exists is replaced where it stands, a new one is appended to its document (missing documents on the
 * way are created), every other field keeps its bytes and order.
 * https://www.mongodb.com/docs/manual/reference/operator/update/set/
 * https://www.mongodb.com/docs/manual/reference/operator/update/unset/
 * Anything else (other operators, positional or array paths, `_id`) returns null: the general path handles it.
 */
function setUnsetInPlace(doc: BDoc, update: BDoc): BDoc | null {
  let out = doc;
  for (const [op, arg] of update.entries) {
    if ((op !== '$set' && op !== '$unset') || !(arg instanceof BDoc)) return null;
    for (const [path, value] of arg.entries) {
      const parts = path.split('.');
      if (parts[0] === '_id' || parts.some((p) => p === '' || p.startsWith('$') || /^\d+$/.test(p))) return null;
      const next = op === '$set' ? setAt(out, parts, value) : unsetAt(out, parts);
      if (!next) return null;
      out = next;
    }
  }
  return out;
}

function setAt(doc: BDoc, parts: string[], value: Value): BDoc | null {
  const [head, ...rest] = parts as [string, ...string[]];
  const current = doc.get(head);
  let replacement: Value;
  if (rest.length === 0) replacement = value;
  else if (current === undefined) {
    const created = setAt(BDoc.fromEntries([]), rest, value);
    if (!created) return null;
    replacement = created;
  } else if (current instanceof BDoc) {
    const inner = setAt(current, rest, value);
    if (!inner) return null;
    replacement = inner;
  } else return null;
  const entries = current === undefined ? [...doc.entries, [head, replacement] as const] : doc.entries.map(([k, v]) => (k === head ? ([k, replacement] as const) : ([k, v] as const)));
  return BDoc.fromEntries(entries);
}

function unsetAt(doc: BDoc, parts: string[]): BDoc | null {
  const [head, ...rest] = parts as [string, ...string[]];
  const current = doc.get(head);
  if (current === undefined) return doc;
  if (rest.length === 0) return BDoc.fromEntries(doc.entries.filter(([k]) => k !== head));
  if (!(current instanceof BDoc)) return current instanceof BArr ? null : doc;
  const inner = unsetAt(current, rest);
  if (!inner) return null;
  return BDoc.fromEntries(doc.entries.map(([k, v]) => (k === head ? ([k, inner] as const) : ([k, v] as const))));
}

/** The document an upsert inserts when nothing matched. */
export function upsertBytes(spec: UpdateSpec, filter: Document, arrayFilters?: Document[]): {bytes: Buffer; fallbackId: Value} {
  const base: Document = {};
  equalityFields(filter, base);
  const typedId: unknown = base._id === undefined ? new ObjectId() : base._id;
  const fallbackId = toValue(typedId);
  if (spec.kind === 'replacement') return {bytes: fillEmptyTimestamps(spec.bytes), fallbackId};
  const seeded: Document = {_id: typedId, ...base};
  const next = applyToTyped(seeded, spec, filter, arrayFilters, true);
  checkIdUnchanged(typedId, next._id);
  return {bytes: encode(next), fallbackId};
}

export {RawDoc, decodeTyped};
