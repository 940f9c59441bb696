/**
 * In-memory databases. Each document is kept as the BSON bytes received; the order-preserving tree
 * view is derived (and cached) only when a query, index or validator needs it.
 */
import {UUID} from 'bson';
import {decodeTyped, withIdFirst, type Document} from './bson-values.js';
import {CommandError} from './command-error.js';
import {type Collation, parseCollation} from './collation.js';
import {compareValues, keyOf, toNumber} from './compare.js';
import {type Pred, compileFilter, valuesAt} from './match.js';
import {compileSchema, type Failure} from './schema.js';
import type {Oplog} from './oplog.js';
import {BArr, BDoc, BT, BVal, type Value, encodeEntries, parseDoc, regexParts, stringOf, toValue, topLevel} from './tree.js';

export const MAX_BSON_SIZE = 16 * 1024 * 1024;
const NULL = new BVal(BT.NULL, Buffer.alloc(0));

export interface Rec {
  idKey: string;
  id: Value;
  bytes: Buffer;
  /** Cached tree view; never mutate it. */
  tree?: BDoc;
}

export interface IndexSpec {
  name: string;
  key: BDoc;
  fields: string[][];
  unique: boolean;
  sparse: boolean;
  partial: Pred | undefined;
  /** Strings in keys compare under this collation (the index's, or the collection's default). */
  collation: Collation | undefined;
  /** The document listIndexes returns, in the order it was given. */
  spec: BDoc;
}

function idIndex(collation: Collation | undefined): IndexSpec {
  const key = BDoc.fromEntries([['_id', toValue(1)]]);
  return {
    name: '_id_',
    key,
    fields: [['_id']],
    unique: true,
    sparse: false,
    partial: undefined,
    collation,
    spec: BDoc.fromEntries([['v', toValue(2)], ['key', key], ['name', toValue('_id_')], ...(collation ? [['collation', collation.spec] as const] : [])]),
  };
}

export function typedOf(rec: Rec): Document {
  return decodeTyped(rec.bytes);
}

export function treeOf(rec: Rec): BDoc {
  rec.tree ??= parseDoc(rec.bytes);
  return rec.tree;
}

/** mongod's shell-like rendering of a value inside `dup key: { … }`. */
export function formatValue(v: Value | undefined): string {
  if (v === undefined) return 'null';
  if (v instanceof BDoc) return v.entries.length === 0 ? '{}' : `{ ${v.entries.map(([k, x]) => `${k}: ${formatValue(x)}`).join(', ')} }`;
  if (v instanceof BArr) return `[ ${v.items.map(formatValue).join(', ')} ]`;
  switch (v.type) {
    case BT.STRING:
    case BT.SYMBOL:
      return JSON.stringify(stringOf(v));
    case BT.INT32:
      return String(v.bytes.readInt32LE(0));
    case BT.INT64:
      return String(v.bytes.readBigInt64LE(0));
    case BT.DOUBLE: {
      const n = v.bytes.readDoubleLE(0);
      return Number.isInteger(n) ? `${n}.0` : String(n);
    }
    case BT.NULL:
      return 'null';
    case BT.UNDEFINED:
      return 'undefined';
    case BT.BOOL:
      return v.bytes[0] ? 'true' : 'false';
    case BT.OID:
      return `ObjectId('${v.bytes.toString('hex')}')`;
    case BT.DATE:
      return `new Date(${v.bytes.readBigInt64LE(0)})`;
    case BT.TIMESTAMP:
      return `Timestamp(${v.bytes.readUInt32LE(4)}, ${v.bytes.readUInt32LE(0)})`;
    case BT.REGEX: {
      const {pattern, flags} = regexParts(v);
      return `/${pattern}/${flags}`;
    }
    case BT.MINKEY:
      return 'MinKey';
    case BT.MAXKEY:
      return 'MaxKey';
    default:
      return String(decodeTyped(encodeEntries([['v', v]])).v);
  }
}

let lastSeconds = 0;
let lastIncrement = 0;

/** Unique, increasing timestamps, as one mongod hands them out. */
function nextTimestamp(): Buffer {
  const now = Math.floor(Date.now() / 1000);
  if (now > lastSeconds) {
    lastSeconds = now;
    lastIncrement = 1;
  } else {
    lastIncrement++;
  }
  const b = Buffer.alloc(8);
  b.writeUInt32LE(lastIncrement, 0);
  b.writeUInt32LE(lastSeconds, 4);
  return b;
}

