/**
 * Compiles a filter into a matcher on raw BSON documents, in three stages:
 * (a) a byte prescreen when every match must contain a distinctive value's bytes,
 * (b) decoding only the top-level fields the filter reads,
 * (c) the exact check: MongoDB-exact leaf operators (operators.ts) on canonical values (values.ts),
 *     applied directly when every condition is on one field, else through mingo's query compiler.
 *     `matchesDecoded` runs (c) on a fully decoded document;
 *     `compileQuery(q).matches(bytes)` always equals `matchesDecoded(q, BSON.deserialize(bytes))`.
 */
import {BSON, EJSON, ObjectId, type Document} from 'bson';

import {GravityError} from '../errors.js';
import {GuardedMatcher, matchGuardSettings} from './guard.js';
import {loadMingo} from './mingo.js';
import {FIELD_OPS, NUMERIC_TYPE_NAMES, TYPE_ALIASES, TYPE_REFUSED, matchContext} from './operators.js';
import {inPlaceTest, UNKNOWN} from './in-place.js';
import {FieldPicker} from './raw.js';
import {BinKey, BsonRegex, NumKey, RegexMatcher, RegexRefused, TsKey, UnsupportedValue, canonical, isNumeric, isOperatorObject, isPlainObject} from './values.js';

export interface CompiledQuery {
  /** Exact MongoDB semantics on one raw BSON document. */
  matches(doc: Buffer): boolean;
  /**
   * The same answers for documents where they lie in larger buffers (a stream's chunks, each
   * holding documents back to back): without a prescreen, no subarray is made for a document the
   * in-place comparisons settle.
   */
  matchesAt(buffer: Buffer, start: number, end: number): boolean;
  /** Top-level field names the query reads (for lazy decoding / explain). */
  readonly fields: string[];
  /** Byte patterns of which at least one must occur in a matching document (null = no prescreen possible). */
  readonly prescreen: Buffer[] | null;
  /** Short human description of the stages used, e.g. 'prescreen(ObjectId) → lazy(partner_id) → exact'. */
  readonly plan: string;
}

const EXAMPLE_HINT = 'Use the operators $eq $ne $gt $gte $lt $lte $in $nin $exists $type $elemMatch $size $all $and $or $nor $not $regex $mod';

const REFUSED: Record<string, string> = {
  $where: 'runs JavaScript',
  $expr: 'evaluates aggregation expressions',
  $function: 'runs JavaScript',
  $text: 'needs a text index',
  $near: 'needs a geospatial index',
  $nearSphere: 'needs a geospatial index',
  $geoWithin: 'is geospatial',
  $geoIntersects: 'is geospatial',
  $jsonSchema: 'validates schemas',
  $bitsAllSet: 'is not implemented exactly here',
  $bitsAllClear: 'is not implemented exactly here',
  $bitsAnySet: 'is not implemented exactly here',
  $bitsAnyClear: 'is not implemented exactly here',
  $sampleRate: 'is random',
};


function unsupported(message: string, hint = EXAMPLE_HINT): GravityError {
  return new GravityError('QUERY_UNSUPPORTED', message, {hint});
}

function invalid(message: string): GravityError {
  return new GravityError('QUERY_SYNTAX', message, {hint: `${EXAMPLE_HINT}, as in {"status": {"$in": ["A", "B"]}}`});
}

function canon(value: unknown): unknown {
  try {
    return canonical(value, null);
  } catch (error) {
    if (error instanceof UnsupportedValue) throw unsupported(`Query value cannot be matched exactly: ${error.message}`);
    throw error;
  }
}

function refuseOperator(op: string, path: string): never {
  if (op === '$where' || op === '$function') {
    throw unsupported(
      `${op} (JavaScript) is not supported: mongod runs its JavaScript on the server for each document, and the stream engine reads backups without a server and runs no JavaScript`,
      'Write the condition with query operators ($eq, $gt, $in, $regex, $exists, $elemMatch …), or extract with --engine mongod, whose scratch server runs it',
    );
  }
  const why = REFUSED[op];
  if (why) throw unsupported(`Query operator ${op} on "${path}" is not supported: it ${why}`);
  throw invalid(`Query uses an unknown operator ${op} on "${path}"`);
}

