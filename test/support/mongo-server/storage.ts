/**
 * In-memory databases. Each document is kept as the BSON bytes received; decoded views are
 * derived (and the matchable one cached) only when a query needs them.
 */
import {Query} from 'mingo';
import {UUID} from 'bson';
import {
  type Document,
  decodeTyped,
  formatValue,
  keyOf,
  toMatchable,
  valuesAtPath,
  withIdFirst,
} from './bson-values.js';
import {CommandError} from './command-error.js';

export interface Rec {
  idKey: string;
  id: unknown;
  bytes: Buffer;
  /** Cached matchable view; never mutate it. */
  match?: Document;
}

export interface IndexSpec {
  name: string;
  key: Document;
  unique: boolean;
  sparse: boolean;
  partial: Query | undefined;
  /** The document listIndexes returns. */
  spec: Document;
}

const ID_INDEX: IndexSpec = {
  name: '_id_',
  key: {_id: 1},
  unique: true,
  sparse: false,
  partial: undefined,
  spec: {v: 2, key: {_id: 1}, name: '_id_'},
};

export function typedOf(rec: Rec): Document {
  return decodeTyped(rec.bytes);
}

export function matchOf(rec: Rec): Document {
  rec.match ??= toMatchable(decodeTyped(rec.bytes)) as Document;
  return rec.match;
}

export class Collection {
  readonly uuid = new UUID();
  readonly records = new Map<string, Rec>();
  readonly indexes: IndexSpec[] = [ID_INDEX];
  /** index name → index key → idKey of the record holding it */
  private readonly unique = new Map<string, Map<string, string>>();

  constructor(
    public db: string,
    public name: string,
    readonly options: Document,
  ) {}

  get ns(): string {
    return `${this.db}.${this.name}`;
  }

  private dupError(index: IndexSpec, keyValue: Document, prefix = ''): CommandError {
    const shown = Object.keys(keyValue)
      .map((k) => `${k}: ${formatValue(keyValue[k])}`)
      .join(', ');
    return new CommandError(
      11000,
      `${prefix}E11000 duplicate key error collection: ${this.ns} index: ${index.name} dup key: { ${shown} }`,
      {keyPattern: index.key, keyValue},
    );
  }

  private secondaryUnique(): IndexSpec[] {
    return this.indexes.filter((i) => i.unique && i.name !== '_id_');
  }

  /** Index keys of a document, or undefined when a sparse/partial index skips it. */
  private entries(index: IndexSpec, typed: Document): {keys: string[]; keyValue: Document} | undefined {
    const fields = Object.keys(index.key);
    const perField = fields.map((f) => valuesAtPath(typed, f));
    if (index.sparse && perField.every((vs) => vs.every((v) => v === undefined))) return undefined;
    if (index.partial && !index.partial.test(toMatchable(typed) as Document)) return undefined;
    let keys = [''];
    for (const vs of perField) {
      const next: string[] = [];
      for (const prefix of keys) for (const v of vs) next.push(`${prefix}|${keyOf(v)}`);
      keys = next;
    }
    const keyValue: Document = {};
    fields.forEach((f, i) => (keyValue[f] = perField[i]![0] ?? null));
    return {keys: [...new Set(keys)], keyValue};
  }

  private checkUnique(typed: Document | undefined, ownIdKey: string): Array<[IndexSpec, string[]]> {
    const planned: Array<[IndexSpec, string[]]> = [];
    if (!typed) return planned;
    for (const index of this.secondaryUnique()) {
      const e = this.entries(index, typed);
      if (!e) continue;
      const map = this.unique.get(index.name)!;
      for (const k of e.keys) {
        const holder = map.get(k);
        if (holder !== undefined && holder !== ownIdKey) throw this.dupError(index, e.keyValue);
      }
      planned.push([index, e.keys]);
    }
    return planned;
  }

  private addEntries(planned: Array<[IndexSpec, string[]]>, idKey: string): void {
    for (const [index, keys] of planned) {
      const map = this.unique.get(index.name)!;
      for (const k of keys) map.set(k, idKey);
    }
  }

