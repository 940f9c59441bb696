/**
 * The replay stage of `extract --at`: the collections that matter, as they were at TIME, from
 * their state in a base backup plus the oplog, in bounded memory whatever the sizes.
 *
 *   ops pass      the decoded operations (ts in [base point, TIME)) of those collections go to 64
 *                 partition files by `_id`; their keys go into a KeyFilter (16 bytes a key)
 *   base pass     each base document the filter says was not touched is emitted as it is, bytes
 *                 unchanged; a possibly touched one goes to its partition
 *   partition     one partition at a time: its base documents and operations in memory, each
 *   pass          document's operations applied in oplog order (applyOperation: exact bytes, or
 *                 an error), the state at TIME emitted (untouched ones emitted after all)
 *
 * Documents nobody touched keep backup order and come first; rebuilt and created ones follow, by
 * partition. Collection-wide operations (drop, dropDatabase, a rename away) are events every
 * document of the collection sees in order; a rename into a collection that matters, or a command
 * whose effect on documents is not known (importCollection, emptycapped…), stops the replay: the
 * result would not be exact.
 *
 * Why replaying from the base backup's point is sound even though some entries are already in
 * the dump: the oplog is idempotent (each entry re-applied to a later state gives the same end
 * state once every later entry is applied too, OPLOG.md §5 and the manual's replica-set oplog page);
 * an update of a document the base lacks is not upserted (§5 rule 4): it was deleted before the
 * dump read it, or it is created later by an insert, and both are in the replayed range.
 */
import {open, mkdir, readFile, rm, type FileHandle} from 'node:fs/promises';
import path from 'node:path';

import * as BSON from 'bson';
import {EJSON} from 'bson';

import {rawIdKey} from '../target/bson-util.js';
import {GravityError} from '../errors.js';
import {replayOperation} from './apply/index.js';
import {changesAny, fieldChanges} from './field-changes.js';
import {KeyFilter, hashKey} from './key-filter.js';
import {compareOpTime, formatOpTime} from './optime.js';
import type {DocumentOperation, OpTime, Operation} from './types.js';

const PARTITIONS = 64;
const OP_HEAD = 31;
const KINDS: Array<DocumentOperation['kind']> = ['insert', 'update', 'replace', 'delete'];
const FLUSH_BYTES = 256 * 1024;

export interface ReplayWindow {
  /** [since, until): the documents operations in it changed are reported in `changed`. */
  since: OpTime;
  until: OpTime;
  /** Only changes to these paths (or below / above them) count; null: any change. */
  fields: string[] | null;
}

export interface ReplayOptions {
  db: string;
  /** Collection names that matter (in `db`). */
  collections: string[];
  /** The base backup's documents of a collection, in backup order; null when the backup lacks it. */
  base: (collection: string) => AsyncIterable<Buffer> | null;
  /** Decoded operations in apply order, in batches, ts at or after the base's point; read until one at or after max(at, window.until). */
  operations: AsyncIterable<Operation[]>;
  /** State at TIME: every operation with ts < at applied. */
  at: OpTime;
  /**
   * Until this optime the base may already reflect an operation (a dump's capture window): mongod's
   * re-application rules apply (null for a mismatched type, …). After it, a document that is not the
   * pre-image an entry was written against stops the replay. Null: strict from the start.
   */
  consistentFrom: OpTime | null;
  window?: ReplayWindow;
  workDir: string;
  /** The documents of a collection as they were at TIME; called in order, possibly many times. */
  emit: (collection: string, docs: Buffer[]) => Promise<void>;
  signal?: AbortSignal;
  onProgress?: (p: {phase: 'oplog' | 'base' | 'rebuild'; operations: number; collection?: string; documents?: number}) => void;
}

export interface ReplayCounts {
  /** Emitted exactly as the base backup held them (no operation before TIME touched them). */
  fromBackup: number;
  /** In the base backup and changed by at least one operation before TIME, still present at TIME. */
  replayed: number;
  /** Not in the base backup, present at TIME (inserted after it). */
  createdAfterBackup: number;
  /** In the base backup or created after it, gone at TIME. */
  deleted: number;
  /** Updates of a document that did not exist then: not upserted (see the header). */
  updatesOfMissing: number;
  /** Operations applied to this collection. */
  operations: number;
  /** Documents where mongod's re-application rules were used inside the base's capture window. */
  reapplied: number;
}