/**
 * mongod replaces an empty Timestamp(0, 0) in a top-level field other than `_id` with the current
 * time when it inserts or replaces a document (https://www.mongodb.com/docs/manual/reference/bson-types/#timestamps).
 * Returns the same buffer when there is none.
 */
export function fillEmptyTimestamps(bytes: Buffer): Buffer {
  let out: Buffer | undefined;
  for (const el of topLevel(bytes)) {
    if (el.type !== BT.TIMESTAMP || el.name === '_id') continue;
    if (bytes.readBigUInt64LE(el.valueStart) !== 0n) continue;
    out ??= Buffer.from(bytes);
    nextTimestamp().copy(out, el.valueStart);
  }
  return out ?? bytes;
}

export interface Validation {
  validator: BDoc;
  level: 'off' | 'strict' | 'moderate';
  action: 'error' | 'warn';
  /** Rules a document does not satisfy; empty when it is valid. */
  check: (doc: BDoc) => Failure[];
}

function numberOption(v: Value | undefined): number | undefined {
  return v instanceof BVal && (v.type === BT.INT32 || v.type === BT.INT64 || v.type === BT.DOUBLE || v.type === BT.DECIMAL) ? toNumber(v) : undefined;
}

function str(v: Value | undefined): string | undefined {
  return v instanceof BVal && v.type === BT.STRING ? stringOf(v) : undefined;
}

/** Compiles collection options' `validator`, `validationLevel` and `validationAction`. */
export function validationOf(options: BDoc): Validation | undefined {
  const validator = options.get('validator');
  if (validator === undefined) return undefined;
  if (!(validator instanceof BDoc)) throw new CommandError(14, "BSON field 'validator' is the wrong type, expected type 'object'");
  const level = str(options.get('validationLevel')) ?? 'strict';
  const action = str(options.get('validationAction')) ?? 'error';
  if (level !== 'off' && level !== 'strict' && level !== 'moderate') {
    throw new CommandError(2, `Enumeration value '${level}' for field 'validationLevel' is not a valid value.`);
  }
  if (action !== 'error' && action !== 'warn') throw new CommandError(2, `Enumeration value '${action}' for field 'validationAction' is not a valid value.`);
  const schema = validator.entries.length === 1 && validator.entries[0]![0] === '$jsonSchema' && validator.entries[0]![1] instanceof BDoc
    ? compileSchema(validator.entries[0]![1])
    : undefined;
  const filter = compileFilter(validator);
  const check = (doc: BDoc): Failure[] => {
    if (schema) {
      const failed = schema(doc);
      return failed.length ? [{operatorName: '$jsonSchema', schemaRulesNotSatisfied: failed}] : [];
    }
    return filter(doc) ? [] : [{operatorName: validator.entries.length === 1 ? validator.entries[0]![0] : '$and', specifiedAs: validator}];
  };
  return {validator, level, action, check};
}

export class Collection {
  readonly uuid = new UUID();
  readonly records = new Map<string, Rec>();
  readonly indexes: IndexSpec[];
  /** The collection's default collation (https://www.mongodb.com/docs/manual/reference/collation/#collation-and-index-use). */
  readonly collation: Collation | undefined;
  /** index name → index key → idKey of the record holding it */
  private readonly unique = new Map<string, Map<string, string>>();
  validation: Validation | undefined;

  /** Byte and document caps of a capped collection (https://www.mongodb.com/docs/manual/core/capped-collections/). */
  private readonly cap: {size: number; max: number} | undefined;

  constructor(
    public db: string,
    public name: string,
    public options: BDoc,
  ) {
    this.collation = parseCollation(options.get('collation'));
    if (this.collation) {
      // listCollections shows the collation with every field filled in.
      this.options = BDoc.fromEntries(options.entries.map(([k, v]) => (k === 'collation' ? ([k, this.collation!.spec] as const) : ([k, v] as const))));
    }
    this.indexes = [idIndex(this.collation)];
    this.validation = validationOf(options);
    const capped = options.get('capped');
    if (capped instanceof BVal && capped.type === BT.BOOL && capped.bytes[0] === 1) {
      const size = numberOption(options.get('size')) ?? 0;
      const max = numberOption(options.get('max')) ?? 0;
      // Sizes up to 4096 become 4096; larger ones are raised to a multiple of 256.
      this.cap = {size: size <= 4096 ? 4096 : Math.ceil(size / 256) * 256, max: max > 0 ? max : Number.POSITIVE_INFINITY};
    }
  }

