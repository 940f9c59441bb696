/**
 * Parses a filter typed by a person: MongoDB shell syntax (ObjectId(…), ISODate(…), /re/i,
 * unquoted keys, single quotes) or Extended JSON ({"$oid": …}, canonical or relaxed).
 */
import {createRequire} from 'node:module';

import {BSONRegExp, EJSON, type Document} from 'bson';
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

/** Characters after which a `/` starts a value (a regex literal), not a division. */
const VALUE_START = new Set([':', ',', '[', '(', '{', '']);

interface Literal {
  start: number;
  end: number;
  pattern: string;
  flags: string;
}

/** Index just past a quoted string starting at `i` (its quote), or the text's length if unterminated. */
function skipString(text: string, i: number): number {
  const quote = text[i];
  let k = i + 1;
  while (k < text.length && text[k] !== quote) k += text[k] === '\\' ? 2 : 1;
  return Math.min(k + 1, text.length);
}

/**
 * The regex literals of shell-syntax text, read as JavaScript reads their extent (a `/` inside a
 * class or after a backslash does not end one). Their bodies are kept as typed: a pattern is PCRE2
 * for mongod, and `/(?i)abc/` or `/a++/` are valid there though JavaScript's parser rejects them.
 */
function regexLiterals(text: string): Literal[] {
  const out: Literal[] = [];
  let previous = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(text, i) - 1;
      previous = '"';
      continue;
    }
    if (/\s/.test(c)) continue;
    if (c === '/' && VALUE_START.has(previous) && text[i + 1] !== '/' && text[i + 1] !== '*') {
      let k = i + 1;
      let inClass = false;
      while (k < text.length && text[k] !== '\n' && (inClass || text[k] !== '/')) {
        if (text[k] === '\\') k++;
        else if (text[k] === '[') inClass = true;
        else if (text[k] === ']') inClass = false;
        k++;
      }
      if (k >= text.length || text[k] !== '/') return out;
      let end = k + 1;
      while (end < text.length && /[A-Za-z]/.test(text[end]!)) end++;
      out.push({start: i, end, pattern: text.slice(i + 1, k), flags: text.slice(k + 1, end)});
      i = end - 1;
      previous = '"';
      continue;
    }
    previous = /[A-Za-z0-9_$]/.test(c) ? 'a' : c;
  }
  return out;
}

const PLACEHOLDER = '\u0000gravity-regex:';

/** Puts regex values back where the placeholders of `withPlaceholders` stand. */
function restoreRegexes(value: unknown, literals: Literal[]): unknown {
  if (typeof value === 'string' && value.startsWith(PLACEHOLDER)) {
    const literal = literals[Number(value.slice(PLACEHOLDER.length))]!;
    const bad = [...literal.flags].find((f) => !'imsxu'.includes(f));
    // mongod accepts only i, m, s, x and u (src/mongo/util/pcre_util.cpp, error 51108).
    if (bad !== undefined) throw syntaxError(`Regex /${literal.pattern}/${literal.flags} has the flag "${bad}", which MongoDB does not accept (only i, m, s, x and u)`);
    return new BSONRegExp(literal.pattern, literal.flags);
  }
  if (Array.isArray(value)) return value.map((v) => restoreRegexes(v, literals));
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = restoreRegexes(v, literals);
    return out;
  }
  return value;
}

function withPlaceholders(text: string, literals: Literal[]): string {
  let out = '';
  let at = 0;
  literals.forEach((l, n) => {
    out += `${text.slice(at, l.start)}${JSON.stringify(PLACEHOLDER + n)}`;
    at = l.end;
  });
  return out + text.slice(at);
}

/** Names a shell query may use bare. */
const BARE_VALUES = new Set(['true', 'false', 'null', 'undefined', 'NaN', 'Infinity', 'MinKey', 'MaxKey', 'new', 'function']);

/**
 * The first bare word in a value position that is not a value (`{region: corse}`), with the
 * text rewritten with it quoted; null if there is none.
 */
function bareWord(text: string): {word: string; quoted: string} | null {
  let previous = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'" || c === '`') {
      i = skipString(text, i) - 1;
      previous = '"';
      continue;
    }
    if (/\s/.test(c)) continue;
    const word = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i))?.[0];
    if (word) {
      const after = text.slice(i + word.length).trimStart();
      if ((previous === ':' || (previous === ',' && inArray(text, i)) || previous === '[') && !after.startsWith('(') && !after.startsWith('.') && !BARE_VALUES.has(word)) {
        return {word, quoted: `${text.slice(0, i)}${JSON.stringify(word)}${text.slice(i + word.length)}`};
      }
      i += word.length - 1;
      previous = 'a';
      continue;
    }
    previous = c;
  }
  return null;
}

/** Whether position `i` lies in an array (the nearest open bracket before it is `[`). */
function inArray(text: string, i: number): boolean {
  let depth = 0;
  for (let k = i - 1; k >= 0; k--) {
    const c = text[k];
    if (c === ']' || c === '}') depth++;
    else if (c === '[' || c === '{') {
      if (depth === 0) return c === '[';
      depth--;
    }
  }
  return false;
}

function shellParse(text: string): unknown {
  const {parseFilter} = queryParser();
  const literals = regexLiterals(text);
  const source = literals.length > 0 ? withPlaceholders(text, literals) : text;
  try {
    let value: unknown = parseFilter(source);
    if (value === '' && /\b(MinKey|MaxKey)\b/.test(source)) value = parseFilter(callBareKeys(source));
    return literals.length > 0 ? restoreRegexes(value, literals) : value;
  } catch (error) {
    if (error instanceof GravityError) throw error;
    const pos = positionOf(text, error);
    const reason = (error as Error).message.replace(/\s*\(\d+:\d+\)[\s\S]*$/, '');
    if (pos && literals.length === 0) {
      throw syntaxError(
        `Query is not valid at line ${pos.line}, column ${pos.column}: ${reason} near ${JSON.stringify(snippetAt(text, pos.line, pos.column))}`,
        pos,
        error,
      );
    }
    throw syntaxError(`Query is not valid: ${reason}`, {}, error);
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
    const bare = bareWord(text);
    if (bare) {
      throw new GravityError('QUERY_SYNTAX', `Query has \`${bare.word}\` where a value belongs, and \`${bare.word}\` is not a value`, {
        hint: `Quote a string: ${bare.quoted}`,
        details: {word: bare.word},
      });
    }
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
