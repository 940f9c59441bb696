/**
 * Oplog entries flattened into per-document (and per-collection) operations in the order mongod
 * applied them. Facts from OPLOG.md:
 * - §1: `_id` is taken BY NAME from `o2` (updates) or `o` (inserts, deletes): a sharded collection's
 *   document key puts the shard key fields first (trap 9);
 * - §2.1: an update's `o` is a `$v:2` delta, a `$v:1` (or `$`-led) modifier update, or a replacement;
 * - §3.1: `applyOps` hides non-transactional batches (6.1+ batched deletes, 8.0 vectored inserts with
 *   `multiOpType: 1`, applied at once even inside a retryable session) and transactions, which are
 *   buffered by (lsid, txnNumber) — `partialTxn` chains until the entry without it, `prepare` until
 *   `commitTransaction` — and applied at the committing entry's `ts` (not `commitTimestamp`, trap 10);
 *   `abortTransaction` drops them; 4.0 transactions (one entry, no `prevOpTime`) apply at once;
 *   inner operations inherit the outer entry's `ts` and `wall`;
 * - §3.2/§3.3: index builds, collMod and similar commands change no document and are skipped;
 *   drop, dropDatabase and renameCollection (full namespaces, `dropTarget`) are collection operations;
 *   commands that replace a collection's content some other way are `unsupported` when they touch a
 *   namespace that matters;
 * - §4: no-op `n` entries are skipped, including findAndModify / recordPreImages images that carry a
 *   user namespace and a whole document (trap 2); unknown operation types (`xi`, `xd`, `km`, …) are
 *   skipped and counted.
 * Buffered transaction operations are only those of namespaces that matter, bounded by the transaction.
 */
import {GravityError} from '../errors.js';
import {rawIdKey} from '../target/bson-util.js';
import {compareOpTime, formatOpTime} from './optime.js';
import {
  MalformedBson,
  T_ARRAY,
  T_BINARY,
  T_DATE,
  T_DOCUMENT,
  T_OBJECT_ID,
  elements,
  embedded,
  findElement,
  makeDocument,
  makeElement,
  readFlag,
  readNumber,
  readString,
  valueBytes,
  type RawElement,
} from './raw.js';
import type {CollectionOperation, DocumentOperation, OpTime, Operation, RawOplogEntry} from './types.js';

export interface DecodeOptions {
  /** Whether a `db.coll` namespace matters (default: all do). */
  namespaces?: (ns: string) => boolean;
  /** First optime not applied (exclusive): "state just before TIME". Entries are in ts order, so reading stops there. */
  until?: OpTime;
  /** Counters filled in while decoding. */
  stats?: DecodeStats;
}

export interface DecodeStats {
  entries: number;
  operations: number;
  /** `n` entries, images included. */
  noops: number;
  /** Commands that change no document (index builds, collMod, …), by name. */
  skippedCommands: Record<string, number>;
  /** Entries of operation types the replayer does not know (`xi`, `xd`, `km`, …), by type. */
  unknownOps: Record<string, number>;
  committedTransactions: number;
  abortedTransactions: number;
  /**
   * Optimes of commitTransaction entries whose transaction's operations were not in the stream (it
   * began before the first entry read): what they wrote is unknown here. The caller decides.
   */
  commitsWithoutOperations: OpTime[];
  /** Transactions still open when the stream ended (or `until` was reached): not applied. */
  openTransactions: number;
}

export function newDecodeStats(): DecodeStats {
  return {
    entries: 0,
    operations: 0,
    noops: 0,
    skippedCommands: {},
    unknownOps: {},
    committedTransactions: 0,
    abortedTransactions: 0,
    commitsWithoutOperations: [],
    openTransactions: 0,
  };
}

/** Commands that change no document (MT `mongorestore/oplog.go` skips or defers the same ones). */
const NO_DOCUMENT_CHANGE = new Set([
  'createIndexes',
  'startIndexBuild',
  'commitIndexBuild',
  'abortIndexBuild',
  'dropIndexes',
  'dropIndex',
  'deleteIndex',
  'deleteIndexes',
  'collMod',
  'dbCheck',
  'setMultikeyMetadata',
  'dropIdent',
]);

/**
 * Commands that change a collection's documents other than by CRUD entries (OPLOG.md §3.3), with the
 * field naming the collection they write: the replayer cannot say what the documents became.
 */
const CONTENT_REPLACING: Record<string, string> = {
  importCollection: 'importCollection',
  emptycapped: 'emptycapped',
  convertToCapped: 'convertToCapped',
  cloneCollectionAsCapped: 'toCollection',
  upgradeDowngradeViewlessTimeseries: 'upgradeDowngradeViewlessTimeseries',
};

type Fields = Map<string, RawElement>;

