/**
 * Query filters evaluated as mongod documents them
 * (https://www.mongodb.com/docs/manual/reference/operator/query/): comparison operators stay inside a
 * type bracket, numbers compare by exact value, documents by field order, arrays are traversed, and
 * `{f: null}` also matches a missing field. Filters are compiled once, so a bad operator fails the
 * command even when the collection is empty.
 */
import {CommandError} from './command-error.js';
import {bracket, compareValues, equalValues, exactOf, isNaNValue, keyOf, toNumber} from './compare.js';
import {compileExpr, truthy} from './expr.js';
import {compileSchema} from './schema.js';
import {BArr, BDoc, BT, BVal, type Value, isNumberType, regexParts, stringOf} from './tree.js';

export type Pred = (doc: Value) => boolean;
/** A value at a path, or undefined where the path is missing. */
type Cand = Value | undefined;

/**
 * Whether `{f: null}` matches BSON undefined. mongod before 8.0 does; 8.0 stopped
 * (https://www.mongodb.com/docs/manual/reference/bson-types/migrate-undefined/). This server reports 6.0.
 */
export const NULL_MATCHES_UNDEFINED = true;

function walk(v: Value, parts: readonly string[], i: number, expand: boolean, out: Cand[]): void {
  if (i === parts.length) {
    out.push(v);
    if (expand && v instanceof BArr) for (const el of v.items) out.push(el);
    return;
  }
  const p = parts[i]!;
  if (v instanceof BDoc) {
    const next = v.get(p);
    if (next === undefined) out.push(undefined);
    else walk(next, parts, i + 1, expand, out);
    return;
  }
  if (v instanceof BArr) {
    if (/^\d+$/.test(p)) {
      const idx = Number(p);
      if (idx < v.items.length) walk(v.items[idx]!, parts, i + 1, expand, out);
      // A numeric component is a position first; element documents count only where they have such a field.
      for (const el of v.items) if (el instanceof BDoc && el.has(p)) walk(el, parts, i, expand, out);
      return;
    }
    for (const el of v.items) if (el instanceof BDoc) walk(el, parts, i, expand, out);
    return;
  }
  out.push(undefined);
}

/**
 * Values at a dotted path, through arrays and numeric indexes. With `expand`, an array at the end of
 * the path contributes its elements as well as itself, as equality and comparisons see it.
 */
export function valuesAt(doc: Value, parts: readonly string[], expand: boolean): Cand[] {
  const out: Cand[] = [];
  walk(doc, parts, 0, expand, out);
  return out.length === 0 ? [undefined] : out;
}

function badValue(message: string): CommandError {
  return new CommandError(2, message);
}

function isNullish(c: Cand): boolean {
  if (c === undefined) return true;
  return c.type === BT.NULL || (NULL_MATCHES_UNDEFINED && c.type === BT.UNDEFINED);
}

function isNull(v: Value): boolean {
  return v.type === BT.NULL;
}

/** Equality as `{f: v}` / `$eq` test one candidate. */
function eqTest(rhs: Value, coll: Intl.Collator | undefined): (c: Cand) => boolean {
  if (isNull(rhs)) return isNullish;
  return (c) => c !== undefined && equalValues(c, rhs, coll);
}

type CmpOp = '$gt' | '$gte' | '$lt' | '$lte';

function cmpTest(op: CmpOp, rhs: Value, coll: Intl.Collator | undefined): (c: Cand) => boolean {
  const inclusive = op === '$gte' || op === '$lte';
  const wants = (c: number): boolean => (op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0);
  const rhsNaN = isNaNValue(rhs);
  return (c) => {
    if (c === undefined) return isNull(rhs) && inclusive;
    if (rhsNaN || isNaNValue(c)) return inclusive && rhsNaN && isNaNValue(c);
    const bc = bracket(c.type);
    const br = bracket(rhs.type);
    if (bc !== br) {
      // null and undefined sit in neighbouring brackets but compare as equal.
      if ((bc === 0 && br === 5) || (bc === 5 && br === 0)) return inclusive;
      if (rhs.type === BT.MINKEY || rhs.type === BT.MAXKEY) return op === '$gt' || op === '$gte' ? compareValues(c, rhs) > 0 : compareValues(c, rhs) < 0;
      return false;
    }
    return wants(compareValues(c, rhs, coll));
  };
}

const ALLOWED_REGEX_FLAGS = new Set(['i', 'm', 's', 'x', 'u']);

