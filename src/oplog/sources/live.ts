/**
 * The live oplog of a replica-set member (`staging`, `production`, a mongodb:// URI), read only:
 * `find` on `local.oplog.rs`, sorted `$natural` (the order the oplog holds, which is `ts` order on
 * a replica set), filtered on the server by `ts` and, when the caller names the namespaces that
 * matter, by namespace — keeping what can touch them from elsewhere (OPLOG.md §8 row d): `applyOps`
 * holding one of them (transactions, 6.1+ batched deletes, 8.0 vectored inserts, §3.1), the entry
 * that ends a multi-entry transaction (`count`), commit and abort entries, and the commands of
 * their databases (drop, rename, dropDatabase, §3.3). Reading it needs the `read` role on the
 * `local` database (https://www.mongodb.com/docs/atlas/reference/atlas-oplog/).
 *
 * Replies are taken as bytes (`raw`), and entries are their exact subarrays: nothing is decoded.
 */
import {Long, Timestamp, type Document} from 'bson';
import type {Db} from 'mongodb';

import {redact} from '../../config/redact.js';
import {GravityError} from '../../errors.js';
import {connectTarget} from '../../target/connect.js';
import {walkCursor} from '../../target/raw-find.js';
import type {TargetConnection, TargetSpec} from '../../target/types.js';
import type {OplogCoverage, OplogReadOptions, OplogSource, OpTime, RawOplogEntry} from '../types.js';
import {flatten} from './merge.js';
import {OrderCheck, toEntries} from './frame.js';
import {readEntryHead} from './entry.js';

const BATCH_SIZE = 1000;
const UNAUTHORIZED = 13;

/** The server-side filter for entries in [since, until) that may touch `namespaces` (null: all entries). */
export function liveFilter(options: {since?: OpTime | undefined; until?: OpTime | undefined; namespaces?: string[] | null | undefined}): Document {
  const ts: Document = {};
  if (options.since) ts.$gte = new Timestamp({t: options.since.t, i: options.since.i});
  if (options.until) ts.$lt = new Timestamp({t: options.until.t, i: options.until.i});
  const filter: Document = Object.keys(ts).length > 0 ? {ts} : {};
  const namespaces = options.namespaces;
  if (!namespaces || namespaces.length === 0) return filter;
  const commandNamespaces = [...new Set(namespaces.map((ns) => `${ns.slice(0, ns.indexOf('.'))}.$cmd`))];
  filter.$or = [
    // No-op entries under a collection's ns are findAndModify images, not writes (OPLOG.md §4).
    {ns: {$in: namespaces}, op: {$in: ['i', 'u', 'd']}},
    {op: 'c', ns: {$in: commandNamespaces}},
    {op: 'c', 'o.applyOps': {$elemMatch: {ns: {$in: namespaces}}}},
    {op: 'c', 'o.applyOps': {$exists: true}, 'o.count': {$exists: true}},
    {op: 'c', 'o.commitTransaction': {$exists: true}},
    {op: 'c', 'o.abortTransaction': {$exists: true}},
    {op: 'c', 'o.to': {$in: namespaces}},
  ];
  return filter;
}

export class LiveOplogSource implements OplogSource {
  readonly label: string;
  private connection: TargetConnection | null = null;
  /** Bytes of the server's replies' cursors, summed over every read (the bench compares filters with it). */
  bytesReceived = 0;

  constructor(private readonly spec: TargetSpec, private readonly connect: (spec: TargetSpec) => Promise<TargetConnection> = connectTarget) {
    this.label = spec.label;
  }

  private async db(): Promise<Db> {
    this.connection ??= await this.connect(this.spec);
    return this.connection.client.db('local');
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    await connection?.close();
  }

