/**
 * mongod's update operators over an order-preserving document (never JavaScript objects, which put
 * integer-like keys first), with mongod's field order and error codes.
 *
 * Shape of the engine, as mongod's update system builds it (mongodb/mongo src/mongo/db/update/
 * update_object_node.cpp, update_array_node.cpp, path_support.h):
 * - every path of every operator goes into one tree; a path that is equal to, or a prefix of,
 *   another one is refused with 40 ConflictingUpdateOperators ("Updating the path 'a.b' would create
 *   a conflict at 'a'"), `$rename` occupying both its source and its destination;
 * - the children of a document level are applied in the order of their field names
 *   (`std::map<…, cmpPathsAndArrayIndexes>`: bytewise, but canonical numbers by value), so several
 *   fields created by one update are appended in that order, not in the order they were sent;
 * - an existing field is changed where it stands; a new one is appended to its document; missing
 *   documents on a path are created (as documents, even for numeric components); a path through a
 *   scalar is 28 PathNotViable ("Cannot create field 'b' in element {a: 1}").
 * The operators themselves follow their manual pages, cited on each.
 */
import {Timestamp} from 'bson';
import {CommandError} from './command-error.js';
import {compareValues} from './compare.js';
import {arithmetic, doubleOf, int32, int64, intOf, isNumber, zeroLike} from './numbers.js';
import {type Pred, compileFilter} from './match.js';
import {BArr, BDoc, BT, BVal, NULL_VALUE, type Value, stringOf, toValue} from './tree.js';

// ---- a mutable working copy that keeps untouched values as their stored bytes ------------------

export class MDoc {
  constructor(public fields: Array<[string, W]>) {}

  get(name: string): W | undefined {
    for (const [k, v] of this.fields) if (k === name) return v;
    return undefined;
  }
}

export class MArr {
  constructor(public items: W[]) {}
}

export type W = Value | MDoc | MArr;

function isDocLike(v: W | undefined): v is BDoc | MDoc {
  return v instanceof BDoc || v instanceof MDoc;
}

function isArrLike(v: W | undefined): v is BArr | MArr {
  return v instanceof BArr || v instanceof MArr;
}

export function thaw(v: BDoc | MDoc): MDoc;
export function thaw(v: BArr | MArr): MArr;
export function thaw(v: BDoc | MDoc | BArr | MArr): MDoc | MArr;
export function thaw(v: BDoc | MDoc | BArr | MArr): MDoc | MArr {
  if (v instanceof BDoc) return new MDoc(v.entries.map(([k, x]) => [k, x]));
  if (v instanceof BArr) return new MArr([...v.items]);
  return v;
}

/** The immutable value (with its bytes) of a working value; untouched parts keep their bytes. */
export function freeze(v: W): Value {
  if (v instanceof MDoc) return BDoc.fromEntries(v.fields.map(([k, x]) => [k, freeze(x)] as const));
  if (v instanceof MArr) return BArr.fromItems(v.items.map(freeze));
  return v;
}

function sameBytes(a: W, b: W): boolean {
  const x = freeze(a);
  const y = freeze(b);
  return x.type === y.type && x.bytes.equals(y.bytes);
}

/** Canonical array index (`0`, `17`; not `01` or `-1`). */
function indexOf(name: string): number | undefined {
  return /^(0|[1-9]\d*)$/.test(name) ? Number(name) : undefined;
}

/**
 * Field-name order of one document level in mongod's update tree (path_support.h
 * `cmpPathsAndArrayIndexes`): plain bytewise order, except that two names both starting with a
 * digit (and not zero-padded) compare shorter-first, then bytewise.
 */
export function comparePathParts(a: string, b: string): number {
  const bytewise = (): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  const digit = (s: string): boolean => s.length > 0 && s.charCodeAt(0) >= 48 && s.charCodeAt(0) <= 57;
  if (!digit(a) || !digit(b) || (a[0] === '0' && a.length > 1) || (b[0] === '0' && b.length > 1)) return bytewise();
  if (a.length !== b.length) return a.length - b.length;
  return bytewise();
}

// ---- BSON helpers --------------------------------------------------------------------------

const TYPE_NAMES: Record<number, string> = {
  [BT.DOUBLE]: 'double', [BT.STRING]: 'string', [BT.DOC]: 'object', [BT.ARRAY]: 'array', [BT.BINARY]: 'binData',
  [BT.UNDEFINED]: 'undefined', [BT.OID]: 'objectId', [BT.BOOL]: 'bool', [BT.DATE]: 'date', [BT.NULL]: 'null',
  [BT.REGEX]: 'regex', [BT.DBPOINTER]: 'dbPointer', [BT.CODE]: 'javascript', [BT.SYMBOL]: 'symbol',
  [BT.CODE_W_SCOPE]: 'javascriptWithScope', [BT.INT32]: 'int', [BT.TIMESTAMP]: 'timestamp', [BT.INT64]: 'long',
  [BT.DECIMAL]: 'decimal', [BT.MINKEY]: 'minKey', [BT.MAXKEY]: 'maxKey',
};

