/**
 * Leaf query operators with MongoDB's semantics, plugged into mingo's query compiler.
 *
 * mingo (v7) supplies the structure ($and, $or, $nor, $not, implicit $eq / regex normalisation),
 * but its leaf operators differ from MongoDB on values backups really hold, so they are replaced:
 * - equality is key-order-insensitive for subdocuments and compares BSON classes by `toString`
 *   (Binary ignores its subtype, Decimal128 "1.0" ≠ "1.00", Decimal128 5 ≠ 5);
 * - `$gt`/`$lt` need the same JS type, so Int64 beyond 2^53 or Decimal128 never compare with numbers,
 *   and Long/Decimal compare as strings ("10" < "9");
 * - `$type` knows neither objectId, binData nor timestamp and does not look into arrays;
 * - `$mod` matches booleans (`true % 2 === 1`) and does not truncate doubles;
 * - path resolution flattens nested arrays one level too far and forgets array elements that lack
 *   the field, so `{"a.b": null}` misses `{a: [{c: 1}]}`.
 * Values reaching these operators are canonical (see values.ts).
 * The operators of FIELD_OPS need nothing of mingo: compile.ts applies them directly when a filter
 * has no other structure, and mingo loads only for the rest.
 */
import type {Context} from 'mingo';
import type {Options, QueryOperator} from 'mingo/types';
import {MaxKey, MinKey, ObjectId} from 'bson';

import {loadMingo} from './mingo.js';
import {
  BinKey,
  NumKey,
  TsKey,
  UNDEFINED,
  bsonEqual,
  carryKind,
  compareNumbers,
  compareStrings,
  isNumeric,
  isPlainObject,
  numericKind,
  BsonRegex,
  RegexMatcher,
  type NumericKind,
} from './values.js';

/**
 * What a path yields in one document: leaf values (arrays not expanded), the numeric BSON type of
 * each numeric leaf (for `$type`), and whether some branch lacked the path.
 */
export interface PathValues {
  values: unknown[];
  kinds: (NumericKind | undefined)[];
  missing: boolean;
}

const isDigits = (s: string): boolean => /^\d+$/.test(s);

function walk(value: unknown, parts: string[], i: number, out: PathValues, parent: unknown, key: string): void {
  if (i === parts.length) {
    out.values.push(value);
    out.kinds.push(numericKind(parent, key, value));
    return;
  }
  const part = parts[i];
  if (Array.isArray(value)) {
    if (isDigits(part)) {
      const index = Number(part);
      if (index < value.length) walk(value[index], parts, i + 1, out, value, part);
      else out.missing = true;
    }
    for (let k = 0; k < value.length; k++) {
      if (isPlainObject(value[k])) walk(value[k], parts, i, out, value, String(k));
    }
    return;
  }
  if (isPlainObject(value) && Object.prototype.hasOwnProperty.call(value, part)) {
    walk(value[part], parts, i + 1, out, value, part);
    return;
  }
  out.missing = true;
}

export function pathValues(doc: unknown, path: string | string[]): PathValues {
  const out: PathValues = {values: [], kinds: [], missing: false};
  walk(doc, typeof path === 'string' ? path.split('.') : path, 0, out, null, '');
  return out;
}

/** Leaf values and, for array leaves, their elements (one level, as MongoDB expands them). */
function candidates(pv: PathValues): unknown[] {
  const out: unknown[] = [];
  for (const v of pv.values) {
    if (Array.isArray(v)) for (const e of v) out.push(e);
  }
  for (const v of pv.values) out.push(v);
  return out;
}

function eqSingle(v: unknown, rhs: unknown): boolean {
  if (rhs === null) return v === null;
  return bsonEqual(v, rhs);
}

/** A string matches by pattern; a stored regex value only when it is the same regex (pattern and options). */
function regexSingle(v: unknown, re: RegexMatcher): boolean {
  if (typeof v === 'string') return re.test(v);
  return v instanceof BsonRegex && v.key === re.key;
}

function eqValues(pv: PathValues, rhs: unknown): boolean {
  if (rhs === null && pv.missing) return true;
  if (rhs === null && pv.values.length === 0) return true;
  for (const v of candidates(pv)) if (eqSingle(v, rhs)) return true;
  return false;
}