function regexRefusal(error: unknown, path: string): never {
  if (error instanceof RegexRefused) {
    if (error.invalid) throw invalid(`Query regex on "${path}" is not valid: ${error.message}`);
    throw unsupported(`Query regex on "${path}" cannot be matched exactly: ${error.message}`, 'Write the pattern with constructs JavaScript and PCRE2 share, or extract with --engine mongod');
  }
  if (error instanceof UnsupportedValue) throw unsupported(`Query regex on "${path}" cannot be matched exactly: ${error.message}`);
  throw error;
}

/** A regex in a matching position, run as PCRE2 would run it (pcre.ts). */
function matcherOf(value: BsonRegex, path: string): RegexMatcher {
  try {
    return new RegexMatcher(value);
  } catch (error) {
    regexRefusal(error, path);
  }
}

/** `{$regex, $options}`: options on a /literal/ and in $options at once are an error in mongod (51075). */
function prepareRegex(ops: Record<string, unknown>, path: string): RegexMatcher {
  const source = ops.$regex;
  const options = ops.$options;
  if (options !== undefined && typeof options !== 'string') throw invalid(`$options on "${path}" must be a string`);
  if (typeof source === 'string') return matcherOf(new BsonRegex(source, options ?? ''), path);
  const re = canon(source);
  if (re instanceof BsonRegex) {
    if (options && re.options) throw invalid(`$regex on "${path}" has options both in the regex and in $options`);
    return matcherOf(options ? new BsonRegex(re.pattern, options) : re, path);
  }
  throw invalid(`$regex on "${path}" must be a string or a regular expression`);
}

/** A value in $in, $nin or $all: a regex there matches, it is not compared. */
function matchingValue(value: unknown, path: string): unknown {
  const c = canon(value);
  return c instanceof BsonRegex ? matcherOf(c, path) : c;
}

function prepareType(arg: unknown, path: string): unknown {
  const list = Array.isArray(arg) ? arg : [arg];
  if (list.length === 0) throw invalid(`$type on "${path}" needs at least one type`);
  const names = list.map((t) => {
    const c = canon(t);
    const key = String(c);
    if (typeof c !== 'string' && typeof c !== 'number') throw invalid(`$type on "${path}" takes type names or numbers`);
    if (TYPE_REFUSED.has(key)) {
      throw unsupported(`$type "${key}" on "${path}" is not supported: symbols, JavaScript code and DBPointers are not told apart from other types here`, 'Match these fields by value, or extract with the scratch engine');
    }
    if (!TYPE_ALIASES[key]) throw invalid(`$type on "${path}" names an unknown type ${JSON.stringify(key)}`);
    return key;
  });
  return Array.isArray(arg) ? names : names[0];
}

