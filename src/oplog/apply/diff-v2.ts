/**
 * `$v:2` delta application (MongoDB 5.0+), on raw bytes. Grammar and algorithm: OPLOG.md §2.3, from
 * mongodb/mongo `src/mongo/db/update/document_diff_serialization.{h,cpp}` (SER) and
 * `document_diff_applier.cpp` (APPLY50 / APPLY-NEW):
 *
 *   DocDiff := {[d: {name: false…}], [u: {name: value…}], [i: {name: value…}], [b: …], (s<name>: DocDiff|ArrDiff)*}
 *   ArrDiff := {a: true, [l: newLength], (u<index>: value | s<index>: DocDiff|ArrDiff)*}
 *
 * Field existence is always checked for `i` (the server's unchecked fast path is only for time-series
 * buckets on secondaries, OPLOG.md §2.3 "Existence check", trap 8).
 */
import {ApplyContext, joinPath, unsupported} from './context.js';
import {
  DocumentBuilder,
  MalformedBson,
  T_ARRAY,
  T_BOOL,
  T_DOCUMENT,
  T_INT32,
  T_NULL,
  elements,
  embedded,
  keyText,
  makeElement,
  readNumber,
  renamed,
  type RawElement,
} from '../raw.js';

type SubDiff = {bytes: Buffer; array: boolean};

/** One field a diff names: what to do with it, and (for `u`/`i`) the diff's element, which is the new field as written. */
interface FieldMod {
  kind: 'd' | 'u' | 'i' | 's';
  buf: Buffer;
  el: RawElement | null;
  sub: SubDiff | null;
  /** Met in the document (an update written in place, a sub-diff applied). */
  met: boolean;
}

interface DocDiff {
  /** By field name; one entry per name ("duplicate field name in diff" is an error, APPLY50 safeInsert). */
  fields: Map<string, FieldMod>;
  /** `u` entries then `i` entries, in diff order: appended unless written in place. */
  toAppend: FieldMod[];
  /** Byte lengths of the names: a document field of another length is copied without reading its name. */
  lengths: number[];
}

const SECTION_ORDER = ['d', 'u', 'i', 'b'];

/** Every array element takes at least 3 bytes (type, a one-digit name, its NUL): a bound on what a 16 MiB document holds. */
const MAX_ARRAY_LENGTH = Math.floor((16 * 1024 * 1024) / 3);

/** An array diff starts with `a: true` (SER `ArrayDiffReader`); a document diff never has a field `a`. */
function isArrayDiff(diff: Buffer): boolean {
  // The first element, read in place: type Bool, name "a", value true.
  return diff.length >= 9 && diff[4] === T_BOOL && diff[5] === 0x61 && diff[6] === 0 && diff[7] !== 0;
}

function where(path: string): string {
  return path || '(top)';
}

function addField(table: DocDiff, key: string, mod: FieldMod, path: string): void {
  if (table.fields.has(key)) unsupported(`malformed $v:2 diff at "${where(path)}": field "${keyText(key)}" appears twice`);
  table.fields.set(key, mod);
  if (!table.lengths.includes(key.length)) table.lengths.push(key.length);
}

