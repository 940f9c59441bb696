/**
 * Canonical values for matching. Both the filter and the (partly) decoded document are mapped
 * into one representation in which MongoDB's equality and ordering are easy to state:
 * every numeric BSON type becomes a JS number when its exact value is a double (so int32 5,
 * int64 5, double 5.0 and Decimal128 "5.00" are all `5`), otherwise a `NumKey`; binaries and
 * timestamps become key objects whose string form sorts like MongoDB sorts them. Objects are
 * recognised by `_bsontype`, so values built by bson's CommonJS build (mongodb-query-parser,
 * the driver) are treated like the ESM build's.
 */
import {MaxKey, MinKey, ObjectId} from 'bson';

import {GravityError} from '../errors.js';
import {PcreError, translatePcre} from './pcre.js';

/** An integer or decimal with no exact double: sign, digits without leading/trailing zeros, exponent. */
export class NumKey {
  constructor(
    readonly negative: boolean,
    readonly digits: string,
    readonly exponent: number,
  ) {}

  toString(): string {
    return `${this.negative ? '-' : ''}${this.digits}e${this.exponent}`;
  }
}

/** BinData: MongoDB orders by length, then subtype, then bytes; the string form sorts the same. */
export class BinKey {
  readonly key: string;
  constructor(
    readonly subtype: number,
    readonly bytes: Uint8Array,
  ) {
    this.key =
      bytes.length.toString(16).padStart(8, '0') +
      subtype.toString(16).padStart(2, '0') +
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  }

  toString(): string {
    return this.key;
  }
}

/** Timestamp: ordered by (t, i) as unsigned 32-bit numbers. */
export class TsKey {
  readonly key: string;
  constructor(
    readonly t: number,
    readonly i: number,
  ) {
    this.key = t.toString(16).padStart(8, '0') + i.toString(16).padStart(8, '0');
  }

  toString(): string {
    return this.key;
  }
}

/** Thrown when a filter value cannot be represented exactly (mapped to QUERY_UNSUPPORTED by callers). */
export class UnsupportedValue extends Error {}

/**
 * A BSON regular expression as a value: what a document stores, or a filter compares by equality
 * (`$eq`). MongoDB compares regex values by pattern and options, never by what they match; the
 * options are kept sorted, as the bson library stores them.
 */
export class BsonRegex {
  readonly key: string;
  constructor(
    readonly pattern: string,
    readonly options: string,
  ) {
    this.key = `${pattern}/${[...new Set(options)].sort().join('')}`;
  }

  toString(): string {
    return this.key;
  }
}

/** A regex value from a JavaScript RegExp, with the options the bson serialiser writes for its flags. */
function regexFromJs(re: RegExp): BsonRegex {
  return new BsonRegex(re.source, `${re.ignoreCase ? 'i' : ''}${re.multiline ? 'm' : ''}${re.global ? 's' : ''}`);
}

/** Thrown when a filter's regex cannot be matched exactly; `invalid`: mongod itself rejects it. */
export class RegexRefused extends UnsupportedValue {
  constructor(
    message: string,
    readonly invalid: boolean,
  ) {
    super(message);
  }
}

/**
 * A regex in a matching position ({field: /re/}, $regex, $in, $all, $not): the pattern as PCRE2
 * reads it, run as its exact JavaScript translation (pcre.ts). Compared with a regex value stored
 * in a document by its key, as MongoDB does.
 */
export class RegexMatcher {
  readonly key: string;
  readonly source: string;
  private readonly re: RegExp;
  private readonly foldHazard: boolean;

  constructor(readonly value: BsonRegex) {
    this.key = value.key;
    this.source = `/${value.pattern}/${value.options}`;
    let translation;
    try {
      translation = translatePcre(value.pattern, value.options);
    } catch (error) {
      if (!(error instanceof PcreError)) throw error;
      throw new RegexRefused(`regex ${this.source} uses ${error.message}`, error.kind === 'invalid');
    }
    this.re = new RegExp(translation.source, translation.flags);
    this.foldHazard = translation.foldHazard;
  }