/** PCRE's extended mode drops unescaped whitespace and `#` comments outside classes; JavaScript has no such flag. */
function stripExtended(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      out += ch + (pattern[i + 1] ?? '');
      i++;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      out += ch;
      continue;
    }
    if (ch === '[') inClass = true;
    else if (/\s/.test(ch)) continue;
    else if (ch === '#') {
      while (i < pattern.length && pattern[i] !== '\n') i++;
      continue;
    }
    out += ch;
  }
  return out;
}

export function toRegExp(pattern: string, flags: string): RegExp {
  for (const f of flags) if (!ALLOWED_REGEX_FLAGS.has(f)) throw new CommandError(51108, `invalid flag in regex options: ${f}`);
  const source = flags.includes('x') ? stripExtended(pattern) : pattern;
  const js = [...new Set(flags.replace(/[xu]/g, ''))].join('');
  try {
    return new RegExp(source, `${js}u`);
  } catch {
    try {
      return new RegExp(source, js);
    } catch (e) {
      throw new CommandError(51091, `Regular expression is invalid: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/** A regex in a filter matches strings and symbols, and regex values with the same pattern and flags. */
function regexTest(pattern: string, flags: string): (c: Cand) => boolean {
  const re = toRegExp(pattern, flags);
  return (c) => {
    if (!(c instanceof BVal)) return false;
    if (c.type === BT.STRING || c.type === BT.SYMBOL) return re.test(stringOf(c));
    if (c.type === BT.REGEX) {
      const p = regexParts(c);
      return p.pattern === pattern && p.flags === flags;
    }
    return false;
  };
}

function regexOfValue(v: BVal): (c: Cand) => boolean {
  const {pattern, flags} = regexParts(v);
  return regexTest(pattern, flags);
}

const TYPE_ALIASES: Record<string, number[]> = {
  double: [BT.DOUBLE],
  string: [BT.STRING],
  object: [BT.DOC],
  array: [BT.ARRAY],
  binData: [BT.BINARY],
  undefined: [BT.UNDEFINED],
  objectId: [BT.OID],
  bool: [BT.BOOL],
  date: [BT.DATE],
  null: [BT.NULL],
  regex: [BT.REGEX],
  dbPointer: [BT.DBPOINTER],
  javascript: [BT.CODE],
  symbol: [BT.SYMBOL],
  javascriptWithScope: [BT.CODE_W_SCOPE],
  int: [BT.INT32],
  timestamp: [BT.TIMESTAMP],
  long: [BT.INT64],
  decimal: [BT.DECIMAL],
  minKey: [BT.MINKEY],
  maxKey: [BT.MAXKEY],
  number: [BT.DOUBLE, BT.INT32, BT.INT64, BT.DECIMAL],
};

const TYPE_CODES = new Set<number>([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, -1, 127]);

/** BSON types named by a `$type` / `bsonType` argument: aliases, numeric codes, or a list of either. */
export function typeSet(arg: Value, keyword = '$type'): Set<number> {
  const items = arg instanceof BArr ? arg.items : [arg];
  if (arg instanceof BArr && items.length === 0) throw badValue(`${keyword} must match at least one type`);
  const out = new Set<number>();
  for (const it of items) {
    if (it instanceof BVal && it.type === BT.STRING) {
      const types = TYPE_ALIASES[stringOf(it)];
      if (!types) throw badValue(`Unknown type name alias: ${stringOf(it)}`);
      for (const t of types) out.add(t);
    } else if (it instanceof BVal && isNumberType(it.type)) {
      const n = toNumber(it);
      if (!Number.isInteger(n) || !TYPE_CODES.has(n)) throw badValue(`Invalid numerical type code: ${n}`);
      out.add(n === -1 ? BT.MINKEY : n);
    } else {
      throw new CommandError(14, `type must be represented as a number or a string`);
    }
  }
  return out;
}

function anyAt(parts: readonly string[], expand: boolean, test: (c: Cand) => boolean): Pred {
  return (doc) => valuesAt(doc, parts, expand).some(test);
}

function not(p: Pred): Pred {
  return (doc) => !p(doc);
}

function all(preds: Pred[]): Pred {
  if (preds.length === 1) return preds[0]!;
  return (doc) => preds.every((p) => p(doc));
}

function isOperatorDoc(v: Value): v is BDoc {
  return v instanceof BDoc && v.entries.length > 0 && v.entries[0]![0].startsWith('$');
}

function inTests(arg: Value, op: string, coll: Intl.Collator | undefined): Array<(c: Cand) => boolean> {
  if (!(arg instanceof BArr)) throw badValue(`${op} needs an array`);
  return arg.items.map((it) => {
    if (it instanceof BVal && it.type === BT.REGEX) return regexOfValue(it);
    if (isOperatorDoc(it)) throw badValue(`cannot nest $ under ${op}`);
    return eqTest(it, coll);
  });
}

/**
 * `$in` as one test. Without a collation, values other than regexes are looked up by `keyOf` (the
 * equality classes the comparator uses: numbers by value, documents by field order), so a list of
 * thousands of values costs one lookup per candidate instead of one comparison per value.
 */
function inTest(arg: Value, op: string, coll: Intl.Collator | undefined): (c: Cand) => boolean {
  const tests = inTests(arg, op, coll);
  if (coll || !(arg instanceof BArr)) return (c) => tests.some((t) => t(c));
  const keys = new Set<string>();
  const others: Array<(c: Cand) => boolean> = [];
  arg.items.forEach((it, i) => {
    // A regex matches by pattern and null also matches a missing field: those keep their own test.
    if ((it instanceof BVal && it.type === BT.REGEX) || isNull(it)) others.push(tests[i]!);
    else keys.add(keyOf(it));
  });
  return (c) => keys.has(keyOf(c)) || others.some((t) => t(c));
}

function int64Of(v: BVal): bigint | undefined {
  const e = exactOf(v);
  if (e.kind !== 'fin') return undefined;
  return e.num / e.den;
}

function modTest(arg: Value): (c: Cand) => boolean {
  if (!(arg instanceof BArr)) throw badValue('malformed mod, needs to be an array');
  if (arg.items.length < 2) throw badValue('malformed mod, not enough elements');
  if (arg.items.length > 2) throw badValue('malformed mod, too many elements');
  const [d, r] = arg.items as [Value, Value];
  if (!(d instanceof BVal) || !isNumberType(d.type)) throw badValue('malformed mod, divisor not a number');
  if (!(r instanceof BVal) || !isNumberType(r.type)) throw badValue('malformed mod, remainder not a number');
  const divisor = int64Of(d);
  const remainder = int64Of(r);
  if (divisor === undefined || remainder === undefined) throw badValue('malformed mod, divisor value is invalid');
  if (divisor === 0n) throw badValue('divisor cannot be 0');
  return (c) => {
    if (!(c instanceof BVal) || !isNumberType(c.type)) return false;
    const n = int64Of(c);
    return n !== undefined && n % divisor === remainder;
  };
}

function sizeOf(arg: Value): number {
  if (!(arg instanceof BVal) || !isNumberType(arg.type)) throw badValue('$size needs a number');
  const n = toNumber(arg);
  if (!Number.isInteger(n)) throw badValue(`$size must be a whole number`);
  if (n < 0) throw badValue(`$size may not be negative`);
  return n;
}

const UNSUPPORTED_FIELD_OPERATORS = new Set([
  '$geoWithin', '$geoIntersects', '$near', '$nearSphere', '$within', '$bitsAllSet', '$bitsAllClear', '$bitsAnySet',
  '$bitsAnyClear', '$text', '$where',
]);

function elemMatch(parts: readonly string[], spec: Value, coll: Intl.Collator | undefined): Pred {
  if (!(spec instanceof BDoc)) throw badValue('$elemMatch needs an Object');
  const first = spec.entries[0]?.[0];
  const logical = first === '$and' || first === '$or' || first === '$nor' || first === '$expr' || first === '$where' || first === '$jsonSchema';
  let element: Pred;
  if (first !== undefined && first.startsWith('$') && !logical) {
    // Each element is tested as one value: an element that is itself an array is not opened up.
    element = fieldOperators([], spec, false, coll);
  } else {
    const inner = compileFilter(spec, coll);
    element = (el) => (el instanceof BDoc || el instanceof BArr) && inner(el);
  }
  return anyAt(parts, false, (c) => c instanceof BArr && c.items.some((el) => element(el)));
}

/** The operators of `{path: {$op: …, …}}`, all of which must hold. */
function fieldOperators(parts: readonly string[], ops: BDoc, expand: boolean, coll: Intl.Collator | undefined): Pred {
  const preds: Pred[] = [];
  const regex = ops.get('$regex');
  const options = ops.get('$options');
  if (options !== undefined && regex === undefined) throw badValue('$options needs a $regex');
  for (const [op, arg] of ops.entries) {
    switch (op) {
      case '$eq':
        preds.push(anyAt(parts, expand, eqTest(arg, coll)));
        break;
      case '$ne':
        preds.push(not(anyAt(parts, expand, eqTest(arg, coll))));
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        if (arg.type === BT.REGEX) throw badValue(`Can't have RegEx as arg to predicate over field '${parts.join('.')}'.`);
        preds.push(anyAt(parts, expand, cmpTest(op, arg, coll)));
        break;
      case '$in': {
        const test = inTest(arg, '$in', coll);
        preds.push(anyAt(parts, expand, test));
        break;
      }
      case '$nin': {
        const tests = inTests(arg, '$nin', coll);
        preds.push(not(anyAt(parts, expand, (c) => tests.some((t) => t(c)))));
        break;
      }
      case '$exists': {
        const want = truthy(arg);
        const exists = anyAt(parts, false, (c) => c !== undefined);
        preds.push(want ? exists : not(exists));
        break;
      }
      case '$type': {
        const types = typeSet(arg);
        preds.push(anyAt(parts, expand, (c) => c !== undefined && types.has(c.type)));
        break;
      }
      case '$size': {
        const n = sizeOf(arg);
        preds.push(anyAt(parts, false, (c) => c instanceof BArr && c.items.length === n));
        break;
      }
      case '$all': {
        if (!(arg instanceof BArr)) throw badValue('$all needs an array');
        if (arg.items.length === 0) {
          preds.push(() => false);
          break;
        }
        const elemMatches = arg.items.filter((it) => it instanceof BDoc && it.entries[0]?.[0] === '$elemMatch');
        if (elemMatches.length > 0 && elemMatches.length !== arg.items.length) throw badValue('$all/$elemMatch has to be consistent');
        if (elemMatches.length > 0) {
          for (const it of elemMatches) preds.push(elemMatch(parts, (it as BDoc).entries[0]![1], coll));
        } else {
          for (const it of arg.items) {
            if (isOperatorDoc(it)) throw badValue('no $ expressions in $all');
            const test = it instanceof BVal && it.type === BT.REGEX ? regexOfValue(it) : eqTest(it, coll);
            preds.push(anyAt(parts, expand, test));
          }
        }
        break;
      }
      case '$elemMatch':
        preds.push(elemMatch(parts, arg, coll));
        break;
      case '$not': {
        if (arg instanceof BVal && arg.type === BT.REGEX) {
          preds.push(not(anyAt(parts, expand, regexOfValue(arg))));
        } else if (arg instanceof BDoc) {
          if (arg.entries.length === 0) throw badValue('$not cannot be empty');
          const first = arg.entries[0]![0];
          if (!first.startsWith('$')) throw badValue(`unknown operator: ${first}`);
          preds.push(not(fieldOperators(parts, arg, expand, coll)));
        } else {
          throw badValue('$not needs a regex or a document');
        }
        break;
      }
      case '$regex': {
        let pattern: string;
        let flags: string;
        if (arg instanceof BVal && arg.type === BT.REGEX) {
          ({pattern, flags} = regexParts(arg));
          if (options !== undefined) {
            const extra = options instanceof BVal && options.type === BT.STRING ? stringOf(options) : '';
            if (flags !== '' && extra !== '') throw badValue('options set in both $regex and $options');
            flags ||= extra;
          }
        } else if (arg instanceof BVal && (arg.type === BT.STRING || arg.type === BT.SYMBOL)) {
          pattern = stringOf(arg);
          if (options !== undefined && !(options instanceof BVal && options.type === BT.STRING)) throw badValue('$options has to be a string');
          flags = options === undefined ? '' : stringOf(options as BVal);
        } else {
          throw badValue('$regex has to be a string');
        }
        preds.push(anyAt(parts, expand, regexTest(pattern, flags)));
        break;
      }
      case '$options':
        break;
      case '$mod':
        preds.push(anyAt(parts, expand, modTest(arg)));
        break;
      case '$comment':
        break;
      default:
        if (UNSUPPORTED_FIELD_OPERATORS.has(op)) throw new CommandError(115, `${op} is not supported by the gravity-restore test server`);
        throw badValue(`unknown operator: ${op}`);
    }
  }
  return preds.length === 0 ? () => true : all(preds);
}

function fieldPredicate(path: string, v: Value, coll: Intl.Collator | undefined): Pred {
  const parts = path.split('.');
  if (v instanceof BVal && v.type === BT.REGEX) return anyAt(parts, true, regexOfValue(v));
  if (isOperatorDoc(v)) return fieldOperators(parts, v, true, coll);
  return anyAt(parts, true, eqTest(v, coll));
}

function clauses(op: string, v: Value, coll: Intl.Collator | undefined): Pred[] {
  if (!(v instanceof BArr) || v.items.length === 0) throw badValue(`${op} must be a nonempty array`);
  return v.items.map((c) => {
    if (!(c instanceof BDoc)) throw badValue('$or/$and/$nor entries need to be full objects');
    return compileFilter(c, coll);
  });
}

/**
 * Compiles a filter document; throws mongod's error for anything mongod would refuse. String
 * comparisons follow `coll`, the query's collation, when given (regexes never do).
 */
export function compileFilter(filter: BDoc, coll?: Intl.Collator): Pred {
  const preds: Pred[] = [];
  for (const [key, v] of filter.entries) {
    if (!key.startsWith('$')) {
      preds.push(fieldPredicate(key, v, coll));
      continue;
    }
    switch (key) {
      case '$and': {
        preds.push(all(clauses(key, v, coll)));
        break;
      }
      case '$or': {
        const cs = clauses(key, v, coll);
        preds.push((doc) => cs.some((p) => p(doc)));
        break;
      }
      case '$nor': {
        const cs = clauses(key, v, coll);
        preds.push((doc) => !cs.some((p) => p(doc)));
        break;
      }
      case '$expr': {
        const e = compileExpr(v, coll);
        preds.push((doc) => doc instanceof BDoc && truthy(e(doc)));
        break;
      }
      case '$jsonSchema': {
        if (!(v instanceof BDoc)) throw new CommandError(14, '$jsonSchema must be an object');
        const schema = compileSchema(v);
        preds.push((doc) => doc instanceof BDoc && schema(doc).length === 0);
        break;
      }
      case '$comment':
        break;
      case '$where':
      case '$text':
      case '$sampleRate':
      case '$alwaysTrue':
      case '$alwaysFalse':
        throw new CommandError(115, `${key} is not supported by the gravity-restore test server`);
      default:
        throw badValue(`unknown top level operator: ${key}. If you have a field name that starts with a '$' symbol, consider using $getField or $setField.`);
    }
  }
  return preds.length === 0 ? () => true : all(preds);
}

/** Sort keys: ascending takes an array's smallest element, descending its largest; missing sorts as null. */
export function compileSort(spec: BDoc, coll?: Intl.Collator): (a: BDoc, b: BDoc) => number {
  const fields = spec.entries.map(([path, dir]) => {
    const n = dir instanceof BVal && isNumberType(dir.type) ? toNumber(dir) : Number.NaN;
    if (n !== 1 && n !== -1) {
      if (dir instanceof BDoc) throw new CommandError(115, `sort by ${path}: $meta sorts are not supported by the gravity-restore test server`);
      throw new CommandError(15975, '$sort key ordering must be 1 (for ascending) or -1 (for descending)');
    }
    return {parts: path.split('.'), dir: n};
  });
  const keyOf = (doc: BDoc, parts: string[], dir: number): Value | undefined => {
    const vals = valuesAt(doc, parts, false);
    let best: Value | undefined;
    let seen = false;
    const consider = (v: Value | undefined): void => {
      const val = v ?? NULL_SORT;
      if (!seen || (dir > 0 ? compareValues(val, best!, coll) < 0 : compareValues(val, best!, coll) > 0)) best = val;
      seen = true;
    };
    for (const v of vals) {
      if (v instanceof BArr) {
        if (v.items.length === 0) consider(UNDEFINED_SORT);
        for (const el of v.items) consider(el);
      } else {
        consider(v);
      }
    }
    return best;
  };
  return (a, b) => {
    for (const f of fields) {
      const c = compareValues(keyOf(a, f.parts, f.dir)!, keyOf(b, f.parts, f.dir)!, coll);
      if (c !== 0) return c * f.dir;
    }
    return 0;
  };
}

const NULL_SORT = new BVal(BT.NULL, Buffer.alloc(0));
// An empty array sorts below null, as undefined does.
const UNDEFINED_SORT = new BVal(BT.UNDEFINED, Buffer.alloc(0));