export interface ReplayResult {
  collections: Record<string, ReplayCounts>;
  /** Operations read (all namespaces that matter), and the first and last ts among them. */
  operations: number;
  first: OpTime | null;
  last: OpTime | null;
  /** With a window: per collection, the `_id` keys of documents operations in it changed (exact). */
  changed?: Map<string, Set<string>>;
}

/** Collection-wide events, in oplog order: every document of the collection is gone after one. */
interface ClearEvent {
  seq: number;
  ts: OpTime;
  kind: string;
}

interface StoredOp {
  seq: number;
  collection: number;
  op: DocumentOperation;
}

export async function rebuild(options: ReplayOptions): Promise<ReplayResult> {
  const {collections} = options;
  const index = new Map(collections.map((c, i) => [c, i]));
  const counts: Record<string, ReplayCounts> = Object.fromEntries(
    collections.map((c) => [c, {fromBackup: 0, replayed: 0, createdAfterBackup: 0, deleted: 0, updatesOfMissing: 0, operations: 0, reapplied: 0}]),
  );
  await mkdir(options.workDir, {recursive: true, mode: 0o700});
  const parts = new PartitionFiles(options.workDir);
  try {
    const filters = collections.map(() => new KeyFilter());
    const clears: ClearEvent[][] = collections.map(() => []);
    const changed = options.window ? new Map(collections.map((c) => [c, new Set<string>()])) : undefined;
    const read = await opsPass(options, index, filters, clears, counts, parts);
    await parts.finish();
    for (const [i, collection] of collections.entries()) {
      await basePass(options, collection, i, filters[i]!, clears[i]!, counts[collection]!, parts);
    }
    await parts.finish();
    for (let p = 0; p < PARTITIONS; p++) {
      options.signal?.throwIfAborted();
      await rebuildPartition(options, p, clears, counts, parts, changed);
      options.onProgress?.({phase: 'rebuild', operations: read.operations, documents: p + 1});
    }
    return {collections: counts, ...read, ...(changed ? {changed} : {})};
  } finally {
    await parts.close();
    await rm(options.workDir, {recursive: true, force: true});
  }
}

async function opsPass(
  options: ReplayOptions,
  index: Map<string, number>,
  filters: KeyFilter[],
  clears: ClearEvent[][],
  counts: Record<string, ReplayCounts>,
  parts: PartitionFiles,
): Promise<{operations: number; first: OpTime | null; last: OpTime | null}> {
  const prefix = `${options.db}.`;
  const stop = options.window && compareOpTime(options.window.until, options.at) > 0 ? options.window.until : options.at;
  let seq = 0;
  let first: OpTime | null = null;
  let last: OpTime | null = null;
  const collectionOf = (ns: string): number | undefined => (ns.startsWith(prefix) ? index.get(ns.slice(prefix.length)) : undefined);
  reading: for await (const batch of options.operations) for (const op of batch) {
    if (compareOpTime(op.ts, stop) >= 0) break reading;
    const applies = compareOpTime(op.ts, options.at) < 0;
    seq++;
    if (op.kind === 'dropDatabase') {
      if (op.ns.split('.')[0] !== options.db) continue;
      if (applies) for (const list of clears) list.push({seq, ts: op.ts, kind: 'dropDatabase'});
      continue;
    }
    const c = collectionOf(op.ns);
    if (op.kind === 'rename') {
      const into = op.to === undefined ? undefined : collectionOf(op.to);
      if (into !== undefined && applies) {
        throw unsupported(op.ts, `a rename of ${op.ns} into ${op.to}, a collection that matters`, 'its documents come from a collection this extract does not read');
      }
      if (c !== undefined && applies) clears[c]!.push({seq, ts: op.ts, kind: `renamed to ${op.to ?? '?'}`});
      continue;
    }
    if (c === undefined) continue;
    const collection = options.collections[c]!;
    if (op.kind === 'drop') {
      if (applies) clears[c]!.push({seq, ts: op.ts, kind: 'drop'});
      continue;
    }
    if (op.kind === 'create') continue;
    if (op.kind === 'unsupported') {
      if (applies) throw unsupported(op.ts, `the command ${op.command ?? '?'} on ${op.ns}`, 'its effect on documents cannot be replayed exactly');
      continue;
    }
    if (!isDocumentOperation(op)) continue;
    if (!first) first = op.ts;
    last = op.ts;
    // Operations after TIME are kept only to judge the window (--changed-between), never applied to the result.
    if (!applies && !options.window) continue;
    filters[c]!.add(op.idKey);
    if (applies) counts[collection]!.operations++;
    await parts.appendOp(partitionOf(op.idKey), seq, c, op);
    if (seq % 10_000 === 0) {
      options.signal?.throwIfAborted();
      options.onProgress?.({phase: 'oplog', operations: seq});
    }
  }
  return {operations: seq, first, last};
}