  test(subject: string): boolean {
    if (this.foldHazard && HAZARD.test(subject)) {
      throw new GravityError('QUERY_UNSUPPORTED', `Regex ${this.source} cannot be matched exactly against a value holding U+017F (ſ) or U+212A (Kelvin sign): JavaScript folds them into \\w and ASCII letter classes under case-insensitive matching, PCRE2 does not`, {
        hint: 'Match without the i option (spell the cases out, e.g. [Cc]af[eé]), or extract with --engine mongod',
      });
    }
    return this.re.test(subject);
  }
}

const HAZARD = /[\u017F\u212A]/;

type Bsonish = {_bsontype?: string} & Record<string, unknown>;

/** Splits a decimal string ("-1.20E+3", "0.005") into sign, significant digits and exponent. */
function decimalParts(text: string): {negative: boolean; digits: string; exponent: number} {
  let s = text.trim();
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  let exponent = 0;
  const e = s.search(/e/i);
  if (e >= 0) {
    exponent = Number(s.slice(e + 1));
    s = s.slice(0, e);
  }
  const dot = s.indexOf('.');
  if (dot >= 0) {
    exponent -= s.length - dot - 1;
    s = s.slice(0, dot) + s.slice(dot + 1);
  }
  s = s.replace(/^0+/, '');
  const trimmed = s.replace(/0+$/, '');
  exponent += s.length - trimmed.length;
  return {negative, digits: trimmed, exponent: trimmed === '' ? 0 : exponent};
}

/** The exact decimal expansion of a finite double. */
function doubleParts(x: number): {negative: boolean; digits: string; exponent: number} {
  const negative = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  if (a === 0) return {negative, digits: '', exponent: 0};
  if (Number.isInteger(a)) return {...decimalParts(BigInt(a).toString()), negative};
  // a = m / 2^k exactly, with k the number of fractional binary digits: m * 5^k / 10^k.
  let k = 0;
  let m = a;
  while (!Number.isInteger(m)) {
    m *= 2;
    k++;
  }
  const scaled = BigInt(m) * 5n ** BigInt(k);
  const p = decimalParts(scaled.toString());
  return {negative, digits: p.digits, exponent: p.exponent - k};
}

function numericFromDecimalString(text: string): number | NumKey {
  const lower = text.toLowerCase();
  if (lower.includes('nan')) return Number.NaN;
  if (lower.includes('inf')) return lower.startsWith('-') ? -Infinity : Infinity;
  const p = decimalParts(text);
  if (p.digits === '') return p.negative ? -0 : 0;
  const asDouble = Number(`${p.negative ? '-' : ''}${p.digits}e${p.exponent}`);
  if (Number.isFinite(asDouble)) {
    const q = doubleParts(asDouble);
    if (q.digits === p.digits && q.exponent === p.exponent) return asDouble;
  }
  return new NumKey(p.negative, p.digits, p.exponent);
}

function numericFromBigInt(v: bigint): number | NumKey {
  const n = Number(v);
  if (BigInt(n) === v) return n;
  return numericFromDecimalString(v.toString());
}

/**
 * BSON's deprecated undefined type. Since MongoDB 8.0 an equality or `$in` with null no longer
 * matches it (https://www.mongodb.com/docs/manual/reference/bson-types/migrate-undefined/).
 */
class BsonUndefined {
  toString(): string {
    return 'undefined';
  }
}
export const UNDEFINED = new BsonUndefined();

/** The numeric BSON types, which canonical values unify but `$type` tells apart. */
export type NumericKind = 'int' | 'long' | 'double' | 'decimal';

/** Per canonical container (document or array): the numeric BSON type of each numeric member, by key. */
const NUMERIC_KINDS = new WeakMap<object, Map<string, NumericKind>>();

function kindOfBson(value: unknown): NumericKind | undefined {
  if (typeof value === 'bigint') return 'long';
  if (value === null || typeof value !== 'object') return undefined;
  switch ((value as Bsonish)._bsontype) {
    case 'Int32':
      return 'int';
    case 'Double':
      return 'double';
    case 'Long':
      return 'long';
    case 'Decimal128':
      return 'decimal';
    default:
      return undefined;
  }
}