  private removeEntries(rec: Rec): void {
    if (this.unique.size === 0) return;
    const typed = typedOf(rec);
    for (const index of this.secondaryUnique()) {
      const e = this.entries(index, typed);
      if (!e) continue;
      const map = this.unique.get(index.name)!;
      for (const k of e.keys) if (map.get(k) === rec.idKey) map.delete(k);
    }
  }

  /** Stores a new document; `_id` is moved first or generated, as mongod does. */
  insert(raw: Buffer, fallbackId?: unknown): Rec {
    const {bytes, id} = withIdFirst(raw, fallbackId);
    if (Array.isArray(id)) throw new CommandError(2, "can't use an array for _id");
    const idKey = keyOf(id);
    if (this.records.has(idKey)) throw this.dupError(ID_INDEX, {_id: id});
    const planned = this.checkUnique(this.unique.size > 0 ? decodeTyped(bytes) : undefined, idKey);
    const rec: Rec = {idKey, id, bytes};
    this.addEntries(planned, idKey);
    this.records.set(idKey, rec);
    return rec;
  }

  /** Swaps a record's bytes in place (keeping its natural order); `_id` must be unchanged. */
  replace(rec: Rec, bytes: Buffer): void {
    const planned = this.checkUnique(this.unique.size > 0 ? decodeTyped(bytes) : undefined, rec.idKey);
    this.removeEntries(rec);
    this.addEntries(planned, rec.idKey);
    rec.bytes = bytes;
    delete rec.match;
  }

  remove(rec: Rec): void {
    this.removeEntries(rec);
    this.records.delete(rec.idKey);
  }

  /** Adds an index; a unique one is built over existing data first and refused on duplicates. */
  addIndex(spec: Document): 'created' | 'exists' {
    const name = String(spec.name);
    const key = spec.key as Document;
    const same = this.indexes.find((i) => i.name === name);
    const unique = spec.unique === true || (typeof spec.unique === 'object' && spec.unique !== null);
    if (same) {
      if (keyOf(same.key) !== keyOf(key)) {
        throw new CommandError(86, `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(spec)}`);
      }
      if (same.unique !== unique) {
        throw new CommandError(85, `An equivalent index already exists with the same name but different options. Requested index: ${JSON.stringify(spec)}`);
      }
      return 'exists';
    }
    const other = this.indexes.find((i) => keyOf(i.key) === keyOf(key));
    if (other && other.unique === unique) return 'exists';
    if (other) {
      throw new CommandError(85, `An equivalent index already exists with a different name and options. Requested index: ${JSON.stringify(spec)}, existing index: ${JSON.stringify(other.spec)}`);
    }
    const partialFilter = spec.partialFilterExpression as Document | undefined;
    const index: IndexSpec = {
      name,
      key,
      unique,
      sparse: spec.sparse === true,
      partial: partialFilter ? new Query(toMatchable(partialFilter) as Document) : undefined,
      spec: {v: 2, ...spec},
    };
    if (unique) {
      const map = new Map<string, string>();
      for (const rec of this.records.values()) {
        const e = this.entries(index, typedOf(rec));
        if (!e) continue;
        for (const k of e.keys) {
          const holder = map.get(k);
          if (holder !== undefined && holder !== rec.idKey) throw this.dupError(index, e.keyValue, 'Index build failed: ');
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

  get(db: string, name: string): Collection | undefined {
    return this.dbs.get(db)?.get(name);
  }

  /** Collections appear on first write, as in mongod. */
  ensure(db: string, name: string, options: Document = {}): {coll: Collection; created: boolean} {
    const existing = this.get(db, name);
    if (existing) return {coll: existing, created: false};
    validateNames(db, name);
    let colls = this.dbs.get(db);
    if (!colls) {
      colls = new Map();
      this.dbs.set(db, colls);
    }
    const coll = new Collection(db, name, options);
    colls.set(name, coll);
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
