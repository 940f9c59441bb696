/**
 * Times in backup names and on the command line. Backups are named by whatever wrote them, often
 * in local time without an offset; reading those in the wrong zone picks a backup hours off, so
 * zone arithmetic here is DST-correct (Intl-based, no tz library) and ambiguity is reported.
 */

import {GravityError} from '../errors.js';

export type BackupKind = 'hourly' | 'daily' | 'unknown';

export interface ParsedBackupName {
  takenAt: Date;
  kind: BackupKind;
  /** The name carried its own offset (Z, +01:00) or was an epoch, so the source timezone did not matter. */
  hasOffset: boolean;
  /** Only a date: the time is midnight in the source timezone. */
  dateOnly: boolean;
  /** The local time occurs twice (DST ends) or never (DST starts) in the source timezone. */
  ambiguity?: 'repeated' | 'skipped';
  /** The part of the name the time was read from. */
  matched: string;
}

interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(tz: string): Intl.DateTimeFormat {
  let formatter = formatters.get(tz);
  if (!formatter) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone: tz,
        hourCycle: 'h23',
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      });
    } catch (error) {
      throw new GravityError('USAGE', `Unknown timezone ${JSON.stringify(tz)}`, {
        cause: error,
        hint: 'Use an IANA name such as UTC, America/New_York or Europe/Berlin (--source-tz / --tz)',
      });
    }
    formatters.set(tz, formatter);
  }
  return formatter;
}

/** Throws USAGE for a timezone Intl does not know. */
export function assertTimeZone(tz: string): void {
  formatterFor(tz);
}

/** Offset of `tz` from UTC at the instant `ms`, in milliseconds (east positive). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const parts = formatterFor(tz).formatToParts(new Date(ms));
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((part) => part.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  const wholeSeconds = Math.floor(ms / 1000) * 1000;
  return asUtc - wholeSeconds;
}

const DAY_MS = 86_400_000;

/**
 * Wall-clock time in `tz` → instant. A repeated local time (DST ends) resolves to its first
 * occurrence and a skipped one (DST starts) is moved forward by the gap, as Temporal's
 * 'compatible' disambiguation does.
 */
export function zonedTimeToUtc(fields: Fields, tz: string): {date: Date; ambiguity?: 'repeated' | 'skipped'} {
  const local = Date.UTC(fields.year, fields.month - 1, fields.day, fields.hour, fields.minute, fields.second, fields.millisecond);
  // Zone transitions are at least days apart, so the offsets a day either side cover both candidates.
  const offsets = [...new Set([zoneOffsetMs(local - DAY_MS, tz), zoneOffsetMs(local + DAY_MS, tz)])];
  const valid = offsets.map((offset) => local - offset).filter((instant) => zoneOffsetMs(instant, tz) === local - instant);
  if (valid.length === 0) {
    return {date: new Date(local - (offsets[0] as number)), ambiguity: 'skipped'};
  }
  valid.sort((a, b) => a - b);
  const first = valid[0] as number;
  return valid.length > 1 ? {date: new Date(first), ambiguity: 'repeated'} : {date: new Date(first)};
}

function validFields(fields: Fields): boolean {
  const {year, month, day, hour, minute, second} = fields;
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return day <= daysInMonth && year >= 1970 && year <= 2999;
}

