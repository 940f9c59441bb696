import {exactForm, orderedJson} from './exact.js';
import type {ExactDoc} from './exact.js';
import type {FieldDiff} from './types.js';

/**
 * Field-level difference between the backup's and the target's version of a document, for people
 * deciding about a conflict. Values are canonical Extended JSON, so a type change (Int32 → Double)
 * shows up. Both sides are read in stored field order (exact form), so a reordering is reported as
 * `(field order)` rather than hidden by JavaScript's ordering of integer-like keys. Subdocuments are
 * descended into; arrays are compared whole.
 */
export function fieldDiff(backupRaw: Uint8Array, targetRaw: Uint8Array, limit = 50): FieldDiff[] {
  const out: FieldDiff[] = [];
  diffDocs(exactForm(backupRaw).doc, exactForm(targetRaw).doc, '', out, limit);
  return out;
}

function shown(value: unknown): unknown {
  return JSON.parse(orderedJson(value)) as unknown;
}

function diffDocs(a: ExactDoc, b: ExactDoc, prefix: string, out: FieldDiff[], limit: number): void {
  const before = out.length;
  const keys = [...a.keys(), ...[...b.keys()].filter((k) => !a.has(k))];
  for (const key of keys) {
    if (out.length >= limit) return;
    const p = prefix ? `${prefix}.${key}` : key;
    const va = a.get(key);
    const vb = b.get(key);
    if (a.has(key) && b.has(key) && va instanceof Map && vb instanceof Map) {
      diffDocs(va, vb, p, out, limit);
      continue;
    }
    if (a.has(key) && b.has(key) && orderedJson(va) === orderedJson(vb)) continue;
    const entry: FieldDiff = {path: p};
    if (a.has(key)) entry.backup = shown(va);
    if (b.has(key)) entry.target = shown(vb);
    out.push(entry);
  }
  if (out.length === before && orderedJson(a) !== orderedJson(b)) {
    out.push({path: prefix ? `${prefix} (field order)` : '(field order)', backup: [...a.keys()], target: [...b.keys()]});
  }
}
