/**
 * OpTime helpers. An oplog `ts` is a BSON Timestamp: two unsigned 32-bit numbers, seconds and a
 * counter, ordered by seconds then counter (OPLOG.md §1, §9: compare `(t, i)` as unsigned pairs).
 */
import {Timestamp} from 'bson';

import {GravityError} from '../errors.js';
import type {OpTime} from './types.js';

const MAX_U32 = 0xffffffff;

/** Negative when a is before b, 0 when equal, positive after. */
export function compareOpTime(a: OpTime, b: OpTime): number {
  if (a.t !== b.t) return (a.t >>> 0) - (b.t >>> 0);
  return (a.i >>> 0) - (b.i >>> 0);
}

export function isBefore(a: OpTime, b: OpTime): boolean {
  return compareOpTime(a, b) < 0;
}

export function sameOpTime(a: OpTime, b: OpTime): boolean {
  return compareOpTime(a, b) === 0;
}

export function maxOpTime(a: OpTime, b: OpTime): OpTime {
  return compareOpTime(a, b) >= 0 ? a : b;
}

export function minOpTime(a: OpTime, b: OpTime): OpTime {
  return compareOpTime(a, b) <= 0 ? a : b;
}

/** `Timestamp(t, i)`, the shell's spelling, which parseOpTime reads back. */
export function formatOpTime(ts: OpTime): string {
  return `Timestamp(${ts.t >>> 0}, ${ts.i >>> 0})`;
}

/** The optime's seconds as an ISO 8601 instant, with the counter: `2024-03-09T16:00:00Z#3`. */
export function describeOpTime(ts: OpTime): string {
  return `${new Date((ts.t >>> 0) * 1000).toISOString().replace('.000Z', 'Z')}#${ts.i >>> 0}`;
}

/** From a bson Timestamp (its `t`/`i` getters, bson ≥ 6). */
export function fromTimestamp(ts: Timestamp): OpTime {
  return {t: ts.t, i: ts.i};
}

export function toTimestamp(ts: OpTime): Timestamp {
  return new Timestamp({t: ts.t >>> 0, i: ts.i >>> 0});
}

/**
 * Reads `Timestamp(t, i)`, `{"$timestamp": {"t": …, "i": …}}`, `t:i` or `t,i`. Times of day (ISO 8601)
 * are the caller's business: they need a timezone, and "state at TIME" means `(seconds, 0)`.
 */
export function parseOpTime(text: string): OpTime {
  const s = text.trim();
  const m =
    /^Timestamp\(\s*(\d+)\s*,\s*(\d+)\s*\)$/.exec(s) ??
    /^\{\s*"\$timestamp"\s*:\s*\{\s*"t"\s*:\s*(\d+)\s*,\s*"i"\s*:\s*(\d+)\s*\}\s*\}$/.exec(s) ??
    /^(\d+)\s*[:,]\s*(\d+)$/.exec(s);
  if (!m) {
    throw new GravityError('USAGE', `"${text}" is not an oplog time`, {hint: 'Write Timestamp(<seconds>, <counter>), e.g. Timestamp(1710000000, 1)'});
  }
  const t = Number(m[1]);
  const i = Number(m[2]);
  if (t > MAX_U32 || i > MAX_U32) {
    throw new GravityError('USAGE', `"${text}" is out of range for an oplog time`, {hint: 'Both numbers of Timestamp(t, i) are unsigned 32-bit'});
  }
  return {t, i};
}

/** The first optime of a second: "state at second T" applies every entry before it (OPLOG.md §5 rule 7). */
export function startOfSecond(seconds: number): OpTime {
  return {t: seconds, i: 0};
}
