/** Command dispatch: one handler per mongod command this test server understands. */
import {Long, ObjectId, Timestamp} from 'bson';
import {type Document, RawDoc, decodeTyped, encode, isPlainObject, toMatchable} from './bson-values.js';
import {CommandError} from './command-error.js';
import {keyOf, toNumber} from './compare.js';
import {compileFilter, valuesAt} from './match.js';
import {aggregate, parseUpdate, project, select, updatedBytes, upsertBytes} from './query.js';
import type {RetryableWrite} from './oplog.js';
import {type Collection, MAX_BSON_SIZE, type Store, fillEmptyTimestamps, formatValue, treeOf, validationOf} from './storage.js';
import {BArr, BDoc, BT, BVal, type Value, parseDoc, stringOf, toValue} from './tree.js';
import {MAX_MESSAGE_BYTES} from './wire.js';

export const MAX_WIRE_VERSION = 17;
export const SERVER_VERSION = '6.0.0';
/** Commands may exceed a document's limit by 16 KiB (mongod's BSONObjMaxInternalSize). */
const MAX_COMMAND_SIZE = MAX_BSON_SIZE + 16 * 1024;
const MAX_BATCH_BYTES = MAX_BSON_SIZE;
const DEFAULT_FIRST_BATCH = 101;

export interface Request {
  db: string;
  body: Document;
  /** Raw bytes of the command document. */
  raw: Buffer;
  /** OP_MSG kind-1 document sequences, by identifier. */
  sequences: Map<string, Buffer[]>;
  /** The command in stored field order, parsed on first use. */
  tree?: BDoc;
}

function treeOfRequest(req: Request): BDoc {
  req.tree ??= parseDoc(req.raw);
  return req.tree;
}

/** A document-valued command field in stored order; absent or null is undefined. */
function docField(req: Request, field: string): BDoc | undefined {
  const v = treeOfRequest(req).get(field);
  if (v === undefined || v.type === BT.NULL) return undefined;
  if (!(v instanceof BDoc)) {
    throw new CommandError(14, `BSON field '${Object.keys(req.body)[0]}.${field}' is the wrong type, expected type 'object'`);
  }
  return v;
}

function statementDoc(tree: BDoc, field: string): BDoc | undefined {
  const v = tree.get(field);
  if (v === undefined) return undefined;
  if (!(v instanceof BDoc)) throw new CommandError(14, `BSON field '${field}' is the wrong type, expected type 'object'`);
  return v;
}

/**
 * The session of a retryable write: `lsid` and `txnNumber` outside a transaction, on a replica set
 * (https://www.mongodb.com/docs/manual/core/retryable-writes/). `stmtId` is the statement's index.
 */
function retryable(req: Request, state: ServerState, stmtId: number): RetryableWrite | undefined {
  if (!state.store.oplog) return undefined;
  const tree = treeOfRequest(req);
  const lsid = tree.get('lsid');
  const txnNumber = tree.get('txnNumber');
  if (!(lsid instanceof BDoc) || txnNumber === undefined) return undefined;
  return {lsid, txnNumber, stmtId};
}

function arrayFiltersOf(v: Value | undefined): BArr | undefined {
  if (v === undefined || v.type === BT.NULL) return undefined;
  if (!(v instanceof BArr)) throw new CommandError(14, "BSON field 'arrayFilters' is the wrong type, expected type 'array'");
  return v;
}

export interface ServerState {
  store: Store;
  /** `host:port` as clients reach this server (replica-set members name themselves by it). */
  address: string;
  cursors: Cursors;
  startedAt: number;
  connectionId: number;
  connections: () => number;
}

interface Cursor {
  ns: string;
  docs: Buffer[];
  pos: number;
}

export class Cursors {
  private readonly open = new Map<string, Cursor>();
  private nextId = BigInt(1 + Math.floor(Math.random() * 1e9)) * 1000n;

  add(ns: string, docs: Buffer[], pos: number): Long {
    this.nextId += 1n;
    const id = this.nextId.toString();
    this.open.set(id, {ns, docs, pos});
    return Long.fromString(id);
  }

  get(id: string): Cursor | undefined {
    return this.open.get(id);
  }

  delete(id: string): boolean {
    return this.open.delete(id);
  }
}

function num(v: unknown): number | undefined {
  const n = toMatchable(v);
  return typeof n === 'number' ? n : undefined;
}

function idString(v: unknown): string {
  const n = v as {toString(): string} | null | undefined;
  return n === null || n === undefined ? '' : n.toString();
}

