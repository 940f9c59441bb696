/**
 * The replica-set mode's oplog: every write appends an entry to `local.oplog.rs` in mongod 6.0+
 * format (OPLOG.md §1; mongodb/mongo src/mongo/db/repl/oplog_entry.idl), so clients read it as they
 * read a real member's oplog (find/getMore with filters on `ts`, `ns`, `op`, `o.applyOps`).
 *
 * Entry fields, in the order mongod writes them: `op`, `ns`, `ui` (the collection's UUID, new when a
 * collection is re-created), `o`, `o2`, `ts` (Timestamp: seconds, then a counter within the second;
 * strictly increasing), `t` (term, Int64), `v` (2, Int64), `wall` (Date).
 * - insert: `o` the document, `o2` `{_id}` (FCV 5.3+, OPLOG.md §1 "o2 … i (FCV ≥ 5.3): document key";
 *   jstest "write oplog entries contain the correct document key");
 * - update: `o` `{$v: 2, diff}` built from the pre- and post-image (oplog-diff.ts, OPLOG.md §2.3), or
 *   the whole new document when the diff would not be smaller; `o2` `{_id}` (OPLOG.md §1, §2.1);
 * - delete: `o` `{_id}`; a multi-document delete is one `applyOps` on `admin.$cmd` holding one `d`
 *   per document, without `ts`/`t`/`wall` inside (6.1+ batched deletes: OPLOG.md §3.1; mongodb/mongo
 *   src/mongo/db/op_observer/op_observer_impl.cpp `onBatchedWriteCommit`, which logs even a batch of
 *   one as applyOps);
 * - commands on `<db>.$cmd`: `create` (also when a write creates a collection), `drop`, `dropDatabase`
 *   (after a `drop` per collection), `renameCollection` with full namespaces (OPLOG.md §3.3).
 * - no-ops: `{op: "n", ns: "", o: {msg: "initiating set"}}` when the set is initiated, and
 *   `{msg: "periodic noop"}` whenever nothing was written for `periodicNoopIntervalSecs` (default 10:
 *   mongodb/mongo src/mongo/db/repl/noop_writer.cpp, server parameters writePeriodicNoops and
 *   periodicNoopIntervalSecs), so an idle oplog still covers every stretch of time.
 * - a retryable write (a command with `lsid` and `txnNumber` outside a transaction) adds the session:
 *   `lsid` (`{id, uid}`, uid the SHA-256 of the user name, empty without authentication) and
 *   `txnNumber` first, `stmtId` (the statement's index in the command) after `o2`, and `prevOpTime`
 *   (the previous entry of the same session and txnNumber, `{ts: Timestamp(0, 0), t: -1}` for the
 *   first) last (OPLOG.md §1 and §4; oplog_entry.idl `OperationSessionInfo`, `DurableReplOperation`);
 *   multi-document updates and deletes are not retryable, so they carry none.
 * Writes to the `local` database are not replicated, so they are not logged.
 */

/** The session of a retryable write, as the command carried it. */
export interface RetryableWrite {
  lsid: BDoc;
  txnNumber: Value;
  stmtId: number;
}

const NO_UID = new Binary(createHash('sha256').update('').digest(), 0);
import {createHash} from 'node:crypto';
import {Binary, Long, Timestamp} from 'bson';
import {computeOplogDiff} from './oplog-diff.js';
import type {Collection, Store} from './storage.js';
import {BArr, BDoc, type Value, parseDoc, toValue} from './tree.js';

export interface OpTime {
  t: number;
  i: number;
}

const TERM = toValue(Long.fromNumber(1));
const VERSION = toValue(Long.fromNumber(2));