/** mongod's type names, as its messages print them (bsontypes.cpp `typeName`). */
export function typeName(v: W): string {
  if (v instanceof MDoc) return 'object';
  if (v instanceof MArr) return 'array';
  return TYPE_NAMES[v.type] ?? `type ${v.type}`;
}

/** A shell-like rendering for error messages. */
export function render(v: W | undefined): string {
  if (v === undefined) return 'missing';
  const f = freeze(v);
  if (f instanceof BDoc) return f.entries.length === 0 ? '{}' : `{ ${f.entries.map(([k, x]) => `${k}: ${render(x)}`).join(', ')} }`;
  if (f instanceof BArr) return `[ ${f.items.map(render).join(', ')} ]`;
  switch (f.type) {
    case BT.STRING:
      return JSON.stringify(stringOf(f));
    case BT.INT32:
      return String(f.bytes.readInt32LE(0));
    case BT.INT64:
      return String(f.bytes.readBigInt64LE(0));
    case BT.DOUBLE: {
      const n = f.bytes.readDoubleLE(0);
      return Number.isInteger(n) ? `${n}.0` : String(n);
    }
    case BT.NULL:
      return 'null';
    case BT.BOOL:
      return f.bytes[0] ? 'true' : 'false';
    case BT.OID:
      return `ObjectId('${f.bytes.toString('hex')}')`;
    default:
      return typeName(f);
  }
}

// ---- the update tree -----------------------------------------------------------------------

type Leaf = {kind: 'leaf'; op: string; arg: Value; path: string[]; from?: string[]};
type ObjNode = {kind: 'obj'; children: Map<string, UNode>; positional?: UNode};
type ArrNode = {kind: 'arr'; children: Map<string, UNode>};
type UNode = Leaf | ObjNode | ArrNode;

export const UPDATE_OPERATORS = new Set([
  '$set', '$unset', '$inc', '$mul', '$rename', '$min', '$max', '$currentDate', '$push', '$pull',
  '$pullAll', '$addToSet', '$pop', '$bit', '$setOnInsert',
]);

function isFilterIdentifier(part: string): boolean {
  return part.startsWith('$[') && part.endsWith(']');
}

function conflict(path: string[], at: number): CommandError {
  return new CommandError(40, `Updating the path '${path.join('.')}' would create a conflict at '${path.slice(0, at + 1).join('.')}'`);
}

function childOf(node: ObjNode | ArrNode, name: string): UNode | undefined {
  if (node.kind === 'obj' && name === '$') return node.positional;
  return node.children.get(name);
}

function setChildOf(node: ObjNode | ArrNode, name: string, child: UNode): void {
  if (node.kind === 'obj' && name === '$') node.positional = child;
  else node.children.set(name, child);
}

function identifierOf(part: string): string {
  return part.slice(2, -1);
}

/** Adds one path to the tree (update_object_node.cpp `parseAndMerge`). */
function merge(root: ObjNode, path: string[], leaf: Leaf, filters: Map<string, Pred>, used: Set<string>): void {
  const dotted = path.join('.');
  if (path.some((p) => p === '')) {
    throw new CommandError(56, `The update path '${dotted}' contains an empty field name, which is not allowed.`);
  }
  const positions = path.filter((p) => p === '$').length;
  if (positions > 1) throw new CommandError(2, `Too many positional (i.e. '$') elements found in path '${dotted}'`);
  if (path[0] === '$') throw new CommandError(2, `Cannot have positional (i.e. '$') element in the first position in path '${dotted}'`);
  let current: ObjNode | ArrNode = root;
  for (let i = 0; i < path.length; i++) {
    let name = path[i]!;
    if (isFilterIdentifier(name)) {
      if (i === 0) throw new CommandError(2, `Cannot have array filter identifier (i.e. '$[<id>]') element in the first position in path '${dotted}'`);
      const id = identifierOf(name);
      if (id !== '' && !filters.has(id)) throw new CommandError(2, `No array filter found for identifier '${id}' in path '${dotted}'`);
      if (id !== '') used.add(id);
      name = id;
    }
    const last = i === path.length - 1;
    const existing = childOf(current, name);
    if (last) {
      if (existing) throw conflict(path, i);
      setChildOf(current, name, leaf);
      return;
    }
    const wantsArray = isFilterIdentifier(path[i + 1]!);
    if (existing) {
      if (existing.kind === 'leaf' || (existing.kind === 'arr') !== wantsArray) throw conflict(path, i);
      current = existing;
    } else {
      const made: ObjNode | ArrNode = wantsArray ? {kind: 'arr', children: new Map()} : {kind: 'obj', children: new Map()};
      setChildOf(current, name, made);
      current = made;
    }
  }
}

