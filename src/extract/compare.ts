/**
 * The compare stage, shared by `diff` and `extract --missing-in/--changed-in`: each document of a
 * FROM collection (in backup order) is looked up by `_id` on the AGAINST side (another backup or a
 * live target) and found missing, changed (other bytes) or the same.
 *
 * `_id`s compare as the server's `_id` index compares them (idKey of the exact form: 5 and
 * NumberLong(5) are one `_id`, subdocument keys keep their order); documents compare by raw bytes
 * (field order and numeric types count). Against a backup, the AGAINST side is read once into an
 * `_id` table (digest + where the document lies in a local spool) that spills to disk past a limit;
 * against a target, lookups are batched `_id` reads, never a scan (unless `added` is asked for).
 */
import {hash} from 'node:crypto';
import {closeSync, openSync, readSync} from 'node:fs';
import {rm} from 'node:fs/promises';
import path from 'node:path';

import type {Document, Filter} from 'mongodb';

import {readDump} from '../dump/read.js';
import type {DumpInput} from '../dump/types.js';
import {GravityError} from '../errors.js';
import {compileQuery} from '../query/compile.js';
import {idKey, idToJson} from '../target/bson-util.js';
import {fieldDiff} from '../target/diff.js';
import {exactId} from '../target/exact.js';
import type {TargetConnection} from '../target/types.js';
import {decodeRecords, IdTable, Partitions, PARTITIONS, memoryLimit, type IdRecord} from './id-table.js';
import {SpoolFile} from './spool.js';

import {CHANGED, MISSING, SAME} from './compare-status.js';

export {CHANGED, MISSING, SAME};

export interface FieldSummary {
  changed: number;
  nulled: number;
  removed: number;
  added: number;
  /** Up to EXAMPLES `_id`s (canonical Extended JSON) of documents where this path changed. */
  examples: unknown[];
}

export interface CollectionComparison {
  missing: number;
  changed: number;
  same: number;
  /** In AGAINST, absent from FROM; null when not computed (a live target without --added). */
  added: number | null;
  fields: Record<string, FieldSummary>;
  /** Status of every FROM document by ordinal (SAME, CHANGED, MISSING). */
  statuses: Uint8Array;
}

export interface AgainstInfo {
  kind: 'backup' | 'target';
  /** Backup id, path, or masked target label. */
  label: string;
  backup?: string | null;
  location?: string;
  takenAt?: string | null;
  target?: string;
  db?: string;
}

export interface CompareOptions {
  /** Per-field summaries of changed documents (diff); extract needs only the statuses. */
  fields: boolean;
  /** Count AGAINST documents absent from FROM (for a target this scans it). */
  added: boolean;
  /** Restricts what is counted on both sides (FROM documents and added AGAINST documents). */
  filter?: Document;
  /** Against a target: only these FROM documents are looked up; the others count as the same (never kept). */
  only?: (doc: Buffer) => boolean;
}

export interface CollectionComparer {
  /** The next FROM documents in backup order. */
  add(docs: Buffer[]): Promise<void>;
  finish(): Promise<CollectionComparison>;
}

export interface Against {
  info: AgainstInfo;
  /** The comparer for one FROM namespace; UNKNOWN_COLLECTION when AGAINST does not hold it. */
  comparer(db: string, collection: string, options: CompareOptions): Promise<CollectionComparer>;
  close(): Promise<void>;
}

const EXAMPLES = 5;
const ZERO_DIGEST = Buffer.alloc(32);

const OID_PREFIX = Buffer.from([0x07, 0x5f, 0x69, 0x64, 0x00]);

/**
 * A key for the document's `_id`, equal for two documents exactly when their idKeys (the server's
 * `_id` equality on the exact form) are equal. mongodump writes `_id` first; an ObjectId there is
 * keyed by its 12 bytes (an ObjectId equals only itself), anything else by its idKey.
 */
