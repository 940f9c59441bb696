import {BSON, ObjectId, type Document} from 'bson';

import {readDump} from '../dump/read.js';
import type {DumpInput} from '../dump/types.js';

export interface InferredRelation {
  from: string;
  to: string;
  foreignField: string;
  /** ObjectId values of the field found among `from`'s _ids. */
  matched: number;
  /** ObjectId values of the field examined. */
  examined: number;
}

/** ObjectId-valued fields of a document, one level of nesting and arrays included (`artist_ids`, `artist.id`). */
function objectIdFields(doc: Document, prefix = '', depth = 0, out = new Map<string, ObjectId[]>()): Map<string, ObjectId[]> {
  for (const [key, value] of Object.entries(doc)) {
    if (prefix === '' && key === '_id') continue;
    const path = prefix ? `${prefix}.${key}` : key;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v instanceof ObjectId) {
        const list = out.get(path) ?? [];
        list.push(v);
        out.set(path, list);
      } else if (v && typeof v === 'object' && !Array.isArray(v) && !('_bsontype' in v) && !(v instanceof Date) && depth < 1) {
        objectIdFields(v as Document, path, depth + 1, out);
      }
    }
  }
  return out;
}

/**
 * Propose relations from data: a field whose ObjectIds are mostly `_id`s of another collection
 * makes that field's collection a dependent of it. Two passes: the `_id`s of every collection,
 * then a sample of each collection's documents.
 */
export async function inferRelations(input: DumpInput, options: {sample: number; minShare?: number; signal?: AbortSignal}): Promise<InferredRelation[]> {
  const owners = new Map<string, string>();
  for await (const event of readDump(input, {signal: options.signal})) {
    if (event.type !== 'documents') continue;
    for (const doc of event.docs) {
      const id = BSON.deserialize(doc, {promoteValues: true})._id as unknown;
      if (id instanceof ObjectId) owners.set(id.toHexString(), event.collection);
    }
  }
  const counts = new Map<string, {examined: number; matched: Map<string, number>}>();
  const seen = new Map<string, number>();
  for await (const event of readDump(input, {signal: options.signal})) {
    if (event.type !== 'documents') continue;
    for (const doc of event.docs) {
      const n = seen.get(event.collection) ?? 0;
      if (n >= options.sample) break;
      seen.set(event.collection, n + 1);
      for (const [field, ids] of objectIdFields(BSON.deserialize(doc))) {
        const key = `${event.collection}\u0000${field}`;
        const entry = counts.get(key) ?? {examined: 0, matched: new Map<string, number>()};
        counts.set(key, entry);
        for (const id of ids) {
          entry.examined++;
          const owner = owners.get(id.toHexString());
          if (owner && owner !== event.collection) entry.matched.set(owner, (entry.matched.get(owner) ?? 0) + 1);
        }
      }
    }
  }
  const minShare = options.minShare ?? 0.5;
  const relations: InferredRelation[] = [];
  for (const [key, entry] of counts) {
    const [to, foreignField] = key.split('\u0000') as [string, string];
    for (const [from, matched] of entry.matched) {
      if (matched / entry.examined >= minShare) relations.push({from, to, foreignField, matched, examined: entry.examined});
    }
  }
  return relations.sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to) || a.foreignField.localeCompare(b.foreignField));
}