function prepareOps(ops: Record<string, unknown>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(ops)) {
    if (!key.startsWith('$')) throw invalid(`Condition on "${path}" mixes operators and the field name "${key}"`);
  }
  if (ops.$options !== undefined && ops.$regex === undefined) throw invalid(`$options on "${path}" needs $regex`);
  for (const [op, arg] of Object.entries(ops)) {
    switch (op) {
      case '$eq':
      case '$ne':
        out[op] = canon(arg);
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte': {
        const v = canon(arg);
        const comparable =
          isNumeric(v) || typeof v === 'string' || typeof v === 'boolean' || v === null ||
          v instanceof Date || v instanceof ObjectId || v instanceof BinKey || v instanceof TsKey;
        if (!comparable) {
          throw unsupported(`${op} on "${path}" with an array, document, regex, MinKey or MaxKey is not supported`, 'Compare with a number, string, date, ObjectId, binary or timestamp');
        }
        out[op] = v;
        break;
      }
      case '$in':
      case '$nin': {
        if (!Array.isArray(arg)) throw invalid(`${op} on "${path}" needs an array`);
        if (arg.some(isOperatorObject)) throw invalid(`${op} on "${path}" cannot hold operators`);
        out[op] = arg.map((v) => matchingValue(v, path));
        break;
      }
      case '$exists':
        out[op] = Boolean(canon(arg));
        break;
      case '$type':
        out[op] = prepareType(arg, path);
        break;
      case '$size': {
        const v = canon(arg);
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(`$size on "${path}" needs a whole number ≥ 0`);
        out[op] = v;
        break;
      }
      case '$mod': {
        const v = canon(arg);
        if (!Array.isArray(v) || v.length !== 2 || !v.every(isNumeric) || v.some((x) => typeof x === 'number' && !Number.isFinite(x))) {
          throw invalid(`$mod on "${path}" needs [divisor, remainder] as two finite numbers`);
        }
        const d = v[0] as number | NumKey;
        if (typeof d === 'number' && Math.trunc(d) === 0) throw invalid(`$mod on "${path}" has a divisor of 0`);
        out[op] = v;
        break;
      }
      case '$regex':
        out.$pcre = prepareRegex(ops, path);
        break;
      case '$options':
        break;
      case '$all': {
        if (!Array.isArray(arg)) throw invalid(`$all on "${path}" needs an array`);
        out[op] = arg.map((item) => {
          if (isPlainObject(item) && Object.keys(item).length === 1 && isPlainObject(item.$elemMatch)) {
            return {$elemMatch: prepareElemMatch(item.$elemMatch, path)};
          }
          if (isOperatorObject(item)) throw invalid(`$all on "${path}" can hold values or {$elemMatch: …} only`);
          return matchingValue(item, path);
        });
        break;
      }
      case '$elemMatch': {
        // Extended JSON reads {$elemMatch: {$regex: "…"}} as a regex value: the operator form, on elements.
        const regex = isPlainObject(arg) ? null : canon(arg);
        if (regex instanceof BsonRegex) out[op] = {$pcre: matcherOf(regex, path)};
        else if (!isPlainObject(arg)) throw invalid(`$elemMatch on "${path}" needs a document`);
        else out[op] = prepareElemMatch(arg, path);
        break;
      }
      case '$not': {
        const c = isPlainObject(arg) ? arg : canon(arg);
        // {$not: /re/} is {$not: {$regex: re}}, written so for mingo's $not.
        if (c instanceof BsonRegex) out[op] = {$pcre: matcherOf(c, path)};
        else if (isOperatorObject(c)) out[op] = prepareOps(c, path);
        else throw invalid(`$not on "${path}" needs a regex or a document of operators`);
        break;
      }
      default:
        refuseOperator(op, path);
    }
  }
  return out;
}

function isValueForm(spec: Record<string, unknown>): boolean {
  const keys = Object.keys(spec);
  return keys.length > 0 && keys.every((k) => k.startsWith('$') && k !== '$and' && k !== '$or' && k !== '$nor');
}

function prepareElemMatch(spec: Record<string, unknown>, path: string): Record<string, unknown> {
  return isValueForm(spec) ? prepareOps(spec, path) : prepareFilter(spec, `$elemMatch on "${path}"`);
}

export function prepareFilter(filter: unknown, where: string): Record<string, unknown> {
  if (!isPlainObject(filter)) throw invalid(`${where} must be a document`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`${key} needs a non-empty array of documents`);
      out[key] = value.map((v) => prepareFilter(v, `Each ${key} branch`));
    } else if (key === '$comment') {
      continue;
    } else if (key.startsWith('$')) {
      refuseOperator(key, key);
    } else {
      const v = isOperatorObject(value) ? prepareOps(value, key) : canon(value);
      // A regex value is a $regex match; said here so the matcher (and its BSON source) is kept as is.
      out[key] = v instanceof BsonRegex ? {$pcre: matcherOf(v, key)} : v;
    }
  }
  return out;
}

type ExactTest = (doc: Record<string, unknown>) => boolean;

/** Which way the exact check is built: `direct` where the filter allows it (always, outside tests). */
export type ExactVia = 'direct' | 'mingo';

function compiled<T>(build: () => T): T {
  try {
    return build();
  } catch (error) {
    throw invalid(`Query cannot be compiled: ${(error as Error).message}`);
  }
}

const isScalar = (v: unknown): boolean => (typeof v !== 'object' && typeof v !== 'function') || v === null || v instanceof Date;
const isOperatorName = (name: string): boolean => /^\$[a-zA-Z0-9_]+$/.test(name);

/**
 * The copy mingo's Query makes of its condition: plain objects, arrays and dates are copied, class
 * instances (regex matchers and values among them) kept; the direct path copies alike so that both
 * paths give the same answers.
 */