function recordKinds(container: object, source: Iterable<[string, unknown]>): void {
  let kinds: Map<string, NumericKind> | undefined;
  for (const [key, v] of source) {
    const kind = kindOfBson(v);
    if (kind) (kinds ??= new Map()).set(key, kind);
  }
  if (kinds) NUMERIC_KINDS.set(container, kinds);
}

/**
 * The numeric BSON type of `value`, the member `key` of the canonical container `parent`. Known
 * exactly when the container was built with `keepKinds` from wrapper classes (a decode with
 * `promoteValues: false`); otherwise it is the type the bson serialiser would write for it.
 */
export function numericKind(parent: unknown, key: string, value: unknown): NumericKind | undefined {
  if (!isNumeric(value)) return undefined;
  const known = parent !== null && typeof parent === 'object' ? NUMERIC_KINDS.get(parent)?.get(key) : undefined;
  if (known) return known;
  if (typeof value === 'number') return Number.isInteger(value) && !Object.is(value, -0) && value >= -(2 ** 31) && value < 2 ** 31 ? 'int' : 'double';
  return value.exponent >= 0 ? 'long' : 'decimal';
}

/** Lets a one-field wrapper document carry the numeric type its value had where it came from. */
export function carryKind(wrapper: object, key: string, kind: NumericKind | undefined): void {
  if (kind) NUMERIC_KINDS.set(wrapper, new Map([[key, kind]]));
}

/**
 * Maps one BSON value (ESM or CommonJS bson classes, or promoted JS values) to its canonical form.
 * In documents a JS `undefined` is BSON undefined; in filters it means null, as the driver sends it.
 * With `keepKinds`, the numeric BSON type of every numeric member is recorded (see `numericKind`).
 */
export function canonical(value: unknown, undefinedAs: unknown = UNDEFINED, keepKinds = false): unknown {
  if (value === undefined) return undefinedAs;
  if (value === null) return null;
  switch (typeof value) {
    case 'number':
    case 'string':
    case 'boolean':
      return value;
    case 'bigint':
      return numericFromBigInt(value);
    case 'object':
      break;
    default:
      throw new UnsupportedValue(`a ${typeof value} value cannot be matched`);
  }
  if (Array.isArray(value)) {
    const out = value.map((v) => canonical(v, undefinedAs, keepKinds));
    if (keepKinds) recordKinds(out, value.map((v, i): [string, unknown] => [String(i), v]));
    return out;
  }
  if (value instanceof Date) return value;
  if (value instanceof RegExp) return regexFromJs(value);
  if (value instanceof BsonRegex || value instanceof RegexMatcher) return value;
  if (value instanceof NumKey || value instanceof BinKey || value instanceof TsKey) return value;
  const v = value as Bsonish;
  switch (v._bsontype) {
    case undefined:
      break;
    case 'ObjectId':
    case 'ObjectID':
      return value instanceof ObjectId ? value : new ObjectId(String((v as {toHexString(): string}).toHexString()));
    case 'Int32':
    case 'Double':
      return Number((v as {value: number}).value);
    case 'Long':
      return numericFromBigInt(BigInt(String(v)));
    case 'Decimal128':
      return numericFromDecimalString(String(v));
    case 'Binary': {
      const b = v as unknown as {sub_type: number; buffer: Uint8Array; position: number};
      return new BinKey(b.sub_type, b.buffer.subarray(0, b.position));
    }
    case 'Timestamp': {
      const t = v as unknown as {t: number; i: number};
      return new TsKey(t.t, t.i);
    }
    case 'BSONRegExp': {
      const r = v as unknown as {pattern: string; options: string};
      return new BsonRegex(r.pattern, r.options);
    }
    case 'BSONSymbol':
      return String((v as {value: string}).value);
    case 'MinKey':
      return value instanceof MinKey ? value : new MinKey();
    case 'MaxKey':
      return value instanceof MaxKey ? value : new MaxKey();
    case 'DBRef': {
      // bson turns {$ref, $id, $db} subdocuments into DBRef; MongoDB sees an ordinary subdocument.
      const r = v as unknown as {collection: string; oid: unknown; db?: string; fields?: Record<string, unknown>};
      const out: Record<string, unknown> = {$ref: r.collection, $id: canonical(r.oid, undefinedAs, keepKinds)};
      if (r.db !== undefined && r.db !== '') out.$db = r.db;
      for (const [key, field] of Object.entries(r.fields ?? {})) out[key] = canonical(field, undefinedAs, keepKinds);
      if (keepKinds) recordKinds(out, [['$id', r.oid], ...Object.entries(r.fields ?? {})]);
      return out;
    }
    default:
      // Code, CodeWithScope, DBPointer: kept as they are; they only ever equal themselves structurally.
      return value;
  }
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) out[key] = canonical(v[key], undefinedAs, keepKinds);
  if (keepKinds) recordKinds(out, Object.entries(v));
  return out;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A condition written with operators (`{$gt: 5}`): a plain object with a `$` name. */