interface Outer {
  ts: OpTime;
  wall: Date | null;
}

interface OpenTransaction {
  ops: Operation[];
}

function fieldsOf(doc: Buffer): Fields {
  const out: Fields = new Map();
  for (const el of elements(doc)) if (!out.has(el.key)) out.set(el.key, el);
  return out;
}

function corrupt(ts: OpTime, what: string): GravityError {
  return new GravityError('OPLOG_CORRUPT', `Oplog entry at ${formatOpTime(ts)} ${what}`, {
    hint: 'The oplog source is damaged or not an oplog; check the file, or read the oplog from another source',
    details: {ts},
  });
}

function uuidHex(doc: Buffer, el: RawElement | undefined): string | null {
  if (!el || el.type !== T_BINARY) return null;
  return doc.toString('hex', el.valueStart + 5, el.end);
}

function wallOf(doc: Buffer, el: RawElement | undefined): Date | null {
  if (!el || el.type !== T_DATE) return null;
  return new Date(Number(doc.readBigInt64LE(el.valueStart)));
}

export class OplogDecoder {
  private readonly matters: (ns: string) => boolean;
  private readonly open = new Map<string, OpenTransaction>();
  readonly stats: DecodeStats;

  constructor(options: {namespaces?: (ns: string) => boolean; stats?: DecodeStats} = {}) {
    this.matters = options.namespaces ?? (() => true);
    this.stats = options.stats ?? newDecodeStats();
  }

  /** The operations one entry applies now (none while its transaction is still open). */
  decode(entry: RawOplogEntry): Operation[] {
    this.stats.entries++;
    const out: Operation[] = [];
    let fields: Fields;
    try {
      fields = fieldsOf(entry.raw);
    } catch (error) {
      if (error instanceof MalformedBson) throw corrupt(entry.ts, `is not valid BSON (${error.message})`);
      throw error;
    }
    const outer: Outer = {ts: entry.ts, wall: wallOf(entry.raw, fields.get('wall'))};
    try {
      this.handle(entry.raw, fields, outer, true, out);
    } catch (error) {
      if (error instanceof MalformedBson) throw corrupt(entry.ts, `holds invalid BSON (${error.message})`);
      throw error;
    }
    this.stats.operations += out.length;
    return out;
  }

  /** Call at the end of the stream: counts transactions never committed. */
  finish(): void {
    this.stats.openTransactions = this.open.size;
  }

  private handle(doc: Buffer, f: Fields, outer: Outer, topLevel: boolean, out: Operation[], inTransaction = false): void {
    const opEl = f.get('op');
    const op = opEl ? readString(doc, opEl) : undefined;
    if (op === undefined) throw corrupt(outer.ts, 'has no operation type ("op")');
    switch (op) {
      case 'n':
        if (topLevel) this.stats.noops++;
        return;
      case 'i':
      case 'u':
      case 'd':
        this.crud(doc, f, op, outer, out, inTransaction);
        return;
      case 'c':
        this.command(doc, f, outer, topLevel, out, inTransaction);
        return;
      default:
        this.stats.unknownOps[op] = (this.stats.unknownOps[op] ?? 0) + 1;
    }
  }

  private base(doc: Buffer, f: Fields, ns: string, outer: Outer, inTransaction: boolean) {
    const fm = f.get('fromMigrate');
    return {
      ts: outer.ts,
      wall: outer.wall,
      ns,
      ui: uuidHex(doc, f.get('ui')),
      transaction: inTransaction,
      fromMigrate: readFlag(doc, fm),
    };
  }

  private crud(doc: Buffer, f: Fields, op: 'i' | 'u' | 'd', outer: Outer, out: Operation[], inTransaction: boolean): void {
    const nsEl = f.get('ns');
    const ns = nsEl ? readString(doc, nsEl) : undefined;
    if (ns === undefined) throw corrupt(outer.ts, `("${op}") has no namespace`);
    if (!this.matters(ns)) return;
    const oEl = f.get('o');
    if (!oEl || oEl.type !== T_DOCUMENT) throw corrupt(outer.ts, `on ${ns} has no document "o"`);
    const o = Buffer.from(embedded(doc, oEl));
    // The document key: `o2` for updates, `o` itself for inserts and deletes; `_id` by name (trap 9).
    let keyDoc: Buffer = o;
    if (op === 'u') {
      const o2 = f.get('o2');
      if (!o2 || o2.type !== T_DOCUMENT) throw corrupt(outer.ts, `(update on ${ns}) has no document key "o2"`);
      keyDoc = embedded(doc, o2);
    }
    const idEl = findElement(keyDoc, '_id');
    if (!idEl) throw corrupt(outer.ts, `on ${ns} names no _id`);
    // Inserts and deletes take the _id from the copied `o`; an update's from `o2`, copied.
    const idBytes = keyDoc === o ? valueBytes(o, idEl) : Buffer.from(valueBytes(keyDoc, idEl));
    const id = {type: idEl.type, bytes: idBytes};
    // One literal in one field order: V8 keeps every operation the same shape.
    const result: DocumentOperation = {
      ts: outer.ts,
      wall: outer.wall,
      ns,
      ui: uuidHex(doc, f.get('ui')),
      transaction: inTransaction,
      fromMigrate: readFlag(doc, f.get('fromMigrate')),
      kind: op === 'i' ? 'insert' : op === 'd' ? 'delete' : classifyUpdate(o),
      id,
      idKey: idKeyOf(id),
      o,
    };
    out.push(result);
  }