function readDocDiff(diff: Buffer, path: string): DocDiff {
  const table: DocDiff = {fields: new Map(), toAppend: [], lengths: []};
  let section = 0;
  const els = elements(diff);
  // "Expected diff to be non-empty" (SER assertDiffNonEmpty): the server never logs an empty diff.
  if (els.length === 0) unsupported(`malformed $v:2 diff at "${where(path)}": empty`);
  const inserts: FieldMod[] = [];
  for (const el of els) {
    const letter = el.key;
    const order = SECTION_ORDER.indexOf(letter);
    if (order >= 0) {
      // SER DocumentDiffReader reads d, u, i, b in that order, each at most once, before any sub-diff.
      if (order < section || section > SECTION_ORDER.length) unsupported(`malformed $v:2 diff at "${where(path)}": section "${letter}" out of order`);
      section = order + 1;
      if (letter === 'b') unsupported(`$v:2 diff at "${where(path)}" has a binary ("b") section, written only for time-series buckets`);
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 diff at "${where(path)}": section "${letter}" is not a document`);
      const body = embedded(diff, el);
      const kind = letter as 'd' | 'u' | 'i';
      for (const f of elements(body)) {
        const mod: FieldMod = {kind, buf: body, el: f, sub: null, met: false};
        addField(table, f.key, mod, path);
        if (kind === 'u') table.toAppend.push(mod);
        else if (kind === 'i') inserts.push(mod);
      }
      continue;
    }
    if (letter.length > 1 && letter[0] === 's') {
      section = SECTION_ORDER.length + 1;
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 diff at "${where(path)}": sub-diff "${keyText(letter)}" is not a document`);
      const bytes = embedded(diff, el);
      // The name is the key with exactly one character stripped, never split on dots (SER).
      addField(table, letter.slice(1), {kind: 's', buf: bytes, el: null, sub: {bytes, array: isArrayDiff(bytes)}, met: false}, path);
      continue;
    }
    unsupported(`$v:2 diff at "${where(path)}" has an unknown section "${keyText(letter)}"`);
  }
  table.toAppend.push(...inserts);
  return table;
}

/** applyObj of OPLOG.md §2.3: `doc` is a document's bytes, the result another document's bytes. */
export function applyDocDiff(doc: Buffer, diff: Buffer, ctx: ApplyContext, path = ''): Buffer {
  const table = readDocDiff(diff, path);
  const out = new DocumentBuilder();
  for (const f of elements(doc)) {
    const mod = table.lengths.includes(f.nameLength) ? table.fields.get(f.key) : undefined;
    if (mod === undefined) {
      out.element(doc, f);
      continue;
    }
    switch (mod.kind) {
      case 'd':
        break;
      case 'u':
        // `u` keeps the field where it is.
        out.element(mod.buf, mod.el!);
        mod.met = true;
        break;
      case 'i':
        // `i` of an existing field drops it here; it is appended below (a re-order, OPLOG.md §2.3).
        break;
      case 's':
        mod.met = true;
        applySubDiff(doc, f, mod.sub!, ctx, joinPath(path, keyText(f.key)), out);
        break;
    }
  }
  for (const mod of table.toAppend) {
    if (mod.met) continue;
    // mongod appends an updated field it did not find, before the inserted ones.
    if (mod.kind === 'u') ctx.inconsistent(joinPath(path, keyText(mod.el!.key)), 'an update of a field that is not there');
    out.element(mod.buf, mod.el!);
  }
  for (const [name, mod] of table.fields) {
    // A sub-diff of a missing field creates nothing (APPLY50).
    if (mod.kind === 's' && !mod.met) ctx.inconsistent(joinPath(path, keyText(name)), 'a sub-diff of a field that is not there');
  }
  return out.finish();
}

/**
 * A sub-diff applied to the element it names, written to `out` under the element's own name (its
 * stored header is reused), or null where the types disagree (mongod's re-application rule).
 */
function applySubDiff(doc: Buffer, f: RawElement, sub: SubDiff, ctx: ApplyContext, path: string, out: DocumentBuilder): void {
  if (f.type === T_DOCUMENT && !sub.array) {
    out.range(doc, f.start, f.valueStart);
    out.bytes(applyDocDiff(embedded(doc, f), sub.bytes, ctx, path));
    return;
  }
  if (f.type === T_ARRAY && sub.array) {
    out.range(doc, f.start, f.valueStart);
    out.bytes(applyArrayDiff(embedded(doc, f), sub.bytes, ctx, path));
    return;
  }
  ctx.inconsistent(path, `a ${sub.array ? 'array' : 'document'} diff meeting a value of BSON type 0x${f.type.toString(16)}`);
  out.bytes(makeElement(T_NULL, f.key, Buffer.alloc(0)));
}

type ArrayMod = {kind: 'u'; type: number; value: Buffer} | {kind: 's'; sub: SubDiff};

interface ArrDiff {
  length: number | undefined;
  mods: Map<number, ArrayMod>;
}

