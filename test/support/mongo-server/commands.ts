/** Command dispatch: one handler per mongod command this test server understands. */
import {Long, ObjectId} from 'bson';
import {Query} from 'mingo';
import {
  type Document,
  RawDoc,
  decodeTyped,
  encode,
  isPlainObject,
  keyOf,
  toMatchable,
  valuesAtPath,
} from './bson-values.js';
import {CommandError} from './command-error.js';
import {aggregate, mingoGuard, parseUpdate, project, select, updatedBytes, upsertBytes} from './query.js';
import {type Collection, type Store, typedOf} from './storage.js';

export const MAX_WIRE_VERSION = 17;
export const SERVER_VERSION = '6.0.0';
const MAX_BSON_SIZE = 16 * 1024 * 1024;
const MAX_BATCH_BYTES = MAX_BSON_SIZE;
const DEFAULT_FIRST_BATCH = 101;

export interface Request {
  db: string;
  body: Document;
  /** Raw bytes of the command document. */
  raw: Buffer;
  /** OP_MSG kind-1 document sequences, by identifier. */
  sequences: Map<string, Buffer[]>;
}

export interface ServerState {
  store: Store;
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

function rejectTransactions(body: Document): void {
  if (body.txnNumber !== undefined || body.startTransaction !== undefined || body.autocommit !== undefined) {
    throw new CommandError(20, 'Transaction numbers are only allowed on a replica set member or mongos');
  }
}

type Handler = (req: Request, state: ServerState) => Document;

function hello(legacy: boolean): Handler {
  return (_req, state) => ({
    helloOk: true,
    [legacy ? 'ismaster' : 'isWritablePrimary']: true,
    maxBsonObjectSize: MAX_BSON_SIZE,
    maxMessageSizeBytes: 48_000_000,
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
  rejectTransactions(req.body);
  const {coll} = state.store.ensure(req.db, collName(req, 'insert'));
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  const docs = items(req, 'documents');
  for (let i = 0; i < docs.length; i++) {
    try {
      if (docs[i]!.length > MAX_BSON_SIZE) throw new CommandError(2, `object to insert too large. size in bytes: ${docs[i]!.length}, max size: ${MAX_BSON_SIZE}`);
      coll.insert(docs[i]!);
      n++;
    } catch (e) {
      writeErrors.push(writeError(i, e));
      if (ordered) break;
    }
  }
  return writeErrors.length ? {n, writeErrors, ok: 1} : {n, ok: 1};
};

const update: Handler = (req, state) => {
  rejectTransactions(req.body);
  const name = collName(req, 'update');
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  const upserted: Document[] = [];
  let n = 0;
  let nModified = 0;
  const statements = items(req, 'updates');
  for (let i = 0; i < statements.length; i++) {
    try {
      const st = decodeTyped(statements[i]!);
      const filter = (st.q ?? {}) as Document;
      const spec = parseUpdate(statements[i]!, st.u);
      const arrayFilters = st.arrayFilters as Document[] | undefined;
      const multi = st.multi === true;
      if (multi && spec.kind === 'replacement') throw new CommandError(9, 'multi update is not supported for replacement-style update');
      const coll = state.store.get(req.db, name);
      const recs = select(coll, filter, {limit: multi ? 0 : 1});
      if (recs.length === 0 && st.upsert === true) {
        const target = state.store.ensure(req.db, name).coll;
        const {bytes, fallbackId} = upsertBytes(spec, filter, arrayFilters);
        const rec = target.insert(bytes, fallbackId);
        upserted.push({index: i, _id: rec.id});
        n++;
        continue;
      }
      for (const rec of recs) {
        const bytes = updatedBytes(rec, spec, filter, arrayFilters);
        n++;
        if (bytes !== rec.bytes) {
          coll!.replace(rec, bytes);
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
  rejectTransactions(req.body);
  const coll = state.store.get(req.db, collName(req, 'delete'));
  const ordered = req.body.ordered !== false;
  const writeErrors: Document[] = [];
  let n = 0;
  const statements = items(req, 'deletes');
  for (let i = 0; i < statements.length; i++) {
    try {
      const st = decodeTyped(statements[i]!);
      const limit = num(st.limit) ?? 0;
      if (limit !== 0 && limit !== 1) throw new CommandError(9, 'The limit field in delete objects must be 0 or 1');
      for (const rec of select(coll, (st.q ?? {}) as Document, {limit})) {
        coll!.remove(rec);
        n++;
      }
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
  const recs = select(state.store.get(req.db, name), b.filter as Document | undefined, {sort: b.sort as Document | undefined, skip, limit});
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
  const recs = select(coll, req.body.query as Document | undefined, {skip: num(req.body.skip), limit: Math.abs(num(req.body.limit) ?? 0)});
  return {n: recs.length, ok: 1};
};

const distinct: Handler = (req, state) => {
  const key = req.body.key;
  if (typeof key !== 'string') throw new CommandError(14, "BSON field 'distinct.key' is missing or not a string");
  const recs = select(state.store.get(req.db, collName(req, 'distinct')), req.body.query as Document | undefined);
  const seen = new Map<string, unknown>();
  for (const rec of recs) {
    for (const v of valuesAtPath(typedOf(rec), key)) {
      if (v === undefined) continue;
      const k = keyOf(v);
      if (!seen.has(k)) seen.set(k, v);
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
  const docs = aggregate(state.store, state.store.get(req.db, target), req.body.pipeline as Document[]);
  return cursorReply(state, `${req.db}.${target}`, docs, cursorBatchSize(req.body), false);
};

const findAndModify: Handler = (req, state) => {
  rejectTransactions(req.body);
  const name = collName(req, 'findAndModify');
  const b = req.body;
  const filter = (b.query ?? {}) as Document;
  const fields = b.fields as Document | undefined;
  const coll = state.store.get(req.db, name);
  const [rec] = select(coll, filter, {sort: b.sort as Document | undefined, limit: 1});
  if (b.remove === true) {
    if (!rec) return {lastErrorObject: {n: 0}, value: null, ok: 1};
    coll!.remove(rec);
    return {lastErrorObject: {n: 1}, value: new RawDoc(project([rec], fields)[0]!), ok: 1};
  }
  if (b.update === undefined) throw new CommandError(9, 'Either an update or remove=true must be specified');
  const spec = parseUpdate(req.raw, b.update, 'update');
  const arrayFilters = b.arrayFilters as Document[] | undefined;
  if (rec) {
    const before = project([rec], fields)[0]!;
    const bytes = updatedBytes(rec, spec, filter, arrayFilters);
    if (bytes !== rec.bytes) coll!.replace(rec, bytes);
    const value = b.new === true ? project([rec], fields)[0]! : before;
    return {lastErrorObject: {n: 1, updatedExisting: true}, value: new RawDoc(value), ok: 1};
  }
  if (b.upsert !== true) return {lastErrorObject: {n: 0, updatedExisting: false}, value: null, ok: 1};
  const {bytes, fallbackId} = upsertBytes(spec, filter, arrayFilters);
  const created = state.store.ensure(req.db, name).coll.insert(bytes, fallbackId);
  const value = b.new === true ? new RawDoc(project([created], fields)[0]!) : null;
  return {lastErrorObject: {n: 1, updatedExisting: false, upserted: created.id}, value, ok: 1};
};

/** Fields every command may carry that are not collection options. */
const GENERIC_FIELDS = new Set([
  '$db', 'lsid', '$readPreference', '$clusterTime', 'writeConcern', 'readConcern', 'txnNumber',
  'autocommit', 'startTransaction', 'comment', 'maxTimeMS', 'apiVersion', 'apiStrict',
  'apiDeprecationErrors', '$audit', '$client',
]);

const create: Handler = (req, state) => {
  const name = collName(req, 'create');
  if (state.store.get(req.db, name)) throw new CommandError(48, `Collection ${req.db}.${name} already exists.`);
  const options: Document = {};
  for (const k of Object.keys(req.body)) if (k !== 'create' && !GENERIC_FIELDS.has(k)) options[k] = req.body[k];
  state.store.ensure(req.db, name, options);
  return {ok: 1};
};

const drop: Handler = (req, state) => {
  const name = collName(req, 'drop');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, 'ns not found');
  const nIndexesWas = coll.indexes.length;
  state.store.drop(req.db, name);
  return {nIndexesWas, ns: `${req.db}.${name}`, ok: 1};
};

const dropDatabase: Handler = (req, state) => {
  state.store.dropDatabase(req.db);
  return {dropped: req.db, ok: 1};
};

function collectionInfo(c: Collection): Document {
  return {
    name: c.name,
    type: 'collection',
    options: c.options,
    info: {readOnly: false, uuid: c.uuid},
    idIndex: {v: 2, key: {_id: 1}, name: '_id_'},
  };
}

const listCollections: Handler = (req, state) => {
  const filter = req.body.filter as Document | undefined;
  const q = filter && Object.keys(filter).length ? mingoGuard(() => new Query(toMatchable(filter) as Document)) : undefined;
  const docs: Buffer[] = [];
  for (const c of state.store.collections(req.db)) {
    const info = collectionInfo(c);
    if (q && !q.test(toMatchable(info) as Document)) continue;
    docs.push(encode(req.body.nameOnly === true ? {name: c.name, type: 'collection'} : info));
  }
  return cursorReply(state, `${req.db}.$cmd.listCollections`, docs, cursorBatchSize(req.body), false);
};

const listIndexes: Handler = (req, state) => {
  const name = collName(req, 'listIndexes');
  const coll = state.store.get(req.db, name);
  if (!coll) throw new CommandError(26, `ns does not exist: ${req.db}.${name}`);
  const docs = coll.indexes.map((i) => encode(i.spec));
  return cursorReply(state, `${req.db}.$cmd.listIndexes.${name}`, docs, cursorBatchSize(req.body), false);
};

function defaultIndexName(key: Document): string {
  return Object.keys(key)
    .map((k) => `${k}_${String(toMatchable(key[k]))}`)
    .join('_');
}

const createIndexes: Handler = (req, state) => {
  const name = collName(req, 'createIndexes');
  const specs = req.body.indexes;
  if (!Array.isArray(specs) || specs.length === 0) throw new CommandError(2, 'Must specify at least one index to create');
  const {coll, created} = state.store.ensure(req.db, name);
  const before = coll.indexes.length;
  let made = 0;
  for (const s of specs as Document[]) {
    if (!isPlainObject(s.key) || Object.keys(s.key).length === 0) throw new CommandError(67, 'Index keys cannot be empty.');
    const spec: Document = {key: s.key, name: typeof s.name === 'string' ? s.name : defaultIndexName(s.key)};
    for (const k of Object.keys(s)) if (k !== 'key' && k !== 'name' && k !== 'v') spec[k] = s[k];
    if (coll.addIndex(spec) === 'created') made++;
  }
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
    const found = coll.indexes.find((i) => keyOf(toMatchable(i.key)) === keyOf(toMatchable(which)));
    if (!found) throw new CommandError(27, `can't find index with key: ${JSON.stringify(toMatchable(which))}`);
    coll.dropIndex(found.name);
  } else {
    throw new CommandError(14, "BSON field 'dropIndexes.index' is the wrong type");
  }
  return {nIndexesWas, ok: 1};
};

const listDatabases: Handler = (req, state) => {
  const filter = req.body.filter as Document | undefined;
  const q = filter && Object.keys(filter).length ? mingoGuard(() => new Query(toMatchable(filter) as Document)) : undefined;
  let totalSize = 0;
  const databases: Document[] = [];
  for (const [name] of state.store.dbs) {
    const sizeOnDisk = state.store.collections(name).reduce((s, c) => s + c.dataSize(), 0);
    const info = {name, sizeOnDisk, empty: false};
    if (q && !q.test(info)) continue;
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
  if (state.store.get(tdb, tname)) {
    if (req.body.dropTarget !== true) throw new CommandError(48, 'target namespace exists');
    state.store.drop(tdb, tname);
  }
  state.store.rename(coll, tdb, tname);
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
    return handler(req, state);
  } catch (e) {
    if (e instanceof CommandError) return {ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName, ...e.extra};
    return {ok: 0, errmsg: e instanceof Error ? e.message : String(e), code: 1, codeName: 'InternalError'};
  }
}
