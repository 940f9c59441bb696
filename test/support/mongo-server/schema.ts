/**
 * `$jsonSchema` as mongod implements it (JSON Schema draft 4 plus `bsonType`;
 * https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/). Keywords that concern
 * one kind of value (minimum, minLength, properties, items, …) are ignored for the others, as the
 * draft says. A failed check returns the rules not satisfied, in the shape of mongod's `errInfo`.
 */
import {CommandError} from './command-error.js';
import {compareValues, equalValues, exactOf, toNumber} from './compare.js';
import {toRegExp, typeSet} from './match.js';
import {BArr, BDoc, BT, BVal, type Value, isNumberType, stringOf} from './tree.js';

export type Failure = Record<string, unknown>;
export type Schema = (v: Value) => Failure[];

const JSON_TYPES: Record<string, number[]> = {
  object: [BT.DOC],
  array: [BT.ARRAY],
  number: [BT.DOUBLE, BT.INT32, BT.INT64, BT.DECIMAL],
  boolean: [BT.BOOL],
  string: [BT.STRING],
  null: [BT.NULL],
};

const IGNORED = new Set(['title', 'description']);
const UNSUPPORTED = new Set(['dependencies', 'encrypt', 'encryptMetadata']);

function parseError(message: string): CommandError {
  return new CommandError(9, message);
}

function num(keyword: string, v: Value): number {
  if (!(v instanceof BVal) || !isNumberType(v.type)) throw new CommandError(14, `$jsonSchema keyword '${keyword}' must be a number`);
  return toNumber(v);
}

function bool(keyword: string, v: Value): boolean {
  if (!(v instanceof BVal) || v.type !== BT.BOOL) throw new CommandError(14, `$jsonSchema keyword '${keyword}' must be a boolean`);
  return v.bytes[0] !== 0;
}

function str(keyword: string, v: Value): string {
  if (!(v instanceof BVal) || v.type !== BT.STRING) throw new CommandError(14, `$jsonSchema keyword '${keyword}' must be a string`);
  return stringOf(v);
}

function doc(keyword: string, v: Value): BDoc {
  if (!(v instanceof BDoc)) throw new CommandError(14, `$jsonSchema keyword '${keyword}' must be an object`);
  return v;
}