function parseOffset(text: string): number | null {
  if (/^(z|utc|gmt)$/i.test(text)) return 0;
  const match = /^([+-])(\d{2}):?(\d{2})?$/.exec(text);
  if (!match) return null;
  const hours = Number(match[2]);
  const minutes = Number(match[3] ?? 0);
  if (hours > 14 || minutes > 59) return null;
  return (match[1] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60_000;
}

const OFFSET = '(?<offset>Z|UTC|GMT|[+-]\\d{2}(?::?\\d{2})?)';
// 2026-11-18, 2026-11-18T14:00:00Z, 2026-11-18T14-00-00Z, 2026-11-18-14-00, 2026-11-18_14-00, 2026-11-18 14:00:00.123+01:00.
// Seconds must use the separator of hours/minutes, so '14:00-05:00' reads as an offset, not as seconds.
const SEPARATED = new RegExp(
  '(?<!\\d)(?<year>\\d{4})-(?<month>\\d{2})-(?<day>\\d{2})' +
    `(?:[T_ -](?<hour>\\d{2})(?<sep>[:-]?)(?<minute>\\d{2})(?:\\k<sep>(?<second>\\d{2})(?:[.,](?<fraction>\\d{1,9}))?)?${OFFSET}?)?(?!\\d)`,
  'i',
);
// 20261118, 20261118T1400, 202611181400, 20261118140000, 20261118T140000Z
const COMPACT = new RegExp(
  `(?<!\\d)(?<year>\\d{4})(?<month>\\d{2})(?<day>\\d{2})(?:T?(?<hour>\\d{2})(?<minute>\\d{2})(?<second>\\d{2})?${OFFSET}?)?(?!\\d)`,
  'i',
);
// Unix epoch in seconds (10 digits) or milliseconds (13 digits).
const EPOCH = /(?<!\d)(\d{13}|\d{10})(?!\d)/;

interface Match {
  date: Date;
  hasOffset: boolean;
  dateOnly: boolean;
  ambiguity?: 'repeated' | 'skipped';
  matched: string;
  index: number;
  length: number;
}

function fromMatch(match: RegExpExecArray, tz: string): Match | null {
  const text = match[0];
  const {year, month, day, hour, minute, second, fraction, offset: offsetText} = match.groups ?? {};
  const fields: Fields = {
    year: Number(year),
    month: Number(month),
    day: Number(day),
    hour: Number(hour ?? 0),
    minute: Number(minute ?? 0),
    second: Number(second ?? 0),
    millisecond: fraction ? Math.floor(Number(`0.${fraction}`) * 1000) : 0,
  };
  if (!validFields(fields)) return null;
  const dateOnly = hour === undefined;
  const base = {dateOnly, matched: text, index: match.index, length: text.length};
  if (offsetText !== undefined && !dateOnly) {
    const offset = parseOffset(offsetText);
    if (offset === null) return null;
    const local = Date.UTC(fields.year, fields.month - 1, fields.day, fields.hour, fields.minute, fields.second, fields.millisecond);
    return {...base, date: new Date(local - offset), hasOffset: true};
  }
  const zoned = zonedTimeToUtc(fields, tz);
  const result: Match = {...base, date: zoned.date, hasOffset: false};
  if (zoned.ambiguity) result.ambiguity = zoned.ambiguity;
  return result;
}

function findTime(text: string, tz: string): Match | null {
  for (const pattern of [SEPARATED, COMPACT]) {
    const match = pattern.exec(text);
    if (match) {
      const parsed = fromMatch(match, tz);
      if (parsed) return parsed;
    }
  }
  const epoch = EPOCH.exec(text);
  if (epoch) {
    const digits = epoch[1] as string;
    const ms = digits.length === 13 ? Number(digits) : Number(digits) * 1000;
    return {date: new Date(ms), hasOffset: true, dateOnly: false, matched: digits, index: epoch.index, length: digits.length};
  }
  return null;
}

/** The kind a name's words give, or null when none does. Words count only as whole words (not "hourlyish"). */
export function kindFromWords(text: string): BackupKind | null {
  const hourly = /(^|[^a-z])hourly([^a-z]|$)/i.test(text);
  const daily = /(^|[^a-z])(daily|nightly)([^a-z]|$)/i.test(text);
  if (hourly && !daily) return 'hourly';
  if (daily && !hourly) return 'daily';
  return null;
}

/**
 * The time and kind of a backup from its name (a key or folder path; the deepest path segment
 * holding a time wins). Names without an offset are read in `sourceTz`. Null if no time is found.
 */
export function parseBackupName(name: string, sourceTz: string): ParsedBackupName | null {
  assertTimeZone(sourceTz);
  const segments = name.split('/').filter((segment) => segment !== '');
  for (let index = segments.length - 1; index >= 0; index--) {
    const found = findTime(segments[index] as string, sourceTz);
    if (!found) continue;
    const kind = kindFromWords(name) ?? (found.dateOnly ? 'daily' : 'unknown');
    const result: ParsedBackupName = {takenAt: found.date, kind, hasOffset: found.hasOffset, dateOnly: found.dateOnly, matched: found.matched};
    if (found.ambiguity) result.ambiguity = found.ambiguity;
    return result;
  }
  return null;
}

const TIME_EXAMPLES = "2026-11-18T14:00:00Z, 2026-11-18T09:00:00-05:00, '2026-11-18 09:00' (read in --tz), 2026-11-18, 1763500000 or now";

/**
 * A time typed by the user (--before): ISO 8601 with an offset, or without one read in `tz`;
 * the backup-name forms and epochs work too, as does 'now'. USAGE with examples otherwise.
 */
export function parseUserTime(text: string, tz: string): Date {
  assertTimeZone(tz);
  const trimmed = text.trim();
  if (/^now$/i.test(trimmed)) return new Date();
  const found = trimmed === '' ? null : findTime(trimmed, tz);
  if (!found || found.index !== 0 || found.length !== trimmed.length) {
    throw new GravityError('USAGE', `Cannot read ${JSON.stringify(text)} as a time`, {
      hint: `Write it like ${TIME_EXAMPLES}`,
      details: {examples: TIME_EXAMPLES},
    });
  }
  return found.date;
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** '2026-11-18 09:00:00 EST (-05:00)'; UTC is shown as '2026-11-18 14:00:00 UTC'. */
export function formatInZone(date: Date, tz: string): string {
  const offsetMinutes = Math.round(zoneOffsetMs(date.getTime(), tz) / 60_000);
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const wall =
    `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())} ` +
    `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}`;
  if (tz === 'UTC' || tz === 'Etc/UTC') return `${wall} UTC`;
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  const abbreviation = new Intl.DateTimeFormat('en-US', {timeZone: tz, timeZoneName: 'short'})
    .formatToParts(date)
    .find((part) => part.type === 'timeZoneName')?.value;
  return abbreviation && !/^GMT|^UTC/.test(abbreviation) ? `${wall} ${abbreviation} (${offset})` : `${wall} ${tz} (${offset})`;
}
