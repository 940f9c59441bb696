/**
 * BSON numeric arithmetic as mongod does it for `$inc`, `$mul` and the aggregation operators `$add`,
 * `$subtract`, `$multiply`: the result has the widest type of the operands (int32 < int64 < double),
 * int32 widens to int64 on overflow (https://www.mongodb.com/docs/manual/reference/operator/update/inc/,
 * https://www.mongodb.com/docs/manual/reference/operator/update/mul/ "Multiplication with values of
 * mixed numeric types").
 */
import {Int32, Long} from 'bson';
import {CommandError} from './command-error.js';
import {BT, BVal, toValue} from './tree.js';

export function isNumber(v: unknown): v is BVal {
  return v instanceof BVal && (v.type === BT.INT32 || v.type === BT.INT64 || v.type === BT.DOUBLE || v.type === BT.DECIMAL);
}

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function intOf(v: BVal): bigint {
  return v.type === BT.INT32 ? BigInt(v.bytes.readInt32LE(0)) : v.bytes.readBigInt64LE(0);
}

export function doubleOf(v: BVal): number {
  if (v.type === BT.DOUBLE) return v.bytes.readDoubleLE(0);
  return Number(intOf(v));
}

export function int32(n: bigint): BVal {
  return toValue(new Int32(Number(n))) as BVal;
}

export function int64(n: bigint): BVal {
  return toValue(Long.fromBigInt(n)) as BVal;
}

export function double(n: number): BVal {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(n, 0);
  return new BVal(BT.DOUBLE, b);
}

/**
 * `$inc` / `$mul` arithmetic with BSON's numeric promotion (int32 → int64 on overflow, anything with
 * a double is a double): https://www.mongodb.com/docs/manual/reference/operator/update/inc/ and
 * https://www.mongodb.com/docs/manual/reference/operator/update/mul/ ("Multiplication with values of
 * mixed numeric types"). Returns undefined when an int64 result overflows (mongod refuses it).
 */
export function arithmetic(op: 'add' | 'sub' | 'mul', a: BVal, b: BVal): BVal | undefined {
  if (a.type === BT.DECIMAL || b.type === BT.DECIMAL) {
    throw new CommandError(115, 'Decimal128 arithmetic in $inc/$mul is not supported by the gravity-restore test server');
  }
  if (a.type === BT.DOUBLE || b.type === BT.DOUBLE) {
    const x = doubleOf(a);
    const y = doubleOf(b);
    return double(op === 'add' ? x + y : op === 'sub' ? x - y : x * y);
  }
  const r = op === 'add' ? intOf(a) + intOf(b) : op === 'sub' ? intOf(a) - intOf(b) : intOf(a) * intOf(b);
  if (a.type === BT.INT32 && b.type === BT.INT32 && r >= INT32_MIN && r <= INT32_MAX) return int32(r);
  if (r < INT64_MIN || r > INT64_MAX) return undefined;
  return int64(r);
}

export function zeroLike(v: BVal): BVal {
  switch (v.type) {
    case BT.INT32:
      return int32(0n);
    case BT.INT64:
      return int64(0n);
    case BT.DECIMAL:
      return toValue(new Int32(0)) as BVal;
    default:
      return double(0);
  }
}