function schemaList(keyword: string, v: Value): Schema[] {
  if (!(v instanceof BArr) || v.items.length === 0) throw new CommandError(14, `$jsonSchema keyword '${keyword}' must be a nonempty array`);
  return v.items.map((s) => compileSchema(doc(keyword, s)));
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function typeNameOf(v: Value): string {
  for (const [name, types] of Object.entries(TYPE_NAMES)) if (types === v.type) return name;
  return String(v.type);
}

const TYPE_NAMES: Record<string, number> = {
  double: BT.DOUBLE, string: BT.STRING, object: BT.DOC, array: BT.ARRAY, binData: BT.BINARY, undefined: BT.UNDEFINED,
  objectId: BT.OID, bool: BT.BOOL, date: BT.DATE, null: BT.NULL, regex: BT.REGEX, dbPointer: BT.DBPOINTER,
  javascript: BT.CODE, symbol: BT.SYMBOL, javascriptWithScope: BT.CODE_W_SCOPE, int: BT.INT32, timestamp: BT.TIMESTAMP,
  long: BT.INT64, decimal: BT.DECIMAL, minKey: BT.MINKEY, maxKey: BT.MAXKEY,
};

function specified(keyword: string, v: Value): Failure {
  return {operatorName: keyword, specifiedAs: BDoc.fromEntries([[keyword, v]])};
}

function isNumber(v: Value): v is BVal {
  return v instanceof BVal && isNumberType(v.type);
}

/** Compiles a schema object; unknown keywords fail as mongod fails them (FailedToParse). */
export function compileSchema(schema: BDoc): Schema {
  const checks: Schema[] = [];
  const get = (k: string): Value | undefined => schema.get(k);
  for (const [keyword, v] of schema.entries) {
    if (IGNORED.has(keyword)) continue;
    if (UNSUPPORTED.has(keyword)) throw new CommandError(115, `$jsonSchema keyword '${keyword}' is not supported by the gravity-restore test server`);
    switch (keyword) {
      case 'bsonType':
      case 'type': {
        if (keyword === 'type' && get('bsonType') !== undefined) throw parseError("Cannot specify both $jsonSchema keywords 'type' and 'bsonType'");
        let types: Set<number>;
        if (keyword === 'bsonType') {
          types = typeSet(v, 'bsonType');
        } else {
          types = new Set();
          for (const t of v instanceof BArr ? v.items : [v]) {
            const name = str('type', t);
            const list = JSON_TYPES[name];
            if (!list) throw parseError(name === 'integer' ? "$jsonSchema type 'integer' is not currently supported." : `Unknown type name alias: ${name}`);
            for (const x of list) types.add(x);
          }
        }
        checks.push((x) => (types.has(x.type) ? [] : [{...specified(keyword, v), reason: 'type did not match', consideredValue: x, consideredType: typeNameOf(x)}]));
        break;
      }
      case 'required': {
        if (!(v instanceof BArr) || v.items.length === 0) throw parseError("$jsonSchema keyword 'required' must be a nonempty array");
        const names = v.items.map((n) => str('required', n));
        checks.push((x) => {
          if (!(x instanceof BDoc)) return [];
          const missing = names.filter((n) => !x.has(n));
          return missing.length ? [{...specified(keyword, v), missingProperties: missing}] : [];
        });
        break;
      }
      case 'properties': {
        const props = doc(keyword, v).entries.map(([name, s]) => [name, compileSchema(doc(`properties.${name}`, s))] as const);
        checks.push((x) => {
          if (!(x instanceof BDoc)) return [];
          const failed: Failure[] = [];
          for (const [name, s] of props) {
            const val = x.get(name);
            if (val === undefined) continue;
            const details = s(val);
            if (details.length) failed.push({propertyName: name, details});
          }
          return failed.length ? [{operatorName: 'properties', propertiesNotSatisfied: failed}] : [];
        });
        break;
      }
      case 'patternProperties':
        break;
      case 'additionalProperties': {
        const declared = new Set((get('properties') instanceof BDoc ? (get('properties') as BDoc).keys() : []));
        const patterns = get('patternProperties') instanceof BDoc
          ? (get('patternProperties') as BDoc).entries.map(([p, s]) => [toRegExp(p, ''), compileSchema(doc('patternProperties', s))] as const)
          : [];
        const extra: Schema | boolean = v instanceof BDoc ? compileSchema(v) : bool(keyword, v);
        checks.push((x) => {
          if (!(x instanceof BDoc)) return [];
          const out: Failure[] = [];
          const additional: string[] = [];
          for (const [name, val] of x.entries) {
            let covered = declared.has(name);
            for (const [re, s] of patterns) {
              if (!re.test(name)) continue;
              covered = true;
              const d = s(val);
              if (d.length) out.push({operatorName: 'patternProperties', propertyName: name, details: d});
            }
            if (covered) continue;
            if (extra === false) additional.push(name);
            else if (typeof extra === 'function') {
              const d = extra(val);
              if (d.length) out.push({operatorName: 'additionalProperties', propertyName: name, details: d});
            }
          }
          if (additional.length) out.push({...specified(keyword, v), additionalProperties: additional});
          return out;
        });
        break;
      }
      case 'enum': {
        if (!(v instanceof BArr) || v.items.length === 0) throw parseError("$jsonSchema keyword 'enum' must be a nonempty array");
        checks.push((x) => (v.items.some((e) => equalValues(e, x)) ? [] : [{...specified(keyword, v), consideredValue: x}]));
        break;
      }
      case 'minimum':
      case 'maximum': {
        num(keyword, v);
        const exclusiveKey = keyword === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum';
        const exclusive = get(exclusiveKey) !== undefined && bool(exclusiveKey, get(exclusiveKey)!);
        checks.push((x) => {
          if (!isNumber(x)) return [];
          const c = compareValues(x, v);
          const ok = keyword === 'minimum' ? (exclusive ? c > 0 : c >= 0) : exclusive ? c < 0 : c <= 0;
          return ok && !Number.isNaN(toNumber(x)) ? [] : [{...specified(keyword, v), reason: 'comparison failed', consideredValue: x}];
        });
        break;
      }
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        bool(keyword, v);
        if (get(keyword === 'exclusiveMinimum' ? 'minimum' : 'maximum') === undefined) {
          throw parseError(`$jsonSchema keyword '${keyword === 'exclusiveMinimum' ? 'minimum' : 'maximum'}' must be a present if ${keyword} is present`);
        }
        break;
      case 'multipleOf': {
        num(keyword, v);
        checks.push((x) => {
          if (!isNumber(x)) return [];
          const a = exactOf(x);
          const b = exactOf(v as BVal);
          if (a.kind !== 'fin' || b.kind !== 'fin') return [{...specified(keyword, v), consideredValue: x}];
          // a / b is an integer exactly when (a.num * b.den) is divisible by (b.num * a.den).
          return (a.num * b.den) % (b.num * a.den) === 0n ? [] : [{...specified(keyword, v), reason: 'considered value is not a multiple of the specified value', consideredValue: x}];
        });
        break;
      }
      case 'minLength':
      case 'maxLength': {
        const n = num(keyword, v);
        checks.push((x) => {
          if (!(x instanceof BVal) || x.type !== BT.STRING) return [];
          const len = codePoints(stringOf(x));
          const ok = keyword === 'minLength' ? len >= n : len <= n;
          return ok ? [] : [{...specified(keyword, v), reason: 'specified string length was not satisfied', consideredValue: x}];
        });
        break;
      }
      case 'pattern': {
        const re = toRegExp(str(keyword, v), '');
        checks.push((x) => (!(x instanceof BVal) || x.type !== BT.STRING || re.test(stringOf(x)) ? [] : [{...specified(keyword, v), reason: 'regular expression did not match', consideredValue: x}]));
        break;
      }
      case 'minProperties':
      case 'maxProperties': {
        const n = num(keyword, v);
        checks.push((x) => {
          if (!(x instanceof BDoc)) return [];
          const ok = keyword === 'minProperties' ? x.entries.length >= n : x.entries.length <= n;
          return ok ? [] : [{...specified(keyword, v), reason: 'specified number of properties was not satisfied', numberOfProperties: x.entries.length}];
        });
        break;
      }
      case 'items': {
        if (v instanceof BArr) {
          const tuple = v.items.map((s) => compileSchema(doc('items', s)));
          const additional = get('additionalItems');
          const rest: Schema | boolean | undefined = additional === undefined ? undefined : additional instanceof BDoc ? compileSchema(additional) : bool('additionalItems', additional);
          checks.push((x) => {
            if (!(x instanceof BArr)) return [];
            const out: Failure[] = [];
            x.items.forEach((el, i) => {
              const s = tuple[i];
              if (s) {
                const d = s(el);
                if (d.length) out.push({operatorName: 'items', index: i, details: d});
              } else if (rest === false) {
                out.push({operatorName: 'additionalItems', specifiedAs: BDoc.fromEntries([['additionalItems', additional!]]), reason: 'found additional items', additionalItems: el});
              } else if (typeof rest === 'function') {
                const d = rest(el);
                if (d.length) out.push({operatorName: 'additionalItems', index: i, details: d});
              }
            });
            return out;
          });
        } else {
          const s = compileSchema(doc(keyword, v));
          checks.push((x) => {
            if (!(x instanceof BArr)) return [];
            const out: Failure[] = [];
            x.items.forEach((el, i) => {
              const d = s(el);
              if (d.length) out.push({operatorName: 'items', reason: 'At least one item did not match the sub-schema', itemIndex: i, details: d});
            });
            return out.slice(0, 1);
          });
        }
        break;
      }
      case 'additionalItems':
        if (!(get('items') instanceof BArr)) {
          if (!(v instanceof BDoc)) bool(keyword, v);
        }
        break;
      case 'minItems':
      case 'maxItems': {
        const n = num(keyword, v);
        checks.push((x) => {
          if (!(x instanceof BArr)) return [];
          const ok = keyword === 'minItems' ? x.items.length >= n : x.items.length <= n;
          return ok ? [] : [{...specified(keyword, v), reason: 'array did not match specified length', consideredValue: x}];
        });
        break;
      }
      case 'uniqueItems': {
        if (!bool(keyword, v)) break;
        checks.push((x) => {
          if (!(x instanceof BArr)) return [];
          for (let i = 0; i < x.items.length; i++) {
            for (let j = i + 1; j < x.items.length; j++) {
              if (equalValues(x.items[i]!, x.items[j]!)) return [{...specified(keyword, v), reason: 'found a duplicate item', consideredValue: x, duplicatedValue: x.items[i]}];
            }
          }
          return [];
        });
        break;
      }
      case 'allOf': {
        const list = schemaList(keyword, v);
        checks.push((x) => {
          const failed = list.map((s, i) => ({index: i, details: s(x)})).filter((f) => f.details.length);
          return failed.length ? [{operatorName: 'allOf', schemasNotSatisfied: failed}] : [];
        });
        break;
      }
      case 'anyOf': {
        const list = schemaList(keyword, v);
        checks.push((x) => (list.some((s) => s(x).length === 0) ? [] : [{operatorName: 'anyOf', schemasNotSatisfied: list.map((s, i) => ({index: i, details: s(x)}))}]));
        break;
      }
      case 'oneOf': {
        const list = schemaList(keyword, v);
        checks.push((x) => {
          const ok = list.filter((s) => s(x).length === 0).length;
          return ok === 1 ? [] : [{operatorName: 'oneOf', reason: ok === 0 ? 'no subschema matched' : 'more than one subschema matched'}];
        });
        break;
      }
      case 'not': {
        const s = compileSchema(doc(keyword, v));
        checks.push((x) => (s(x).length === 0 ? [{operatorName: 'not', reason: 'child expression matched'}] : []));
        break;
      }
      default:
        throw parseError(`Unknown $jsonSchema keyword: ${keyword}`);
    }
  }
  return (x) => checks.flatMap((c) => c(x));
}