async function basePass(options: ReplayOptions, collection: string, c: number, filter: KeyFilter, clears: ClearEvent[], counts: ReplayCounts, parts: PartitionFiles): Promise<void> {
  const base = options.base(collection);
  if (!base) return;
  // A collection dropped (or renamed away) before TIME keeps none of its base documents untouched.
  const cleared = clears.length > 0;
  let batch: Buffer[] = [];
  let ordinal = 0;
  for await (const doc of base) {
    ordinal++;
    const key = rawIdKey(doc);
    if (filter.size > 0 && filter.mightHave(key)) {
      await parts.appendBase(partitionOf(key), c, key, doc);
    } else if (cleared) {
      counts.deleted++;
    } else {
      counts.fromBackup++;
      batch.push(doc);
      if (batch.length >= 1000) {
        await options.emit(collection, batch);
        batch = [];
      }
    }
    if (ordinal % 50_000 === 0) {
      options.signal?.throwIfAborted();
      options.onProgress?.({phase: 'base', operations: 0, collection, documents: ordinal});
    }
  }
  if (batch.length > 0) await options.emit(collection, batch);
}

async function rebuildPartition(
  options: ReplayOptions,
  p: number,
  clears: ClearEvent[][],
  counts: Record<string, ReplayCounts>,
  parts: PartitionFiles,
  changed: Map<string, Set<string>> | undefined,
): Promise<void> {
  const {collections} = options;
  // Per collection: key → base document, key → operations in oplog order.
  const bases = collections.map(() => new Map<string, Buffer>());
  const ops = collections.map(() => new Map<string, StoredOp[]>());
  for (const rec of await parts.readBase(p)) bases[rec.collection]!.set(rec.key, rec.doc);
  for (const rec of await parts.readOps(p)) {
    const list = ops[rec.collection]!.get(rec.op.idKey);
    if (list) list.push(rec);
    else ops[rec.collection]!.set(rec.op.idKey, [rec]);
  }
  for (const [c, collection] of collections.entries()) {
    const out: Buffer[] = [];
    const tally = counts[collection]!;
    const events = clears[c]!;
    for (const [key, list] of ops[c]!) {
      const base = bases[c]!.get(key) ?? null;
      bases[c]!.delete(key);
      const {state, window} = evolve(options, base, list, events, tally);
      if (window) changed!.get(collection)!.add(key);
      if (state === null) {
        if (base !== null) tally.deleted++;
        continue;
      }
      if (base === null) tally.createdAfterBackup++;
      else tally.replayed++;
      out.push(state);
    }
    // Possibly touched by the filter's word, touched by nothing: as the backup held them.
    for (const doc of bases[c]!.values()) {
      if (events.length > 0) {
        tally.deleted++;
        continue;
      }
      tally.fromBackup++;
      out.push(doc);
    }
    if (out.length > 0) await options.emit(collection, out);
  }
}

/**
 * One document through its operations in oplog order: the state at TIME (the last state before the
 * first operation at or after TIME), and, with a window, whether an operation in it changed the
 * document (the fields asked for, judged on the exact states before and after each operation).
 */
