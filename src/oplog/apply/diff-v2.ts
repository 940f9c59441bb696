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
  MalformedBson,
  T_ARRAY,
  T_BOOL,
  T_DOCUMENT,
  T_INT32,
  T_NULL,
  elementBytes,
  elements,
  embedded,
  keyText,
  makeDocument,
  makeElement,
  readNumber,
  renamed,
  type RawElement,
} from '../raw.js';

type SubDiff = {bytes: Buffer; array: boolean};

interface DocDiff {
  deletes: Set<string>;
  /** `u` entries: the diff's own element (its name is the field's name). */
  updates: Map<string, Buffer>;
  inserts: Map<string, Buffer>;
  subs: Map<string, SubDiff>;
}

const SECTION_ORDER = ['d', 'u', 'i', 'b'];

/** An array diff starts with `a: true` (SER `ArrayDiffReader`); a document diff never has a field `a`. */
function isArrayDiff(diff: Buffer): boolean {
  const first = elements(diff)[0];
  return first !== undefined && first.key === 'a' && first.type === T_BOOL && diff[first.valueStart] !== 0;
}

function readDocDiff(diff: Buffer, path: string): DocDiff {
  const out: DocDiff = {deletes: new Set(), updates: new Map(), inserts: new Map(), subs: new Map()};
  const seen = new Set<string>();
  const claim = (key: string) => {
    if (seen.has(key)) unsupported(`malformed $v:2 diff at "${joinPath(path, keyText(key)) || '(top)'}": field "${keyText(key)}" appears twice`);
    seen.add(key);
  };
  let section = 0;
  const els = elements(diff);
  // "Expected diff to be non-empty" (SER assertDiffNonEmpty): the server never logs an empty diff.
  if (els.length === 0) unsupported(`malformed $v:2 diff at "${path || '(top)'}": empty`);
  for (const el of els) {
    const letter = el.key;
    const order = SECTION_ORDER.indexOf(letter);
    if (order >= 0) {
      // SER DocumentDiffReader reads d, u, i, b in that order, each at most once, before any sub-diff.
      if (order < section || section > SECTION_ORDER.length) unsupported(`malformed $v:2 diff at "${path || '(top)'}": section "${letter}" out of order`);
      section = order + 1;
      if (letter === 'b') unsupported(`$v:2 diff at "${path || '(top)'}" has a binary ("b") section, written only for time-series buckets`);
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 diff at "${path || '(top)'}": section "${letter}" is not a document`);
      const body = embedded(diff, el);
      for (const f of elements(body)) {
        claim(f.key);
        if (letter === 'd') out.deletes.add(f.key);
        else if (letter === 'u') out.updates.set(f.key, elementBytes(body, f));
        else out.inserts.set(f.key, elementBytes(body, f));
      }
      continue;
    }
    if (letter.length > 1 && letter[0] === 's') {
      section = SECTION_ORDER.length + 1;
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 diff at "${path || '(top)'}": sub-diff "${keyText(letter)}" is not a document`);
      // The name is the key with exactly one character stripped, never split on dots (SER).
      const name = letter.slice(1);
      claim(name);
      const bytes = embedded(diff, el);
      out.subs.set(name, {bytes, array: isArrayDiff(bytes)});
      continue;
    }
    unsupported(`$v:2 diff at "${path || '(top)'}" has an unknown section "${keyText(letter)}"`);
  }
  return out;
}

/** applyObj of OPLOG.md §2.3: `doc` is a document's bytes, the result another document's bytes. */
export function applyDocDiff(doc: Buffer, diff: Buffer, ctx: ApplyContext, path = ''): Buffer {
  const table = readDocDiff(diff, path);
  const parts: Buffer[] = [];
  const written = new Set<string>();
  const present = new Set<string>();
  for (const f of elements(doc)) {
    const key = f.key;
    present.add(key);
    if (table.deletes.has(key)) continue;
    const update = table.updates.get(key);
    if (update) {
      // `u` keeps the field where it is.
      parts.push(update);
      written.add(key);
      continue;
    }
    // `i` of an existing field drops it here; it is appended below (a re-order, OPLOG.md §2.3).
    if (table.inserts.has(key)) continue;
    const sub = table.subs.get(key);
    if (sub) {
      parts.push(applySubDiff(doc, f, sub, ctx, joinPath(path, keyText(key))));
      continue;
    }
    parts.push(elementBytes(doc, f));
  }
  for (const [key, el] of table.updates) {
    if (written.has(key)) continue;
    // mongod appends an updated field it did not find (before the inserted ones).
    ctx.inconsistent(joinPath(path, keyText(key)), 'an update of a field that is not there');
    parts.push(el);
  }
  for (const el of table.inserts.values()) parts.push(el);
  for (const name of table.subs.keys()) {
    if (!present.has(name)) {
      // A sub-diff of a missing field creates nothing (APPLY50).
      ctx.inconsistent(joinPath(path, keyText(name)), 'a sub-diff of a field that is not there');
    }
  }
  return makeDocument(parts);
}

