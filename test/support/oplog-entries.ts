/**
 * Oplog entries written by hand in mongod's field order (6.0+ unless a test says otherwise), for the
 * decode and apply tests, and expected documents built by an independent BSON implementation
 * (Debian's python3-bson) so the bytes the replayer produces are checked against another encoder.
 * Documents are `Map`s: `bson` serialises a Map in insertion order, integer-like keys included.
 */
import {spawnSync} from 'node:child_process';
import {existsSync} from 'node:fs';

import {BSON, Binary, Long, Timestamp, UUID} from 'bson';

import type {RawOplogEntry} from '../../src/oplog/types.js';

export type Doc = Map<string, unknown>;

/** A document in exactly the order given. */
export function D(...pairs: [string, unknown][]): Doc {
  return new Map(pairs);
}

export function bytes(doc: Doc): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

export const UI = new UUID('0cc57b4e-e61c-4151-81f3-14b06caed22e').toBinary();
export const UI_HEX = '0cc57b4ee61c415181f314b06caed22e';
const TERM = Long.fromNumber(4);
const V2 = Long.fromNumber(2);

export function ts(t: number, i: number): Timestamp {
  return new Timestamp({t, i});
}

function tail(t: number, i: number): [string, unknown][] {
  return [
    ['ts', ts(t, i)],
    ['t', TERM],
    ['v', V2],
    ['wall', new Date(t * 1000 + 123)],
  ];
}

/** `{op: "i", ns, ui, o, o2: {_id}, ts, t, v, wall}` (FCV ≥ 5.3 writes o2 on inserts, OPLOG.md §1). */
export function insertEntry(ns: string, doc: Doc, t: number, i: number): Doc {
  return D(['op', 'i'], ['ns', ns], ['ui', UI], ['o', doc], ['o2', D(['_id', doc.get('_id')])], ...tail(t, i));
}

export function updateEntry(ns: string, o2: Doc, o: Doc, t: number, i: number): Doc {
  return D(['op', 'u'], ['ns', ns], ['ui', UI], ['o', o], ['o2', o2], ...tail(t, i));
}

export function deleteEntry(ns: string, key: Doc, t: number, i: number): Doc {
  return D(['op', 'd'], ['ns', ns], ['ui', UI], ['o', key], ...tail(t, i));
}

export function commandEntry(ns: string, o: Doc, t: number, i: number, extra: [string, unknown][] = []): Doc {
  return D(...extra, ['op', 'c'], ['ns', ns], ['o', o], ...tail(t, i));
}

export function noopEntry(ns: string, o: Doc, t: number, i: number): Doc {
  return D(['op', 'n'], ['ns', ns], ['o', o], ...tail(t, i));
}

/** An applyOps inner operation: no ts, t or wall of its own (OPLOG.md §1). */
export function inner(op: string, ns: string, o: Doc, o2?: Doc): Doc {
  return D(['op', op], ['ns', ns], ['ui', UI], ['o', o], ...(o2 ? ([['o2', o2]] as [string, unknown][]) : []));
}

export const LSID = D(['id', new UUID('6b5c4a4e-0000-4000-8000-000000000001').toBinary()], ['uid', new Binary(Buffer.alloc(32, 7), 0)]);
export const LSID2 = D(['id', new UUID('6b5c4a4e-0000-4000-8000-000000000002').toBinary()], ['uid', new Binary(Buffer.alloc(32, 7), 0)]);

export function session(lsid: Doc, txnNumber: number): [string, unknown][] {
  return [
    ['lsid', lsid],
    ['txnNumber', Long.fromNumber(txnNumber)],
  ];
}

export function prevOpTime(t: number, i: number): [string, unknown] {
  return ['prevOpTime', D(['ts', ts(t, i)], ['t', t === 0 ? Long.fromNumber(-1) : TERM])];
}

export function raw(entry: Doc): RawOplogEntry {
  const at = entry.get('ts') as Timestamp;
  return {ts: {t: at.t, i: at.i}, raw: bytes(entry)};
}

export async function* stream(entries: Doc[]): AsyncGenerator<RawOplogEntry> {
  for (const e of entries) yield raw(e);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export const PYTHON = '/usr/bin/python3';
export const hasPythonBson = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import bson'], {encoding: 'utf8'}).status === 0;
export const noPython = hasPythonBson ? false : 'Debian /usr/bin/python3 with python3-bson is not installed (apt-get install python3-bson)';

const PREAMBLE = `
import json, sys, datetime
import bson
from bson.son import SON
from bson.int64 import Int64
from bson.decimal128 import Decimal128
from bson.objectid import ObjectId
def S(*pairs):
    return SON(list(pairs))
out = {}
`;

/**
 * Documents built by python3-bson: `script` assigns `out[name] = S((key, value), …)` (Python ints
 * are Int32 when they fit, floats are doubles, Int64 and Decimal128 as named). Returns their bytes.
 */
export function pythonDocs(script: string): Record<string, Buffer> {
  if (!hasPythonBson) return {};
  const code = `${PREAMBLE}${script}\nprint(json.dumps({k: bson.encode(v).hex() for k, v in out.items()}))`;
  const result = spawnSync(PYTHON, ['-c', code], {encoding: 'utf8'});
  if (result.status !== 0) throw new Error(`python3-bson failed: ${result.stderr}`);
  const hex = JSON.parse(result.stdout) as Record<string, string>;
  return Object.fromEntries(Object.entries(hex).map(([k, v]) => [k, Buffer.from(v, 'hex')]));
}