  private collectionOp(doc: Buffer, f: Fields, ns: string, outer: Outer, inTransaction: boolean, extra: Pick<CollectionOperation, 'kind'> & Partial<CollectionOperation>): CollectionOperation {
    return {...this.base(doc, f, ns, outer, inTransaction), ...extra};
  }

  private command(doc: Buffer, f: Fields, outer: Outer, topLevel: boolean, out: Operation[], inTransaction: boolean): void {
    const nsEl = f.get('ns');
    const cmdNs = nsEl ? (readString(doc, nsEl) ?? '') : '';
    const db = cmdNs.includes('.') ? cmdNs.slice(0, cmdNs.indexOf('.')) : cmdNs;
    const oEl = f.get('o');
    if (!oEl || oEl.type !== T_DOCUMENT) throw corrupt(outer.ts, `(command on ${cmdNs}) has no document "o"`);
    const o = embedded(doc, oEl);
    const of = fieldsOf(o);
    const first = elements(o)[0];
    if (!first) throw corrupt(outer.ts, `(command on ${cmdNs}) is empty`);
    const name = first.key;
    const str = (key: string) => {
      const el = of.get(key);
      return el ? readString(o, el) : undefined;
    };
    switch (name) {
      case 'applyOps':
        this.applyOps(doc, f, o, of, outer, topLevel, out, inTransaction);
        return;
      case 'commitTransaction': {
        const key = topLevel ? transactionKey(doc, f) : null;
        const open = key ? this.open.get(key) : undefined;
        if (!key || !open) {
          this.stats.commitsWithoutOperations.push(outer.ts);
          return;
        }
        this.open.delete(key);
        this.commit(open.ops, outer, out);
        return;
      }
      case 'abortTransaction': {
        const key = topLevel ? transactionKey(doc, f) : null;
        if (key && this.open.delete(key)) this.stats.abortedTransactions++;
        return;
      }
      case 'create': {
        const coll = str('create');
        if (coll !== undefined && this.matters(`${db}.${coll}`)) out.push(this.collectionOp(doc, f, `${db}.${coll}`, outer, inTransaction, {kind: 'create'}));
        return;
      }
      case 'drop': {
        const coll = str('drop');
        if (coll !== undefined && this.matters(`${db}.${coll}`)) out.push(this.collectionOp(doc, f, `${db}.${coll}`, outer, inTransaction, {kind: 'drop'}));
        return;
      }
      case 'dropDatabase':
        // Which collections it removed is the caller's to say: the namespace is the database alone.
        out.push(this.collectionOp(doc, f, db, outer, inTransaction, {kind: 'dropDatabase'}));
        return;
      case 'renameCollection': {
        // Both values are full namespaces (OPLOG.md §3.3); `dropTarget` is the dropped UUID, or true in old entries.
        const from = str('renameCollection');
        const to = str('to');
        if (from === undefined || to === undefined) throw corrupt(outer.ts, 'is a renameCollection without its namespaces');
        if (!this.matters(from) && !this.matters(to)) return;
        const dt = of.get('dropTarget');
        const dropTarget = dt !== undefined && !(dt.type === 0x08 && o[dt.valueStart] === 0) && dt.type !== 0x0a;
        out.push(this.collectionOp(doc, f, from, outer, inTransaction, {kind: 'rename', to, dropTarget}));
        return;
      }
      default:
        break;
    }
    if (NO_DOCUMENT_CHANGE.has(name)) {
      this.stats.skippedCommands[name] = (this.stats.skippedCommands[name] ?? 0) + 1;
      return;
    }
    const target = str(CONTENT_REPLACING[name] ?? name);
    const ns = target === undefined ? null : `${db}.${target}`;
    if (CONTENT_REPLACING[name] !== undefined ? ns === null || this.matters(ns) : ns !== null && this.matters(ns)) {
      // A command that rewrites documents some other way (or one this replayer does not know) on a namespace that matters.
      out.push(this.collectionOp(doc, f, ns ?? cmdNs, outer, inTransaction, {kind: 'unsupported', command: Buffer.from(name, 'latin1').toString('utf8')}));
      return;
    }
    this.stats.skippedCommands[name] = (this.stats.skippedCommands[name] ?? 0) + 1;
  }

