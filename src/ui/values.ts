import {Binary, Decimal128, EJSON, Long, ObjectId, type Document} from 'bson';

/**
 * A BSON value (given as canonical Extended JSON, as plans and journals store them) the way
 * the mongo shell shows it: ObjectId("…"), ISODate("…"), NumberLong(…), NumberDecimal("…").
 */
export function formatValue(canonical: unknown): string {
  let value: unknown;
  try {
    value = (EJSON.parse(JSON.stringify({v: canonical}), {relaxed: false}) as Document).v;
  } catch {
    return JSON.stringify(canonical);
  }
  return shell(value);
}

function shell(value: unknown): string {
  if (value instanceof ObjectId) return `ObjectId("${value.toHexString()}")`;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'ISODate("invalid")' : `ISODate("${value.toISOString()}")`;
  if (value instanceof Long) return `NumberLong(${value.toString()})`;
  if (value instanceof Decimal128) return `NumberDecimal("${value.toString()}")`;
  if (value instanceof Binary && value.sub_type === Binary.SUBTYPE_UUID) return `UUID("${value.toUUID().toHexString()}")`;
  if (Array.isArray(value)) return `[${value.map(shell).join(', ')}]`;
  if (value && typeof value === 'object' && !('_bsontype' in value) && !(value instanceof RegExp)) {
    return `{${Object.entries(value as Document).map(([k, v]) => `${JSON.stringify(k)}: ${shell(v)}`).join(', ')}}`;
  }
  if (value && typeof value === 'object') return EJSON.stringify(value as Document, {relaxed: true});
  return JSON.stringify(value) ?? String(value);
}
