/**
 * The part of the aggregation expression language `$expr` needs here
 * (https://www.mongodb.com/docs/manual/reference/operator/query/expr/): field paths, `$$ROOT` /
 * `$$CURRENT`, `$literal`, comparisons, `$and` `$or` `$not` `$in`, `$bsonSize` and `$binarySize`. Aggregation comparisons use the
 * full BSON order (no type bracketing), so `$eq: ['$$ROOT', {$literal: doc}]` is whole-document
 * equality with field order and values.
 */
import {CommandError} from './command-error.js';
import {arithmetic, isNumber} from './numbers.js';
import {compareValues, exactOf} from './compare.js';
import {BArr, BDoc, BT, BVal, NULL_VALUE, type Value, isNumberType, stringOf} from './tree.js';

/** Evaluates to a value, or undefined for "missing". */
export type Expr = (root: BDoc) => Value | undefined;

export const TRUE_VALUE = new BVal(BT.BOOL, Buffer.of(1));
export const FALSE_VALUE = new BVal(BT.BOOL, Buffer.of(0));

function bool(b: boolean): BVal {
  return b ? TRUE_VALUE : FALSE_VALUE;
}

/** Aggregation truthiness: false, null, undefined, missing and zero are false. */
export function truthy(v: Value | undefined): boolean {
  if (v === undefined) return false;
  if (!(v instanceof BVal)) return true;
  if (v.type === BT.NULL || v.type === BT.UNDEFINED) return false;
  if (v.type === BT.BOOL) return v.bytes[0] !== 0;
  if (isNumberType(v.type)) {
    const e = exactOf(v);
    return !(e.kind === 'fin' && e.num === 0n);
  }
  return true;
}

/** Missing sorts below everything and equals only missing. */
function aggCompare(a: Value | undefined, b: Value | undefined, coll: Intl.Collator | undefined): number {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
  return compareValues(a, b, coll);
}

function fieldPath(v: Value | undefined, parts: string[], i: number): Value | undefined {
  if (i === parts.length) return v;
  if (v instanceof BDoc) return fieldPath(v.get(parts[i]!), parts, i + 1);
  if (v instanceof BArr) {
    const out: Value[] = [];
    for (const el of v.items) {
      if (!(el instanceof BDoc) && !(el instanceof BArr)) continue;
      const r = fieldPath(el, parts, i);
      if (r !== undefined) out.push(r);
    }
    return BArr.fromItems(out);
  }
  return undefined;
}

function pathExpr(text: string): Expr {
  if (text.startsWith('$$')) {
    const [name, ...rest] = text.slice(2).split('.');
    if (name !== 'ROOT' && name !== 'CURRENT') {
      if (name === 'NOW' || name === 'CLUSTER_TIME' || name === 'REMOVE' || name === 'SEARCH_META' || name === 'USER_ROLES') {
        throw new CommandError(115, `variable $$${name} is not supported by the gravity-restore test server`);
      }
      throw new CommandError(17276, `Use of undefined variable: ${name}`);
    }
    return (root) => fieldPath(root, rest, 0);
  }
  const parts = text.slice(1).split('.');
  if (parts.some((p) => p === '')) throw new CommandError(15998, "FieldPath field names may not be empty strings.");
  return (root) => fieldPath(root, parts, 0);
}

function args(v: Value): Value[] {
  return v instanceof BArr ? [...v.items] : [v];
}

function exactly(op: string, list: Value[], n: number): void {
  if (list.length !== n) throw new CommandError(16020, `Expression ${op} takes exactly ${n} arguments. ${list.length} were passed in.`);
}

const COMPARISONS: Record<string, (c: number) => boolean> = {
  $eq: (c) => c === 0,
  $ne: (c) => c !== 0,
  $gt: (c) => c > 0,
  $gte: (c) => c >= 0,
  $lt: (c) => c < 0,
  $lte: (c) => c <= 0,
};

