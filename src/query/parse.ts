/**
 * Parses a filter typed by a person: MongoDB shell syntax (ObjectId(…), ISODate(…), /re/i,
 * unquoted keys, single quotes) or Extended JSON ({"$oid": …}, canonical or relaxed).
 */
import {createRequire} from 'node:module';

import {EJSON, type Document} from 'bson';
import type * as QueryParser from 'mongodb-query-parser';

import {GravityError} from '../errors.js';
import {checkQueryTextDepth, checkQueryTreeDepth} from './depth.js';

const load = createRequire(import.meta.url);

/** Loaded for shell syntax only (it brings a JavaScript parser and lodash); sync, as parsing is. */
const queryParser = (): typeof QueryParser => load('mongodb-query-parser') as typeof QueryParser;

const EXAMPLE = `{"partner_id": ObjectId("57d1c0ffee0000000000cafe"), "created_at": {"$gte": ISODate("2024-01-01T00:00:00Z")}}`;
const HINT = `Write the query as a document, for example ${EXAMPLE}`;

function syntaxError(message: string, details: Record<string, unknown> = {}, cause?: unknown): GravityError {
  return new GravityError('QUERY_SYNTAX', message, {hint: HINT, details, cause});
}

/** The parser wraps the input in "(\n" … "\n)", so its line numbers are one too high and columns 0-based. */
function positionOf(text: string, error: unknown): {line: number; column: number} | null {
  const loc = (error as {loc?: {line?: unknown; column?: unknown}}).loc;
  if (!loc || typeof loc.line !== 'number' || typeof loc.column !== 'number') return null;
  const lines = text.split('\n');
  const line = Math.min(Math.max(loc.line - 1, 1), lines.length + 1);
  if (line > lines.length) return {line: lines.length, column: lines[lines.length - 1].length + 1};
  return {line, column: loc.column + 1};
}

function snippetAt(text: string, line: number, column: number): string {
  const source = text.split('\n')[line - 1] ?? '';
  const from = Math.max(0, column - 21);
  const to = Math.min(source.length, column + 20);
  const before = source.slice(from, column - 1);
  const after = source.slice(column - 1, to);
  return `${from > 0 ? '…' : ''}${before}⟶${after}${to < source.length ? '…' : ''}`;
}

/** Shell syntax allows bare `MinKey`/`MaxKey`; the parser only knows the call form. */
function callBareKeys(text: string): string {
  return text.replace(/\b(MinKey|MaxKey)\b(?!\s*\()/g, '$1()');
}

function hasProtoKey(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) return true;
  return Object.values(value).some(hasProtoKey);
}

/**
 * A document in strict JSON (Extended JSON as scripts write it), which JSON.parse reads into the
 * same values the shell parser would; null for anything else, left to the shell parser. That one
 * reads with the ES2015 grammar, which treats two things otherwise: a raw U+2028/U+2029 in a
 * string (an error), and `__proto__` keys (an error twice in one object), so those go to it too.
 */
function jsonDocument(text: string): object | null {
  if (/[\u2028\u2029]/.test(text)) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || hasProtoKey(value)) return null;
  return value;
}

function shellParse(text: string): unknown {
  const {parseFilter} = queryParser();
  try {
    let value: unknown = parseFilter(text);
    if (value === '' && /\b(MinKey|MaxKey)\b/.test(text)) value = parseFilter(callBareKeys(text));
    return value;
  } catch (error) {
    const pos = positionOf(text, error);
    const reason = (error as Error).message.replace(/\s*\(\d+:\d+\)[\s\S]*$/, '');
    if (pos) {
      throw syntaxError(
        `Query is not valid at line ${pos.line}, column ${pos.column}: ${reason} near ${JSON.stringify(snippetAt(text, pos.line, pos.column))}`,
        pos,
        error,
      );
    }
    throw syntaxError(`Query has a value that is not valid: ${reason}`, {}, error);
  }
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return `a ${typeof value}`;
}

/**
 * Parses shell syntax or Extended JSON into a filter built from the ESM `bson` classes.
 * mongodb-query-parser builds values with bson's CommonJS build; they are normalised through
 * canonical Extended JSON so `instanceof` checks and mingo see the same classes as the rest of the program.
 */
export function parseQuery(text: string): Document {
  if (text.trim() === '') throw syntaxError('Query is empty');
  checkQueryTextDepth(text);
  const parsed = jsonDocument(text) ?? shellParse(text);
  if (parsed === '') {
    throw syntaxError(
      'Query uses a function or expression that is not allowed; only BSON constructors such as ObjectId, ISODate, new Date, NumberLong, NumberInt, NumberDecimal, UUID, BinData, Timestamp, MinKey and MaxKey may be called',
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || parsed instanceof Date || parsed instanceof RegExp) {
    throw syntaxError(`Query must be a document in braces, not ${describe(parsed)}`);
  }
  let filter: Document;
  try {
    filter = EJSON.parse(EJSON.stringify(parsed, {relaxed: false}), {relaxed: false}) as Document;
  } catch (error) {
    throw syntaxError(`Query has an Extended JSON value that is not valid: ${(error as Error).message}`, {}, error);
  }
  checkQueryTreeDepth(filter);
  return filter;
}