  /** A capped collection drops its oldest documents to stay within its caps. */
  private evict(): void {
    if (!this.cap) return;
    let bytes = this.dataSize();
    for (const rec of this.records.values()) {
      if (this.records.size <= this.cap.max && bytes <= this.cap.size) break;
      bytes -= rec.bytes.length;
      this.remove(rec);
    }
  }

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  private dupError(index: IndexSpec, keyValue: BDoc, prefix = ''): CommandError {
    return new CommandError(
      11000,
      `${prefix}E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: ${formatValue(keyValue)}`,
      {keyPattern: index.key, keyValue},
    );
  }

  private secondaryUnique(): IndexSpec[] {
    return this.indexes.filter((i) => i.unique && i.name !== '_id_');
  }

  /** Index keys of a document (one per multikey combination), or undefined when a sparse/partial index skips it. */
  private entries(index: IndexSpec, doc: BDoc): Array<{key: string; values: Array<Value | undefined>}> | undefined {
    const perField = index.fields.map((parts) => {
      const out: Array<Value | undefined> = [];
      for (const v of valuesAt(doc, parts, false)) {
        if (v instanceof BArr) {
          // An empty array is indexed as undefined, apart from null and missing.
          if (v.items.length === 0) out.push(new BVal(BT.UNDEFINED, Buffer.alloc(0)));
          else out.push(...v.items);
        } else {
          out.push(v);
        }
      }
      return out;
    });
    if (index.sparse && perField.every((vs) => vs.every((v) => v === undefined))) return undefined;
    if (index.partial && !index.partial(doc)) return undefined;
    let combos: Array<Array<Value | undefined>> = [[]];
    for (const vs of perField) {
      const next: Array<Array<Value | undefined>> = [];
      for (const prefix of combos) for (const v of vs) next.push([...prefix, v]);
      combos = next;
    }
    const seen = new Map<string, Array<Value | undefined>>();
    for (const c of combos) seen.set(c.map(keyOf).join('\u0000'), c);
    return [...seen].map(([key, values]) => ({key, values}));
  }

  private keyValue(index: IndexSpec, values: Array<Value | undefined>): BDoc {
    return BDoc.fromEntries(index.key.keys().map((k, i) => [k, values[i] ?? new BVal(BT.NULL, Buffer.alloc(0))] as const));
  }

  private checkUnique(doc: BDoc | undefined, ownIdKey: string): Array<[IndexSpec, string[]]> {
    const planned: Array<[IndexSpec, string[]]> = [];
    if (!doc) return planned;
    for (const index of this.secondaryUnique()) {
      const e = this.entries(index, doc);
      if (!e) continue;
      if (index.collation) {
        this.checkCollated(index, e, ownIdKey);
        continue;
      }
      const map = this.unique.get(index.name)!;
      for (const {key, values} of e) {
        const holder = map.get(key);
        if (holder !== undefined && holder !== ownIdKey) throw this.dupError(index, this.keyValue(index, values));
      }
      planned.push([index, e.map((x) => x.key)]);
    }
    return planned;
  }

  /**
   * Strings equal under a collation have no canonical key here (ICU sort keys are not exposed), so
   * a collated unique index is checked against every other document.
   */
  private checkCollated(index: IndexSpec, mine: Array<{values: Array<Value | undefined>}>, ownIdKey: string): void {
    const collator = index.collation!.collator;
    const same = (a: Array<Value | undefined>, b: Array<Value | undefined>): boolean =>
      a.every((x, i) => compareValues(x ?? NULL, b[i] ?? NULL, collator) === 0);
    for (const rec of this.records.values()) {
      if (rec.idKey === ownIdKey) continue;
      const theirs = this.entries(index, treeOf(rec));
      if (!theirs) continue;
      for (const m of mine) for (const t of theirs) if (same(m.values, t.values)) throw this.dupError(index, this.keyValue(index, m.values));
    }
  }

  private addEntries(planned: Array<[IndexSpec, string[]]>, idKey: string): void {
    for (const [index, keys] of planned) {
      const map = this.unique.get(index.name)!;
      for (const k of keys) map.set(k, idKey);
    }
  }

  private removeEntries(rec: Rec): void {
    if (this.unique.size === 0) return;
    const doc = treeOf(rec);
    for (const index of this.secondaryUnique()) {
      const e = this.entries(index, doc);
      if (!e) continue;
      const map = this.unique.get(index.name)!;
      for (const {key} of e) if (map.get(key) === rec.idKey) map.delete(key);
    }
  }

  private validate(doc: BDoc, id: Value, before: BDoc | undefined): void {
    const v = this.validation;
    if (!v || v.level === 'off' || v.action === 'warn') return;
    // moderate: updates to documents that already failed the rules are not checked.
    if (before && v.level === 'moderate' && v.check(before).length > 0) return;
    const failed = v.check(doc);
    if (failed.length === 0) return;
    throw new CommandError(121, 'Document failed validation', {errInfo: {failingDocumentId: id, details: failed[0]}});
  }