/** Expression operators mongod has that this server does not evaluate: refused, never guessed. */
const KNOWN_ELSEWHERE = new Set(
  (
    '$abs $allElementsTrue $anyElementTrue $arrayElemAt $arrayToObject $ceil $concatArrays $cond $dateAdd ' +
    '$dateDiff $dateFromParts $dateFromString $dateSubtract $dateToParts $dateToString $dateTrunc $dayOfMonth $dayOfWeek ' +
    '$dayOfYear $divide $exp $filter $first $floor $function $getField $hour $indexOfArray $indexOfBytes ' +
    '$indexOfCP $isArray $isNumber $last $let $ln $log $log10 $ltrim $map $max $mergeObjects $meta $millisecond $min ' +
    '$minute $mod $month $objectToArray $pow $range $reduce $regexFind $regexFindAll $regexMatch $replaceAll ' +
    '$replaceOne $reverseArray $round $rtrim $second $setDifference $setEquals $setField $setIntersection $setIsSubset ' +
    '$setUnion $size $slice $sortArray $split $sqrt $strLenBytes $strLenCP $strcasecmp $substr $substrBytes $substrCP ' +
    '$sum $switch $toBool $toDate $toDecimal $toDouble $toInt $toLong $toLower $toObjectId $toString $toUpper ' +
    '$trim $trunc $tsIncrement $tsSecond $type $unsetField $week $year $avg $binarySize $convert $rand $zip'
  ).split(' '),
);

function operator(op: string, arg: Value, coll: Intl.Collator | undefined): Expr {
  if (op === '$literal') return () => arg;
  const cmp = COMPARISONS[op];
  if (cmp || op === '$cmp') {
    const list = args(arg);
    exactly(op, list, 2);
    const [l, r] = list.map((x) => compileExpr(x, coll)) as [Expr, Expr];
    if (op === '$cmp') return (root) => new BVal(BT.INT32, int32Bytes(Math.sign(aggCompare(l(root), r(root), coll))));
    return (root) => bool(cmp!(aggCompare(l(root), r(root), coll)));
  }
  if (op === '$and' || op === '$or') {
    const list = args(arg).map((x) => compileExpr(x, coll));
    return op === '$and' ? (root) => bool(list.every((e) => truthy(e(root)))) : (root) => bool(list.some((e) => truthy(e(root))));
  }
  if (op === '$not') {
    const list = args(arg);
    exactly(op, list, 1);
    const e = compileExpr(list[0]!, coll);
    return (root) => bool(!truthy(e(root)));
  }
  if (op === '$in') {
    const list = args(arg);
    exactly(op, list, 2);
    const [needle, hay] = list.map((x) => compileExpr(x, coll)) as [Expr, Expr];
    return (root) => {
      const h = hay(root);
      if (!(h instanceof BArr)) throw new CommandError(40081, `$in requires an array as a second argument, found: ${typeName(h)}`);
      const n = needle(root);
      return bool(h.items.some((x) => aggCompare(n, x, coll) === 0));
    };
  }
  if (op === '$bsonSize' || op === '$binarySize') {
    const list = args(arg);
    exactly(op, list, 1);
    const e = compileExpr(list[0]!, coll);
    return (root) => {
      const v = e(root);
      if (v === undefined || v.type === BT.NULL) return NULL_VALUE;
      if (op === '$bsonSize') {
        if (!(v instanceof BDoc)) throw new CommandError(31393, `$bsonSize requires a document input, found: ${typeName(v)}`);
        return new BVal(BT.INT32, int32Bytes(v.bytes.length));
      }
      if (v instanceof BVal && (v.type === BT.STRING || v.type === BT.BINARY)) {
        return new BVal(BT.INT32, int32Bytes(v.type === BT.STRING ? v.bytes.length - 5 : v.bytes.readInt32LE(0)));
      }
      throw new CommandError(51276, `$binarySize requires a string or BinData argument, found: ${typeName(v)}`);
    };
  }
  if (op === '$add' || op === '$subtract' || op === '$multiply') return arithmeticExpr(op, args(arg), coll);
  if (op === '$concat') {
    // https://www.mongodb.com/docs/manual/reference/operator/aggregation/concat/: null or missing gives null.
    const list = args(arg).map((x) => compileExpr(x, coll));
    return (root) => {
      let out = '';
      for (const e of list) {
        const v = e(root);
        if (v === undefined || v.type === BT.NULL || v.type === BT.UNDEFINED) return NULL_VALUE;
        if (!(v instanceof BVal) || v.type !== BT.STRING) throw new CommandError(16702, `$concat only supports strings, not ${typeName(v)}`);
        out += stringOf(v);
      }
      return stringValue(out);
    };
  }
  if (op === '$ifNull') {
    // https://www.mongodb.com/docs/manual/reference/operator/aggregation/ifNull/
    const list = args(arg).map((x) => compileExpr(x, coll));
    if (list.length < 2) throw new CommandError(1257300, '$ifNull needs at least two arguments, had: ' + list.length);
    return (root) => {
      for (const e of list.slice(0, -1)) {
        const v = e(root);
        if (v !== undefined && v.type !== BT.NULL && v.type !== BT.UNDEFINED) return v;
      }
      return list[list.length - 1]!(root);
    };
  }
  if (KNOWN_ELSEWHERE.has(op)) throw new CommandError(115, `expression ${op} is not supported by the gravity-restore test server`);
  throw new CommandError(168, `Unrecognized expression '${op}'`);
}