export interface ParsedUpdate {
  root: ObjNode;
  positional: boolean;
  filters: Map<string, Pred>;
}

function badModifier(op: string): CommandError {
  return new CommandError(9, `Unknown modifier: ${op}. Expected a valid update modifier or pipeline-style update specified as an array`);
}

/**
 * Array filters `[{"e.k": 1}, {f: {$gt: 2}}]`: each names one identifier (its fields' first part),
 * tested on an element as `{<id>: element}` (https://www.mongodb.com/docs/manual/reference/operator/update/positional-filtered/).
 */
function parseArrayFilters(filters: BArr | undefined): Map<string, Pred> {
  const out = new Map<string, Pred>();
  for (const f of filters?.items ?? []) {
    if (!(f instanceof BDoc)) throw new CommandError(14, "BSON field 'update.updates.arrayFilters' is the wrong type, expected type 'object'");
    const ids = new Set(f.keys().map((k) => k.split('.')[0]!));
    if (ids.size !== 1) throw new CommandError(9, `Error parsing array filter :: caused by :: Expected a single top-level field name, found ${[...ids].map((x) => `'${x}'`).join(' and ')}`);
    const [id] = ids;
    if (!/^[a-z][a-zA-Z0-9]*$/.test(id!)) throw new CommandError(2, `Error parsing array filter :: caused by :: The top-level field name must be an alphanumeric string beginning with a lowercase letter, found '${id}'`);
    if (out.has(id!)) throw new CommandError(9, `Found multiple array filters with the same top-level field name ${id}`);
    out.set(id!, compileFilter(f));
  }
  return out;
}

/** Parses an operator update document, refusing what mongod refuses when it parses one. */
export function parseOperators(update: BDoc, arrayFilters?: BArr): ParsedUpdate {
  const root: ObjNode = {kind: 'obj', children: new Map()};
  const filters = parseArrayFilters(arrayFilters);
  const used = new Set<string>();
  for (const [op, spec] of update.entries) {
    if (!UPDATE_OPERATORS.has(op)) throw badModifier(op);
    if (!(spec instanceof BDoc)) {
      throw new CommandError(9, `Modifiers operate on fields but we found type ${typeName(spec)} instead. For example: {$mod: {<field>: ...}} not {${op}: ${render(spec)}}`);
    }
    for (const [field, arg] of spec.entries) {
      validateArgument(op, field, arg);
      const path = field.split('.');
      if (op === '$rename') {
        if (!(arg instanceof BVal) || arg.type !== BT.STRING) throw new CommandError(2, `The 'to' field for $rename must be a string: ${field}: ${render(arg)}`);
        const to = stringOf(arg).split('.');
        if (field === stringOf(arg)) throw new CommandError(2, `The source and target field for $rename must differ: ${field}: ${render(arg)}`);
        for (const p of [path, to]) {
          if (p.some((x) => x === '$' || isFilterIdentifier(x))) throw new CommandError(2, `The source and target field for $rename must not contain positional operators: ${field}: ${render(arg)}`);
        }
        merge(root, path, {kind: 'leaf', op: '$renameSource', arg, path}, filters, used);
        merge(root, to, {kind: 'leaf', op: '$rename', arg, path: to, from: path}, filters, used);
        continue;
      }
      merge(root, path, {kind: 'leaf', op, arg, path}, filters, used);
    }
  }
  for (const id of filters.keys()) {
    if (!used.has(id)) throw new CommandError(9, `The array filter for identifier '${id}' was not used in the update ${render(update)}`);
  }
  const positional = hasPositional(root);
  return {root, positional, filters};
}

function hasPositional(node: UNode): boolean {
  if (node.kind === 'leaf') return false;
  if (node.kind === 'obj' && node.positional) return true;
  for (const c of node.children.values()) if (hasPositional(c)) return true;
  return false;
}