  private applyOps(doc: Buffer, f: Fields, o: Buffer, of: Fields, outer: Outer, topLevel: boolean, out: Operation[], inTransaction: boolean): void {
    const list = of.get('applyOps');
    if (!list || list.type !== T_ARRAY) throw corrupt(outer.ts, 'is an applyOps without its array of operations');
    const inner = embedded(o, list);
    const multiOpType = f.get('multiOpType');
    const vectored = multiOpType !== undefined && readNumber(doc, multiOpType) === 1;
    const key = topLevel && !vectored ? transactionKey(doc, f) : null;
    if (!key) {
      // Not a transaction: batched deletes, vectored inserts, a plain applyOps: each inner op now, in order.
      for (const el of elements(inner)) {
        if (el.type !== T_DOCUMENT) throw corrupt(outer.ts, 'has an applyOps entry that is not a document');
        const sub = embedded(inner, el);
        this.handle(sub, fieldsOf(sub), outer, false, out, inTransaction);
      }
      return;
    }
    const ops: Operation[] = [];
    for (const el of elements(inner)) {
      if (el.type !== T_DOCUMENT) throw corrupt(outer.ts, 'has an applyOps entry that is not a document');
      const sub = embedded(inner, el);
      this.handle(sub, fieldsOf(sub), outer, false, ops, true);
    }
    const open = this.open.get(key);
    if (open) open.ops.push(...ops);
    if (readFlag(o, of.get('partialTxn')) || readFlag(o, of.get('prepare'))) {
      // More entries follow (partialTxn), or the commit decides (prepare).
      if (!open) this.open.set(key, {ops});
      return;
    }
    this.open.delete(key);
    this.commit(open ? open.ops : ops, outer, out);
  }

  private commit(ops: Operation[], outer: Outer, out: Operation[]): void {
    this.stats.committedTransactions++;
    for (const op of ops) out.push({...op, ts: outer.ts, wall: outer.wall, transaction: true});
  }
}

/** The tool's `_id` key (bson-util idKey); an ObjectId's is its canonical text, spelled without building a document. */
function idKeyOf(id: {type: number; bytes: Buffer}): string {
  if (id.type === T_OBJECT_ID) return `{"$oid":"${id.bytes.toString('hex')}"}`;
  return rawIdKey(makeDocument([makeElement(id.type, '_id', id.bytes)]));
}

/** (lsid, txnNumber) of a transaction entry, null when it has none (not a transaction). */
function transactionKey(doc: Buffer, f: Fields): string | null {
  const lsid = f.get('lsid');
  const txn = f.get('txnNumber');
  if (!lsid || !txn) return null;
  return `${valueBytes(doc, lsid).toString('hex')}:${readNumber(doc, txn) ?? valueBytes(doc, txn).toString('hex')}`;
}

/**
 * OPLOG.md §2.1: `$v: 2` → delta; a replacement has `_id` (newest servers) or a first field without
 * `$` (older ones); `$v: 1` or a `$`-led first field → modifiers. `$v` is compared numerically.
 */
export function classifyUpdate(o: Buffer): 'update' | 'replace' {
  const els = elements(o);
  const v = els.find((el) => el.key === '$v');
  const version = v ? readNumber(o, v) : undefined;
  if (version === 2) return 'update';
  if (els.some((el) => el.key === '_id')) return 'replace';
  if (version === 1) return 'update';
  const first = els[0];
  return first !== undefined && first.key.startsWith('$') ? 'update' : 'replace';
}

/** Entries (in ts order) as operations in apply order, stopping before `until`. */
export async function* decodeOperations(entries: AsyncIterable<RawOplogEntry>, options: DecodeOptions = {}): AsyncGenerator<Operation> {
  const decoder = new OplogDecoder(options);
  try {
    for await (const entry of entries) {
      if (options.until && compareOpTime(entry.ts, options.until) >= 0) break;
      for (const op of decoder.decode(entry)) yield op;
    }
  } finally {
    decoder.finish();
  }
}

/**
 * The same operations in arrays of up to `batchSize`: one await per batch rather than per operation,
 * for a consumer that goes through millions of them.
 */
export async function* decodeOperationBatches(entries: AsyncIterable<RawOplogEntry>, options: DecodeOptions = {}, batchSize = 512): AsyncGenerator<Operation[]> {
  const decoder = new OplogDecoder(options);
  let batch: Operation[] = [];
  try {
    for await (const entry of entries) {
      if (options.until && compareOpTime(entry.ts, options.until) >= 0) break;
      for (const op of decoder.decode(entry)) batch.push(op);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  } finally {
    decoder.finish();
  }
}