function int32Bytes(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return b;
}

function typeName(v: Value | undefined): string {
  if (v === undefined) return 'missing';
  switch (v.type) {
    case BT.NULL:
      return 'null';
    case BT.DOC:
      return 'object';
    case BT.STRING:
      return 'string';
    default:
      return isNumberType(v.type) ? 'number' : `type ${v.type}`;
  }
}

export function compileExpr(v: Value, coll?: Intl.Collator): Expr {
  if (v instanceof BVal) {
    if (v.type === BT.STRING) {
      const text = stringOf(v);
      if (text.startsWith('$')) return pathExpr(text);
    }
    return () => v;
  }
  if (v instanceof BArr) {
    const items = v.items.map((x) => compileExpr(x, coll));
    return (root) => BArr.fromItems(items.map((e) => e(root) ?? NULL_VALUE));
  }
  const keys = v.keys();
  if (keys.length > 0 && keys[0]!.startsWith('$')) {
    if (keys.length !== 1) {
      throw new CommandError(15983, `an expression specification must contain exactly one field, the name of the expression. Found ${keys.length} fields`);
    }
    return operator(keys[0]!, v.entries[0]![1], coll);
  }
  const fields = v.entries.map(([k, x]) => {
    if (k.includes('.')) throw new CommandError(16412, `FieldPath field names may not contain '.'. Consider using $getField or $setField.`);
    if (k.startsWith('$')) throw new CommandError(16410, `FieldPath field names may not start with '$'. Consider using $getField or $setField.`);
    return [k, compileExpr(x, coll)] as const;
  });
  return (root) => {
    const out: Array<[string, Value]> = [];
    for (const [k, e] of fields) {
      const r = e(root);
      if (r !== undefined) out.push([k, r]);
    }
    return BDoc.fromEntries(out);
  };
}


function stringValue(text: string): BVal {
  const body = Buffer.from(text, 'utf8');
  const b = Buffer.alloc(body.length + 5);
  b.writeInt32LE(body.length + 1, 0);
  body.copy(b, 4);
  return new BVal(BT.STRING, b);
}

/**
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/add/, .../subtract/,
 * .../multiply/: numbers only here (dates are refused), null or missing gives null.
 */
function arithmeticExpr(op: '$add' | '$subtract' | '$multiply', list: Value[], coll: Intl.Collator | undefined): Expr {
  if (op === '$subtract') exactly(op, list, 2);
  const es = list.map((x) => compileExpr(x, coll));
  const kind = op === '$add' ? 'add' : op === '$subtract' ? 'sub' : 'mul';
  return (root) => {
    let acc: BVal | undefined;
    for (const e of es) {
      const v = e(root);
      if (v === undefined || v.type === BT.NULL || v.type === BT.UNDEFINED) return NULL_VALUE;
      if (!isNumber(v)) throw new CommandError(op === '$multiply' ? 14 : 16554, `${op} only supports numeric types, not ${typeName(v)}`);
      acc = acc === undefined ? v : arithmetic(kind, acc, v);
      if (acc === undefined) throw new CommandError(2, `${op} overflowed a 64-bit integer`);
    }
    return acc ?? new BVal(BT.INT32, int32Bytes(op === '$multiply' ? 1 : 0));
  };
}
