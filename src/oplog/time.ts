/**
 * TIME on the oplog commands: ISO 8601 (with an offset, or without one read in the zone given,
 * the source timezone by default), the other forms `--before` takes (backup-name forms, a Unix
 * epoch, `now`), or an optime as the shell writes it, `Timestamp(1710000000, 3)`,
 * `Timestamp({t: 1710000000, i: 3})` or Extended JSON `{"$timestamp": {"t": …, "i": …}}`.
 *
 * A time becomes the optime `(seconds, 0)`: "at TIME" means every entry with `ts` < TIME, so TIME
 * itself and everything in its second after it is excluded, as `mongorestore --oplogLimit` and
 * `pbm restore --time` read a time (OPLOG.md §5 rule 7). An entry's `ts` counts whole seconds, so a
 * time with a fraction of a second cannot be placed among the entries of that second: refused.
 */
import {parseUserTime} from '../catalog/names.js';
import {GravityError} from '../errors.js';
import type {OpTime} from './types.js';

const UINT32_MAX = 0xffffffff;

function usage(text: string, why: string): GravityError {
  return new GravityError('USAGE', `Cannot read ${JSON.stringify(text)} as a time: ${why}`, {
    hint: "Write it like 2026-11-18T14:30:00Z, '2026-11-18 09:30' (read in --tz), or Timestamp(1763476200, 1)",
  });
}

function optime(text: string, t: number, i: number): OpTime {
  if (!Number.isInteger(t) || !Number.isInteger(i) || t < 0 || i < 0 || t > UINT32_MAX || i > UINT32_MAX) {
    throw usage(text, 'a Timestamp holds two unsigned 32-bit integers');
  }
  return {t, i};
}

const SHELL = /^Timestamp\(\s*(\d+)\s*,\s*(\d+)\s*\)$/i;
const SHELL_OBJECT = /^Timestamp\(\s*\{\s*"?t"?\s*:\s*(\d+)\s*,\s*"?i"?\s*:\s*(\d+)\s*\}\s*\)$/i;
const EJSON = /^\{\s*"\$timestamp"\s*:\s*\{\s*"t"\s*:\s*(\d+)\s*,\s*"i"\s*:\s*(\d+)\s*\}\s*\}$/;

/** An optime from TIME; `tz` reads an ISO time written without an offset. */
export function parseOplogTime(text: string, tz: string): OpTime {
  const trimmed = text.trim();
  const m = SHELL.exec(trimmed) ?? SHELL_OBJECT.exec(trimmed) ?? EJSON.exec(trimmed);
  if (m) return optime(text, Number(m[1]), Number(m[2]));
  if (/^timestamp/i.test(trimmed)) throw usage(text, 'write a Timestamp as Timestamp(seconds, counter)');
  const date = parseUserTime(trimmed, tz);
  const ms = date.getTime();
  if (ms % 1000 !== 0 && !/^now$/i.test(trimmed)) {
    throw usage(text, 'oplog times are whole seconds (an entry\'s ts has no milliseconds); drop the fraction or give Timestamp(t, i)');
  }
  return optime(text, Math.floor(ms / 1000), 0);
}

/** An optime as the JSON results carry it, with the UTC time of its second beside it where asked. */
export function opTimeJson(ts: OpTime): {t: number; i: number} {
  return {t: ts.t, i: ts.i};
}