  /** Stores a new document; `_id` is moved first or generated, as mongod does. */
  insert(raw: Buffer, opts: {fallbackId?: Value; bypassValidation?: boolean} = {}): Rec {
    const {bytes, id} = withIdFirst(raw, opts.fallbackId);
    if (id instanceof BArr) throw new CommandError(2, "can't use an array for _id");
    if (id.type === BT.REGEX) throw new CommandError(2, "can't use a regex for _id");
    if (id.type === BT.UNDEFINED) throw new CommandError(2, "can't use a undefined for _id");
    const idKey = keyOf(id);
    if (this.records.has(idKey)) throw this.dupError(this.indexes[0]!, BDoc.fromEntries([['_id', id]]));
    const needsTree = this.unique.size > 0 || (this.validation !== undefined && !opts.bypassValidation);
    const tree = needsTree ? parseDoc(bytes) : undefined;
    if (tree && !opts.bypassValidation) this.validate(tree, id, undefined);
    const planned = this.checkUnique(this.unique.size > 0 ? tree : undefined, idKey);
    const rec: Rec = {idKey, id, bytes, ...(tree ? {tree} : {})};
    this.addEntries(planned, idKey);
    this.records.set(idKey, rec);
    this.evict();
    return rec;
  }

  /** Swaps a record's bytes in place (keeping its natural order); `_id` must be unchanged. */
  replace(rec: Rec, bytes: Buffer, opts: {bypassValidation?: boolean} = {}): void {
    if (bytes.length > MAX_BSON_SIZE) throw new CommandError(17419, `Resulting document after update is larger than ${MAX_BSON_SIZE}`);
    const tree = parseDoc(bytes);
    if (!opts.bypassValidation) this.validate(tree, rec.id, treeOf(rec));
    const planned = this.checkUnique(this.unique.size > 0 ? tree : undefined, rec.idKey);
    this.removeEntries(rec);
    this.addEntries(planned, rec.idKey);
    rec.bytes = bytes;
    rec.tree = tree;
  }

  private appended = 0;

  /**
   * Appends a document that has no `_id` (an oplog entry) in natural order, past indexes and
   * validation: only the replica-set oplog writes these.
   */
  appendRaw(bytes: Buffer): void {
    const idKey = `\u0000appended:${this.appended++}`;
    this.records.set(idKey, {idKey, id: NULL, bytes});
  }

  remove(rec: Rec): void {
    this.removeEntries(rec);
    this.records.delete(rec.idKey);
  }

