/**
 * The select stage: the root query, then relations applied until nothing new is selected. A
 * `keep` filter (the compare stage's verdict: missing from / changed in X) applies at every level,
 * so dependents are filtered the same way as the root, and only kept documents are followed.
 */
import type {Document} from 'bson';

import type {ManifestCollection, Relation} from '../restore-set/manifest.js';
import {valueKey, valuesAtPath} from './relations.js';
import type {Keep, Selector} from './selector.js';
import type {SpoolFile} from './spool.js';

export interface Selection {
  selected: Map<string, Set<number>>;
  levels: Map<string, ManifestCollection['selectedBy']>;
  followed: Relation[];
}

/**
 * Cycles end because a document is selected at most once; the level of a collection is when it
 * was first reached.
 */
export async function selectWithRelations(
  selector: Selector,
  root: string,
  filter: Document,
  relations: Relation[],
  spools: Map<string, SpoolFile>,
  onProgress?: (p: {collection: string; scanned: number; matched: number}) => void,
  keep?: Keep,
): Promise<Selection> {
  const selected = new Map<string, Set<number>>();
  const levels = new Map<string, ManifestCollection['selectedBy']>();
  const followed: Relation[] = [];
  const usedValues = new Map<Relation, Set<string>>();
  levels.set(root, 'query');
  // Documents are decoded only where a relation starts: their values select the next level.
  const decode = (collection: string) => relations.some((r) => r.from === collection);
  const rootHits = await selector.select(root, filter, onProgress, keep, decode(root));
  const pending: Array<{collection: string; docs: Document[]; level: number}> = [];
  const addHits = (collection: string, hits: Array<{ordinal: number; doc: Document}>, level: number) => {
    let set = selected.get(collection);
    if (!set) selected.set(collection, (set = new Set()));
    const fresh = hits.filter((h) => !set!.has(h.ordinal));
    for (const h of fresh) set.add(h.ordinal);
    if (fresh.length > 0) pending.push({collection, docs: fresh.map((h) => h.doc), level});
  };
  addHits(root, rootHits, 0);
  if (!selected.has(root)) selected.set(root, new Set());
  while (pending.length > 0) {
    const {collection, docs, level} = pending.shift()!;
    for (const relation of relations.filter((r) => r.from === collection)) {
      if (!spools.has(relation.to)) continue;
      const used = usedValues.get(relation) ?? new Set<string>();
      usedValues.set(relation, used);
      const values: unknown[] = [];
      for (const doc of docs) {
        for (const v of valuesAtPath(doc, relation.localField ?? '_id')) {
          const key = valueKey(v);
          if (!used.has(key)) {
            used.add(key);
            values.push(v);
          }
        }
      }
      if (!followed.includes(relation)) followed.push(relation);
      if (!levels.has(relation.to)) levels.set(relation.to, {relation, level: level + 1});
      if (!selected.has(relation.to)) selected.set(relation.to, new Set());
      if (values.length === 0) continue;
      const hits = await selector.select(relation.to, {[relation.foreignField]: {$in: values}}, onProgress, keep, decode(relation.to));
      addHits(relation.to, hits, level + 1);
    }
  }
  return {selected, levels, followed};
}