/** Argument checks mongod makes while parsing, before looking at any document. */
function validateArgument(op: string, field: string, arg: Value): void {
  const shown = `{${field}: ${render(arg)}}`;
  switch (op) {
    case '$inc':
      if (!isNumber(arg)) throw new CommandError(14, `Cannot increment with non-numeric argument: ${shown}`);
      return;
    case '$mul':
      if (!isNumber(arg)) throw new CommandError(14, `Cannot multiply with non-numeric argument: ${shown}`);
      return;
    case '$pop':
      // https://www.mongodb.com/docs/manual/reference/operator/update/pop/: -1 removes the first element, 1 the last.
      if (!isNumber(arg)) throw new CommandError(9, `Expected a number in: ${field}: ${render(arg)}`);
      if (doubleOf(arg) !== 1 && doubleOf(arg) !== -1) throw new CommandError(9, `$pop expects 1 or -1, found: ${render(arg)}`);
      return;
    case '$pullAll':
      if (!(arg instanceof BArr)) throw new CommandError(2, `$pullAll requires an array argument but was given a ${typeName(arg)}`);
      return;
    case '$currentDate': {
      const ok = (arg instanceof BVal && arg.type === BT.BOOL) || (arg instanceof BDoc && arg.entries.length === 1 && arg.entries[0]![0] === '$type' && arg.entries[0]![1] instanceof BVal && ['date', 'timestamp'].includes(stringOf(arg.entries[0]![1] as BVal)));
      if (!ok) throw new CommandError(2, `${typeName(arg)} is not valid type for $currentDate. Please use a boolean ('true') or a $type expression ({$type: 'timestamp/date'}).`);
      return;
    }
    case '$bit':
      if (!(arg instanceof BDoc)) throw new CommandError(2, `The $bit modifier is not compatible with a ${typeName(arg)}. You must pass in an embedded document: {$bit: {field: {and/or/xor: #}}`);
      return;
    default:
      return;
  }
}

// ---- applying the tree ---------------------------------------------------------------------

interface Ctx {
  root: MDoc;
  /** The array position the query matched, for `$` (https://www.mongodb.com/docs/manual/reference/operator/update/positional/). */
  matched: string | undefined;
  filters: Map<string, Pred>;
  insert: boolean;
  /** `_id: <value>` for messages. */
  idText: string;
  now: Date;
}

function getChild(container: MDoc | MArr, name: string): W | undefined {
  if (container instanceof MDoc) return container.get(name);
  const i = indexOf(name);
  return i === undefined ? undefined : container.items[i];
}

function pathNotViable(name: string, containerName: string, container: W): CommandError {
  return new CommandError(28, `Cannot create field '${name}' in element {${containerName}: ${render(container)}}`);
}

/** Sets `name` in place when it exists, else appends (documents) or pads with null (arrays). */
function setChild(container: MDoc | MArr, name: string, value: W, containerName: string): void {
  if (container instanceof MDoc) {
    const at = container.fields.findIndex(([k]) => k === name);
    if (at >= 0) container.fields[at] = [name, value];
    else container.fields.push([name, value]);
    return;
  }
  const i = indexOf(name);
  if (i === undefined) throw pathNotViable(name, containerName, container);
  while (container.items.length < i) container.items.push(NULL_VALUE);
  container.items[i] = value;
}

/** `$unset` of an array element leaves null in its place (https://www.mongodb.com/docs/manual/reference/operator/update/unset/). */
function removeChild(container: MDoc | MArr, name: string): void {
  if (container instanceof MDoc) {
    container.fields = container.fields.filter(([k]) => k !== name);
    return;
  }
  const i = indexOf(name);
  if (i !== undefined && i < container.items.length) container.items[i] = NULL_VALUE;
}

/** Makes the value at `name` mutable in place and returns it. */
function thawChild(container: MDoc | MArr, name: string): MDoc | MArr | undefined {
  const v = getChild(container, name);
  if (!isDocLike(v) && !isArrLike(v)) return undefined;
  const m = thaw(v);
  if (m !== v) {
    if (container instanceof MDoc) container.fields[container.fields.findIndex(([k]) => k === name)] = [name, m];
    else container.items[indexOf(name)!] = m;
  }
  return m;
}

function sortedChildren(node: ObjNode | ArrNode, ctx: Ctx): Array<[string, UNode]> {
  const list = [...node.children.entries()];
  if (node.kind === 'obj' && node.positional) {
    if (ctx.matched === undefined) throw new CommandError(2, 'The positional operator did not find the match needed from the query.');
    if (node.children.has(ctx.matched)) throw new CommandError(115, 'merging a positional update with a named one is not supported by the gravity-restore test server');
    list.push([ctx.matched, node.positional]);
  }
  return list.sort(([a], [b]) => comparePathParts(a, b));
}

function applyObject(node: ObjNode, container: MDoc | MArr, containerName: string, ctx: Ctx): void {
  for (const [name, child] of sortedChildren(node, ctx)) applyAt(child, container, name, containerName, ctx);
}