function copyCondition(v: unknown): unknown {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return v;
  if (v instanceof Date) return new Date(v);
  if (Array.isArray(v)) return v.map(copyCondition);
  const ctor = (v as {constructor?: {name?: string}}).constructor;
  if (ctor !== Object && (ctor?.name?.toLowerCase() ?? 'object') !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) out[key] = copyCondition((v as Record<string, unknown>)[key]);
  return out;
}

/** A field's condition as operators, as mingo normalises it: a bare value is `$eq` (regexes are `$regex` already). */
function normalised(expr: unknown): Record<string, unknown> {
  if (isScalar(expr)) return {$eq: expr};
  const ops = expr as Record<string, unknown>;
  if (!Object.keys(ops).some(isOperatorName)) return {$eq: expr};
  return ops;
}

/**
 * The exact check without mingo, for a filter whose every condition is on one field with
 * operators of FIELD_OPS ($eq, ranges, $in, $regex, $exists, …): built as mingo's Query builds it,
 * one predicate per field and operator, all of which must hold. null when the filter needs
 * mingo's structure ($and, $or, $nor, $not, $elemMatch, $all).
 */
function directTest(prepared: Record<string, unknown>): ExactTest | null {
  const condition = copyCondition(prepared) as Record<string, unknown>;
  const predicates: ((doc: unknown) => boolean)[] = [];
  for (const field of Object.keys(condition)) {
    if (field.startsWith('$')) return null;
    const ops = normalised(condition[field]);
    for (const op of Object.keys(ops)) {
      if (!Object.prototype.hasOwnProperty.call(FIELD_OPS, op)) return null;
      predicates.push(FIELD_OPS[op](field, ops[op]));
    }
  }
  return (doc) => predicates.every((p) => p(doc));
}

function exactTest(prepared: Record<string, unknown>, via: ExactVia = 'direct'): ExactTest {
  const direct = via === 'direct' ? compiled(() => directTest(prepared)) : null;
  if (direct) return direct;
  const {Query} = loadMingo();
  const context = matchContext();
  const query = compiled(() => new Query(prepared, {context}));
  return (doc) => query.test(doc);
}

/** Whether a `$type` anywhere in the prepared filter names int, long, double or decimal. */
function needsNumericKinds(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(needsNumericKinds);
  if (!isPlainObject(value)) return false;
  for (const [key, v] of Object.entries(value)) {
    if (key === '$type' && (Array.isArray(v) ? v : [v]).some((t) => NUMERIC_TYPE_NAMES.has(TYPE_ALIASES[String(t)]))) return true;
    if (needsNumericKinds(v)) return true;
  }
  return false;
}

/** Every dotted path the filter reads at document level ($elemMatch reads its path whole). */
function paths(filter: Record<string, unknown>, into = new Set<string>()): Set<string> {
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      for (const branch of value as Record<string, unknown>[]) paths(branch, into);
    } else into.add(key);
  }
  return into;
}

// ---------------------------------------------------------------------------------------------
// Prescreen: which bytes a matching document must contain.

type Pins = {label: string; patterns: Buffer[]} | null;

function int32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32LE(n, 0);
  return b;
}

/** Bytes that any value equal to `v` has in BSON; null if none are distinctive or exact. */
function pinsOfValue(v: unknown): Pins {
  if (v instanceof ObjectId) return {label: 'ObjectId', patterns: [Buffer.from(v.id)]};
  if (typeof v === 'string') {
    const utf8 = Buffer.from(v, 'utf8');
    if (utf8.length < 4) return null;
    return {label: 'string', patterns: [Buffer.concat([int32(utf8.length + 1), utf8, Buffer.from([0])])]};
  }
  if (v instanceof Date) {
    const ms = v.getTime();
    if (!Number.isFinite(ms)) return null;
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64LE(BigInt(ms), 0);
    return {label: 'Date', patterns: [b]};
  }
  if (v instanceof BinKey) {
    if (v.bytes.length < 4) return null;
    const label = v.subtype === 4 ? 'UUID' : 'Binary';
    // The old binary subtype 2 stores a second length before the bytes, so only the bytes are certain.
    if (v.subtype === 2) return {label, patterns: [Buffer.from(v.bytes)]};
    return {label, patterns: [Buffer.concat([int32(v.bytes.length), Buffer.from([v.subtype]), v.bytes])]};
  }
  if (v instanceof TsKey) {
    const b = Buffer.allocUnsafe(8);
    b.writeUInt32LE(v.i, 0);
    b.writeUInt32LE(v.t, 4);
    return {label: 'Timestamp', patterns: [b]};
  }
  // Numbers are not pinned: 5 also matches 5.0, NumberLong(5) and every Decimal128 spelling of 5.
  return null;
}