function evolve(options: ReplayOptions, base: Buffer | null, list: StoredOp[], events: ClearEvent[], tally: ReplayCounts): {state: Buffer | null; window: boolean} {
  const {at, window} = options;
  let state = base;
  let atTime: Buffer | null | undefined;
  let changedInWindow = false;
  let reapplied = false;
  let e = 0;
  for (const stored of list) {
    const {op} = stored;
    while (e < events.length && events[e]!.seq < stored.seq) {
      state = null;
      e++;
    }
    const after = compareOpTime(op.ts, at) >= 0;
    if (after && atTime === undefined) atTime = state;
    // Past TIME the operations only serve the window; once it is decided there is nothing left to learn.
    if (after && (!window || changedInWindow)) break;
    if (state === null && (op.kind === 'update' || op.kind === 'replace')) {
      if (!after) tally.updatesOfMissing++;
      continue;
    }
    const before = state;
    const inCapture = options.consistentFrom !== null && compareOpTime(op.ts, options.consistentFrom) <= 0;
    const result = replayOperation(state, op, {mode: inCapture ? 'idempotent' : 'strict'});
    if (result.provisional.length > 0) reapplied = true;
    state = result.doc;
    if (window && !changedInWindow && !op.fromMigrate && inWindow(op.ts, window)) changedInWindow = changesFields(op, before, state, window.fields);
  }
  if (reapplied) tally.reapplied++;
  // A drop (every event here is before TIME) after the document's last operation leaves nothing.
  if (atTime === undefined) atTime = e < events.length ? null : state;
  return {state: atTime, window: changedInWindow};
}

function isDocumentOperation(op: Operation): op is DocumentOperation {
  return op.kind === 'insert' || op.kind === 'update' || op.kind === 'replace' || op.kind === 'delete';
}

function inWindow(ts: OpTime, window: ReplayWindow): boolean {
  return compareOpTime(ts, window.since) >= 0 && compareOpTime(ts, window.until) < 0;
}

/** Whether an operation changed one of `fields` (null: anything): a path counts when it is the field, lies below it, or holds it. */
function changesFields(op: DocumentOperation, before: Buffer | null, after: Buffer | null, fields: string[] | null): boolean {
  if (fields === null) return true;
  if (before === null || after === null) return fields.some((f) => valueAt(before, f) !== valueAt(after, f));
  if (op.kind === 'update') return changesAny(fieldChanges(op, before), fields);
  return fields.some((f) => valueAt(before, f) !== valueAt(after, f));
}

