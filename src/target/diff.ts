import {EJSON} from 'bson';

import {decodeExact} from './bson-util.js';
import type {FieldDiff} from './types.js';

/**
 * Field-level difference between the backup's and the target's version of a document, for people
 * deciding about a conflict. Values are canonical Extended JSON, so a type change (Int32 → Double)
 * shows up. Subdocuments are descended into; arrays are compared whole (an element-wise diff of
 * reordered arrays reads worse than the two arrays side by side).
 */
export function fieldDiff(backupRaw: Uint8Array, targetRaw: Uint8Array, limit = 50): FieldDiff[] {
  const backup = EJSON.serialize(decodeExact(backupRaw), {relaxed: false}) as Record<string, unknown>;
  const target = EJSON.serialize(decodeExact(targetRaw), {relaxed: false}) as Record<string, unknown>;
  const out: FieldDiff[] = [];
  diffObjects(backup, target, '', out, limit);
  if (out.length === 0 && !orderEqual(backup, target)) out.push({path: '(field order)', backup: Object.keys(backup), target: Object.keys(target)});
  return out;
}

/** Extended JSON wrappers ({$oid}, {$date}, {$numberInt}…) are leaves, not subdocuments. */
function isSubdocument(value: unknown): value is Record<string, unknown> {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return !(keys.length > 0 && keys.every((k) => k.startsWith('$')));
}

function diffObjects(a: Record<string, unknown>, b: Record<string, unknown>, prefix: string, out: FieldDiff[], limit: number): void {
  const keys = [...Object.keys(a), ...Object.keys(b).filter((k) => !(k in a))];
  for (const key of keys) {
    if (out.length >= limit) return;
    const p = prefix ? `${prefix}.${key}` : key;
    const inA = Object.hasOwn(a, key);
    const inB = Object.hasOwn(b, key);
    if (inA && inB && isSubdocument(a[key]) && isSubdocument(b[key])) {
      const before = out.length;
      diffObjects(a[key] as Record<string, unknown>, b[key] as Record<string, unknown>, p, out, limit);
      if (out.length === before && !orderEqual(a[key], b[key])) out.push({path: p, backup: a[key], target: b[key]});
      continue;
    }
    if (inA && inB && JSON.stringify(a[key]) === JSON.stringify(b[key])) continue;
    const entry: FieldDiff = {path: p};
    if (inA) entry.backup = a[key];
    if (inB) entry.target = b[key];
    out.push(entry);
  }
}

function orderEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
