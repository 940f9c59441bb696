/**
 * Which field paths an operation set, unset or set to null: what `changes`, `history` and
 * `--changed-between --fields` report and filter on. Read from the `$v:2` diff or the `$v:1`
 * modifiers themselves (OPLOG.md §2.2, §2.3); a replacement or an insert over an existing document is
 * compared with the previous state, sub-documents field by field, arrays as one value.
 * Paths are dotted, array elements by index (`tags.3`), as the update language writes them.
 */
import {
  T_ARRAY,
  T_DOCUMENT,
  T_NULL,
  elements,
  embedded,
  keyText,
  readNumber,
  valueBytes,
  type RawElement,
} from './raw.js';
import type {DocumentOperation, FieldChanges} from './types.js';

class Collector {
  private readonly set = new Set<string>();
  private readonly unset = new Set<string>();
  private readonly nulled = new Set<string>();

  setPath(path: string, type: number): void {
    this.set.add(path);
    if (type === T_NULL) this.nulled.add(path);
  }

  unsetPath(path: string): void {
    this.unset.add(path);
  }

  result(): FieldChanges {
    return {set: [...this.set], unset: [...this.unset], nulled: [...this.nulled]};
  }
}

function join(parent: string, key: string): string {
  const name = keyText(key);
  return parent === '' ? name : `${parent}.${name}`;
}

function fieldsByKey(doc: Buffer): Map<string, RawElement> {
  const out = new Map<string, RawElement>();
  for (const el of elements(doc)) if (!out.has(el.key)) out.set(el.key, el);
  return out;
}

function sameValue(a: Buffer, ea: RawElement, b: Buffer, eb: RawElement): boolean {
  return ea.type === eb.type && valueBytes(a, ea).equals(valueBytes(b, eb));
}

/** Differences between two documents' values, sub-documents recursively. */
function compareDocs(before: Buffer, after: Buffer, path: string, out: Collector): void {
  const old = fieldsByKey(before);
  const now = fieldsByKey(after);
  for (const [key, el] of now) {
    const prev = old.get(key);
    if (prev && sameValue(before, prev, after, el)) continue;
    if (prev && prev.type === T_DOCUMENT && el.type === T_DOCUMENT) {
      compareDocs(embedded(before, prev), embedded(after, el), join(path, key), out);
      continue;
    }
    out.setPath(join(path, key), el.type);
  }
  for (const key of old.keys()) if (!now.has(key)) out.unsetPath(join(path, key));
}

function allFields(doc: Buffer, out: Collector, skipId: boolean): void {
  for (const el of elements(doc)) if (!(skipId && el.key === '_id')) out.setPath(join('', el.key), el.type);
}

function docDiff(diff: Buffer, previous: Buffer | null, path: string, out: Collector): void {
  const prev = previous ? fieldsByKey(previous) : null;
  for (const section of elements(diff)) {
    if (section.type !== T_DOCUMENT) continue;
    const body = embedded(diff, section);
    if (section.key === 'd') {
      for (const f of elements(body)) out.unsetPath(join(path, f.key));
    } else if (section.key === 'u') {
      for (const f of elements(body)) out.setPath(join(path, f.key), f.type);
    } else if (section.key === 'i') {
      for (const f of elements(body)) {
        // An `i` of a field with the same value only moves it (a re-order, OPLOG.md §2.3).
        const before = prev?.get(f.key);
        if (before && previous && sameValue(previous, before, body, f)) continue;
        out.setPath(join(path, f.key), f.type);
      }
    } else if (section.key.length > 1 && section.key[0] === 's') {
      const name = section.key.slice(1);
      const before = prev?.get(name);
      const inner = before && previous && (before.type === T_DOCUMENT || before.type === T_ARRAY) ? embedded(previous, before) : null;
      const first = elements(body)[0];
      if (first?.key === 'a') arrayDiff(body, before?.type === T_ARRAY ? inner : null, join(path, name), out);
      else docDiff(body, before?.type === T_DOCUMENT ? inner : null, join(path, name), out);
    }
  }
}

function arrayDiff(diff: Buffer, previous: Buffer | null, path: string, out: Collector): void {
  const prev = previous ? elements(previous) : null;
  for (const el of elements(diff)) {
    if (el.key === 'a') continue;
    if (el.key === 'l') {
      // A new length: the array as a whole changed size.
      const l = readNumber(diff, el);
      if (!prev || l === undefined || l !== prev.length) out.setPath(path, T_ARRAY);
      continue;
    }
    const index = el.key.slice(1);
    const elementPath = `${path}.${index}`;
    if (el.key[0] === 'u') {
      out.setPath(elementPath, el.type);
    } else if (el.type === T_DOCUMENT) {
      const body = embedded(diff, el);
      const before = prev?.[Number(index)];
      const inner = before && previous && (before.type === T_DOCUMENT || before.type === T_ARRAY) ? embedded(previous, before) : null;
      if (elements(body)[0]?.key === 'a') arrayDiff(body, before?.type === T_ARRAY ? inner : null, elementPath, out);
      else docDiff(body, before?.type === T_DOCUMENT ? inner : null, elementPath, out);
    }
  }
}

function modifiers(o: Buffer, out: Collector): void {
  for (const op of elements(o)) {
    if (op.type !== T_DOCUMENT) continue;
    const body = embedded(o, op);
    if (op.key === '$set') for (const f of elements(body)) out.setPath(keyText(f.key), f.type);
    else if (op.key === '$unset') for (const f of elements(body)) out.unsetPath(keyText(f.key));
  }
}

/**
 * The paths `op` changes, given the document before it (null when unknown or absent). An insert of a
 * new document sets every top-level field but `_id`; a delete unsets every field it had.
 */
export function fieldChanges(op: DocumentOperation, previous: Buffer | null): FieldChanges {
  const out = new Collector();
  switch (op.kind) {
    case 'insert':
    case 'replace':
      if (previous) compareDocs(previous, op.o, '', out);
      else allFields(op.o, out, true);
      break;
    case 'delete':
      if (previous) for (const el of elements(previous)) if (el.key !== '_id') out.unsetPath(join('', el.key));
      break;
    case 'update': {
      const v = elements(op.o).find((el) => el.key === '$v');
      if (v && readNumber(op.o, v) === 2) {
        const diff = elements(op.o).find((el) => el.key === 'diff');
        if (diff && diff.type === T_DOCUMENT) docDiff(embedded(op.o, diff), previous, '', out);
      } else {
        modifiers(op.o, out);
      }
      break;
    }
  }
  return out.result();
}

/** Whether a change at `path` concerns `field` (the same path, inside it, or containing it). */
export function touchesField(path: string, field: string): boolean {
  return path === field || path.startsWith(`${field}.`) || field.startsWith(`${path}.`);
}

/** Whether any path of `changes` concerns one of `fields` (`--changed-between --fields`). */
export function changesAny(changes: FieldChanges, fields: readonly string[]): boolean {
  return [...changes.set, ...changes.unset].some((p) => fields.some((f) => touchesField(p, f)));
}