/** The value at a dotted path in canonical Extended JSON (types and order kept), undefined when absent. */
function valueAt(doc: Buffer | null, field: string): string | undefined {
  if (doc === null) return undefined;
  let value: unknown = BSON.deserialize(doc, {promoteValues: false, promoteBuffers: false, bsonRegExp: true});
  for (const part of field.split('.')) {
    if (value === null || typeof value !== 'object' || !(part in (value as Record<string, unknown>))) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return EJSON.stringify({v: value}, {relaxed: false});
}

function unsupported(ts: OpTime, what: string, why: string): GravityError {
  return new GravityError('OPLOG_UNSUPPORTED', `Cannot replay ${what} at ${formatOpTime(ts)}: ${why}`, {
    hint: 'Choose a TIME before it (--at), or restore from a backup taken after it',
  });
}

function partitionOf(key: string): number {
  return hashKey(key)[1] % PARTITIONS;
}

/** Spill files: per partition one of base documents and one of operations, appended with buffering. */
class PartitionFiles {
  private handles = new Map<string, FileHandle>();
  private pending = new Map<string, Buffer>();
  private pendingBytes = new Map<string, number>();

  constructor(private readonly dir: string) {}

  async appendBase(p: number, collection: number, key: string, doc: Buffer): Promise<void> {
    const k = Buffer.from(key, 'utf8');
    const head = Buffer.alloc(10);
    head.writeUInt16LE(collection, 0);
    head.writeUInt32LE(k.length, 2);
    head.writeUInt32LE(doc.length, 6);
    await this.append(`base-${p}`, [head, k, doc]);
  }

  async appendOp(p: number, seq: number, collection: number, op: DocumentOperation): Promise<void> {
    // A fixed binary head (no JSON: millions of operations pass here), then key, namespace, _id and o.
    const key = Buffer.from(op.idKey, 'utf8');
    const ns = Buffer.from(op.ns, 'utf8');
    const head = Buffer.allocUnsafe(OP_HEAD);
    head.writeUInt32LE(seq, 0);
    head.writeUInt16LE(collection, 4);
    head.writeUInt8(KINDS.indexOf(op.kind), 6);
    head.writeUInt8((op.transaction ? 1 : 0) | (op.fromMigrate ? 2 : 0), 7);
    head.writeUInt32LE(op.ts.t >>> 0, 8);
    head.writeUInt32LE(op.ts.i >>> 0, 12);
    head.writeUInt8(op.id.type, 16);
    head.writeUInt32LE(key.length, 17);
    head.writeUInt16LE(ns.length, 21);
    head.writeUInt32LE(op.id.bytes.length, 23);
    head.writeUInt32LE(op.o.length, 27);
    await this.append(`ops-${p}`, [head, key, ns, op.id.bytes, op.o]);
  }

  async readBase(p: number): Promise<Array<{collection: number; key: string; doc: Buffer}>> {
    const data = await this.read(`base-${p}`);
    const out: Array<{collection: number; key: string; doc: Buffer}> = [];
    for (let at = 0; at < data.length; ) {
      const collection = data.readUInt16LE(at);
      const klen = data.readUInt32LE(at + 2);
      const dlen = data.readUInt32LE(at + 6);
      const key = data.toString('utf8', at + 10, at + 10 + klen);
      const doc = data.subarray(at + 10 + klen, at + 10 + klen + dlen);
      out.push({collection, key, doc});
      at += 10 + klen + dlen;
    }
    return out;
  }

  async readOps(p: number): Promise<StoredOp[]> {
    const data = await this.read(`ops-${p}`);
    const out: StoredOp[] = [];
    for (let at = 0; at < data.length; ) {
      const klen = data.readUInt32LE(at + 17);
      const nlen = data.readUInt16LE(at + 21);
      const ilen = data.readUInt32LE(at + 23);
      const olen = data.readUInt32LE(at + 27);
      const flags = data.readUInt8(at + 7);
      let q = at + OP_HEAD;
      const idKey = data.toString('utf8', q, q + klen);
      q += klen;
      const ns = data.toString('utf8', q, q + nlen);
      q += nlen;
      const id = data.subarray(q, q + ilen);
      q += ilen;
      const o = data.subarray(q, q + olen);
      out.push({
        seq: data.readUInt32LE(at),
        collection: data.readUInt16LE(at + 4),
        op: {
          kind: KINDS[data.readUInt8(at + 6)]!,
          ts: {t: data.readUInt32LE(at + 8), i: data.readUInt32LE(at + 12)},
          wall: null,
          ns,
          ui: null,
          transaction: (flags & 1) !== 0,
          fromMigrate: (flags & 2) !== 0,
          id: {type: data.readUInt8(at + 16), bytes: id},
          idKey,
          o,
        },
      });
      at = q + olen;
    }
    return out;
  }

  /** Flush and close every file (between passes, and before reading them back). */
  async finish(): Promise<void> {
    for (const name of [...this.pending.keys()]) await this.flush(name);
    for (const handle of this.handles.values()) await handle.close();
    this.handles.clear();
  }

  async close(): Promise<void> {
    for (const handle of this.handles.values()) await handle.close().catch(() => undefined);
    this.handles.clear();
    this.pending.clear();
  }

  /**
   * Pieces are copied into the partition's buffer at once: they are views of large inflated chunks,
   * and a reference kept until the flush would keep each whole chunk alive (64 partitions' worth).
   */
  private async append(name: string, pieces: Buffer[]): Promise<void> {
    const size = pieces.reduce((n, b) => n + b.length, 0);
    let buffer = this.pending.get(name);
    let used = this.pendingBytes.get(name) ?? 0;
    if (buffer && used + size > buffer.length) {
      await this.flush(name);
      used = 0;
    }
    if (!buffer || size > buffer.length) {
      buffer = Buffer.allocUnsafe(Math.max(FLUSH_BYTES, size));
      this.pending.set(name, buffer);
    }
    for (const piece of pieces) used += piece.copy(buffer, used);
    this.pendingBytes.set(name, used);
  }

  private async flush(name: string): Promise<void> {
    const buffer = this.pending.get(name);
    const used = this.pendingBytes.get(name) ?? 0;
    if (!buffer || used === 0) return;
    let handle = this.handles.get(name);
    if (!handle) {
      handle = await open(path.join(this.dir, name), 'a', 0o600);
      this.handles.set(name, handle);
    }
    await handle.write(buffer, 0, used);
    this.pendingBytes.set(name, 0);
  }

  private async read(name: string): Promise<Buffer> {
    try {
      return await readFile(path.join(this.dir, name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
      throw error;
    }
  }
}