/** Applies `node` to the field `name` of `container`. */
function applyAt(node: UNode, container: MDoc | MArr, name: string, containerName: string, ctx: Ctx): void {
  const existing = getChild(container, name);
  if (node.kind === 'leaf') {
    if (container instanceof MArr && indexOf(name) === undefined && (node.op === '$pop' || node.op === '$pull' || node.op === '$pullAll')) {
      throw new CommandError(28, `Cannot use the part (${name}) of (${fieldText(node)}) to traverse the element ({${containerName}: ${render(container)}})`);
    }
    const r = applyLeaf(node, existing, ctx, container);
    if (r === REMOVE) removeChild(container, name);
    else if (r !== NOOP) setChild(container, name, r, containerName);
    return;
  }
  if (node.kind === 'arr') {
    if (existing === undefined) throw new CommandError(2, `The path '${name}' must exist in the document in order to apply array updates.`);
    if (!isArrLike(existing)) throw new CommandError(2, `Cannot apply array updates to non-array element ${name}: ${render(existing)}`);
    const arr = thawChild(container, name) as MArr;
    for (let i = 0; i < arr.items.length; i++) {
      const el = freeze(arr.items[i]!);
      const applying = [...node.children.entries()].filter(([id]) => id === '' || ctx.filters.get(id)!(BDoc.fromEntries([[id, el]])));
      for (const [, child] of applying.sort(([a], [b]) => comparePathParts(a, b))) applyAt(child, arr, String(i), name, ctx);
    }
    return;
  }
  if (isDocLike(existing) || isArrLike(existing)) {
    applyObject(node, thawChild(container, name)!, name, ctx);
    return;
  }
  // A scalar blocks the path for every operator but $unset (unset_node.h `allowNonViablePath`);
  // $pop and $pull refuse it too (pop_node.cpp, array_culling_node.cpp: PathNotViable).
  if (existing !== undefined && blocksOn(node, ctx)) throw pathNotViable(firstName(node, ctx), name, existing);
  if (existing !== undefined) return;
  // Missing: the path is created only if some operator below creates something.
  const created = new MDoc([]);
  applyObject(node, created, name, ctx);
  if (created.fields.length === 0) return;
  setChild(container, name, created, containerName);
}

function blocksOn(node: UNode, ctx: Ctx): boolean {
  if (node.kind === 'leaf') return !(node.op === '$unset' || node.op === '$renameSource' || (node.op === '$setOnInsert' && !ctx.insert));
  if (node.kind === 'obj' && node.positional && blocksOn(node.positional, ctx)) return true;
  return [...node.children.values()].some((c) => blocksOn(c, ctx));
}

function firstName(node: ObjNode | ArrNode, ctx: Ctx): string {
  const [first] = sortedChildren({...node, kind: 'obj', positional: undefined} as ObjNode, ctx);
  return first?.[0] ?? (node.kind === 'obj' && node.positional ? '$' : '');
}

const REMOVE = Symbol('remove');
const NOOP = Symbol('noop');
type LeafResult = W | typeof REMOVE | typeof NOOP;

function fieldText(leaf: Leaf): string {
  return leaf.path.join('.');
}

function applyLeaf(leaf: Leaf, existing: W | undefined, ctx: Ctx, container: MDoc | MArr): LeafResult {
  const arg = leaf.arg;
  switch (leaf.op) {
    // https://www.mongodb.com/docs/manual/reference/operator/update/set/
    case '$set':
      return existing !== undefined && sameBytes(existing, arg) ? NOOP : arg;
    // https://www.mongodb.com/docs/manual/reference/operator/update/setOnInsert/
    case '$setOnInsert':
      if (!ctx.insert) return NOOP;
      return existing !== undefined && sameBytes(existing, arg) ? NOOP : arg;
    // https://www.mongodb.com/docs/manual/reference/operator/update/unset/
    case '$unset':
      return existing === undefined ? NOOP : REMOVE;
    // https://www.mongodb.com/docs/manual/reference/operator/update/inc/ ("$inc ... on a field with a
    // null value will generate an error") and .../mul/ (a missing field "sets the field to zero of
    // the same numeric type as the multiplier").
    case '$inc':
    case '$mul': {
      const a = arg as BVal;
      if (existing === undefined) return leaf.op === '$inc' ? a : zeroLike(a);
      if (!isNumber(existing)) {
        throw new CommandError(14, `Cannot apply ${leaf.op} to a value of non-numeric type. {${ctx.idText}} has the field '${leaf.path[leaf.path.length - 1]}' of non-numeric type ${typeName(existing)}`);
      }
      const r = arithmetic(leaf.op === '$inc' ? 'add' : 'mul', existing, a);
      if (!r) throw new CommandError(2, `Failed to apply ${leaf.op} operations to current value (${render(existing)}) for document {${ctx.idText}}`);
      return sameBytes(existing, r) ? NOOP : r;
    }
    // https://www.mongodb.com/docs/manual/reference/operator/update/min/ and .../max/
    case '$min':
    case '$max': {
      if (existing === undefined) return arg;
      const c = compareValues(arg, freeze(existing));
      return (leaf.op === '$min' ? c < 0 : c > 0) ? arg : NOOP;
    }
    // https://www.mongodb.com/docs/manual/reference/operator/update/currentDate/
    case '$currentDate': {
      const asTimestamp = arg instanceof BDoc && stringOf(arg.entries[0]![1] as BVal) === 'timestamp';
      return asTimestamp ? toValue(new Timestamp({t: Math.floor(ctx.now.getTime() / 1000), i: 1})) : toValue(ctx.now);
    }
    case '$renameSource':
      return NOOP;
    case '$rename':
      return applyRename(leaf, ctx, container);
    case '$push':
      return applyPush(leaf, existing, ctx);
    case '$addToSet':
      return applyAddToSet(leaf, existing);
    case '$pop':
      return applyPop(leaf, existing);
    case '$pull':
    case '$pullAll':
      return applyPull(leaf, existing);
    case '$bit':
      return applyBit(leaf, existing, ctx);
    default:
      throw new CommandError(9, `Unknown modifier: ${leaf.op}`);
  }
}