/** A sub-diff applied to the element it names, or null where the types disagree (mongod's re-application rule). */
function applySubDiff(doc: Buffer, f: RawElement, sub: SubDiff, ctx: ApplyContext, path: string): Buffer {
  if (f.type === T_DOCUMENT && !sub.array) return makeElement(T_DOCUMENT, f.key, applyDocDiff(embedded(doc, f), sub.bytes, ctx, path));
  if (f.type === T_ARRAY && sub.array) return makeElement(T_ARRAY, f.key, applyArrayDiff(embedded(doc, f), sub.bytes, ctx, path));
  ctx.inconsistent(path, `a ${sub.array ? 'array' : 'document'} diff meeting a value of BSON type 0x${f.type.toString(16)}`);
  return makeElement(T_NULL, f.key, Buffer.alloc(0));
}

type ArrayMod = {kind: 'u'; el: Buffer; type: number; value: Buffer} | {kind: 's'; sub: SubDiff};

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
      if (l === undefined || l < 0) unsupported(`malformed $v:2 array diff at "${path}": length is not a non-negative integer`);
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
    if (index <= last) unsupported(`malformed $v:2 array diff at "${path}": indexes not ascending`);
    last = index;
    if (letter === 'u') {
      mods.set(index, {kind: 'u', el: elementBytes(diff, el), type: el.type, value: diff.subarray(el.valueStart, el.end)});
    } else {
      if (el.type !== T_DOCUMENT) unsupported(`malformed $v:2 array diff at "${path}": "${keyText(el.key)}" is not a document`);
      const bytes = embedded(diff, el);
      mods.set(index, {kind: 's', sub: {bytes, array: isArrayDiff(bytes)}});
    }
  }
  return {length, mods};
}

/** applyArr of OPLOG.md §2.3: `l` truncates or pads with null, `u<n>` sets, `s<n>` recurses. */
export function applyArrayDiff(arr: Buffer, diff: Buffer, ctx: ApplyContext, path: string): Buffer {
  const {length, mods} = readArrayDiff(diff, path);
  const pre = elements(arr);
  const parts: Buffer[] = [];
  let remaining = mods.size;
  let idx = 0;
  const emit = (old: RawElement | undefined) => {
    const key = String(idx);
    const mod = mods.get(idx);
    if (mod) remaining--;
    if (!mod) {
      parts.push(old ? renamed(arr, old, key) : makeElement(T_NULL, key, Buffer.alloc(0)));
    } else if (mod.kind === 'u') {
      parts.push(makeElement(mod.type, key, mod.value));
    } else if (old) {
      parts.push(renameElement(applySubDiff(arr, old, mod.sub, ctx, joinPath(path, key)), key));
    } else {
      // newValue(absent, s-mod) is null (APPLY50).
      ctx.inconsistent(joinPath(path, key), 'a sub-diff of an array element that is not there');
      parts.push(makeElement(T_NULL, key, Buffer.alloc(0)));
    }
    idx++;
  };
  while (idx < pre.length && (length === undefined || idx < length)) emit(pre[idx]);
  while ((length !== undefined && idx < length) || remaining > 0) emit(undefined);
  return makeDocument(parts);
}

/** An element re-keyed (array positions are renumbered as they are emitted). */
function renameElement(el: Buffer, key: string): Buffer {
  const nameEnd = el.indexOf(0, 1);
  if (nameEnd < 0) throw new MalformedBson('element without a name');
  return makeElement(el[0]!, key, el.subarray(nameEnd + 1));
}
