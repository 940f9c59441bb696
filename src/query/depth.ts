/**
 * Bounds on how deep a query may nest, checked without recursion before anything recursive (the
 * shell-syntax parser, Extended JSON, the compiler, the matchers) reads it.
 */
import type {Document} from 'bson';

import {MAX_BSON_DEPTH} from '../dump/validate.js';
import {GravityError} from '../errors.js';

/**
 * mongod refuses a filter whose operator tree is deeper than this: MatchExpressionParser's
 * kMaximumTreeDepth, "exceeded maximum query tree depth of 100" (BadValue; raised from 10 to 100 in
 * MongoDB 2.6.1, SERVER-13661, to match the manual's limit of 100 levels of nesting).
 */
export const MAX_QUERY_TREE_DEPTH = 100;

/** Operators whose operands are filters again: each adds a level to mongod's query tree. */
const SUBTREE = new Set(['$and', '$or', '$nor', '$elemMatch', '$not']);

function tooDeep(what: string): GravityError {
  return new GravityError('RESOURCE_LIMIT', what, {
    hint: `Flatten it: put the conditions of nested $and/$or in one list (MongoDB refuses a query tree deeper than ${MAX_QUERY_TREE_DEPTH} levels and stores documents at most 180 levels deep)`,
  });
}

/**
 * Refuses query text whose brackets nest deeper than any document MongoDB holds (MAX_BSON_DEPTH):
 * strings are skipped, everything else is counted, so a regular expression's brackets may count
 * too, which only matters at a depth no real query reaches.
 */
export function checkQueryTextDepth(text: string): void {
  let depth = 0;
  let quote = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (quote !== 0) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === quote) quote = 0;
      continue;
    }
    if (c === 0x22 || c === 0x27) quote = c;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > MAX_BSON_DEPTH) throw tooDeep(`Query nests braces and brackets more than ${MAX_BSON_DEPTH} levels deep`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
}

/** Refuses a parsed filter whose operator tree is deeper than mongod allows; walks it without recursion. */
export function checkQueryTreeDepth(filter: Document): void {
  const stack: Array<{value: unknown; level: number}> = [{value: filter, level: 0}];
  let deepest = 0;
  while (stack.length > 0) {
    const {value, level} = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (const item of value) stack.push({value: item, level});
      continue;
    }
    if (Object.getPrototypeOf(value) !== Object.prototype) continue; // a BSON value (ObjectId, Date…)
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const next = SUBTREE.has(key) ? level + 1 : level;
      if (next > deepest) deepest = next;
      if (deepest > MAX_QUERY_TREE_DEPTH) {
        throw tooDeep(`Query nests $and/$or/$nor/$not/$elemMatch more than ${MAX_QUERY_TREE_DEPTH} levels deep; MongoDB refuses it ("exceeded maximum query tree depth of ${MAX_QUERY_TREE_DEPTH}")`);
      }
      stack.push({value: child, level: next});
    }
  }
}