function union(list: Pins[]): Pins {
  if (list.length === 0 || list.some((p) => p === null)) return null;
  const labels = [...new Set(list.map((p) => (p as NonNullable<Pins>).label))];
  return {label: labels.join('|'), patterns: list.flatMap((p) => (p as NonNullable<Pins>).patterns)};
}

/** Of conditions that must all hold, the one whose patterns screen best. */
function best(list: Pins[]): Pins {
  let chosen: Pins = null;
  for (const p of list) {
    if (p === null) continue;
    if (chosen === null || p.patterns.length < chosen.patterns.length) chosen = p;
  }
  return chosen;
}

function pinsOfOps(ops: Record<string, unknown>): Pins {
  const parts: Pins[] = [];
  for (const [op, arg] of Object.entries(ops)) {
    if (op === '$eq') parts.push(pinsOfValue(arg));
    else if (op === '$in') parts.push(union((arg as unknown[]).map(pinsOfValue)));
    else if (op === '$all') {
      parts.push(
        best(
          (arg as unknown[]).map((item) =>
            isPlainObject(item) && isPlainObject(item.$elemMatch) ? pinsOfElemMatch(item.$elemMatch) : pinsOfValue(item),
          ),
        ),
      );
    } else if (op === '$elemMatch') parts.push(pinsOfElemMatch(arg as Record<string, unknown>));
  }
  return best(parts);
}

function pinsOfElemMatch(spec: Record<string, unknown>): Pins {
  return isValueForm(spec) ? pinsOfOps(spec) : pinsOfFilter(spec);
}

function pinsOfFilter(filter: Record<string, unknown>): Pins {
  const parts: Pins[] = [];
  for (const [key, value] of Object.entries(filter)) {
    if (key === '$and') parts.push(best((value as Record<string, unknown>[]).map(pinsOfFilter)));
    else if (key === '$or') parts.push(union((value as Record<string, unknown>[]).map(pinsOfFilter)));
    else if (key === '$nor') continue;
    else if (isOperatorObject(value)) parts.push(pinsOfOps(value));
    else parts.push(pinsOfValue(value));
  }
  return best(parts);
}

// ---------------------------------------------------------------------------------------------

function anyPattern(doc: Buffer, patterns: Buffer[]): boolean {
  for (let i = 0; i < patterns.length; i++) if (doc.indexOf(patterns[i]) !== -1) return true;
  return false;
}