function inValues(pv: PathValues, list: unknown[]): boolean {
  for (const rhs of list) {
    if (rhs instanceof RegexMatcher) {
      for (const v of candidates(pv)) if (regexSingle(v, rhs)) return true;
    } else if (eqValues(pv, rhs)) return true;
  }
  return false;
}

/** Canonical type family for MongoDB's comparison type bracketing. */
function family(v: unknown): string {
  if (isNumeric(v)) return 'number';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof Date) return 'date';
  if (v instanceof ObjectId) return 'objectId';
  if (v instanceof BinKey) return 'binData';
  if (v instanceof TsKey) return 'timestamp';
  return 'other';
}

function compareSameFamily(a: unknown, b: unknown, fam: string): number {
  switch (fam) {
    case 'number':
      return compareNumbers(a as number | NumKey, b as number | NumKey);
    case 'string':
      return compareStrings(a as string, b as string);
    case 'bool':
      return a === b ? 0 : a ? 1 : -1;
    case 'date': {
      const x = (a as Date).getTime();
      const y = (b as Date).getTime();
      return x < y ? -1 : x > y ? 1 : 0;
    }
    default: {
      const x = String(a);
      const y = String(b);
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
}

type Cmp = '$gt' | '$gte' | '$lt' | '$lte';

function cmpValues(pv: PathValues, rhs: unknown, op: Cmp): boolean {
  if (rhs === null) return op === '$gte' || op === '$lte' ? eqValues(pv, null) : false;
  const fam = family(rhs);
  for (const v of candidates(pv)) {
    if (Array.isArray(v) || family(v) !== fam) continue;
    if (fam === 'number' && (Number.isNaN(v) || Number.isNaN(rhs))) {
      // MongoDB: NaN only equals NaN; it is neither greater nor smaller than a number in queries.
      if ((op === '$gte' || op === '$lte') && Number.isNaN(v) && Number.isNaN(rhs)) return true;
      continue;
    }
    const c = compareSameFamily(v, rhs, fam);
    if ((op === '$gt' && c > 0) || (op === '$gte' && c >= 0) || (op === '$lt' && c < 0) || (op === '$lte' && c <= 0)) {
      return true;
    }
  }
  return false;
}

/** `$type` names and numbers, mapped to one name per type. */
export const TYPE_ALIASES: Record<string, string> = {
  double: 'double', 1: 'double',
  int: 'int', 16: 'int',
  long: 'long', 18: 'long',
  decimal: 'decimal', 19: 'decimal',
  undefined: 'undefined', 6: 'undefined',
  string: 'string', 2: 'string',
  object: 'object', 3: 'object',
  array: 'array', 4: 'array',
  binData: 'binData', 5: 'binData',
  objectId: 'objectId', 7: 'objectId',
  bool: 'bool', 8: 'bool',
  date: 'date', 9: 'date',
  null: 'null', 10: 'null',
  regex: 'regex', 11: 'regex',
  timestamp: 'timestamp', 17: 'timestamp',
  minKey: 'minKey', '-1': 'minKey',
  maxKey: 'maxKey', 127: 'maxKey',
  number: 'number',
};

/** Types canonical values do not keep apart (symbols read as strings; code and DBPointer are not decoded for matching). */
export const TYPE_REFUSED = new Set(['javascript', '13', 'symbol', '14', 'javascriptWithScope', '15', 'dbPointer', '12']);

/** `$type` names that need the numeric BSON type of values, not only their numeric value. */
export const NUMERIC_TYPE_NAMES = new Set(['double', 'int', 'long', 'decimal']);

function typeOfValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === UNDEFINED) return 'undefined';
  if (Array.isArray(v)) return 'array';
  if (v instanceof BsonRegex) return 'regex';
  if (v instanceof MinKey) return 'minKey';
  if (v instanceof MaxKey) return 'maxKey';
  if (isPlainObject(v)) return 'object';
  const fam = family(v);
  return fam === 'other' ? 'other' : fam;
}

