/**
 * Field repair (`--fields a,b.c`): for a document that exists on the target, only these paths are
 * compared and written, `$set` to the backup's value or `$unset` where the backup lacks the field.
 * Values are compared as BSON bytes (type included) and written in exact form, so a repaired field
 * holds the backup's bytes. Paths descend subdocuments only: a path through an array has no single
 * value to put back, and such a document is left alone with a reason.
 */
import type {Document} from 'bson';

import {GravityError} from '../errors.js';
import {sha256} from './bson-util.js';
import {exactForm, orderedJson, toBytes} from './exact.js';
import type {ExactDoc} from './exact.js';

const MISSING = Symbol('missing');
type FieldValue = unknown;

/** Parse and check `--fields`: dotted paths of plain field names, never `_id`. */
export function parseFieldPaths(text: string): string[] {
  const paths = [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
  if (paths.length === 0) throw new GravityError('USAGE', '--fields names no field', {hint: 'Give field paths separated by commas, e.g. --fields important_a,address.city'});
  for (const p of paths) {
    const parts = p.split('.');
    if (parts.some((part) => part === '' || part.startsWith('$'))) {
      throw new GravityError('USAGE', `--fields: "${p}" is not a field path`, {hint: 'Use dotted field names such as address.city (no empty parts, no $)'});
    }
    if (parts[0] === '_id') throw new GravityError('USAGE', '--fields cannot repair _id', {hint: 'A document is found by its _id; name other fields'});
    if (parts.some((part) => /^\d+$/.test(part))) {
      throw new GravityError('USAGE', `--fields: "${p}" goes through an array position`, {hint: 'Name the whole array field instead (e.g. tags rather than tags.0)'});
    }
  }
  for (const a of paths) {
    for (const b of paths) {
      if (a !== b && b.startsWith(`${a}.`)) throw new GravityError('USAGE', `--fields: "${b}" is inside "${a}"`, {hint: `Name one of them: ${a} already covers ${b}`});
    }
  }
  return paths;
}

/** The value at a path, MISSING when absent; throws when the path goes through an array or a non-document. */
function valueAt(doc: ExactDoc, path: string): FieldValue | typeof MISSING {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (!(cur instanceof Map)) {
      if (Array.isArray(cur)) throw new FieldPathError(`${path} goes through an array`);
      return MISSING;
    }
    if (!cur.has(part)) return MISSING;
    cur = cur.get(part);
  }
  return cur;
}

export class FieldPathError extends Error {}

/** The BSON bytes of each path's value (type and value), or null where the field is absent. */
export function fieldBytes(doc: ExactDoc, paths: string[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const p of paths) {
    const v = valueAt(doc, p);
    out[p] = v === MISSING ? null : toBytes(new Map([['v', v]])).toString('base64');
  }
  return out;
}

/** sha256 of the paths' values: what the plan saw, for the compare-and-swap at push time. */
export function fieldsDigest(doc: ExactDoc, paths: string[]): string {
  return sha256(JSON.stringify(fieldBytes(doc, paths)));
}

export function fieldsEqual(a: ExactDoc, b: ExactDoc, paths: string[]): boolean {
  return fieldsDigest(a, paths) === fieldsDigest(b, paths);
}

/** The paths whose values differ, with both values as canonical Extended JSON (for people). */
export function fieldChanges(backup: ExactDoc, target: ExactDoc, paths: string[]): Array<{path: string; backup?: unknown; target?: unknown}> {
  const a = fieldBytes(backup, paths);
  const b = fieldBytes(target, paths);
  return paths
    .filter((p) => a[p] !== b[p])
    .map((p) => {
      const va = valueAt(backup, p);
      const vb = valueAt(target, p);
      return {path: p, ...(va === MISSING ? {} : {backup: shown(va)}), ...(vb === MISSING ? {} : {target: shown(vb)})};
    });
}

function shown(v: unknown): unknown {
  return JSON.parse(orderedJson(v)) as unknown;
}

/** `$set` the backup's values (exact form), `$unset` what the backup lacks. */
export function repairUpdate(backup: ExactDoc, paths: string[]): Document {
  const set: Record<string, unknown> = {};
  const unset: Record<string, ''> = {};
  for (const p of paths) {
    const v = valueAt(backup, p);
    if (v === MISSING) unset[p] = '';
    else set[p] = v;
  }
  return {...(Object.keys(set).length > 0 ? {$set: set} : {}), ...(Object.keys(unset).length > 0 ? {$unset: unset} : {})};
}

/** The update that puts journaled field values back (rollback). */
export function restoreUpdate(pre: Record<string, string | null>): Document {
  const set: Record<string, unknown> = {};
  const unset: Record<string, ''> = {};
  for (const [p, b64] of Object.entries(pre)) {
    if (b64 === null) unset[p] = '';
    else set[p] = exactForm(Buffer.from(b64, 'base64')).doc.get('v');
  }
  return {...(Object.keys(set).length > 0 ? {$set: set} : {}), ...(Object.keys(unset).length > 0 ? {$unset: unset} : {})};
}

/**
 * Matches the document only while the paths still hold `current`'s values: an absent field by
 * `$exists: false`, a present one by aggregation `$eq` on the whole value (no array traversal, no
 * null-matches-missing). Numbers compare by value there, so a type change at the same value is seen
 * only by the byte comparison the caller makes just before.
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/eq/
 * https://www.mongodb.com/docs/manual/reference/operator/query/exists/
 */
export function fieldsFilter(id: unknown, current: ExactDoc, paths: string[], extra?: Document): Document {
  const clauses: Document[] = [];
  const exprs: Document[] = [];
  for (const p of paths) {
    const v = valueAt(current, p);
    if (v === MISSING) clauses.push({[p]: {$exists: false}});
    else exprs.push({$eq: [`$${p}`, {$literal: v}]});
  }
  if (exprs.length > 0) clauses.push({$expr: exprs.length === 1 ? exprs[0] : {$and: exprs}});
  if (extra) clauses.push(extra);
  return {_id: id, ...(clauses.length > 0 ? {$and: clauses} : {})};
}

/** Can these paths be read on this document (no array on the way)? The reason when not. */
export function pathProblem(doc: ExactDoc, paths: string[]): string | null {
  try {
    fieldBytes(doc, paths);
    return null;
  } catch (error) {
    if (error instanceof FieldPathError) return error.message;
    throw error;
  }
}