function takeBatch(docs: Buffer[], pos: number, size: number | undefined): {batch: RawDoc[]; pos: number} {
  const batch: RawDoc[] = [];
  let bytes = 0;
  let p = pos;
  while (p < docs.length && (size === undefined || batch.length < size)) {
    const d = docs[p]!;
    if (batch.length > 0 && bytes + d.length > MAX_BATCH_BYTES) break;
    batch.push(new RawDoc(d));
    bytes += d.length;
    p++;
  }
  return {batch, pos: p};
}

function cursorReply(state: ServerState, ns: string, docs: Buffer[], batchSize: number | undefined, singleBatch: boolean): Document {
  const size = batchSize === undefined ? DEFAULT_FIRST_BATCH : batchSize;
  const {batch, pos} = takeBatch(docs, 0, size);
  const more = pos < docs.length && !singleBatch;
  const id = more ? state.cursors.add(ns, docs, pos) : Long.ZERO;
  return {cursor: {firstBatch: batch, id, ns}, ok: 1};
}

function cursorBatchSize(body: Document): number | undefined {
  const c = body.cursor;
  return isPlainObject(c) ? num(c.batchSize) : undefined;
}

/** Statements of a write command, from a kind-1 sequence or the body (kept raw). */
function items(req: Request, name: string): Buffer[] {
  const seq = req.sequences.get(name);
  if (seq) return seq;
  const arr = req.body[name];
  if (!Array.isArray(arr)) return [];
  return arr.map((x: unknown) => (Buffer.isBuffer(x) ? x : encode(x as Document)));
}

function collName(req: Request, cmd: string): string {
  const v = req.body[cmd];
  if (typeof v !== 'string') throw new CommandError(73, `collection name has invalid type ${typeof v}`);
  return v;
}

function writeError(index: number, e: unknown): Document {
  if (e instanceof CommandError) return {index, code: e.code, ...e.extra, errmsg: e.message};
  return {index, code: 1, errmsg: e instanceof Error ? e.message : String(e)};
}

function rejectTransactions(body: Document, state: ServerState): void {
  if (body.startTransaction !== undefined || body.autocommit !== undefined) {
    if (state.store.oplog) throw new CommandError(115, 'multi-document transactions are not supported by the gravity-restore test server');
    throw new CommandError(20, 'Transaction numbers are only allowed on a replica set member or mongos');
  }
  // A replica set accepts retryable writes (a txnNumber without a transaction); this server does not
  // deduplicate retries, which only matters after a lost reply.
  if (body.txnNumber !== undefined && !state.store.oplog) throw new CommandError(20, 'Transaction numbers are only allowed on a replica set member or mongos');
  checkWriteConcern(body, state.store.oplog !== undefined);
}

/**
 * A standalone, or a one-member replica set: `w: 1`, `w: 0` and `w: "majority"` are satisfiable, more
 * members are not (https://www.mongodb.com/docs/manual/reference/write-concern/).
 */
function checkWriteConcern(body: Document, replSet: boolean): void {
  const wc = body.writeConcern;
  if (!isPlainObject(wc) || wc.w === undefined) return;
  const w = toMatchable(wc.w);
  if (typeof w === 'number' && w > 1) {
    if (replSet) throw new CommandError(100, 'Not enough data-bearing nodes');
    throw new CommandError(2, "cannot use 'w' > 1 on a standalone");
  }
  if (typeof w === 'string' && w !== 'majority') throw new CommandError(79, `Unrecognized write concern mode: ${w}`);
}

type Handler = (req: Request, state: ServerState) => Document;

/**
 * In replica-set mode the server is the primary of a one-member set, named by its own address so a
 * driver that discovers the set keeps talking to it
 * (https://www.mongodb.com/docs/manual/reference/command/hello/#replica-sets).
 */
function replicaSetFields(state: ServerState): Document {
  const oplog = state.store.oplog;
  if (!oplog) return {};
  const last = oplog.lastOpTime;
  const ts = new Timestamp({t: last.t, i: last.i});
  // No topologyVersion: with it drivers switch to awaitable hello, which this server does not hold open.
  return {
    hosts: [state.address],
    setName: oplog.setName,
    setVersion: 1,
    secondary: false,
    primary: state.address,
    me: state.address,
    electionId: ELECTION_ID,
    lastWrite: {opTime: {ts, t: Long.fromNumber(1)}, lastWriteDate: new Date(last.t * 1000), majorityOpTime: {ts, t: Long.fromNumber(1)}, majorityWriteDate: new Date(last.t * 1000)},
  };
}