/**
 * https://www.mongodb.com/docs/manual/reference/operator/update/rename/: the source's value moves to
 * the target (replaced where it stands when it exists, rename_node.cpp applies a $set there), the
 * source is removed; a missing source does nothing; neither may be inside an array.
 */
function applyRename(leaf: Leaf, ctx: Ctx, container: MDoc | MArr): LeafResult {
  const from = leaf.from!;
  let parent: MDoc = ctx.root;
  for (let i = 0; i < from.length - 1; i++) {
    const next = parent.get(from[i]!);
    if (isArrLike(next)) {
      throw new CommandError(2, `The source field cannot be an array element, '${from.join('.')}' in doc with ${ctx.idText} has an array field called '${from[i]}'`);
    }
    if (!isDocLike(next)) return NOOP;
    parent = thawChild(parent, from[i]!) as MDoc;
  }
  const value = parent.get(from[from.length - 1]!);
  if (value === undefined) return NOOP;
  if (container instanceof MArr) {
    throw new CommandError(2, `The destination field cannot be an array element, '${leaf.path.join('.')}' in doc with ${ctx.idText} has an array field called '${leaf.path[leaf.path.length - 2]}'`);
  }
  removeChild(parent, from[from.length - 1]!);
  return value;
}

function eachOf(arg: Value, op: string): {values: Value[]; mods: BDoc | undefined} {
  if (arg instanceof BDoc && arg.entries[0]?.[0] === '$each') {
    const each = arg.entries[0][1];
    if (!(each instanceof BArr)) throw new CommandError(2, `The argument to $each in ${op} must be an array but it was of type: ${typeName(each)}`);
    return {values: [...each.items], mods: arg};
  }
  return {values: [arg], mods: undefined};
}

function intArg(v: Value | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!isNumber(v) || !Number.isInteger(doubleOf(v))) throw new CommandError(2, `The value for ${what} must be an integer value but was given type: ${typeName(v)}`);
  return doubleOf(v);
}

function sortValues(items: W[], spec: Value): W[] {
  const frozen = items.map(freeze);
  let cmp: (a: Value, b: Value) => number;
  if (spec instanceof BDoc) {
    const keys = spec.entries.map(([k, v]) => ({parts: k.split('.'), dir: isNumber(v) && doubleOf(v) < 0 ? -1 : 1}));
    const at = (v: Value, parts: string[]): Value => {
      let cur: Value | undefined = v;
      for (const p of parts) cur = cur instanceof BDoc ? cur.get(p) : undefined;
      return cur ?? NULL_VALUE;
    };
    cmp = (a, b) => {
      for (const k of keys) {
        const c = compareValues(at(a, k.parts), at(b, k.parts));
        if (c !== 0) return k.dir * c;
      }
      return 0;
    };
  } else if (isNumber(spec)) {
    const dir = doubleOf(spec) < 0 ? -1 : 1;
    cmp = (a, b) => dir * compareValues(a, b);
  } else {
    throw new CommandError(2, `The $sort is invalid: use 1/-1 to sort the whole element, or {field:1/-1} to sort embedded fields`);
  }
  return frozen.map((v, i) => ({v, i})).sort((x, y) => cmp(x.v, y.v) || x.i - y.i).map((x) => x.v);
}

