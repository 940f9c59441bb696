/**
 * What a source must know of an oplog entry without decoding it: its `ts` (the ordering key) and
 * its `op` (no-op entries tell an unfiltered oplog, see coverage.ts). Both are top-level fields
 * whose position varies (`lsid`, `txnNumber`, `op`, `ns`… may precede `ts`; OPLOG.md §1), so the
 * top-level elements are walked by their sizes, nothing else is read.
 */
import {GravityError} from '../../errors.js';
import {valueSize} from '../../query/raw.js';
import type {OpTime} from '../types.js';

const TYPE_STRING = 0x02;
const TYPE_TIMESTAMP = 0x11;
/** 't', 's' in 'ts'; 'o', 'p' in 'op'. */
const T = 0x74;
const S = 0x73;
const O = 0x6f;
const P = 0x70;

export interface EntryHead {
  ts: OpTime;
  /** The first byte of `op` ('i', 'u', 'd', 'c', 'n'), or 0 when the entry has none. */
  op: number;
}

export function corruptEntry(where: string, offset: number | null, what: string): GravityError {
  return new GravityError('OPLOG_CORRUPT', `${where}: ${what}${offset === null ? '' : ` (entry at byte ${offset})`}`, {
    hint: 'The oplog file is damaged or is not an oplog dump; dump it again (mongodump -d local -c oplog.rs) or leave it out of --oplog',
    details: {where, offset},
  });
}

/**
 * The `ts` and `op` of one oplog document. An entry without a Timestamp `ts` is not an oplog entry:
 * OPLOG_CORRUPT naming the file and the offset.
 */
export function readEntryHead(doc: Buffer, where: string, offset: number | null): EntryHead {
  const end = doc.length - 1;
  let at = 4;
  let ts: OpTime | null = null;
  let op = 0;
  while (at < end) {
    const type = doc[at]!;
    const name = at + 1;
    let nameEnd = name;
    while (nameEnd < end && doc[nameEnd] !== 0) nameEnd++;
    const value = nameEnd + 1;
    if (value > end) break;
    const size = valueSize(doc, type, value);
    if (size < 0 || value + size > end) throw corruptEntry(where, offset, 'an oplog entry holds a malformed field');
    if (nameEnd - name === 2) {
      if (doc[name] === T && doc[name + 1] === S && type === TYPE_TIMESTAMP) {
        // A BSON Timestamp is the increment (low 32 bits) then the seconds (high 32 bits), little-endian.
        ts = {t: doc.readUInt32LE(value + 4), i: doc.readUInt32LE(value)};
        if (op !== 0) break;
      } else if (doc[name] === O && doc[name + 1] === P && type === TYPE_STRING && size > 5) {
        op = doc[value + 4]!;
        if (ts !== null) break;
      }
    }
    at = value + size;
  }
  if (ts === null) throw corruptEntry(where, offset, 'a document without a Timestamp "ts" field is not an oplog entry');
  return {ts, op};
}

export {compareOpTime, formatOpTime} from '../optime.js';

/** The second an optime falls in, as an ISO 8601 UTC time (the counter is not a fraction of a second). */
export function opTimeToIso(ts: OpTime): string {
  return new Date(ts.t * 1000).toISOString().replace('.000Z', 'Z');
}

export const OP_NOOP = 0x6e; // 'n'

const N = 0x6e;
const S_ = 0x73;

/**
 * Whether an entry can be passed over without decoding when only `matters` namespaces count: a no-op,
 * or a plain insert, update or delete (`i`, `u`, `d`, top-level) of another namespace. Commands,
 * applyOps and anything unreadable are left to the decoder.
 */
export function skippable(doc: Buffer, matters: (ns: string) => boolean): boolean {
  const end = doc.length - 1;
  let at = 4;
  let op = 0;
  let ns: string | null = null;
  while (at < end) {
    const type = doc[at]!;
    const name = at + 1;
    let nameEnd = name;
    while (nameEnd < end && doc[nameEnd] !== 0) nameEnd++;
    const value = nameEnd + 1;
    if (value > end) return false;
    const size = valueSize(doc, type, value);
    if (size < 0 || value + size > end) return false;
    if (nameEnd - name === 2 && type === TYPE_STRING) {
      if (doc[name] === O && doc[name + 1] === P && size > 5) op = doc[value + 4]!;
      else if (doc[name] === N && doc[name + 1] === S_) ns = doc.toString('utf8', value + 4, value + size - 1);
      if (op === OP_NOOP) return true;
      if (op !== 0 && ns !== null) break;
    }
    at = value + size;
  }
  if (ns === null) return false;
  return (op === 0x69 || op === 0x75 || op === 0x64) && !matters(ns);
}
