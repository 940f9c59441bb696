/**
 * Oplog entries in mongod's exact format, encoded by an independent BSON implementation (Debian's
 * python3-bson, test/support/oplog-encode.py). Shapes follow ../shared/OPLOG.md: field order and
 * types of §1's examples (`ts`, `t` Int64, `v` Int64 2, `wall` Date; `o2` on 6.0+ inserts), the
 * periodic no-op (`op: "n"`, `ns: ""`, `o: {msg: "periodic noop"}`, jira SERVER-23892), applyOps
 * and transactions of §3.1.
 */
import {spawnSync} from 'node:child_process';
import path from 'node:path';

import {REPO_ROOT} from './cli.js';

export const DEBIAN_PYTHON = '/usr/bin/python3';
const ENCODER = path.join(REPO_ROOT, 'test', 'support', 'oplog-encode.py');

export type Json = Record<string, unknown>;

/** BSON bytes of canonical Extended JSON documents, from python3-bson. */
export function encodeEntries(docs: Json[]): Buffer[] {
  const result = spawnSync(DEBIAN_PYTHON, [ENCODER], {input: JSON.stringify(docs), encoding: 'utf8', maxBuffer: 1 << 30});
  if (result.status !== 0) throw new Error(`oplog-encode.py failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as string[]).map((hex) => Buffer.from(hex, 'hex'));
}

export const ts = (t: number, i: number): Json => ({$timestamp: {t, i}});
const long = (n: number): Json => ({$numberLong: String(n)});
const int = (n: number): Json => ({$numberInt: String(n)});
const wall = (t: number, ms = 0): Json => ({$date: {$numberLong: String(t * 1000 + ms)}});
export const oid = (hex: string): Json => ({$oid: hex});
/** A collection UUID (`ui`, Binary subtype 4). */
export const uuid = (base64 = '0cV7TuYcQVGB8xSwbK7SLg=='): Json => ({$binary: {base64, subType: '04'}});

/** The optime fields every entry ends with, in mongod's order (OPLOG.md §1 examples). */
function optimeFields(t: number, i: number): Json {
  return {ts: ts(t, i), t: long(4), v: long(2), wall: wall(t)};
}

/** Insert, 6.0+ (`o2` holds the document key). */
export function insert(t: number, i: number, ns: string, doc: Json): Json {
  return {op: 'i', ns, ui: uuid(), o: doc, o2: {_id: doc._id}, ...optimeFields(t, i)};
}

/** Update with a `$v: 2` diff (5.0+). */
export function updateV2(t: number, i: number, ns: string, id: unknown, diff: Json): Json {
  return {op: 'u', ns, ui: uuid(), o: {$v: int(2), diff}, o2: {_id: id}, ...optimeFields(t, i)};
}

/** Update, 4.4 style (`$v: 1` modifiers; 4.2/4.4 entries still carry `h: 0`). */
export function updateV1(t: number, i: number, ns: string, id: unknown, mods: Json): Json {
  return {op: 'u', ns, ui: uuid(), o: {$v: int(1), ...mods}, o2: {_id: id}, ts: ts(t, i), t: long(1), h: long(0), v: long(2), wall: wall(t)};
}

export function replace(t: number, i: number, ns: string, doc: Json): Json {
  return {op: 'u', ns, ui: uuid(), o: doc, o2: {_id: doc._id}, ...optimeFields(t, i)};
}

export function remove(t: number, i: number, ns: string, id: unknown): Json {
  return {op: 'd', ns, ui: uuid(), o: {_id: id}, ...optimeFields(t, i)};
}

/** The idle primary's periodic no-op. */
export function noop(t: number, i = 1): Json {
  return {op: 'n', ns: '', o: {msg: 'periodic noop'}, ...optimeFields(t, i)};
}

/** A findAndModify image no-op: a full document under the collection's ns (OPLOG.md §4, trap 2). */
export function imageNoop(t: number, i: number, ns: string, doc: Json): Json {
  return {op: 'n', ns, ui: uuid(), o: doc, ...optimeFields(t, i)};
}

/** A transaction committed in one applyOps entry (lsid + txnNumber, prevOpTime null; OPLOG.md §3.1). */
export function transaction(t: number, i: number, ops: Json[], txnNumber = 1): Json {
  return {
    lsid: {id: {$binary: {base64: 'AAAAAAAAQACAAAAAAAAAAQ==', subType: '04'}}, uid: {$binary: {base64: '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=', subType: '00'}}},
    txnNumber: long(txnNumber),
    op: 'c', ns: 'admin.$cmd', o: {applyOps: ops},
    ...optimeFields(t, i),
    prevOpTime: {ts: ts(0, 0), t: long(-1)},
  };
}

/**
 * A large unprepared transaction (4.2+): entries with `partialTxn: true` linked by `prevOpTime`, the
 * last without it and with `count` (OPLOG.md §3.1, MT testdata "large, unprepared").
 */
export function transactionChain(parts: Array<{t: number; i: number; ops: Json[]}>, txnNumber = 2): Json[] {
  let count = 0;
  return parts.map((part, k) => {
    count += part.ops.length;
    const last = k === parts.length - 1;
    const prev = k === 0 ? {ts: ts(0, 0), t: long(-1)} : {ts: ts(parts[k - 1]!.t, parts[k - 1]!.i), t: long(4)};
    return {
      ...transaction(part.t, part.i, part.ops, txnNumber),
      o: last ? {applyOps: part.ops, count: long(count)} : {applyOps: part.ops, partialTxn: true},
      prevOpTime: prev,
    };
  });
}

/** An inner operation of applyOps: no ts/t/wall of its own (OPLOG.md §1). */
export function innerInsert(ns: string, doc: Json): Json {
  return {op: 'i', ns, ui: uuid(), o: doc, o2: {_id: doc._id}};
}

export function innerUpdateV2(ns: string, id: unknown, diff: Json): Json {
  return {op: 'u', ns, ui: uuid(), o: {$v: int(2), diff}, o2: {_id: id}};
}

export function innerDelete(ns: string, id: unknown): Json {
  return {op: 'd', ns, ui: uuid(), o: {_id: id}};
}

/** 6.1+ batched deleteMany: a non-transactional applyOps of deletes (no lsid). */
export function batchedDeletes(t: number, i: number, ns: string, ids: unknown[]): Json {
  return {op: 'c', ns: 'admin.$cmd', o: {applyOps: ids.map((id) => innerDelete(ns, id))}, ...optimeFields(t, i)};
}

export function dropCollection(t: number, i: number, ns: string): Json {
  const [db, coll] = [ns.slice(0, ns.indexOf('.')), ns.slice(ns.indexOf('.') + 1)];
  return {op: 'c', ns: `${db}.$cmd`, ui: uuid(), o: {drop: coll}, o2: {numRecords: int(0)}, ...optimeFields(t, i)};
}

/** renameCollection: both values full namespaces, logged on the source database's $cmd (OPLOG.md §3.3). */
export function renameCollection(t: number, i: number, from: string, to: string): Json {
  return {op: 'c', ns: `${from.slice(0, from.indexOf('.'))}.$cmd`, ui: uuid(), o: {renameCollection: from, to, stayTemp: false}, ...optimeFields(t, i)};
}

export {int, long, wall};
