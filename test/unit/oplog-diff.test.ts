/**
 * The test server's `$v: 2` diffs, computed from pre- and post-images by the rules of OPLOG.md §2.3
 * (mongodb/mongo src/mongo/db/update/document_diff_calculator.cpp, serialised as
 * document_diff_serialization.cpp writes it). Each case states the rule it pins. A long unchanged
 * field keeps the diffs smaller than the documents, as in real documents, except where the size
 * fallback is the point.
 */
import assert from 'node:assert/strict';
import {describe, test} from 'node:test';

import {BSON, Int32} from 'bson';

import {computeOplogDiff} from '../support/mongo-server/oplog-diff.js';
import {parseDoc} from '../support/mongo-server/tree.js';

const M = (...e: Array<[string, unknown]>) => new Map(e);
const PAD = 'x'.repeat(200);
const doc = (...e: Array<[string, unknown]>) => parseDoc(Buffer.from(BSON.serialize(M(['_id', 1], ['pad', PAD], ...e))));
const diffHex = (pre: ReturnType<typeof doc>, post: ReturnType<typeof doc>): string | undefined => computeOplogDiff(pre, post)?.bytes.toString('hex');
const expected = (diff: Map<string, unknown>): string => Buffer.from(BSON.serialize(M(['$v', new Int32(2)], ['diff', diff]))).toString('hex');

describe('$v:2 diff from pre- and post-image', () => {
  test('an existing field changed in place is `u`; a new field is `i`; a removed one `d`', () => {
    assert.equal(diffHex(doc(['x', 's'], ['y', 0], ['gone', 1]), doc(['x', 's'], ['y', 999], ['a', 'foo'])), expected(M(['d', M(['gone', false])], ['u', M(['y', 999])], ['i', M(['a', 'foo'])])));
  });

  test('fields out of order are re-inserted at the end (`i`), the others untouched', () => {
    // OPLOG.md §2.3 worked example: {x, y, z} → {z, y, x} is {i: {y, x}}.
    assert.equal(diffHex(doc(['x', 'foo'], ['y', 'bar'], ['z', 'baz']), doc(['z', 'baz'], ['y', 'bar'], ['x', 'foo'])), expected(M(['i', M(['y', 'bar'], ['x', 'foo'])])));
  });

  test('deletes: left-over pre fields first, then skipped ones in byte order (a std::set)', () => {
    // pre b, a, k, z; post k: b and a are skipped while looking for k, z is left over.
    assert.equal(diffHex(doc(['b', 1], ['a', 2], ['k', 3], ['z', 4]), doc(['k', 3])), expected(M(['d', M(['z', false], ['a', false], ['b', false])])));
  });

  test('a changed sub-document is a sub-diff `s<name>`, integer-like keys by name, in place', () => {
    assert.equal(
      diffHex(doc(['sub', M(['10', 8], ['2', -8], ['note', 'a longer value that keeps the sub-diff small'])]), doc(['sub', M(['10', 8], ['2', 7], ['note', 'a longer value that keeps the sub-diff small'], ['c', 'foo'])])),
      expected(M(['ssub', M(['u', M(['2', 7])], ['i', M(['c', 'foo'])])])),
    );
  });

  test('arrays: `a: true`, appended elements as `u<i>`, a shrink as `l`, indexes in numeric order', () => {
    const long = Array.from({length: 12}, (_, i) => i);
    assert.equal(diffHex(doc(['a', long]), doc(['a', [...long, 12, 13]])), expected(M(['sa', M(['a', true], ['u12', 12], ['u13', 13])])));
    assert.equal(diffHex(doc(['a', long]), doc(['a', long.slice(0, 10)])), expected(M(['sa', M(['a', true], ['l', 10])])));
    const changed = [...long];
    changed[2] = 99;
    changed[10] = 98;
    assert.equal(diffHex(doc(['a', long]), doc(['a', changed])), expected(M(['sa', M(['a', true], ['u2', 99], ['u10', 98])])));
  });

  test('a sub-diff not smaller than the new value is logged as `u` of the whole value', () => {
    // {b: 10} → {b: 9}: the sub-diff {u: {b: 9}} (20 bytes) is larger than {b: 9} (12 bytes).
    assert.equal(diffHex(doc(['s', M(['b', 10])]), doc(['s', M(['b', 9])])), expected(M(['u', M(['s', M(['b', 9])])])));
  });

  test('a type change is `u`; a diff not smaller than the post-image means a replacement (undefined)', () => {
    assert.equal(diffHex(doc(['v', M(['k', 1])]), doc(['v', [1]])), expected(M(['u', M(['v', [1]])])));
    const small = (...e: Array<[string, unknown]>) => parseDoc(Buffer.from(BSON.serialize(M(['_id', 1], ...e))));
    assert.equal(computeOplogDiff(small(['a', 1]), small(['b', 1])), undefined);
  });
});
