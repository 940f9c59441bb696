/**
 * The in-place comparisons (src/query/in-place.ts): which filters take them, and that they hand
 * every case outside their subset to the decoded path. Their answers are checked against the
 * decoded path by the property test in query-lazy-equivalence.test.ts.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Decimal128, Double, Long} from 'bson';

import {compileQuery, prepareFilter} from '../../src/query/compile.js';
import {inPlaceTest, UNKNOWN} from '../../src/query/in-place.js';
import {parseQuery} from '../../src/query/parse.js';

/** A filter as compileQuery hands it to the in-place test. */
const prepared = (q: string) => prepareFilter(parseQuery(q), 'Query');
const doc = (entries: Array<[string, unknown]>) => Buffer.from(BSON.serialize(new Map(entries)));

describe('in-place comparisons', () => {
  it('number, date and boolean conditions on fields take the in-place path; others do not', () => {
    const generic = '{"published": true, "created_at": {"$gte": ISODate("2018-01-01T00:00:00Z"), "$lt": ISODate("2020-01-01T00:00:00Z")}, "dimensions.height": {"$gt": 30}}';
    assert.match(compileQuery(parseQuery(generic)).plan, /in place/);
    for (const q of ['{"a": "text"}', '{"a": {"$in": [1, 2]}}', '{"a.b.c": 1}', '{"a.0": 1}', '{"a": null}', '{"$or": [{"a": 1}]}', '{"a": {"$ne": 1}}']) {
      assert.equal(inPlaceTest(prepared(q)), null, q);
    }
  });

  it('answers on the bytes, the last of a repeated name counting, and leaves what it does not know', () => {
    const test = inPlaceTest(prepared('{"n": {"$gt": 5}, "d.h": {"$lte": 30}}'))!;
    assert.equal(test(doc([['n', 6], ['d', new Map([['h', 30]])]]), 0), true);
    assert.equal(test(doc([['n', new Long(6)], ['d', new Map([['h', new Double(29.5)]])]]), 0), true);
    assert.equal(test(doc([['n', 5], ['d', new Map([['h', 1]])]]), 0), false);
    assert.equal(test(doc([['n', '6'], ['d', new Map([['h', 1]])]]), 0), false, 'a string is not in the number bracket');
    assert.equal(test(doc([['n', 6]]), 0), false, 'a missing field matches no comparison');
    assert.equal(test(doc([['n', 6], ['d', 3]]), 0), false, 'd.h under a scalar is missing');
    // Repeated names: a full decode keeps the last (built by hand: a Map cannot hold two).
    const first = doc([['n', 1]]);
    const second = doc([['n', 9], ['d', new Map([['h', 1]])]]);
    const both = Buffer.concat([Buffer.alloc(4), first.subarray(4, first.length - 1), second.subarray(4)]);
    both.writeInt32LE(both.length, 0);
    assert.equal(test(both, 0), true);
    for (const unknown of [
      doc([['n', [6]], ['d', new Map([['h', 1]])]]),
      doc([['n', new Double(NaN)], ['d', new Map([['h', 1]])]]),
      doc([['n', Decimal128.fromString('6')], ['d', new Map([['h', 1]])]]),
      doc([['n', Long.fromString('9007199254740993')], ['d', new Map([['h', 1]])]]),
      doc([['n', 6], ['d', [new Map([['h', 1]])]]]),
      doc([['n', 6], ['d', new Map<string, unknown>([['$ref', 'c'], ['$id', 1]])]]),
    ]) {
      assert.equal(test(unknown, 0), UNKNOWN);
    }
  });
});
