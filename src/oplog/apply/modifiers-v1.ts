/**
 * `$v:1` modifier updates (4.4 and earlier, and 5.0 under FCV 4.4): only `$set` and `$unset` are
 * logged (OPLOG.md §2.2). Applied as mongod's update tree applies them:
 * - the paths form a tree; each level applies its children in field-name order, an existing field
 *   in place, a missing one appended, so the fields one update creates come out in lexicographic
 *   order (OPLOG.md §2.2, VER; mongodb/mongo `update_object_node.h` keeps children in a std::map);
 * - numeric components index arrays; a set past the end pads with null; `$unset` of an array element
 *   sets it to null; missing intermediate fields are created as documents, whatever their names;
 * - a path through a scalar cannot be created (PathNotViable): during oplog application that is a
 *   no-op (OPLOG.md §2.2, PATHNV), which only a document other than the primary's can reach.
 */
import {ApplyContext, joinPath, unsupported} from './context.js';
import {
  T_ARRAY,
  T_DOCUMENT,
  T_NULL,
  elementBytes,
  elements,
  embedded,
  keyText,
  makeDocument,
  makeElement,
  type RawElement,
} from '../raw.js';

type Leaf = {op: 'set'; type: number; value: Buffer} | {op: 'unset'};

interface PathNode {
  leaf?: Leaf;
  children: Map<string, PathNode>;
}

/** mongod caps the nulls one update may pad an array with (`kMaxPaddingAllowed`, path_support.h). */
const MAX_PADDING = 1_500_000;

function newNode(): PathNode {
  return {children: new Map()};
}

function addPath(root: PathNode, path: string, leaf: Leaf): void {
  const parts = path.split('.');
  if (parts.some((p) => p === '')) unsupported(`$v:1 update with an empty component in path "${keyText(path)}"`);
  let node = root;
  for (const part of parts) {
    if (node.leaf) unsupported(`$v:1 update with conflicting paths at "${keyText(path)}"`);
    let next = node.children.get(part);
    if (!next) {
      next = newNode();
      node.children.set(part, next);
    }
    node = next;
  }
  if (node.leaf || node.children.size > 0) unsupported(`$v:1 update with conflicting paths at "${keyText(path)}"`);
  node.leaf = leaf;
}

/** The update tree of a `$v:1` `o`: `{$v: 1, $set: {...}, $unset: {...}}`. */
function readModifiers(o: Buffer): PathNode {
  const root = newNode();
  for (const el of elements(o)) {
    if (el.key === '$v') continue;
    if (el.key !== '$set' && el.key !== '$unset') unsupported(`$v:1 update with operator "${keyText(el.key)}" (only $set and $unset are logged)`);
    if (el.type !== T_DOCUMENT) unsupported(`$v:1 update whose ${el.key} is not a document`);
    const body = embedded(o, el);
    for (const f of elements(body)) {
      addPath(root, f.key, el.key === '$set' ? {op: 'set', type: f.type, value: body.subarray(f.valueStart, f.end)} : {op: 'unset'});
    }
  }
  return root;
}

/** The first path below `node` that sets a value (for messages), or null. */
function firstSet(node: PathNode, path: string): string | null {
  if (node.leaf) return node.leaf.op === 'set' ? path : null;
  for (const [name, child] of node.children) {
    const found = firstSet(child, joinPath(path, keyText(name)));
    if (found) return found;
  }
  return null;
}

function hasSet(node: PathNode): boolean {
  if (node.leaf) return node.leaf.op === 'set';
  for (const child of node.children.values()) if (hasSet(child)) return true;
  return false;
}

/** std::string's order: bytes, unsigned (latin1 byte strings compare the same way). */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Digit-led names without a leading zero: the ones newer servers order by length first. */
function numberLike(name: string): boolean {
  return /^[1-9]/.test(name) || name === '0';
}

/**
 * Fields created at one level must come out in the same order whichever server applied the update.
 * Servers that order update children with `cmpPathsAndArrayIndexes` (path_support.h) put "9" before
 * "10"; a plain std::map (4.4-era `update_object_node.h`) puts "10" first. Such a pair is refused.
 */
function checkCreatedOrder(names: string[], path: string): void {
  const numeric = names.filter(numberLike);
  for (let a = 1; a < numeric.length; a++) {
    if (numeric[a]!.length !== numeric[0]!.length) {
      unsupported(`$v:1 update creating fields "${keyText(numeric[0]!)}" and "${keyText(numeric[a]!)}" together under "${path || '(top)'}", which server versions order differently`);
    }
  }
}