/**
 * https://www.mongodb.com/docs/manual/reference/operator/update/push/ with $each, $position, $slice,
 * $sort: a missing field becomes an array; "If the field is not an array, the operation will fail".
 */
function applyPush(leaf: Leaf, existing: W | undefined, ctx: Ctx): LeafResult {
  const {values, mods} = eachOf(leaf.arg, '$push');
  if (existing !== undefined && !isArrLike(existing)) {
    throw new CommandError(2, `The field '${fieldText(leaf)}' must be an array but is of type ${typeName(existing)} in document {${ctx.idText}}`);
  }
  const items: W[] = existing ? [...thaw(existing).items] : [];
  let position = items.length;
  let slice: number | undefined;
  let sort: Value | undefined;
  for (const [k, v] of mods?.entries.slice(1) ?? []) {
    if (k === '$position') {
      const p = intArg(v, '$position')!;
      position = p < 0 ? Math.max(0, items.length + p) : Math.min(p, items.length);
    } else if (k === '$slice') {
      slice = intArg(v, '$slice');
    } else if (k === '$sort') {
      sort = v;
    } else {
      throw new CommandError(2, `Unrecognized clause in $push: ${k}`);
    }
  }
  items.splice(position, 0, ...values);
  let out = sort === undefined ? items : sortValues(items, sort);
  if (slice !== undefined) out = slice >= 0 ? out.slice(0, slice) : out.slice(Math.max(0, out.length + slice));
  const next = new MArr(out);
  return existing !== undefined && sameBytes(existing, next) ? NOOP : next;
}

/**
 * https://www.mongodb.com/docs/manual/reference/operator/update/addToSet/: adds values not already
 * present; documents are equal only with the same fields in the same order ("If the value is a
 * document, MongoDB determines that the document is a duplicate if an existing document in the array
 * matches the to-be-added document exactly; i.e. the existing document has the exact same fields and
 * values and the fields are in the same order").
 */
function applyAddToSet(leaf: Leaf, existing: W | undefined): LeafResult {
  const {values} = eachOf(leaf.arg, '$addToSet');
  if (existing !== undefined && !isArrLike(existing)) {
    throw new CommandError(2, `Cannot apply $addToSet to non-array field. Field named '${leaf.path[leaf.path.length - 1]}' has non-array type ${typeName(existing)}`);
  }
  const items: W[] = existing ? [...thaw(existing).items] : [];
  const frozen = items.map(freeze);
  let added = false;
  for (const v of values) {
    if (frozen.some((x) => compareValues(x, v) === 0)) continue;
    items.push(v);
    frozen.push(v);
    added = true;
  }
  if (existing !== undefined && !added) return NOOP;
  return new MArr(items);
}

/** https://www.mongodb.com/docs/manual/reference/operator/update/pop/ */
function applyPop(leaf: Leaf, existing: W | undefined): LeafResult {
  if (existing === undefined) return NOOP;
  if (!isArrLike(existing)) throw new CommandError(14, `Path '${fieldText(leaf)}' contains an element of non-array type '${typeName(existing)}'`);
  const items = [...thaw(existing).items];
  if (items.length === 0) return NOOP;
  if (doubleOf(leaf.arg as BVal) < 0) items.shift();
  else items.pop();
  return new MArr(items);
}

function pullPredicate(arg: Value): (v: Value) => boolean {
  if (arg instanceof BDoc) {
    const operator = arg.entries.length > 0 && arg.entries[0]![0].startsWith('$');
    if (operator) {
      const pred = compileFilter(BDoc.fromEntries([['v', arg]]));
      return (v) => pred(BDoc.fromEntries([['v', v]]));
    }
    // A document condition is a query on each element document.
    const pred = compileFilter(arg);
    return (v) => v instanceof BDoc && pred(v);
  }
  return (v) => compareValues(v, arg) === 0;
}

/**
 * https://www.mongodb.com/docs/manual/reference/operator/update/pull/ (a condition, or a value to
 * remove) and https://www.mongodb.com/docs/manual/reference/operator/update/pullAll/.
 */
function applyPull(leaf: Leaf, existing: W | undefined): LeafResult {
  if (existing === undefined) return NOOP;
  if (!isArrLike(existing)) throw new CommandError(2, 'Cannot apply $pull to a non-array value');
  const preds = leaf.op === '$pullAll' ? (leaf.arg as BArr).items.map((x) => (v: Value) => compareValues(v, x) === 0) : [pullPredicate(leaf.arg)];
  const items = thaw(existing).items;
  const kept = items.filter((x) => {
    const f = freeze(x);
    return !preds.some((p) => p(f));
  });
  return kept.length === items.length ? NOOP : new MArr(kept);
}

