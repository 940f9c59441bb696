import {EJSON, type Document} from 'bson';

import {GravityError} from '../errors.js';
import type {Relation} from '../restore-set/manifest.js';

/** Collections reachable from `root` through relations (root first, then breadth-first). */
export function relationClosure(root: string, relations: Relation[]): string[] {
  const seen = [root];
  for (let i = 0; i < seen.length; i++) {
    for (const r of relations) {
      if (r.from === seen[i] && !seen.includes(r.to)) seen.push(r.to);
    }
  }
  return seen;
}

export function validateRelations(relations: Relation[]): void {
  for (const r of relations) {
    if (r.foreignField.startsWith('$') || (r.localField ?? '_id').startsWith('$')) {
      throw new GravityError('CONFIG_INVALID', `Relation ${r.from} → ${r.to}: field names cannot start with "$"`, {hint: 'Fix the relations in the config file'});
    }
  }
}

/**
 * Values at a dotted path, MongoDB style: arrays along the way are traversed, and an array at
 * the end contributes its elements (and itself is not a key value for a relation).
 */
export function valuesAtPath(doc: unknown, dotted: string): unknown[] {
  const out: unknown[] = [];
  const walk = (value: unknown, parts: string[]) => {
    if (value === undefined) return;
    if (parts.length === 0) {
      if (Array.isArray(value)) for (const v of value) out.push(v);
      else out.push(value);
      return;
    }
    if (Array.isArray(value)) {
      // A numeric part indexes the array; otherwise the path applies to each element.
      const [head] = parts;
      if (/^\d+$/.test(head!)) walk(value[Number(head)], parts.slice(1));
      else for (const v of value) walk(v, parts);
      return;
    }
    if (value && typeof value === 'object' && !isBsonValue(value)) {
      walk((value as Document)[parts[0]!], parts.slice(1));
    }
  };
  walk(doc, dotted.split('.'));
  return out.filter((v) => v !== null && v !== undefined);
}

function isBsonValue(value: object): boolean {
  return '_bsontype' in value || value instanceof Date || value instanceof RegExp;
}

/** A stable key for a BSON value (ObjectId, string, number, subdocument…), for sets and maps. */
export function valueKey(value: unknown): string {
  return EJSON.stringify({v: value} as Document, {relaxed: false});
}