  private failure(error: unknown): GravityError {
    if (error instanceof GravityError) return error;
    const code = (error as {code?: number}).code;
    if (code === UNAUTHORIZED) {
      return new GravityError('TARGET_AUTH', `${this.label} refused to read local.oplog.rs: ${redact((error as Error).message)}`, {
        hint: 'Reading the oplog needs the read role on the local database (e.g. roles: [{role: "read", db: "local"}])',
      });
    }
    return new GravityError('TARGET_UNREACHABLE', `Reading local.oplog.rs of ${this.label} failed: ${redact((error as Error).message ?? String(error))}`, {
      hint: 'Check that the target is a replica-set member and reachable',
      cause: error,
    });
  }

  /** One entry at either end of the oplog, or null when it is empty. */
  private async end(db: Db, direction: 1 | -1): Promise<OpTime | null> {
    let found: OpTime | null = null;
    const reply = (await db.command({find: 'oplog.rs', filter: {}, sort: {$natural: direction}, limit: 1, singleBatch: true}, {raw: true})) as {cursor?: Buffer};
    if (Buffer.isBuffer(reply.cursor)) {
      this.bytesReceived += reply.cursor.length;
      walkCursor(reply.cursor, (raw) => (found = readEntryHead(raw, `${this.label} local.oplog.rs`, null).ts));
    }
    return found;
  }

  async coverage(): Promise<OplogCoverage> {
    let first: OpTime | null;
    let last: OpTime | null;
    try {
      const db = await this.db();
      first = await this.end(db, 1);
      last = await this.end(db, -1);
    } catch (error) {
      throw this.failure(error);
    }
    if (first === null) {
      throw new GravityError('SOURCE_NOT_FOUND', `${this.label} has no oplog (local.oplog.rs is missing or empty)`, {
        hint: 'Only a replica-set member keeps an oplog; point --oplog at one, or at oplog dumps',
      });
    }
    // The oplog is one capped collection written in order: what it holds has no gaps.
    return {source: this.label, from: first, to: last, entries: null, gaps: []};
  }

  async *batches(options: OplogReadOptions = {}): AsyncGenerator<RawOplogEntry[]> {
    let db: Db;
    try {
      db = await this.db();
    } catch (error) {
      throw this.failure(error);
    }
    const order = new OrderCheck(`${this.label} local.oplog.rs`, false);
    const filter = liveFilter(options);
    let entries = 0;
    let bytesRead = 0;
    let id = 0n;
    let started = false;
    try {
      while (!started || id !== 0n) {
        if (options.signal?.aborted) throw new GravityError('INTERRUPTED', 'Reading the oplog was interrupted', {hint: 'Run the command again'});
        const command = started
          ? {getMore: Long.fromBigInt(id), collection: 'oplog.rs', batchSize: BATCH_SIZE}
          : {find: 'oplog.rs', filter, sort: {$natural: 1}, batchSize: BATCH_SIZE};
        started = true;
        let reply: {cursor?: Buffer};
        try {
          reply = (await db.command(command, {raw: true})) as {cursor?: Buffer};
        } catch (error) {
          id = 0n;
          throw this.failure(error);
        }
        if (!Buffer.isBuffer(reply.cursor)) throw this.failure(new Error('the reply holds no cursor'));
        const docs: Buffer[] = [];
        // Entries outlive the reply they came in (a replay holds some): each gets bytes of its own.
        id = walkCursor(reply.cursor, (raw) => docs.push(Buffer.from(raw))).id;
        this.bytesReceived += reply.cursor.length;
        bytesRead += reply.cursor.length;
        if (docs.length === 0) continue;
        const batch = toEntries(docs, order);
        entries += batch.length;
        options.onProgress?.({entries, bytesRead});
        yield batch;
      }
    } finally {
      if (id !== 0n) await db.command({killCursors: 'oplog.rs', cursors: [Long.fromBigInt(id)]}).catch(() => undefined);
    }
  }

  entries(options: OplogReadOptions = {}): AsyncIterable<RawOplogEntry> {
    return flatten(this.batches(options));
  }
}