function readArrayDiff(diff: Buffer, path: string): ArrDiff {
  const els = elements(diff);
  const mods = new Map<number, ArrayMod>();
  let length: number | undefined;
  let last = -1;
  for (const [n, el] of els.entries()) {
    if (n === 0) continue; // `a: true`, checked by isArrayDiff
    if (el.key === 'l' && n === 1) {
      // The new size is an Int32 (SER ArrayDiffReader: checkSection(…, NumberInt)).
      const l = el.type === T_INT32 ? readNumber(diff, el) : undefined;
      if (l === undefined || l < 0 || l >= MAX_ARRAY_LENGTH) unsupported(`malformed $v:2 array diff at "${path}": length is not a non-negative integer`);
      length = l;
      continue;
    }
    const letter = el.key[0];
    const digits = el.key.slice(1);
    // SER ArrayDiffReader::next: "Expected either 'u' (update) or 's' (sub diff)", then a decimal index.
    if ((letter !== 'u' && letter !== 's') || !/^(0|[1-9]\d{0,8})$/.test(digits)) {
      unsupported(`malformed $v:2 array diff at "${path}": unexpected key "${keyText(el.key)}"`);
    }
    const index = Number(digits);
    if (index >= MAX_ARRAY_LENGTH) unsupported(`$v:2 array diff at "${path}" names index ${index}, past what a 16 MiB document can hold`);
    if (index <= last) unsupported(`malformed $v:2 array diff at "${path}": indexes not ascending`);
    last = index;
    if (letter === 'u') {
      mods.set(index, {kind: 'u', type: el.type, value: diff.subarray(el.valueStart, el.end)});
    } else {
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 array diff at "${path}": "${keyText(el.key)}" is not a document`);
      const bytes = embedded(diff, el);
      mods.set(index, {kind: 's', sub: {bytes, array: isArrayDiff(bytes)}});
    }
  }
  // The server's applier asserts the array ends exactly at the new size (APPLY50 `invariant(!resizeVal || *resizeVal == idx)`).
  if (length !== undefined && last >= length) unsupported(`malformed $v:2 array diff at "${path}": index ${last} past the new length ${length}`);
  return {length, mods};
}

/** applyArr of OPLOG.md §2.3: `l` truncates or pads with null, `u<n>` sets, `s<n>` recurses. */
export function applyArrayDiff(arr: Buffer, diff: Buffer, ctx: ApplyContext, path: string): Buffer {
  const {length, mods} = readArrayDiff(diff, path);
  const pre = elements(arr);
  const out = new DocumentBuilder();
  let remaining = mods.size;
  let idx = 0;
  const emit = (old: RawElement | undefined) => {
    const key = String(idx);
    const mod = mods.get(idx);
    if (mod) remaining--;
    if (!mod) {
      if (old && old.key === key) out.element(arr, old);
      else out.bytes(old ? renamed(arr, old, key) : makeElement(T_NULL, key, Buffer.alloc(0)));
    } else if (mod.kind === 'u') {
      out.bytes(makeElement(mod.type, key, mod.value));
    } else if (old) {
      if (old.key === key) {
        applySubDiff(arr, old, mod.sub, ctx, joinPath(path, key), out);
      } else {
        const one = new DocumentBuilder();
        applySubDiff(arr, old, mod.sub, ctx, joinPath(path, key), one);
        out.bytes(renameElement(elementOf(one.finish()), key));
      }
    } else {
      // newValue(absent, s-mod) is null (APPLY50).
      ctx.inconsistent(joinPath(path, key), 'a sub-diff of an array element that is not there');
      out.bytes(makeElement(T_NULL, key, Buffer.alloc(0)));
    }
    idx++;
  };
  while (idx < pre.length && (length === undefined || idx < length)) emit(pre[idx]);
  while ((length !== undefined && idx < length) || remaining > 0) emit(undefined);
  return out.finish();
}

/** The one element of a one-element document. */
function elementOf(doc: Buffer): Buffer {
  return doc.subarray(4, doc.length - 1);
}

/** An element re-keyed (array positions are renumbered as they are emitted). */
function renameElement(el: Buffer, key: string): Buffer {
  const nameEnd = el.indexOf(0, 1);
  if (nameEnd < 0) throw new MalformedBson('element without a name');
  return makeElement(el[0]!, key, el.subarray(nameEnd + 1));
}