export function isOperatorObject(v: unknown): v is Record<string, unknown> {
  return isPlainObject(v) && Object.keys(v).some((k) => k.startsWith('$'));
}

export function isNumeric(v: unknown): v is number | NumKey {
  return typeof v === 'number' || v instanceof NumKey;
}

function partsOf(v: number | NumKey): {negative: boolean; digits: string; exponent: number} {
  return v instanceof NumKey ? v : doubleParts(v);
}

/** Exact numeric comparison across doubles and NumKeys; NaN sorts below every number as in MongoDB. */
export function compareNumbers(a: number | NumKey, b: number | NumKey): number {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
    if (Number.isNaN(b)) return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (typeof a === 'number' && (Number.isNaN(a) || !Number.isFinite(a))) return Number.isNaN(a) || a < 0 ? -1 : 1;
  if (typeof b === 'number' && (Number.isNaN(b) || !Number.isFinite(b))) return Number.isNaN(b) || b < 0 ? 1 : -1;
  const x = partsOf(a);
  const y = partsOf(b);
  const xz = x.digits === '';
  const yz = y.digits === '';
  const xs = xz ? 0 : x.negative ? -1 : 1;
  const ys = yz ? 0 : y.negative ? -1 : 1;
  if (xs !== ys) return xs < ys ? -1 : 1;
  if (xs === 0) return 0;
  const xmag = x.digits.length + x.exponent;
  const ymag = y.digits.length + y.exponent;
  let c: number;
  if (xmag !== ymag) c = xmag < ymag ? -1 : 1;
  else {
    const len = Math.max(x.digits.length, y.digits.length);
    const xd = x.digits.padEnd(len, '0');
    const yd = y.digits.padEnd(len, '0');
    c = xd < yd ? -1 : xd > yd ? 1 : 0;
  }
  return xs < 0 ? -c : c;
}

/** MongoDB compares strings by their UTF-8 bytes, which is code point order (not UTF-16 unit order). */
export function compareStrings(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xp = a.codePointAt(i) as number;
    const yp = b.codePointAt(i) as number;
    return xp < yp ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** MongoDB equality of canonical values: no coercion, ordered fields in subdocuments. */
export function bsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'number') return Number.isNaN(a) && Number.isNaN(b);
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!bsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof BsonRegex) return b instanceof BsonRegex && a.key === b.key;
  if (a instanceof NumKey || a instanceof BinKey || a instanceof TsKey) {
    return a.constructor === b.constructor && a.toString() === String(b);
  }
  if (a instanceof ObjectId) return b instanceof ObjectId && a.equals(b);
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] !== kb[i] || !bsonEqual(a[ka[i]], b[kb[i]])) return false;
    }
    return true;
  }
  const ta = (a as Bsonish)._bsontype;
  if (ta !== undefined && ta === (b as Bsonish)._bsontype && (ta === 'MinKey' || ta === 'MaxKey')) return true;
  return false;
}