export class Oplog {
  private last: OpTime = {t: 0, i: 0};

  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    readonly setName: string,
    private readonly store: Store,
    periodicNoopIntervalSecs = 10,
  ) {
    this.collection();
    this.noop('initiating set');
    if (periodicNoopIntervalSecs > 0) {
      let seen = this.lastOpTime;
      this.timer = setInterval(() => {
        const now = this.lastOpTime;
        if (now.t === seen.t && now.i === seen.i) this.noop('periodic noop');
        seen = this.lastOpTime;
      }, periodicNoopIntervalSecs * 1000);
      this.timer.unref();
    }
  }

  /** Stops the periodic no-op writer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private noop(msg: string): void {
    this.append([['op', toValue('n')], ['ns', toValue('')], ['o', BDoc.fromEntries([['msg', toValue(msg)]])]]);
  }

  private collection(): Collection {
    return this.store.ensure('local', 'oplog.rs').coll;
  }

  /** The optime of the newest entry (0, 0 before any write). */
  get lastOpTime(): OpTime {
    return {...this.last};
  }

  private nextTs(): OpTime {
    const now = Math.floor(Date.now() / 1000);
    this.last = now > this.last.t ? {t: now, i: 1} : {t: this.last.t, i: this.last.i + 1};
    return this.lastOpTime;
  }

  /** The optime of the last entry of each retryable-write chain, by lsid id and txnNumber. */
  private readonly chains = new Map<string, OpTime>();

  private append(fields: ReadonlyArray<readonly [string, Value]>, session?: RetryableWrite): void {
    const ts = this.nextTs();
    const optime = (o: OpTime, term: Value) => BDoc.fromEntries([['ts', toValue(new Timestamp({t: o.t, i: o.i}))], ['t', term]]);
    let head: Array<readonly [string, Value]> = [];
    let middle: Array<readonly [string, Value]> = [];
    let last: Array<readonly [string, Value]> = [];
    if (session) {
      const id = session.lsid.get('id');
      const lsid = BDoc.fromEntries([['id', id ?? toValue(null)], ['uid', toValue(NO_UID)]]);
      const key = `${id?.bytes.toString('hex')}:${session.txnNumber.bytes.toString('hex')}`;
      const prev = this.chains.get(key);
      this.chains.set(key, ts);
      head = [['lsid', lsid], ['txnNumber', session.txnNumber]];
      middle = [['stmtId', toValue(session.stmtId)]];
      last = [['prevOpTime', prev ? optime(prev, TERM) : optime({t: 0, i: 0}, toValue(Long.fromNumber(-1)))]];
    }
    const entry = BDoc.fromEntries([
      ...head,
      ...fields,
      ...middle,
      ['ts', toValue(new Timestamp({t: ts.t, i: ts.i}))],
      ['t', TERM],
      ['v', VERSION],
      ['wall', toValue(new Date())],
      ...last,
    ]);
    this.collection().appendRaw(entry.bytes);
  }

  private static replicated(coll: Collection): boolean {
    return coll.db !== 'local';
  }

  private static idKey(doc: BDoc): BDoc {
    return BDoc.fromEntries([['_id', doc.get('_id')!]]);
  }

  inserted(coll: Collection, bytes: Buffer, session?: RetryableWrite): void {
    if (!Oplog.replicated(coll)) return;
    const doc = parseDoc(bytes);
    this.append([['op', toValue('i')], ['ns', toValue(coll.ns)], ['ui', toValue(coll.uuid)], ['o', doc], ['o2', Oplog.idKey(doc)]], session);
  }

  /** `replacement`: a replacement-style update, always logged as the whole document. */
  updated(coll: Collection, before: Buffer, after: Buffer, replacement: boolean, session?: RetryableWrite): void {
    if (!Oplog.replicated(coll) || before.equals(after)) return;
    const post = parseDoc(after);
    const o = (replacement ? undefined : computeOplogDiff(parseDoc(before), post)) ?? post;
    this.append([['op', toValue('u')], ['ns', toValue(coll.ns)], ['ui', toValue(coll.uuid)], ['o', o], ['o2', Oplog.idKey(post)]], session);
  }

  deleted(coll: Collection, ids: Value[], batched: boolean, session?: RetryableWrite): void {
    if (!Oplog.replicated(coll) || ids.length === 0) return;
    const op = (id: Value) => [['op', toValue('d')], ['ns', toValue(coll.ns)], ['ui', toValue(coll.uuid)], ['o', BDoc.fromEntries([['_id', id]])]] as const;
    if (!batched) {
      for (const id of ids) this.append(op(id), session);
      return;
    }
    const inner = BArr.fromItems(ids.map((id) => BDoc.fromEntries(op(id))));
    this.append([['op', toValue('c')], ['ns', toValue('admin.$cmd')], ['o', BDoc.fromEntries([['applyOps', inner]])]]);
  }

  private command(coll: Collection, o: BDoc, db = coll.db): void {
    this.append([['op', toValue('c')], ['ns', toValue(`${db}.$cmd`)], ['ui', toValue(coll.uuid)], ['o', o]]);
  }

  created(coll: Collection): void {
    if (!Oplog.replicated(coll)) return;
    const idIndex = BDoc.fromEntries([['v', toValue(2)], ['key', BDoc.fromEntries([['_id', toValue(1)]])], ['name', toValue('_id_')]]);
    this.command(coll, BDoc.fromEntries([['create', toValue(coll.name)], ...coll.options.entries, ['idIndex', idIndex]]));
  }

  dropped(coll: Collection): void {
    if (!Oplog.replicated(coll)) return;
    this.command(coll, BDoc.fromEntries([['drop', toValue(coll.name)]]));
  }

  droppedDatabase(db: string, colls: Collection[]): void {
    if (db === 'local') return;
    for (const c of colls) this.dropped(c);
    this.append([['op', toValue('c')], ['ns', toValue(`${db}.$cmd`)], ['o', BDoc.fromEntries([['dropDatabase', toValue(1)]])]]);
  }

  /** `coll` already carries its new name; `dropTarget` is the UUID of the collection it replaced. */
  renamed(coll: Collection, from: string, dropTarget: Collection | undefined): void {
    if (!Oplog.replicated(coll)) return;
    const fields: Array<readonly [string, Value]> = [['renameCollection', toValue(from)], ['to', toValue(coll.ns)], ['stayTemp', toValue(false)]];
    if (dropTarget) fields.push(['dropTarget', toValue(dropTarget.uuid)]);
    this.command(coll, BDoc.fromEntries(fields), from.slice(0, from.indexOf('.')));
  }
}