export function docKey(raw: Buffer): string {
  if (raw.length >= 21 && raw.compare(OID_PREFIX, 0, 5, 4, 9) === 0) return `o${raw.toString('latin1', 9, 21)}`;
  const id = exactId(raw);
  // An ObjectId found the slow way (not first) gets the same key as the fast way.
  if ((id as {_bsontype?: string} | null)?._bsontype === 'ObjectId') return `o${Buffer.from((id as {id: Uint8Array}).id).toString('latin1')}`;
  return `k${idKey(id)}`;
}

export function digestOf(raw: Buffer): Buffer {
  return hash('sha256', raw, 'buffer') as unknown as Buffer;
}

class Statuses {
  data = new Uint8Array(1024);
  length = 0;
  set(ordinal: number, status: number): void {
    if (ordinal >= this.data.length) {
      const grown = new Uint8Array(Math.max(ordinal + 1, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    this.data[ordinal] = status;
    if (ordinal >= this.length) this.length = ordinal + 1;
  }
  result(): Uint8Array {
    return this.data.slice(0, this.length);
  }
}

/** Counts and field summaries, fed one classified document at a time. */
class Tally {
  missing = 0;
  changed = 0;
  same = 0;
  fields: Record<string, FieldSummary> = {};

  count(status: number, fromRaw: Buffer | null, againstRaw: Buffer | null, withFields: boolean): void {
    if (status === MISSING) this.missing++;
    else if (status === SAME) this.same++;
    else {
      this.changed++;
      if (withFields && fromRaw && againstRaw) this.summarise(fromRaw, againstRaw);
    }
  }

  private summarise(fromRaw: Buffer, againstRaw: Buffer): void {
    const id = JSON.parse(idToJson(exactId(fromRaw))) as unknown;
    for (const d of fieldDiff(fromRaw, againstRaw, 10_000)) {
      const entry = (this.fields[d.path] ??= {changed: 0, nulled: 0, removed: 0, added: 0, examples: []});
      entry.changed++;
      const inFrom = 'backup' in d;
      const inAgainst = 'target' in d;
      if (inFrom && !inAgainst) entry.removed++;
      else if (!inFrom && inAgainst) entry.added++;
      else if (d.target === null && d.backup !== null) entry.nulled++;
      if (entry.examples.length < EXAMPLES) entry.examples.push(id);
    }
  }

  result(added: number | null, statuses: Uint8Array): CollectionComparison {
    // Most changed paths first, so "title was nulled in 1,204 documents" leads.
    const fields = Object.fromEntries(Object.entries(this.fields).sort((a, b) => b[1].changed - a[1].changed || (a[0] < b[0] ? -1 : 1)));
    return {missing: this.missing, changed: this.changed, same: this.same, added, fields, statuses};
  }
}

function matcher(filter: Document | undefined): (doc: Buffer) => boolean {
  if (!filter || Object.keys(filter).length === 0) return () => true;
  const compiled = compileQuery(filter);
  return (doc) => compiled.matches(doc);
}

/** Reads one document back from a spool file by offset. */
class SpoolReader {
  private fd: number | null = null;
  constructor(private readonly file: string) {}
  read(pos: number, len: number): Buffer {
    this.fd ??= openSync(this.file, 'r');
    const out = Buffer.allocUnsafe(len);
    readSync(this.fd, out, 0, len, pos);
    return out;
  }
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

interface IndexedNamespace {
  db: string;
  collection: string;
  table: IdTable;
  spool: SpoolFile;
}

/** AGAINST is a backup: read once, every wanted namespace indexed by `_id`. */
export class BackupAgainst implements Against {
  private constructor(
    readonly info: AgainstInfo,
    private readonly indexed: Map<string, IndexedNamespace>,
    private readonly known: Set<string>,
    private readonly dir: string,
    private readonly filter: Document | undefined,
  ) {}

  /**
   * `want(db, collection)` names the namespaces to index. The query (if any) is evaluated here on
   * each AGAINST document, for the `added` count.
   */
  static async open(
    input: DumpInput,
    info: AgainstInfo,
    options: {dir: string; want: (db: string, collection: string) => boolean; filter?: Document; signal?: AbortSignal; onProgress?: (p: {documents: number; bytes: number}) => void},
  ): Promise<BackupAgainst> {
    const indexed = new Map<string, IndexedNamespace>();
    const known = new Set<string>();
    const matches = matcher(options.filter);
    const limit = memoryLimit();
    let documents = 0;
    let bytes = 0;
    let last = 0;
    try {
      for await (const event of readDump(input, {
        signal: options.signal,
        want: (ns) => {
          known.add(`${ns.db}.${ns.collection}`);
          return options.want(ns.db, ns.collection);
        },
      })) {
        if (event.type === 'oplog') continue;
        known.add(`${event.db}.${event.collection}`);
        if (event.type !== 'documents' && event.type !== 'end') continue;
        if (!options.want(event.db, event.collection)) continue;
        const name = `${event.db}.${event.collection}`;
        let ns = indexed.get(name);
        if (!ns) {
          const nsDir = path.join(options.dir, `a${indexed.size}`);
          ns = {db: event.db, collection: event.collection, table: new IdTable(nsDir, limit), spool: new SpoolFile(nsDir, event.db, event.collection)};
          indexed.set(name, ns);
        }
        if (event.type !== 'documents') continue;
        let pos = ns.spool.bytes;
        // One write per batch: the spool is read back only by offset, never document by document.
        await ns.spool.append([Buffer.concat(event.docs)]);
        for (const doc of event.docs) {
          await ns.table.add({key: docKey(doc), digest: digestOf(doc), pos, len: doc.length, num: 0, flag: matches(doc) ? 1 : 0});
          pos += doc.length;
        }
        documents += event.docs.length;
        bytes += event.bytes;
        const now = Date.now();
        if (now - last > 200) {
          last = now;
          options.onProgress?.({documents, bytes});
        }
      }
      for (const ns of indexed.values()) {
        await ns.spool.close();
        await ns.table.close();
      }
    } catch (error) {
      // Interrupted or unreadable: the partial index holds production data; leave nothing behind.
      await rm(options.dir, {recursive: true, force: true});
      throw error;
    }
    options.onProgress?.({documents, bytes});
    return new BackupAgainst(info, indexed, known, options.dir, options.filter);
  }

  async comparer(db: string, collection: string, options: CompareOptions): Promise<CollectionComparer> {
    const ns = this.indexed.get(`${db}.${collection}`);
    if (!ns) {
      const list = [...this.known].filter((n) => !n.includes('.system.')).sort();
      throw new GravityError('UNKNOWN_COLLECTION', `Collection ${db}.${collection} is not in ${this.info.label}`, {
        hint: list.length > 0 ? `It holds: ${list.join(', ')}. Compare only collections both sides hold (--collection)` : `${this.info.label} holds no collections`,
      });
    }
    return new BackupComparer(ns, path.join(this.dir, `f-${ns.collection}-${Date.now()}`), {...options, filter: options.filter ?? this.filter});
  }

  async close(): Promise<void> {
    await rm(this.dir, {recursive: true, force: true});
  }
}

class BackupComparer implements CollectionComparer {
  private readonly tally = new Tally();
  private readonly statuses = new Statuses();
  private readonly seen: Uint8Array;
  private readonly against: SpoolReader;
  private readonly matches: (doc: Buffer) => boolean;
  private ordinal = 0;
  /** FROM records, when the AGAINST table is on disk: joined partition by partition at the end. */
  private fromParts: Partitions | null = null;
  private fromSpool: SpoolFile | null = null;

  constructor(
    private readonly ns: IndexedNamespace,
    private readonly dir: string,
    private readonly options: CompareOptions,
  ) {
    this.seen = new Uint8Array(ns.table.spilled ? 0 : ns.table.slots);
    this.against = new SpoolReader(ns.spool.file);
    this.matches = matcher(options.filter);
    if (ns.table.spilled) {
      this.fromParts = new Partitions(path.join(dir, 'from'));
      if (options.fields) this.fromSpool = new SpoolFile(dir, ns.db, ns.collection);
    }
  }

  async add(docs: Buffer[]): Promise<void> {
    const table = this.ns.table;
    if (this.fromParts) {
      let pos = this.fromSpool ? this.fromSpool.bytes : -1;
      if (this.fromSpool) await this.fromSpool.append([Buffer.concat(docs)]);
      for (const doc of docs) {
        await this.fromParts.write({key: docKey(doc), digest: digestOf(doc), pos, len: doc.length, num: this.ordinal++, flag: this.matches(doc) ? 1 : 0});
        if (pos >= 0) pos += doc.length;
      }
      return;
    }
    for (const doc of docs) {
      const slot = table.slot(docKey(doc));
      let status = MISSING;
      let againstRaw: Buffer | null = null;
      if (slot !== undefined) {
        this.seen[slot] = 1;
        const rec = table.record(slot);
        status = rec.len === doc.length && digestOf(doc).equals(rec.digest) ? SAME : CHANGED;
        if (status === CHANGED && this.options.fields && this.matches(doc)) againstRaw = this.against.read(rec.pos, rec.len);
      }
      this.statuses.set(this.ordinal++, status);
      if (this.matches(doc)) this.tally.count(status, doc, againstRaw, this.options.fields);
    }
  }

  async finish(): Promise<CollectionComparison> {
    try {
      if (this.fromParts) return await this.finishSpilled();
      let added = 0;
      for (const [, slot] of this.ns.table.entries()) if (!this.seen[slot] && this.ns.table.record(slot).flag) added++;
      return this.tally.result(added, this.statuses.result());
    } finally {
      this.against.close();
    }
  }

  private async finishSpilled(): Promise<CollectionComparison> {
    await this.fromParts!.close();
    if (this.fromSpool) await this.fromSpool.close();
    const fromReader = this.fromSpool ? new SpoolReader(this.fromSpool.file) : null;
    let added = 0;
    try {
      for (let p = 0; p < PARTITIONS; p++) {
        const againstById = new Map<string, IdRecord>();
        for (const r of decodeRecords(await this.ns.table.partitions!.read(p))) againstById.set(r.key, r);
        const seen = new Set<string>();
        for (const r of decodeRecords(await this.fromParts!.read(p))) {
          const a = againstById.get(r.key);
          let status = MISSING;
          if (a) {
            seen.add(r.key);
            status = a.len === r.len && a.digest.equals(r.digest) ? SAME : CHANGED;
          }
          this.statuses.set(r.num, status);
          if (!r.flag) continue;
          const withFields = status === CHANGED && this.options.fields && fromReader !== null;
          this.tally.count(status, withFields ? fromReader.read(r.pos, r.len) : null, withFields ? this.against.read(a!.pos, a!.len) : null, this.options.fields);
        }
        for (const [key, a] of againstById) if (a.flag && !seen.has(key)) added++;
      }
    } finally {
      fromReader?.close();
      await rm(this.dir, {recursive: true, force: true});
    }
    return this.tally.result(added, this.statuses.result());
  }
}

/** The target's reads, which load the MongoDB driver: comparisons between backups never need them. */
const targetReads = () => import('../target/plan.js');

/** AGAINST is a live target: batched `_id` reads, read-only. */
export class TargetAgainst implements Against {
  constructor(
    readonly info: AgainstInfo,
    private readonly conn: TargetConnection,
    private readonly dir: string,
    private readonly dbOverride: string | null,
  ) {}

  async comparer(db: string, collection: string, options: CompareOptions): Promise<CollectionComparer> {
    const dbName = this.dbOverride ?? db;
    const {guard} = await targetReads();
    const names = await guard(this.conn, 'listing collections', async () =>
      (await this.conn.client.db(dbName).listCollections({}, {nameOnly: true}).toArray()).map((c) => c.name as string),
    );
    if (!names.includes(collection)) {
      const list = names.filter((n) => !n.startsWith('system.')).sort();
      throw new GravityError('UNKNOWN_COLLECTION', `Collection ${collection} is not in database ${dbName} of ${this.conn.spec.label}`, {
        hint: list.length > 0 ? `It holds: ${list.join(', ')}. Check --db, or compare only collections both sides hold (--collection)` : `Database ${dbName} holds no collections there; check --db`,
      });
    }
    return new TargetComparer(this.conn, dbName, collection, path.join(this.dir, `t-${collection}-${Date.now()}`), options);
  }

  async close(): Promise<void> {
    await rm(this.dir, {recursive: true, force: true});
  }
}

const BATCH = 1000;

class TargetComparer implements CollectionComparer {
  private readonly tally = new Tally();
  private readonly statuses = new Statuses();
  private readonly matches: (doc: Buffer) => boolean;
  private readonly fromKeys: IdTable | null;
  private pending: Buffer[] = [];
  private ordinal = 0;

  constructor(
    private readonly conn: TargetConnection,
    private readonly db: string,
    private readonly collection: string,
    private readonly dir: string,
    private readonly options: CompareOptions,
  ) {
    this.matches = matcher(options.filter);
    this.fromKeys = options.added ? new IdTable(path.join(dir, 'from')) : null;
  }

  async add(docs: Buffer[]): Promise<void> {
    for (const doc of docs) {
      // Batch documents own their bytes: the reader's chunks are reused after this call.
      this.pending.push(Buffer.from(doc));
      if (this.pending.length >= BATCH) await this.flush();
    }
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const only = this.options.only;
    const docs = only ? batch.filter((d) => only(d)) : batch;
    const ids = docs.map((d) => exactId(d));
    const coll = this.conn.client.db(this.db).collection(this.collection);
    const {guard, fetchRawById} = await targetReads();
    const found = ids.length > 0 ? await guard(this.conn, 'reading the target', () => fetchRawById(coll, ids)) : new Map<string, Uint8Array>();
    let at = 0;
    for (const doc of batch) {
      if (doc !== docs[at]) {
        this.statuses.set(this.ordinal++, SAME);
        continue;
      }
      const key = idKey(ids[at++]);
      const current = found.get(key);
      const status = current === undefined ? MISSING : Buffer.compare(doc, current) === 0 ? SAME : CHANGED;
      this.statuses.set(this.ordinal++, status);
      if (this.matches(doc)) this.tally.count(status, doc, current ? Buffer.from(current) : null, this.options.fields);
      if (this.fromKeys) await this.fromKeys.add({key: docKey(doc), digest: ZERO_DIGEST, pos: -1, len: 0, num: 0, flag: 0});
    }
  }

  async finish(): Promise<CollectionComparison> {
    await this.flush();
    try {
      const added = this.fromKeys ? await this.countAdded(this.fromKeys) : null;
      return this.tally.result(added, this.statuses.result());
    } finally {
      await rm(this.dir, {recursive: true, force: true});
    }
  }

  /** Scans the target's `_id`s (of documents matching the query) for those FROM does not hold. */
  private async countAdded(fromKeys: IdTable): Promise<number> {
    await fromKeys.close();
    const coll = this.conn.client.db(this.db).collection(this.collection);
    const filter = (this.options.filter ?? {}) as Filter<Document>;
    const spilled = fromKeys.spilled ? new Partitions(path.join(this.dir, 'target')) : null;
    let added = 0;
    const {guard} = await targetReads();
    await guard(this.conn, 'scanning the target', async () => {
      for await (const raw of coll.find(filter, {raw: true, projection: {_id: 1}, batchSize: 10_000})) {
        const key = docKey(Buffer.from(raw as unknown as Uint8Array));
        if (spilled) await spilled.write({key, digest: ZERO_DIGEST, pos: -1, len: 0, num: 0, flag: 0});
        else if (fromKeys.slot(key) === undefined) added++;
      }
    });
    if (!spilled) return added;
    await spilled.close();
    for (let p = 0; p < PARTITIONS; p++) {
      const from = new Set<string>();
      for (const r of decodeRecords(await fromKeys.partitions!.read(p))) from.add(r.key);
      for (const r of decodeRecords(await spilled.read(p))) if (!from.has(r.key)) added++;
    }
    return added;
  }
}
