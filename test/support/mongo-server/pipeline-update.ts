/**
 * Updates with an aggregation pipeline (https://www.mongodb.com/docs/manual/tutorial/update-with-aggregation-pipeline/):
 * the stages an update may use that reshape one document, over the order-preserving tree.
 * - `$set` / `$addFields` (https://www.mongodb.com/docs/manual/reference/operator/aggregation/addFields/):
 *   an existing field keeps its place, a new one is appended; an embedded document given as a
 *   literal spec adds to the existing embedded document; expressions see the stage's input;
 * - `$unset` (https://www.mongodb.com/docs/manual/reference/operator/aggregation/unset/) and
 *   `$project` exclusions / plain inclusions (https://www.mongodb.com/docs/manual/reference/operator/aggregation/project/);
 * - `$replaceWith` / `$replaceRoot` (https://www.mongodb.com/docs/manual/reference/operator/aggregation/replaceWith/).
 * The result keeps the original `_id` (added first when a stage dropped it; changing it is 66).
 */
import {CommandError} from './command-error.js';
import {compileExpr} from './expr.js';
import {BArr, BDoc, BT, BVal, type Value, stringOf} from './tree.js';

type Stage = (doc: BDoc) => BDoc;

function isOperatorDoc(v: Value): boolean {
  return v instanceof BDoc && v.entries.length > 0 && v.entries[0]![0].startsWith('$');
}

function fieldParts(path: string): string[] {
  const parts = path.split('.');
  if (parts.some((p) => p === '')) throw new CommandError(40352, `FieldPath cannot be constructed with empty string`);
  if (parts[0]!.startsWith('$')) throw new CommandError(16410, `FieldPath field names may not start with '$'. Consider using $getField or $setField.`);
  return parts;
}

/** Sets a path in place or appends it, creating or replacing non-documents on the way; arrays take it per element. */
function setPath(v: Value | undefined, parts: string[], value: Value | undefined): Value | undefined {
  if (parts.length === 0) return value;
  if (v instanceof BArr) return BArr.fromItems(v.items.map((el) => setPath(el instanceof BDoc || el instanceof BArr ? el : BDoc.fromEntries([]), parts, value) ?? el));
  const doc = v instanceof BDoc ? v : BDoc.fromEntries([]);
  const [head, ...rest] = parts as [string, ...string[]];
  const next = setPath(doc.get(head), rest, value);
  const at = doc.entries.findIndex(([k]) => k === head);
  const entries = [...doc.entries];
  if (next === undefined) {
    if (at >= 0) entries.splice(at, 1);
  } else if (at >= 0) {
    entries[at] = [head, next];
  } else {
    entries.push([head, next]);
  }
  return BDoc.fromEntries(entries);
}

function removePath(v: Value | undefined, parts: string[]): Value | undefined {
  if (v instanceof BArr) return BArr.fromItems(v.items.map((el) => (el instanceof BDoc || el instanceof BArr ? removePath(el, parts)! : el)));
  if (!(v instanceof BDoc)) return v;
  const [head, ...rest] = parts as [string, ...string[]];
  if (rest.length === 0) return BDoc.fromEntries(v.entries.filter(([k]) => k !== head));
  return BDoc.fromEntries(v.entries.map(([k, x]) => (k === head ? ([k, removePath(x, rest)!] as const) : ([k, x] as const))));
}

/** A `$set` spec: each path gets an expression, or (a literal sub-document) a nested spec. */
type Spec = Array<{parts: string[]; expr?: (root: BDoc) => Value | undefined; nested?: Spec}>;

function compileSpec(spec: BDoc): Spec {
  return spec.entries.map(([k, v]) => {
    const parts = fieldParts(k);
    if (v instanceof BDoc && !isOperatorDoc(v) && v.entries.length > 0) return {parts, nested: compileSpec(v)};
    return {parts, expr: compileExpr(v)};
  });
}

function applySpec(target: Value | undefined, spec: Spec, root: BDoc): Value {
  let out: Value | undefined = target;
  for (const item of spec) {
    if (item.nested) {
      const current = getPath(out, item.parts);
      out = setPath(out, item.parts, applySpec(current instanceof BDoc ? current : undefined, item.nested, root));
    } else {
      out = setPath(out, item.parts, item.expr!(root));
    }
  }
  return out ?? BDoc.fromEntries([]);
}

function getPath(v: Value | undefined, parts: string[]): Value | undefined {
  let cur = v;
  for (const p of parts) cur = cur instanceof BDoc ? cur.get(p) : undefined;
  return cur;
}