/** https://www.mongodb.com/docs/manual/reference/operator/update/bit/ */
function applyBit(leaf: Leaf, existing: W | undefined, ctx: Ctx): LeafResult {
  const ops = (leaf.arg as BDoc).entries;
  let cur: BVal = existing === undefined ? int32(0n) : (existing as BVal);
  if (existing !== undefined && (!(existing instanceof BVal) || (existing.type !== BT.INT32 && existing.type !== BT.INT64))) {
    throw new CommandError(2, `Cannot apply $bit to a value of non-integral type.{${ctx.idText}} has the field ${leaf.path[leaf.path.length - 1]} of non-integer type ${typeName(existing)}`);
  }
  for (const [k, v] of ops) {
    if (!(v instanceof BVal) || (v.type !== BT.INT32 && v.type !== BT.INT64)) throw new CommandError(2, `The $bit modifier field must be an Integer(32/64 bit); a '${typeName(v)}' is not supported here: {${k}: ${render(v)}}`);
    const a = intOf(cur);
    const b = intOf(v);
    const r = k === 'and' ? a & b : k === 'or' ? a | b : k === 'xor' ? a ^ b : undefined;
    if (r === undefined) throw new CommandError(2, `The $bit modifier only supports 'and', 'or', and 'xor', not '${k}' which is an unknown operator: {${k}: ${render(v)}}`);
    cur = cur.type === BT.INT32 && v.type === BT.INT32 ? int32(BigInt.asIntN(32, r)) : int64(BigInt.asIntN(64, r));
  }
  return existing !== undefined && sameBytes(existing, cur) ? NOOP : cur;
}

// ---- entry points --------------------------------------------------------------------------

export interface ApplyOptions {
  /** An upsert's insert: `$setOnInsert` applies. */
  insert?: boolean;
  /** The array index the query matched for the positional `$`. */
  matched?: string | undefined;
}

/** Applies a parsed operator update to a document; returns the new document (same bytes when nothing changed). */
export function applyOperators(doc: BDoc, parsed: ParsedUpdate, opts: ApplyOptions = {}): BDoc {
  const root = thaw(doc);
  const id = doc.get('_id');
  const ctx: Ctx = {
    root,
    matched: opts.matched,
    filters: parsed.filters,
    insert: opts.insert === true,
    idText: `_id: ${render(id)}`,
    now: new Date(),
  };
  applyObject(parsed.root, root, '', ctx);
  const out = freeze(root) as BDoc;
  checkId(doc, out);
  return out.bytes.equals(doc.bytes) ? doc : out;
}

/** mongod refuses any update that changes or removes `_id` (https://www.mongodb.com/docs/manual/core/document/#the-_id-field). */
export function checkId(before: BDoc, after: BDoc): void {
  const a = before.get('_id');
  const b = after.get('_id');
  if (a === undefined) return;
  if (b === undefined || a.type !== b.type || !a.bytes.equals(b.bytes)) {
    throw new CommandError(66, "Performing an update on the path '_id' would modify the immutable field '_id'");
  }
}

/** The first array position along the positional path where the query matches (`$`). */
export function matchedIndex(doc: BDoc, parsed: ParsedUpdate, pred: Pred | undefined): string | undefined {
  if (!parsed.positional || !pred) return undefined;
  const prefix = positionalPrefix(parsed.root, []);
  if (!prefix) return undefined;
  let cur: Value | undefined = doc;
  for (const p of prefix) cur = cur instanceof BDoc ? cur.get(p) : cur instanceof BArr && indexOf(p) !== undefined ? cur.items[indexOf(p)!] : undefined;
  if (!(cur instanceof BArr)) return undefined;
  for (let i = 0; i < cur.items.length; i++) {
    if (pred(replaceAt(doc, prefix, BArr.fromItems([cur.items[i]!])))) return String(i);
  }
  return undefined;
}

function positionalPrefix(node: UNode, path: string[]): string[] | undefined {
  if (node.kind === 'leaf') return undefined;
  if (node.kind === 'obj' && node.positional) return path;
  for (const [k, c] of node.children) {
    const r = positionalPrefix(c, [...path, k]);
    if (r) return r;
  }
  return undefined;
}

function replaceAt(doc: BDoc, path: string[], value: Value): BDoc {
  const [head, ...rest] = path as [string, ...string[]];
  return BDoc.fromEntries(doc.entries.map(([k, v]) => {
    if (k !== head) return [k, v] as const;
    if (rest.length === 0) return [k, value] as const;
    return [k, v instanceof BDoc ? replaceAt(v, rest, value) : v] as const;
  }));
}