const ELECTION_ID = ObjectId.createFromHexString('7fffffff0000000000000001');

function hello(legacy: boolean): Handler {
  return (_req, state) => ({
    helloOk: true,
    [legacy ? 'ismaster' : 'isWritablePrimary']: true,
    ...replicaSetFields(state),
    maxBsonObjectSize: MAX_BSON_SIZE,
    maxMessageSizeBytes: MAX_MESSAGE_BYTES,
    maxWriteBatchSize: 100_000,
    localTime: new Date(),
    logicalSessionTimeoutMinutes: 30,
    connectionId: state.connectionId,
    minWireVersion: 0,
    maxWireVersion: MAX_WIRE_VERSION,
    readOnly: false,
    ok: 1,
  });
}

const buildInfo: Handler = () => ({
  version: SERVER_VERSION,
  gitVersion: 'gravity-restore-test-server',
  versionArray: [6, 0, 0, 0],
  bits: 64,
  debug: false,
  maxBsonObjectSize: MAX_BSON_SIZE,
  storageEngines: ['memory'],
  gravityTestServer: true,
  ok: 1,
});

const insert: Handler = (req, state) => {
  rejectTransactions(req.body, state);
  const {coll} = state.store.ensure(req.db, collName(req, 'insert'));
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  const docs = items(req, 'documents');
  const bypassValidation = req.body.bypassDocumentValidation === true;
  for (let i = 0; i < docs.length; i++) {
    try {
      // mongod accepts a document of exactly 16 MiB and refuses anything larger.
      if (docs[i]!.length > MAX_BSON_SIZE) throw new CommandError(2, `object to insert too large. size in bytes: ${docs[i]!.length}, max size: ${MAX_BSON_SIZE}`);
      const rec = coll.insert(fillEmptyTimestamps(docs[i]!), {bypassValidation});
      state.store.oplog?.inserted(coll, rec.bytes, retryable(req, state, i));
      n++;
    } catch (e) {
      writeErrors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeErrors.length ? {n, writeErrors, ok: 1} : {n, ok: 1};
};

const update: Handler = (req, state) => {
  rejectTransactions(req.body, state);
  const name = collName(req, 'update');
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  const upserted: Document[] = [];
  let n = 0;
  let nModified = 0;
  const statements = items(req, 'updates');
  const bypassValidation = req.body.bypassDocumentValidation === true;
  for (let i = 0; i < statements.length; i++) {
    try {
      const st = decodeTyped(statements[i]!);
      const stTree = parseDoc(statements[i]!);
      const q = statementDoc(stTree, 'q');
      const spec = parseUpdate(statements[i]!, st.u);
      const arrayFilters = arrayFiltersOf(stTree.get('arrayFilters'));
      const multi = st.multi === true;
      if (multi && spec.kind === 'replacement') throw new CommandError(9, 'multi update is not supported for replacement-style update');
      const coll = state.store.get(req.db, name);
      const recs = select(coll, q, {limit: multi ? 0 : 1, collation: stTree.get('collation')});
      if (recs.length === 0 && st.upsert === true) {
        const target = state.store.ensure(req.db, name).coll;
        const {bytes, fallbackId} = upsertBytes(spec, q, arrayFilters);
        const rec = target.insert(bytes, {fallbackId, bypassValidation});
        state.store.oplog?.inserted(target, rec.bytes, multi ? undefined : retryable(req, state, i));
        upserted.push({index: i, _id: rec.id});
        n++;
        continue;
      }
      for (const rec of recs) {
        const bytes = updatedBytes(rec, spec, q, arrayFilters);
        n++;
        if (bytes !== rec.bytes) {
          const before = rec.bytes;
          coll!.replace(rec, bytes, {bypassValidation});
          state.store.oplog?.updated(coll!, before, rec.bytes, spec.kind === 'replacement', multi ? undefined : retryable(req, state, i));
          nModified++;
        }
      }
    } catch (e) {
      writeErrors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  const reply: Document = {n, nModified};
  if (upserted.length) reply.upserted = upserted;
  if (writeErrors.length) reply.writeErrors = writeErrors;
  reply.ok = 1;
  return reply;
};

const del: Handler = (req, state) => {
  rejectTransactions(req.body, state);
  const coll = state.store.get(req.db, collName(req, 'delete'));
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  const statements = items(req, 'deletes');
  for (let i = 0; i < statements.length; i++) {
    try {
      const st = parseDoc(statements[i]!);
      const limitValue = st.get('limit');
      const limit = limitValue instanceof BVal && limitValue.type !== BT.STRING ? toNumber(limitValue) : 0;
      if (limit !== 0 && limit !== 1) throw new CommandError(9, 'The limit field in delete objects must be 0 or 1');
      const removed: Value[] = [];
      for (const rec of select(coll, statementDoc(st, 'q'), {limit, collation: st.get('collation')})) {
        coll!.remove(rec);
        removed.push(rec.id);
        n++;
      }
      if (coll) state.store.oplog?.deleted(coll, removed, limit === 0, limit === 0 ? undefined : retryable(req, state, i));
    } catch (e) {
      writeErrors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeErrors.length ? {n, writeErrors, ok: 1} : {n, ok: 1};
};

const findCmd: Handler = (req, state) => {
  const name = collName(req, 'find');
  const b = req.body;
  let limit = num(b.limit) ?? 0;
  let singleBatch = b.singleBatch === true;
  if (limit < 0) {
    limit = -limit;
    singleBatch = true;
  }
  const skip = num(b.skip) ?? 0;
  if (skip < 0) throw new CommandError(2, 'Skip value must be non-negative');
  const batchSize = num(b.batchSize);
  if (batchSize !== undefined && batchSize < 0) throw new CommandError(2, 'BatchSize value must be non-negative');
  const recs = select(state.store.get(req.db, name), docField(req, 'filter'), {sort: docField(req, 'sort'), skip, limit, collation: treeOfRequest(req).get('collation')});
  const docs = project(recs, b.projection as Document | undefined);
  return cursorReply(state, `${req.db}.${name}`, docs, batchSize, singleBatch);
};

const getMore: Handler = (req, state) => {
  const id = idString(req.body.getMore);
  const cursor = state.cursors.get(id);
  const ns = `${req.db}.${String(req.body.collection)}`;
  if (!cursor || cursor.ns !== ns) throw new CommandError(43, `cursor id ${id} not found`);
  const size = num(req.body.batchSize);
  const {batch, pos} = takeBatch(cursor.docs, cursor.pos, size && size > 0 ? size : undefined);
  cursor.pos = pos;
  const done = pos >= cursor.docs.length;
  if (done) state.cursors.delete(id);
  return {cursor: {nextBatch: batch, id: done ? Long.ZERO : Long.fromString(id), ns}, ok: 1};
};

const killCursors: Handler = (req, state) => {
  const ids = Array.isArray(req.body.cursors) ? req.body.cursors : [];
  const cursorsKilled: unknown[] = [];
  const cursorsNotFound: unknown[] = [];
  for (const id of ids) (state.cursors.delete(idString(id)) ? cursorsKilled : cursorsNotFound).push(id);
  return {cursorsKilled, cursorsNotFound, cursorsAlive: [], cursorsUnknown: [], ok: 1};
};

const count: Handler = (req, state) => {
  const coll = state.store.get(req.db, collName(req, 'count'));
  const recs = select(coll, docField(req, 'query'), {skip: num(req.body.skip), limit: Math.abs(num(req.body.limit) ?? 0), collation: treeOfRequest(req).get('collation')});
  return {n: recs.length, ok: 1};
};

const distinct: Handler = (req, state) => {
  const key = req.body.key;
  if (typeof key !== 'string') throw new CommandError(14, "BSON field 'distinct.key' is missing or not a string");
  const recs = select(state.store.get(req.db, collName(req, 'distinct')), docField(req, 'query'), {collation: treeOfRequest(req).get('collation')});
  const parts = key.split('.');
  const seen = new Map<string, Value>();
  for (const rec of recs) {
    for (const v of valuesAt(treeOf(rec), parts, false)) {
      if (v === undefined) continue;
      for (const x of v instanceof BArr ? v.items : [v]) {
        const k = keyOf(x);
        if (!seen.has(k)) seen.set(k, x);
      }
    }
  }
  return {values: [...seen.values()], ok: 1};
};

const aggregateCmd: Handler = (req, state) => {
  const target = req.body.aggregate;
  if (typeof target !== 'string') throw new CommandError(115, 'database-level aggregation is not supported by the gravity-restore test server');
  if (!Array.isArray(req.body.pipeline)) throw new CommandError(14, "'pipeline' option must be specified as an array");
  if (req.body.explain === true) throw new CommandError(115, 'explain is not supported by the gravity-restore test server');
  if (!isPlainObject(req.body.cursor)) throw new CommandError(9, "The 'cursor' option is required, except for aggregate with the explain argument");
  const stages = treeOfRequest(req).get('pipeline') as BArr;
  const docs = aggregate(state.store, state.store.get(req.db, target), req.body.pipeline as Document[], stages, treeOfRequest(req).get('collation'));
  return cursorReply(state, `${req.db}.${target}`, docs, cursorBatchSize(req.body), false);
};

const findAndModify: Handler = (req, state) => {
  rejectTransactions(req.body, state);
  const name = collName(req, 'findAndModify');
  const b = req.body;
  const fields = b.fields as Document | undefined;
  const coll = state.store.get(req.db, name);
  const bypassValidation = b.bypassDocumentValidation === true;
  const [rec] = select(coll, docField(req, 'query'), {sort: docField(req, 'sort'), limit: 1, collation: treeOfRequest(req).get('collation')});
  if (b.remove === true) {
    if (!rec) return {lastErrorObject: {n: 0}, value: null, ok: 1};
    coll!.remove(rec);
    state.store.oplog?.deleted(coll!, [rec.id], false, retryable(req, state, 0));
    return {lastErrorObject: {n: 1}, value: new RawDoc(project([rec], fields)[0]!), ok: 1};
  }
  if (b.update === undefined) throw new CommandError(9, 'Either an update or remove=true must be specified');
  const spec = parseUpdate(req.raw, b.update, 'update');
  const arrayFilters = arrayFiltersOf(treeOfRequest(req).get('arrayFilters'));
  const query = docField(req, 'query');
  if (rec) {
    const before = project([rec], fields)[0]!;
    const bytes = updatedBytes(rec, spec, query, arrayFilters);
    if (bytes !== rec.bytes) {
      const pre = rec.bytes;
      coll!.replace(rec, bytes, {bypassValidation});
      state.store.oplog?.updated(coll!, pre, rec.bytes, spec.kind === 'replacement', retryable(req, state, 0));
    }
    const value = b.new === true ? project([rec], fields)[0]! : before;
    return {lastErrorObject: {n: 1, updatedExisting: true}, value: new RawDoc(value), ok: 1};
  }
  if (b.upsert !== true) return {lastErrorObject: {n: 0, updatedExisting: false}, value: null, ok: 1};
  const {bytes, fallbackId} = upsertBytes(spec, query, arrayFilters);
  const target = state.store.ensure(req.db, name).coll;
  const created = target.insert(bytes, {fallbackId, bypassValidation});
  state.store.oplog?.inserted(target, created.bytes, retryable(req, state, 0));
  const value = b.new === true ? new RawDoc(project([created], fields)[0]!) : null;
  return {lastErrorObject: {n: 1, updatedExisting: false, upserted: created.id}, value, ok: 1};
};

/** Fields every command may carry that are not collection options. */
const GENERIC_FIELDS = new Set([
  '$db', 'lsid', '$readPreference', '$clusterTime', 'writeConcern', 'readConcern', 'txnNumber',
  'autocommit', 'startTransaction', 'comment', 'maxTimeMS', 'apiVersion', 'apiStrict',
  'apiDeprecationErrors', '$audit', '$client',
]);

/** create options mongod 6.0 knows (https://www.mongodb.com/docs/manual/reference/command/create/). */
const CREATE_OPTIONS = new Set([
  'capped', 'size', 'max', 'autoIndexId', 'storageEngine', 'validator', 'validationLevel', 'validationAction',
  'indexOptionDefaults', 'collation', 'idIndex', 'temp', 'flags', 'recordPreImages', 'changeStreamPreAndPostImages',
  'expireAfterSeconds', 'viewOn', 'pipeline', 'timeseries', 'clusteredIndex', 'encryptedFields',
]);
/** Known options whose semantics this server does not have: refused rather than ignored. */
const CREATE_UNSUPPORTED = new Set(['viewOn', 'pipeline', 'timeseries', 'clusteredIndex', 'encryptedFields', 'expireAfterSeconds']);

const create: Handler = (req, state) => {
  const name = collName(req, 'create');
  rejectTransactions(req.body, state);
  const entries = treeOfRequest(req).entries.filter(([k]) => k !== 'create' && !GENERIC_FIELDS.has(k));
  for (const [k] of entries) {
    if (!CREATE_OPTIONS.has(k)) throw new CommandError(40415, `BSON field 'create.${k}' is an unknown field.`);
    if (CREATE_UNSUPPORTED.has(k)) throw new CommandError(115, `create option ${k} is not supported by the gravity-restore test server`);
  }
  if (state.store.get(req.db, name)) throw new CommandError(48, `Collection ${req.db}.${name} already exists.`);
  const options = BDoc.fromEntries(entries);
  const capped = options.get('capped');
  if (capped instanceof BVal && capped.type === BT.BOOL && capped.bytes[0] === 1 && options.get('size') === undefined) {
    throw new CommandError(72, 'the size field is required when creating a capped collection');
  }
  state.store.ensure(req.db, name, options);
  return {ok: 1};
};

/** collMod: changes a collection's validator, validationLevel or validationAction. */
const collMod: Handler = (req, state) => {
  const name = collName(req, 'collMod');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, 'ns does not exist');
  const changes = treeOfRequest(req).entries.filter(([k]) => k !== 'collMod' && !GENERIC_FIELDS.has(k));
  for (const [k] of changes) {
    if (k !== 'validator' && k !== 'validationLevel' && k !== 'validationAction') {
      throw new CommandError(115, `collMod ${k} is not supported by the gravity-restore test server`);
    }
  }
  const kept = coll.options.entries.filter(([k]) => !changes.some(([c]) => c === k));
  const options = BDoc.fromEntries([...kept, ...changes]);
  coll.validation = validationOf(options);
  coll.options = options;
  return {ok: 1};
};

const drop: Handler = (req, state) => {
  const name = collName(req, 'drop');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, 'ns not found');
  const nIndexesWas = coll.indexes.length;
  state.store.oplog?.dropped(coll);
  state.store.drop(req.db, name);
  return {nIndexesWas, ns: `${req.db}.${name}`, ok: 1};
};

const dropDatabase: Handler = (req, state) => {
  state.store.oplog?.droppedDatabase(req.db, state.store.collections(req.db));
  state.store.dropDatabase(req.db);
  return {dropped: req.db, ok: 1};
};

function collectionInfo(c: Collection): BDoc {
  const idIndex = BDoc.fromEntries([['v', toValue(2)], ['key', BDoc.fromEntries([['_id', toValue(1)]])], ['name', toValue('_id_')]]);
  return BDoc.fromEntries([
    ['name', toValue(c.name)],
    ['type', toValue('collection')],
    ['options', c.options],
    ['info', BDoc.fromEntries([['readOnly', toValue(false)], ['uuid', toValue(c.uuid)]])],
    ['idIndex', idIndex],
  ]);
}

const listCollections: Handler = (req, state) => {
  const filter = docField(req, 'filter');
  const pred = filter ? compileFilter(filter) : undefined;
  const docs: Buffer[] = [];
  for (const c of state.store.collections(req.db)) {
    const info = collectionInfo(c);
    if (pred && !pred(info)) continue;
    docs.push(req.body.nameOnly === true ? encode({name: c.name, type: 'collection'}) : info.bytes);
  }
  return cursorReply(state, `${req.db}.$cmd.listCollections`, docs, cursorBatchSize(req.body), false);
};

const listIndexes: Handler = (req, state) => {
  const name = collName(req, 'listIndexes');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, `ns does not exist: ${req.db}.${name}`);
  const docs = coll.indexes.map((i) => i.spec.bytes);
  return cursorReply(state, `${req.db}.$cmd.listIndexes.${name}`, docs, cursorBatchSize(req.body), false);
};

/** Index specification fields mongod 6.0 accepts (https://www.mongodb.com/docs/manual/reference/command/createIndexes/). */
const INDEX_OPTIONS = new Set([
  'key', 'name', 'v', 'unique', 'sparse', 'partialFilterExpression', 'background', 'expireAfterSeconds', 'hidden',
  'storageEngine', 'collation', 'weights', 'default_language', 'language_override', 'textIndexVersion',
  '2dsphereIndexVersion', 'bits', 'min', 'max', 'bucketSize', 'wildcardProjection', 'ns', 'dropDups',
]);

function defaultIndexName(key: BDoc): string {
  return key.entries.map(([k, v]) => `${k}_${v instanceof BVal && v.type === BT.STRING ? stringOf(v) : v instanceof BVal && v.type !== BT.DOC ? String(toNumber(v)) : formatValue(v)}`).join('_');
}

const createIndexes: Handler = (req, state) => {
  const name = collName(req, 'createIndexes');
  const specs = treeOfRequest(req).get('indexes');
  if (!(specs instanceof BArr) || specs.items.length === 0) throw new CommandError(2, 'Must specify at least one index to create');
  const parsed = specs.items.map((s) => {
    if (!(s instanceof BDoc)) throw new CommandError(14, "BSON field 'createIndexes.indexes' is the wrong type");
    const key = s.get('key');
    if (!(key instanceof BDoc) || key.entries.length === 0) throw new CommandError(67, 'Index keys cannot be empty.');
    for (const [k] of s.entries) {
      if (!INDEX_OPTIONS.has(k)) throw new CommandError(197, `The field '${k}' is not valid for an index specification. Specification: ${formatValue(s)}`);
    }
    for (const [field, v] of key.entries) {
      const numeric = v instanceof BVal && v.type !== BT.STRING && v.type !== BT.BOOL && v.type !== BT.NULL && !(v instanceof BDoc) && toNumber(v) !== 0;
      const named = v instanceof BVal && v.type === BT.STRING;
      if (!numeric && !named) throw new CommandError(67, `Values in the index key pattern can only be numbers or strings: ${field}: ${formatValue(v)}`);
    }
    const given = s.get('name');
    const indexName = given instanceof BVal && given.type === BT.STRING ? given : toValue(defaultIndexName(key));
    return BDoc.fromEntries([['key', key], ['name', indexName], ...s.entries.filter(([k]) => k !== 'key' && k !== 'name' && k !== 'v')]);
  });
  const {coll, created} = state.store.ensure(req.db, name);
  const before = coll.indexes.length;
  let made = 0;
  for (const spec of parsed) if (coll.addIndex(spec) === 'created') made++;
  const reply: Document = {numIndexesBefore: before, numIndexesAfter: coll.indexes.length, createdCollectionAutomatically: created};
  if (made === 0) reply.note = 'all indexes already exist';
  reply.ok = 1;
  return reply;
};

const dropIndexes: Handler = (req, state) => {
  const name = collName(req, 'dropIndexes');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, `ns not found ${req.db}.${name}`);
  const nIndexesWas = coll.indexes.length;
  const which = req.body.index;
  if (which === '*') {
    for (const i of [...coll.indexes]) if (i.name !== '_id_') coll.dropIndex(i.name);
  } else if (typeof which === 'string') {
    coll.dropIndex(which);
  } else if (Array.isArray(which)) {
    for (const n of which) coll.dropIndex(String(n));
  } else if (isPlainObject(which)) {
    const wanted = docField(req, 'index')!;
    const found = coll.indexes.find((i) => keyOf(i.key) === keyOf(wanted));
    if (!found) throw new CommandError(27, `can't find index with key: ${formatValue(wanted)}`);
    coll.dropIndex(found.name);
  } else {
    throw new CommandError(14, "BSON field 'dropIndexes.index' is the wrong type");
  }
  return {nIndexesWas, ok: 1};
};

const listDatabases: Handler = (req, state) => {
  const filter = docField(req, 'filter');
  const pred = filter ? compileFilter(filter) : undefined;
  let totalSize = 0;
  const databases: Document[] = [];
  for (const [name] of state.store.dbs) {
    const sizeOnDisk = state.store.collections(name).reduce((s, c) => s + c.dataSize(), 0);
    const info = {name, sizeOnDisk, empty: false};
    if (pred && !pred(parseDoc(encode(info)))) continue;
    totalSize += sizeOnDisk;
    databases.push(req.body.nameOnly === true ? {name} : info);
  }
  return req.body.nameOnly === true ? {databases, ok: 1} : {databases, totalSize, totalSizeMb: Math.floor(totalSize / 1048576), ok: 1};
};

const renameCollection: Handler = (req, state) => {
  const from = String(req.body.renameCollection);
  const to = String(req.body.to);
  const split = (ns: string): [string, string] => {
    const i = ns.indexOf('.');
    if (i <= 0) throw new CommandError(73, `Invalid namespace specified '${ns}'`);
    return [ns.slice(0, i), ns.slice(i + 1)];
  };
  const [fdb, fname] = split(from);
  const [tdb, tname] = split(to);
  const coll = state.store.get(fdb, fname);
  if (!coll) throw new CommandError(26, 'Source collection does not exist');
  const target = state.store.get(tdb, tname);
  if (target) {
    if (req.body.dropTarget !== true) throw new CommandError(48, 'target namespace exists');
    state.store.drop(tdb, tname);
  }
  state.store.rename(coll, tdb, tname);
  state.store.oplog?.renamed(coll, from, target);
  return {ok: 1};
};

const collStats: Handler = (req, state) => {
  const name = collName(req, 'collStats');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, `ns not found ${req.db}.${name}`);
  const size = coll.dataSize();
  const count = coll.records.size;
  return {ns: coll.ns, size, count, avgObjSize: count ? Math.floor(size / count) : 0, storageSize: size, nindexes: coll.indexes.length, totalIndexSize: 0, ok: 1};
};

const dbStats: Handler = (req, state) => {
  const colls = state.store.collections(req.db);
  const dataSize = colls.reduce((s, c) => s + c.dataSize(), 0);
  const objects = colls.reduce((s, c) => s + c.records.size, 0);
  return {db: req.db, collections: colls.length, views: 0, objects, dataSize, storageSize: dataSize, indexes: colls.reduce((s, c) => s + c.indexes.length, 0), ok: 1};
};

const ok: Handler = () => ({ok: 1});

const getParameter: Handler = (req) => {
  const all = req.body.getParameter === '*';
  const reply: Document = {};
  if (all || req.body.featureCompatibilityVersion !== undefined) reply.featureCompatibilityVersion = {version: '6.0'};
  if (all || req.body.authenticationMechanisms !== undefined) reply.authenticationMechanisms = [];
  if (Object.keys(reply).length === 0) throw new CommandError(72, 'no option found to get');
  reply.ok = 1;
  return reply;
};

const serverStatus: Handler = (_req, state) => ({
  host: 'localhost',
  version: SERVER_VERSION,
  process: 'mongod',
  pid: Long.fromNumber(process.pid),
  uptime: (Date.now() - state.startedAt) / 1000,
  localTime: new Date(),
  connections: {current: state.connections(), available: 1000},
  ok: 1,
});

const authRefused: Handler = () => {
  throw new CommandError(18, 'Authentication failed: the gravity-restore test server runs without access control; connect without credentials');
};

const HANDLERS: Record<string, Handler> = {
  hello: hello(false),
  isMaster: hello(true),
  ismaster: hello(true),
  ping: ok,
  buildInfo,
  buildinfo: buildInfo,
  getParameter,
  serverStatus,
  whatsmyuri: () => ({you: '127.0.0.1:0', ok: 1}),
  connectionStatus: () => ({authInfo: {authenticatedUsers: [], authenticatedUserRoles: []}, ok: 1}),
  getCmdLineOpts: () => ({argv: ['mongod'], parsed: {}, ok: 1}),
  hostInfo: () => ({system: {currentTime: new Date(), hostname: 'localhost'}, os: {type: process.platform}, extra: {}, ok: 1}),
  endSessions: ok,
  killSessions: ok,
  killAllSessions: ok,
  refreshSessions: ok,
  startSession: () => ({id: {id: new ObjectId()}, timeoutMinutes: 30, ok: 1}),
  saslStart: authRefused,
  saslContinue: authRefused,
  authenticate: authRefused,
  logout: ok,
  listDatabases,
  listCollections,
  create,
  collMod,
  drop,
  dropDatabase,
  renameCollection,
  insert,
  update,
  delete: del,
  find: findCmd,
  getMore,
  killCursors,
  count,
  distinct,
  aggregate: aggregateCmd,
  findAndModify,
  findandmodify: findAndModify,
  createIndexes,
  listIndexes,
  dropIndexes,
  deleteIndexes: dropIndexes,
  collStats,
  dbStats,
};

/** Runs one command; always returns a reply document (errors as `{ok: 0, …}`). */
export function runCommand(req: Request, state: ServerState): Document {
  const name = Object.keys(req.body)[0];
  try {
    if (name === undefined) throw new CommandError(59, 'no such command: empty document');
    const handler = Object.hasOwn(HANDLERS, name) ? HANDLERS[name] : undefined;
    if (!handler) throw new CommandError(59, `no such command: '${name}'`);
    if (req.raw.length > MAX_COMMAND_SIZE) {
      throw new CommandError(10334, `BSONObj size: ${req.raw.length} (0x${req.raw.length.toString(16).toUpperCase()}) is invalid. Size must be between 0 and ${MAX_COMMAND_SIZE}(16MB) First element: ${name}: "${String(req.body[name])}"`);
    }
    for (const seq of req.sequences.values()) {
      for (const d of seq) {
        if (d.length > MAX_COMMAND_SIZE) throw new CommandError(10334, `BSONObj size: ${d.length} (0x${d.length.toString(16).toUpperCase()}) is invalid. Size must be between 0 and ${MAX_COMMAND_SIZE}(16MB)`);
      }
    }
    return handler(req, state);
  } catch (e) {
    if (e instanceof CommandError) return {ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName, ...e.extra};
    return {ok: 0, errmsg: e instanceof Error ? e.message : String(e), code: 1, codeName: 'InternalError'};
  }
}