function stringList(v: Value, stage: string): string[] {
  const list = v instanceof BArr ? v.items : [v];
  return list.map((x) => {
    if (!(x instanceof BVal) || x.type !== BT.STRING) throw new CommandError(31120, `${stage} specification must be a string or an array containing only string values`);
    return stringOf(x);
  });
}

function truthyFlag(v: Value): boolean | undefined {
  if (v instanceof BVal && v.type === BT.BOOL) return v.bytes[0] !== 0;
  if (v instanceof BVal && (v.type === BT.INT32 || v.type === BT.DOUBLE || v.type === BT.INT64)) {
    const n = v.type === BT.INT32 ? v.bytes.readInt32LE(0) : v.type === BT.DOUBLE ? v.bytes.readDoubleLE(0) : Number(v.bytes.readBigInt64LE(0));
    return n !== 0;
  }
  return undefined;
}

function compileStage(stage: Value): Stage {
  if (!(stage instanceof BDoc) || stage.entries.length !== 1) throw new CommandError(40323, 'A pipeline stage specification object must contain exactly one field.');
  const [name, arg] = stage.entries[0]!;
  switch (name) {
    case '$set':
    case '$addFields': {
      if (!(arg instanceof BDoc)) throw new CommandError(40272, `${name} specification stage must be an object, got ${arg.type}`);
      const spec = compileSpec(arg);
      return (doc) => applySpec(doc, spec, doc) as BDoc;
    }
    case '$unset': {
      const paths = stringList(arg, '$unset').map(fieldParts);
      return (doc) => paths.reduce<BDoc>((d, p) => removePath(d, p) as BDoc, doc);
    }
    case '$project': {
      if (!(arg instanceof BDoc)) throw new CommandError(15969, '$project specification must be an object');
      const flags = arg.entries.map(([k, v]) => ({parts: fieldParts(k), keep: truthyFlag(v)}));
      if (flags.some((f) => f.keep === undefined)) throw new CommandError(115, 'computed $project fields in an update are not supported by the gravity-restore test server');
      const others = flags.filter((f) => f.parts.join('.') !== '_id');
      const exclusion = others.length > 0 ? !others[0]!.keep : !flags[0]?.keep;
      if (others.some((f) => f.keep === exclusion)) throw new CommandError(31254, 'Invalid $project :: caused by :: Cannot do exclusion on field in inclusion projection');
      if (exclusion) return (doc) => flags.filter((f) => !f.keep).reduce<BDoc>((d, f) => removePath(d, f.parts) as BDoc, doc);
      const idKept = flags.find((f) => f.parts.join('.') === '_id')?.keep !== false;
      const top = new Set(others.map((f) => f.parts[0]!));
      if (others.some((f) => f.parts.length > 1)) throw new CommandError(115, 'dotted $project inclusions in an update are not supported by the gravity-restore test server');
      return (doc) => BDoc.fromEntries(doc.entries.filter(([k]) => top.has(k) || (k === '_id' && idKept)));
    }
    case '$replaceWith':
    case '$replaceRoot': {
      let exprValue: Value | undefined = arg;
      if (name === '$replaceRoot') {
        exprValue = arg instanceof BDoc ? arg.get('newRoot') : undefined;
        if (exprValue === undefined) throw new CommandError(40231, 'no newRoot specified for the $replaceRoot stage');
      }
      const e = compileExpr(exprValue);
      return (doc) => {
        const v = e(doc);
        if (!(v instanceof BDoc)) throw new CommandError(40228, `'replacement document' must evaluate to an object, but resulting value was: ${v === undefined ? 'MISSING' : 'a non-object'}. Type of resulting value: '${v === undefined ? 'missing' : v.type}'.`);
        return v;
      };
    }
    default:
      throw new CommandError(72, `${name} is not allowed to be used within an update`);
  }
}

/** Runs an update pipeline on one document; returns the new document with the original `_id` first. */
export function applyPipeline(doc: BDoc, stages: BArr): BDoc {
  const compiled = stages.items.map(compileStage);
  let out = compiled.reduce((d, s) => s(d), doc);
  const id = doc.get('_id');
  if (id === undefined) return out;
  const newId = out.get('_id');
  if (newId === undefined) {
    out = BDoc.fromEntries([['_id', id], ...out.entries]);
  } else if (newId.type !== id.type || !newId.bytes.equals(id.bytes)) {
    throw new CommandError(66, "After applying the update, the (immutable) field '_id' was found to have been altered");
  } else if (out.entries[0]![0] !== '_id') {
    out = BDoc.fromEntries([['_id', newId], ...out.entries.filter(([k]) => k !== '_id')]);
  }
  return out.bytes.equals(doc.bytes) ? doc : out;
}