  /** Adds an index; a unique one is built over existing data first and refused on duplicates. */
  addIndex(given: BDoc): 'created' | 'exists' {
    // An index without a collation takes the collection's; {locale: "simple"} asks for none.
    const collationValue = given.get('collation');
    const collation = collationValue === undefined ? this.collation : parseCollation(collationValue);
    const spec = BDoc.fromEntries([
      ...given.entries.filter(([k]) => k !== 'collation'),
      ...(collation ? [['collation', collation.spec] as const] : []),
    ]);
    const name = str(spec.get('name'))!;
    const key = spec.get('key') as BDoc;
    const uniqueValue = spec.get('unique');
    const unique = uniqueValue !== undefined && !(uniqueValue instanceof BVal && (uniqueValue.type === BT.BOOL ? uniqueValue.bytes[0] === 0 : uniqueValue.type === BT.NULL));
    const sparseValue = spec.get('sparse');
    const sparse = sparseValue instanceof BVal && sparseValue.type === BT.BOOL && sparseValue.bytes[0] === 1;
    const partialFilter = spec.get('partialFilterExpression');
    const same = this.indexes.find((i) => i.name === name);
    const described = (s: BDoc): string => formatValue(s);
    if (same) {
      if (keyOf(same.key) !== keyOf(key)) {
        throw new CommandError(86, `An existing index has the same name as the requested index. When index names are not specified, they are auto generated and can cause conflicts. Please refer to our documentation. Requested index: ${described(spec)}, existing index: ${described(same.spec)}`);
      }
      if (same.unique !== unique || same.sparse !== sparse || keyOf(same.spec.get('partialFilterExpression')) !== keyOf(partialFilter)) {
        throw new CommandError(85, `An equivalent index already exists with the same name but different options. Requested index: ${described(spec)}, existing index: ${described(same.spec)}`);
      }
      return 'exists';
    }
    const other = this.indexes.find(
      (i) => keyOf(i.key) === keyOf(key) && keyOf(i.spec.get('partialFilterExpression')) === keyOf(partialFilter) && keyOf(i.spec.get('collation')) === keyOf(spec.get('collation')),
    );
    if (other && other.unique === unique && other.sparse === sparse) return 'exists';
    if (other) {
      throw new CommandError(85, `An equivalent index already exists with a different name and options. Requested index: ${described(spec)}, existing index: ${described(other.spec)}`);
    }
    if (partialFilter !== undefined && !(partialFilter instanceof BDoc)) throw new CommandError(67, 'partialFilterExpression must be an object');
    const index: IndexSpec = {
      name,
      key,
      fields: key.keys().map((k) => k.split('.')),
      unique,
      sparse,
      partial: partialFilter instanceof BDoc ? compileFilter(partialFilter) : undefined,
      collation,
      spec: BDoc.fromEntries([['v', toValue(2)], ...spec.entries.filter(([k]) => k !== 'v')]),
    };
    if (unique && collation) {
      const seen: Array<Array<Value | undefined>> = [];
      for (const rec of this.records.values()) {
        const e = this.entries(index, treeOf(rec));
        if (!e) continue;
        for (const {values} of e) {
          const clash = seen.find((s) => s.every((x, i) => compareValues(x ?? NULL, values[i] ?? NULL, collation.collator) === 0));
          if (clash) throw this.dupError(index, this.keyValue(index, values), 'Index build failed: ');
        }
        // One document's own keys never clash with each other.
        for (const {values} of e) seen.push(values);
      }
      this.unique.set(name, new Map());
    } else if (unique) {
      const map = new Map<string, string>();
      for (const rec of this.records.values()) {
        const e = this.entries(index, treeOf(rec));
        if (!e) continue;
        for (const {key: k, values} of e) {
          const holder = map.get(k);
          if (holder !== undefined && holder !== rec.idKey) throw this.dupError(index, this.keyValue(index, values), 'Index build failed: ');
          map.set(k, rec.idKey);
        }
      }
      this.unique.set(name, map);
    }
    this.indexes.push(index);
    return 'created';
  }

  dropIndex(name: string): void {
    const i = this.indexes.findIndex((x) => x.name === name);
    if (i < 0) throw new CommandError(27, `index not found with name [${name}]`);
    if (name === '_id_') throw new CommandError(72, 'cannot drop _id index');
    this.indexes.splice(i, 1);
    this.unique.delete(name);
  }

  dataSize(): number {
    let n = 0;
    for (const r of this.records.values()) n += r.bytes.length;
    return n;
  }
}

export class Store {
  readonly dbs = new Map<string, Map<string, Collection>>();
  /** Set in replica-set mode: every write is logged there (oplog.ts). */
  oplog: Oplog | undefined;

  get(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.get(name);
  }

  /** Collections appear on first write, as in mongod. */
  ensure(db: string, name: string, options: BDoc = BDoc.fromEntries([])): {coll: Collection; created: boolean} {
    const existing = this.get(db, name);
    if (existing) return {coll: existing, created: false};
    validateNames(db, name);
    const coll = new Collection(db, name, options);
    let colls = this.dbs.get(db);
    if (!colls) {
      colls = new Map();
      this.dbs.set(db, colls);
    }
    colls.set(name, coll);
    this.oplog?.created(coll);
    return {coll, created: true};
  }

  drop(db: string, name: string): boolean {
    const colls = this.dbs.get(db);
    if (!colls?.delete(name)) return false;
    if (colls.size === 0) this.dbs.delete(db);
    return true;
  }

  /** Moves a collection with its documents and indexes (renameCollection). */
  rename(coll: Collection, db: string, name: string): void {
    validateNames(db, name);
    this.drop(coll.db, coll.name);
    let colls = this.dbs.get(db);
    if (!colls) {
      colls = new Map();
      this.dbs.set(db, colls);
    }
    coll.db = db;
    coll.name = name;
    colls.set(name, coll);
  }

  dropDatabase(db: string): void {
    this.dbs.delete(db);
  }

  collections(db: string): Collection[] {
    return [...(this.dbs.get(db)?.values() ?? [])];
  }
}

function validateNames(db: string, name: string): void {
  if (db === '' || /[/\\. "$\0]/.test(db)) throw new CommandError(73, `Invalid database name: '${db}'`);
  if (name === '' || name.includes('$') || name.includes('\0') || name.startsWith('.')) {
    throw new CommandError(73, `Invalid collection name: ${name}`);
  }
}