/** Whether one value (not an array) is of a listed type; `kind` is its numeric BSON type. */
function typeMatches(v: unknown, kind: NumericKind | undefined, types: string[]): boolean {
  const t = typeOfValue(v);
  if (types.includes(t)) return true;
  return t === 'number' && kind !== undefined && types.includes(kind);
}

function typeValues(pv: PathValues, types: string[]): boolean {
  for (let i = 0; i < pv.values.length; i++) {
    const v = pv.values[i];
    if (Array.isArray(v)) {
      if (types.includes('array')) return true;
      for (let k = 0; k < v.length; k++) {
        if (!Array.isArray(v[k]) && typeMatches(v[k], numericKind(v, String(k), v[k]), types)) return true;
      }
    } else if (typeMatches(v, pv.kinds[i], types)) return true;
  }
  return false;
}

function truncToBigInt(v: number | NumKey): bigint | null {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return null;
    return BigInt(Math.trunc(v));
  }
  if (v.exponent >= 0) return (v.negative ? -1n : 1n) * BigInt(v.digits + '0'.repeat(v.exponent));
  const keep = v.digits.length + v.exponent;
  const intDigits = keep > 0 ? v.digits.slice(0, keep) : '0';
  return (v.negative ? -1n : 1n) * BigInt(intDigits);
}

function modValues(values: unknown[], divisor: bigint, remainder: bigint): boolean {
  for (const v of values) {
    if (!isNumeric(v)) continue;
    const x = truncToBigInt(v);
    if (x !== null && x % divisor === remainder) return true;
  }
  return false;
}

function leafPredicate(op: string, arg: unknown): (pv: PathValues) => boolean {
  switch (op) {
    case '$eq':
      return (pv) => eqValues(pv, arg);
    case '$ne':
      return (pv) => !eqValues(pv, arg);
    case '$in':
      return (pv) => inValues(pv, arg as unknown[]);
    case '$nin':
      return (pv) => !inValues(pv, arg as unknown[]);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return (pv) => cmpValues(pv, arg, op);
    case '$pcre':
      return (pv) => candidates(pv).some((v) => regexSingle(v, arg as RegexMatcher));
    case '$type': {
      const types = typeList(arg);
      return (pv) => typeValues(pv, types);
    }
    case '$mod': {
      const [divisor, remainder] = modArgs(arg);
      return (pv) => modValues(candidates(pv), divisor, remainder);
    }
    default:
      throw new Error(`no leaf operator ${op}`);
  }
}

const typeList = (arg: unknown): string[] => (Array.isArray(arg) ? arg : [arg]).map((t) => TYPE_ALIASES[String(t)]);

function modArgs(arg: unknown): [bigint, bigint] {
  const [d, r] = arg as [number | NumKey, number | NumKey];
  return [truncToBigInt(d) as bigint, truncToBigInt(r) as bigint];
}

const DIRECT = new Set(['$eq', '$ne', '$in', '$nin', '$pcre', '$gt', '$gte', '$lt', '$lte', '$type', '$mod']);

/** One array element tested by the operator form of `$elemMatch`: the element is not expanded again. */
function directSingle(op: string, arg: unknown, v: unknown, kind: NumericKind | undefined): boolean {
  const hit = (x: unknown): boolean => (x instanceof RegexMatcher ? regexSingle(v, x) : eqSingle(v, x));
  switch (op) {
    case '$eq':
      return eqSingle(v, arg);
    case '$ne':
      return !eqSingle(v, arg);
    case '$in':
      return (arg as unknown[]).some(hit);
    case '$nin':
      return !(arg as unknown[]).some(hit);
    case '$pcre':
      return regexSingle(v, arg as RegexMatcher);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte':
      return !Array.isArray(v) && cmpValues({values: [v], kinds: [kind], missing: false}, arg, op);
    case '$type':
      return typeMatches(v, kind, typeList(arg));
    case '$mod': {
      const [divisor, remainder] = modArgs(arg);
      return modValues([v], divisor, remainder);
    }
    default:
      return false;
  }
}

type ElementTest = (v: unknown, index: number, array: unknown[]) => boolean;