export function compileQuery(filter: Document): CompiledQuery {
  const prepared = prepareFilter(filter, 'Query');
  const exact = exactTest(prepared);
  const read = [...paths(prepared)];
  const fields = [...new Set(read.map((p) => p.split('.')[0]))];
  const pins = fields.length === 0 ? null : pinsOfFilter(prepared);
  const prescreen = pins?.patterns ?? null;
  // The lazy picker reads int32 and double alike as JS numbers; a $type on numeric subtypes needs
  // the BSON types, so such filters decode documents keeping bson's numeric wrapper classes.
  const typed = needsNumericKinds(prepared);
  const picker = typed ? null : new FieldPicker(read);
  // Number, date and boolean comparisons on fields are made on the bytes; the rest, and "don't know", decoded.
  const inPlace = typed || fields.length === 0 ? null : inPlaceTest(prepared);
  const stages: string[] = [];
  if (pins) stages.push(`prescreen(${pins.label}${pins.patterns.length > 1 ? `×${pins.patterns.length}` : ''})`);
  if (inPlace !== null) stages.push('in place');
  if (fields.length > 0) stages.push(typed ? 'decode(numeric types)' : `lazy(${read.join(', ')})`, 'exact');
  const plan = stages.length > 0 ? stages.join(' → ') : 'all';

  // The document at [start, end) of `buffer`, past the prescreen.
  const decide = (buffer: Buffer, start: number, end: number): boolean => {
    let picked: Record<string, unknown> | null;
    try {
      if (inPlace !== null) {
        const verdict = inPlace(buffer, start);
        if (verdict !== UNKNOWN) return verdict;
      }
      const doc = start === 0 && end === buffer.length ? buffer : buffer.subarray(start, end);
      picked =
        picker === null
          ? (canonical(BSON.deserialize(doc, {promoteValues: false, bsonRegExp: true}), undefined, true) as Record<string, unknown>)
          : (picker.pick(doc) ?? (canonical(BSON.deserialize(doc, {bsonRegExp: true})) as Record<string, unknown>));
    } catch (error) {
      throw new GravityError('DUMP_CORRUPT', `A document is not valid BSON: ${(error as Error).message}`, {
        hint: 'Check the backup file with `gravity-restore inspect`; it may be truncated or not a mongodump .bson file',
        cause: error,
      });
    }
    return exact(picked);
  };
  const matches = (doc: Buffer): boolean => {
    if (fields.length === 0) return true;
    if (prescreen !== null && !anyPattern(doc, prescreen)) return false;
    return decide(doc, 0, doc.length);
  };
  // A prescreen searches document by document: Buffer#indexOf over a whole chunk measured slower per
  // byte than over each document's bytes (75 against 48 ms for 200 MB, a pattern that is not there).
  const matchesAt: CompiledQuery['matchesAt'] =
    fields.length === 0 ? () => true : prescreen === null ? decide : (buffer, start, end) => matches(buffer.subarray(start, end));
  // With a matching budget in force, regexes run on a worker this thread can end (guard.ts).
  const guard = matchGuardSettings();
  const patterns = guard !== null && fields.length > 0 ? [...new Set(regexSources(filter))] : [];
  if (patterns.length > 0) {
    const guarded = new GuardedMatcher(EJSON.stringify(filter, {relaxed: false}), patterns, guard!);
    return {matches: (doc) => guarded.matchesAt(doc, 0, doc.length), matchesAt: (buffer, start, end) => guarded.matchesAt(buffer, start, end), fields, prescreen, plan: `${plan} (on a matching worker)`};
  }
  return {matches, matchesAt, fields, prescreen, plan};
}

const referenceCache: Record<ExactVia, WeakMap<Document, ExactTest>> = {direct: new WeakMap(), mingo: new WeakMap()};

/**
 * The reference: exact matching on a fully decoded document (BSON.deserialize with default options).
 * Numeric BSON types are known only from wrapper classes (a decode with `promoteValues: false`);
 * a plain JS number counts as the type the bson serialiser would write for it.
 * `via: 'mingo'` builds the check through mingo even where the direct path applies (for tests).
 */
export function matchesDecoded(filter: Document, doc: Document, via: ExactVia = 'direct'): boolean {
  let test = referenceCache[via].get(filter);
  if (!test) {
    test = exactTest(prepareFilter(filter, 'Query'), via);
    referenceCache[via].set(filter, test);
  }
  return test(canonical(doc, undefined, true) as Record<string, unknown>);
}

/**
 * The regular expressions a filter runs or compares (`/pattern/options`), wherever they stand:
 * matching with one of them can take unbounded time, which callers bound (a worker they can end).
 */
export function regexSources(filter: unknown, into: string[] = []): string[] {
  if (Array.isArray(filter)) {
    for (const v of filter) regexSources(v, into);
  } else if (filter instanceof RegExp) into.push(`/${filter.source}/${filter.flags}`);
  else if (filter !== null && typeof filter === 'object') {
    const v = filter as Record<string, unknown> & {_bsontype?: string; pattern?: string; options?: string};
    if (v._bsontype === 'BSONRegExp') into.push(`/${v.pattern}/${v.options}`);
    else if (isPlainObject(v)) {
      if (typeof v.$regex === 'string') into.push(`/${v.$regex}/${typeof v.$options === 'string' ? v.$options : ''}`);
      for (const [key, value] of Object.entries(v)) if (key !== '$regex' || typeof value !== 'string') regexSources(value, into);
    }
  }
  return into;
}