/** A field the update creates: a value, or documents down to the values (nothing for unsets only). */
function create(key: string, node: PathNode, path: string): Buffer | undefined {
  if (node.leaf) return node.leaf.op === 'set' ? makeElement(node.leaf.type, key, node.leaf.value) : undefined;
  const names = [...node.children.keys()].sort(byName);
  const parts: Buffer[] = [];
  const made: string[] = [];
  for (const name of names) {
    const el = create(name, node.children.get(name)!, joinPath(path, keyText(name)));
    if (el) {
      parts.push(el);
      made.push(name);
    }
  }
  if (parts.length === 0) return undefined;
  checkCreatedOrder(made, path);
  return makeElement(T_DOCUMENT, key, makeDocument(parts));
}

/** An existing element under the update: its replacement, null to remove it. */
function update(doc: Buffer, el: RawElement, node: PathNode, ctx: ApplyContext, path: string, inArray: boolean): Buffer | null {
  const leaf = node.leaf;
  if (leaf?.op === 'set') return makeElement(leaf.type, el.key, leaf.value);
  if (leaf?.op === 'unset') return inArray ? makeElement(T_NULL, el.key, Buffer.alloc(0)) : null;
  if (el.type === T_DOCUMENT) return makeElement(T_DOCUMENT, el.key, applyToObject(embedded(doc, el), node, ctx, path));
  if (el.type === T_ARRAY) return makeElement(T_ARRAY, el.key, applyToArray(embedded(doc, el), node, ctx, path));
  // A path through a scalar: PathNotViable, a no-op during oplog application. An $unset there changes nothing either way.
  const blocked = firstSet(node, path);
  if (blocked) ctx.inconsistent(blocked, 'a $set through a value that is not a document or array');
  return elementBytes(doc, el);
}

export function applyToObject(doc: Buffer, node: PathNode, ctx: ApplyContext, path: string): Buffer {
  const els = elements(doc);
  const first = new Map<string, RawElement>();
  for (const el of els) if (!first.has(el.key)) first.set(el.key, el);
  const replaced = new Map<RawElement, Buffer | null>();
  const appended: Buffer[] = [];
  const created: string[] = [];
  for (const name of [...node.children.keys()].sort(byName)) {
    const child = node.children.get(name)!;
    const childPath = joinPath(path, keyText(name));
    const el = first.get(name);
    if (el) {
      replaced.set(el, update(doc, el, child, ctx, childPath, false));
    } else {
      const made = create(name, child, childPath);
      if (made) {
        appended.push(made);
        created.push(name);
      }
    }
  }
  checkCreatedOrder(created, path);
  const parts: Buffer[] = [];
  for (const el of els) {
    const r = replaced.get(el);
    if (r === undefined) parts.push(elementBytes(doc, el));
    else if (r !== null) parts.push(r);
  }
  return makeDocument([...parts, ...appended]);
}

export function applyToArray(arr: Buffer, node: PathNode, ctx: ApplyContext, path: string): Buffer {
  const els = elements(arr);
  const out: Buffer[] = els.map((el) => elementBytes(arr, el));
  for (const [name, child] of node.children) {
    const childPath = joinPath(path, keyText(name));
    if (!/^\d+$/.test(name)) {
      // A field name on an array cannot be created (PathNotViable); an $unset of it finds nothing.
      const blocked = firstSet(child, childPath);
      if (blocked) ctx.inconsistent(blocked, 'a $set of a named field inside an array');
      continue;
    }
    if (name.length > 1 && name[0] === '0') unsupported(`$v:1 update with array index "${name}" (leading zeros) at "${childPath}"`);
    const index = Number(name);
    if (index < els.length) {
      const r = update(arr, els[index]!, child, ctx, childPath, true);
      out[index] = r ?? makeElement(T_NULL, name, Buffer.alloc(0));
      continue;
    }
    if (!hasSet(child)) continue;
    if (index - out.length > MAX_PADDING) unsupported(`$v:1 update padding array "${path}" with more than ${MAX_PADDING} nulls`);
    while (out.length < index) out.push(makeElement(T_NULL, String(out.length), Buffer.alloc(0)));
    if (out.length === index) {
      out.push(create(name, child, childPath)!);
    } else {
      // A slot another path of this update padded: a value lands there in any order, a path below
      // it only when applied first (server versions order array children differently).
      if (!child.leaf) unsupported(`$v:1 update creating "${childPath}" inside an array it also pads`);
      out[index] = create(name, child, childPath)!;
    }
  }
  return makeDocument(out);
}

/** A `$v:1` update applied to a whole document. */
export function applyModifiers(doc: Buffer, o: Buffer, ctx: ApplyContext): Buffer {
  return applyToObject(doc, readModifiers(o), ctx, '');
}
