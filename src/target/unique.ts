/**
 * What the target enforces, read before planning: unique secondary indexes (a document whose key
 * another `_id` holds is refused with E11000) and validators (refused with code 121). Clashes are
 * predicted by asking the target for holders of each candidate's key, so the server's own
 * semantics decide equality (numbers by value, subdocuments by field order, the index's collation).
 * https://www.mongodb.com/docs/manual/core/index-unique/
 */
import type {Document} from 'bson';
import {EJSON} from 'bson';
import type {Collection, Db, Filter} from 'mongodb';

import {compileQuery} from '../query/compile.js';
import {idKey, idToJson} from './bson-util.js';
import type {ExactDoc} from './exact.js';
import {exactId, orderedJson} from './exact.js';
import type {TargetChecks} from './types.js';

export interface UniqueIndex {
  name: string;
  fields: string[];
  sparse: boolean;
  partial?: Document;
  collation?: Document;
}

export interface Candidate {
  id: unknown;
  raw: Uint8Array;
  doc: ExactDoc;
}

export interface Clash {
  index: string;
  /** Canonical Extended JSON of the holder's `_id`. */
  targetId: string;
  key: Record<string, unknown>;
}

/** Candidates per `$or` round trip. */
const CLASH_BATCH = 200;

export async function readTargetChecks(db: Db, collection: string): Promise<{checks: TargetChecks; unique: UniqueIndex[]}> {
  const infos = await db.listCollections({name: collection}).toArray();
  const info = infos[0] as {options?: Document} | undefined;
  if (!info) return {checks: {exists: false, uniqueIndexes: [], validator: false}, unique: []};
  const options = info.options ?? {};
  const indexes = (await db.collection(collection).listIndexes().toArray()) as Document[];
  const unique: UniqueIndex[] = indexes
    .filter((ix) => ix.unique === true && ix.name !== '_id_')
    .map((ix) => ({
      name: String(ix.name),
      fields: Object.keys(ix.key as Document),
      sparse: ix.sparse === true,
      ...(ix.partialFilterExpression ? {partial: ix.partialFilterExpression as Document} : {}),
      ...(ix.collation ? {collation: ix.collation as Document} : {}),
    }));
  const validator = Boolean(options.validator && Object.keys(options.validator as Document).length > 0);
  return {
    checks: {
      exists: true,
      uniqueIndexes: unique.map((u) => u.name),
      validator,
      ...(validator ? {validationLevel: String(options.validationLevel ?? 'strict'), validationAction: String(options.validationAction ?? 'error')} : {}),
      ...(options.collation ? {collation: EJSON.serialize(options.collation as Document)} : {}),
    },
    unique,
  };
}

/** Value at a dotted path of an exact document; undefined when absent. Arrays are not descended by name. */
function valueAt(doc: ExactDoc, dotted: string): unknown {
  let cur: unknown = doc;
  for (const part of dotted.split('.')) {
    if (cur instanceof Map) cur = cur.get(part);
    else if (Array.isArray(cur) && /^\d+$/.test(part)) cur = cur[Number(part)];
    else return undefined;
  }
  return cur;
}

/** Does the index hold an entry for this document at all (sparse and partial indexes skip some)? */
function indexed(index: UniqueIndex, candidate: Candidate, values: unknown[]): boolean {
  if (index.sparse && values.every((v) => v === undefined)) return false;
  if (index.partial) {
    try {
      return compileQuery(index.partial).matches(Buffer.from(candidate.raw));
    } catch {
      // An expression the stream engine does not evaluate: assume the document is indexed and let the target answer.
      return true;
    }
  }
  return true;
}

/**
 * The filter naming documents that hold the candidate's key: a missing field is indexed as null
 * (and `{f: null}` matches null or missing), an array is indexed per element (multikey).
 * https://www.mongodb.com/docs/manual/core/index-unique/#missing-document-field-in-a-unique-single-field-index
 */
function keyFilter(index: UniqueIndex, values: unknown[]): Document {
  const filter: Document = {};
  index.fields.forEach((field, i) => {
    const v = values[i];
    filter[field] = v === undefined ? null : Array.isArray(v) ? {$in: v.length > 0 ? v : [[]]} : v;
  });
  return filter;
}

/** For each candidate whose unique key the target holds under another `_id`: which index, which holder. */
export async function findClashes(coll: Collection, candidates: Candidate[], indexes: UniqueIndex[]): Promise<Map<string, Clash>> {
  const out = new Map<string, Clash>();
  for (const index of indexes) {
    const pending = candidates.filter((c) => !out.has(idKey(c.id)));
    for (let i = 0; i < pending.length; i += CLASH_BATCH) {
      const chunk = pending.slice(i, i + CLASH_BATCH);
      // One query per candidate keeps the answer exact (equality is the server's, collation included);
      // a chunk's queries go out together so their round trips overlap.
      await Promise.all(
        chunk.map(async (candidate) => {
          const values = index.fields.map((f) => valueAt(candidate.doc, f));
          if (!indexed(index, candidate, values)) return;
          const filter: Document = {$and: [keyFilter(index, values), {_id: {$ne: candidate.id}}, ...(index.partial ? [index.partial] : [])]};
          const found = (await coll
            .find(filter as Filter<Document>, {raw: true, projection: {_id: 1}, limit: 1, ...(index.collation ? {collation: index.collation as never} : {})})
            .toArray()) as unknown as Uint8Array[];
          if (found.length === 0) return;
          out.set(idKey(candidate.id), {
            index: index.name,
            targetId: idToJson(exactId(Buffer.from(found[0]!))),
            key: Object.fromEntries(index.fields.map((f, k) => [f, JSON.parse(orderedJson(values[k] ?? null)) as unknown])),
          });
        }),
      );
    }
  }
  return out;
}