function elemValuePredicate(spec: Record<string, unknown>, options: Options): ElementTest {
  const checks: ElementTest[] = [];
  for (const [op, arg] of Object.entries(spec)) {
    if (DIRECT.has(op)) {
      checks.push((v, i, a) => directSingle(op, arg, v, numericKind(a, String(i), v)));
    } else {
      // $not, $exists, $size, $all, $elemMatch read the element as a field of a one-field document.
      const q = new (loadMingo().Query)({x: {[op]: arg}}, options);
      checks.push((v, i, a) => {
        const wrapper = {x: v};
        carryKind(wrapper, 'x', numericKind(a, String(i), v));
        return q.test(wrapper);
      });
    }
  }
  return (v, i, a) => checks.every((c) => c(v, i, a));
}

type MakeOp = (selector: string, value: unknown, options: Options) => (obj: unknown) => boolean;
/** An operator on one path that compiles no query of its own: it needs none of mingo's options. */
type FieldOp = (selector: string, value: unknown) => (obj: unknown) => boolean;

function fieldOp(make: (value: unknown) => (pv: PathValues) => boolean): FieldOp {
  return (selector, value) => {
    const pred = make(value);
    const parts = selector.split('.');
    return (obj) => pred(pathValues(obj, parts));
  };
}

const leaf = (name: string): FieldOp => fieldOp((value) => leafPredicate(name, value));

const elemMatch: MakeOp = (selector, value, options) => {
  const spec = value as Record<string, unknown>;
  const keys = Object.keys(spec);
  const valueForm = keys.length > 0 && keys.every((k) => k.startsWith('$') && k !== '$and' && k !== '$or' && k !== '$nor');
  let test: ElementTest;
  if (valueForm) test = elemValuePredicate(spec, options);
  else {
    const q = new (loadMingo().Query)(spec, options);
    test = (e) => isPlainObject(e) && q.test(e);
  }
  const parts = selector.split('.');
  return (obj) => pathValues(obj, parts).values.some((v) => Array.isArray(v) && v.some(test));
};

/** `$all` is an `$and` of `$eq` (or `$elemMatch`, or regex) conditions on the same path. */
const all: MakeOp = (selector, value, options) => {
  const items = value as unknown[];
  const parts = selector.split('.');
  const preds = items.map((item): ((obj: unknown) => boolean) => {
    if (isPlainObject(item) && Object.keys(item)[0] === '$elemMatch') {
      const q = new (loadMingo().Query)({[selector]: item}, options);
      return (obj) => q.test(obj as Record<string, unknown>);
    }
    const p = leafPredicate(item instanceof RegexMatcher ? '$pcre' : '$eq', item);
    return (obj) => p(pathValues(obj, parts));
  });
  return (obj) => items.length > 0 && preds.every((p) => p(obj));
};

/** The operators compile.ts applies without mingo (a filter of field conditions alone). */
export const FIELD_OPS: Readonly<Record<string, FieldOp>> = {
  $eq: leaf('$eq'),
  $ne: leaf('$ne'),
  $in: leaf('$in'),
  $nin: leaf('$nin'),
  $gt: leaf('$gt'),
  $gte: leaf('$gte'),
  $lt: leaf('$lt'),
  $lte: leaf('$lte'),
  // A regex match (the prepared form of $regex, /re/ and regexes in $not): not named $regex, which
  // mingo's normaliser would turn back into a JavaScript RegExp.
  $pcre: leaf('$pcre'),
  $type: leaf('$type'),
  $mod: leaf('$mod'),
  $exists: fieldOp((value) => (pv) => pv.values.length > 0 === Boolean(value)),
  $size: fieldOp((value) => (pv) => pv.values.some((v) => Array.isArray(v) && v.length === value)),
};

const OPS: Record<string, MakeOp> = {...FIELD_OPS, $all: all, $elemMatch: elemMatch};

let context: Context | null = null;

/** Only these operators exist for the matcher: mingo's logical ones and the exact leaf operators above. */
export function matchContext(): Context {
  if (!context) {
    const {Context, logical} = loadMingo();
    const {$and, $or, $nor, $not} = logical;
    context = Context.init({query: {...(OPS as unknown as Record<`$${string}`, QueryOperator>), $and, $or, $nor, $not}});
  }
  return context;
}
