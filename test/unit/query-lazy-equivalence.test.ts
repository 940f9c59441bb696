/**
 * Property: for random documents and random filters, the compiled matcher on raw bytes (prescreen,
 * lazy decoding) answers exactly what the same engine answers on the fully decoded document. Both
 * sides share the matching code, so this proves the prescreen and lazy decoding change nothing, not
 * that the answers are MongoDB's: test/unit/query-oracle.test.ts checks those against the manual.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Binary, BSONRegExp, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, type Document} from 'bson';
import fc from 'fast-check';

import {compileQuery, matchesDecoded} from '../../src/query/compile.js';

const IDS = ['57d1c0ffee0000000000cafe', '57d1c0ffee0000000000beef', '000000000000000000000000'].map((h) => new ObjectId(h));
const DATES = [new Date(-86_400_000 * 400), new Date(0), new Date(1_600_000_000_000), new Date(1_600_000_000_001)];
const STRINGS = ['', 'a', 'abcd', 'abcde', 'Abcd', 'zzzz-long', 'ß✓😀x', '123'];
const BINS = [new Binary(Buffer.from('deadbeef', 'hex'), 0), new Binary(Buffer.from('deadbeef', 'hex'), 4), new Binary(Buffer.from([1]), 0), new Binary(Buffer.from('deadbeef', 'hex'), 2)];
const DECIMALS = ['5', '5.00', '0.1', '-2', '9007199254740993', '1E+2', 'NaN'].map((s) => Decimal128.fromString(s));

/** Scalars with the cross-type look-alikes that make matching hard. */
const scalar = fc.oneof(
  fc.constantFrom(0, 1, 2, 5, -7, 100, 2 ** 31, 0.1, 0.5, 4.5, -0, Number.NaN, Infinity),
  fc.constantFrom(new Double(5), new Double(2), new Int32(5), Long.fromNumber(5), Long.fromString('9007199254740993'), Long.fromNumber(-7)),
  fc.constantFrom(...DECIMALS),
  fc.constantFrom(...STRINGS),
  fc.constantFrom(...IDS),
  fc.constantFrom(...IDS.map((id) => id.toHexString())),
  fc.constantFrom(...DATES),
  fc.constantFrom(...BINS),
  fc.constantFrom(new Timestamp({t: 1, i: 2}), new Timestamp({t: 2, i: 1})),
  fc.constantFrom(true, false, null),
  fc.constantFrom(new MinKey(), new MaxKey(), new BSONRegExp('^a', 'i')),
);

const KEYS = ['a', 'b', 'c', 'x'];

/** Documents also hold values a filter cannot name directly. */
const stored = fc.oneof(scalar, fc.constantFrom(new DBRef('users', IDS[0]), new DBRef('users', IDS[1], 'db', {a: 1})));

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({depthSize: 'small', withCrossShrink: true}, stored, scalar, tie('array'), tie('doc')),
  array: fc.array(tie('value'), {maxLength: 4}),
  doc: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), {maxKeys: 3}),
})).value;

const document = fc.dictionary(fc.constantFrom(...KEYS, '_id'), value, {maxKeys: 5});

const PATHS = ['a', 'b', 'c', 'a.b', 'a.c', 'b.a', 'a.0', 'a.b.c', 'x.a.b', 'a.1.b'];
const comparable = scalar.filter((v) => !(v instanceof MinKey || v instanceof MaxKey || v instanceof BSONRegExp || v === null));

const condition: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  cond: fc.oneof(
    scalar,
    fc.array(scalar, {maxLength: 2}),
    fc.dictionary(fc.constantFrom(...KEYS), scalar, {maxKeys: 2}),
    fc.record({$eq: scalar}),
    fc.record({$ne: scalar}),
    fc.record({$gt: comparable}),
    fc.record({$gte: comparable, $lt: comparable}),
    fc.record({$lte: comparable}),
    fc.record({$in: fc.array(scalar, {maxLength: 3})}),
    fc.record({$nin: fc.array(scalar, {maxLength: 3})}),
    fc.record({$exists: fc.boolean()}),
    fc.record({$type: fc.constantFrom('string', 'number', 'array', 'object', 'objectId', 'date', 'null', 'bool', 'binData', 2, 7, 9, 10)}),
    fc.record({$size: fc.nat(3)}),
    fc.record({$all: fc.array(scalar, {maxLength: 2})}),
    fc.record({$elemMatch: fc.oneof(tie('ops'), fc.dictionary(fc.constantFrom(...KEYS), tie('cond'), {minKeys: 1, maxKeys: 2}))}),
    fc.record({$regex: fc.constantFrom('^a', 'b', '\\d', '😀'), $options: fc.constantFrom('', 'i')}),
    fc.record({$not: tie('ops')}),
    fc.record({$mod: fc.constantFrom([2, 1], [4, 0], [3, -1], [5, 0])}),
  ),
  ops: fc.oneof(
    fc.record({$gt: comparable}),
    fc.record({$eq: scalar}),
    fc.record({$in: fc.array(scalar, {minLength: 1, maxLength: 3})}),
    fc.record({$regex: fc.constantFrom('^a', 'd')}),
  ),
})).cond;

const filter: fc.Arbitrary<Document> = fc.letrec((tie) => ({
  filter: fc.oneof(
    {depthSize: 'small'},
    fc.dictionary(fc.constantFrom(...PATHS), condition, {minKeys: 1, maxKeys: 3}),
    fc.dictionary(fc.constantFrom(...PATHS), condition, {minKeys: 1, maxKeys: 2}),
    fc.record({$or: fc.array(tie('filter'), {minLength: 1, maxLength: 3})}),
    fc.record({$and: fc.array(tie('filter'), {minLength: 1, maxLength: 2})}),
    fc.record({$nor: fc.array(tie('filter'), {minLength: 1, maxLength: 2})}),
  ),
})).filter as fc.Arbitrary<Document>;

describe('lazy raw matching equals full decoding (fast-check)', () => {
  it('agrees on random documents and filters', () => {
    let matched = 0;
    let checked = 0;
    let screened = 0;
    fc.assert(
      fc.property(filter, fc.array(document, {minLength: 1, maxLength: 8}), (q, docs) => {
        const compiled = compileQuery(q);
        if (compiled.prescreen) screened++;
        // The documents also lie back to back in one buffer, as in a chunk of a .bson, for matchesAt.
        const all = Buffer.concat(docs.map((doc) => BSON.serialize(doc)));
        let at = 0;
        for (const doc of docs) {
          const bytes = Buffer.from(BSON.serialize(doc));
          const expected = matchesDecoded(q, BSON.deserialize(bytes));
          assert.equal(compiled.matches(bytes), expected);
          assert.equal(compiled.matchesAt(all, at, at + bytes.length), expected);
          at += bytes.length;
          checked++;
          if (expected) matched++;
        }
      }),
      {numRuns: 2500},
    );
    // Guard against a vacuous run: both outcomes and the prescreen must have been exercised.
    assert.ok(matched > checked * 0.05, `only ${matched} of ${checked} matched`);
    assert.ok(matched < checked * 0.95);
    assert.ok(screened > 50, `prescreen used for ${screened} filters`);
  });

  it('the prescreen never rejects a document that contains the pinned value somewhere it matches', () => {
    fc.assert(
      fc.property(fc.constantFrom(...IDS, ...DATES, 'abcde', ...BINS), document, fc.constantFrom(...PATHS), (pinned, doc, path) => {
        const q = {[path]: pinned};
        const bytes = Buffer.from(BSON.serialize({...doc, a: [doc.a ?? null, {b: pinned, c: [pinned]}]}));
        assert.equal(compileQuery(q).matches(bytes), matchesDecoded(q, BSON.deserialize(bytes)));
      }),
      {numRuns: 1500},
    );
  });
});

/** A matcher's answer, or the message it refused with. */
function outcome(run: () => boolean): {matched: boolean} | {error: string} {
  try {
    return {matched: run()};
  } catch (error) {
    return {error: (error as Error).message};
  }
}

describe('the exact check without mingo equals the one through mingo (fast-check)', () => {
  it('agrees on random documents and filters, refusals included', () => {
    let matched = 0;
    let checked = 0;
    fc.assert(
      fc.property(filter, fc.array(document, {minLength: 1, maxLength: 8}), (q, docs) => {
        for (const doc of docs) {
          const decoded = BSON.deserialize(BSON.serialize(doc));
          const direct = outcome(() => matchesDecoded(q, decoded));
          assert.deepEqual(direct, outcome(() => matchesDecoded(q, decoded, 'mingo')));
          checked++;
          if ('matched' in direct && direct.matched) matched++;
        }
      }),
      {numRuns: 2500},
    );
    assert.ok(matched > checked * 0.05 && matched < checked * 0.95, `${matched} of ${checked} matched`);
  });

  it('agrees where mingo copies the filter: regexes with the x option, and subdocuments with $-keys', () => {
    const extended = new BSONRegExp('a b', 'x');
    const cases: Array<[Document, Document]> = [
      [{a: extended}, {a: extended}],
      [{a: extended}, {a: 'ab'}],
      [{a: {$in: [extended]}}, {a: extended}],
      [{a: {$eq: extended}}, {a: extended}],
      [{a: {$regex: 'a b', $options: 'x'}}, {a: extended}],
      [{a: new DBRef('users', IDS[0])}, {a: new DBRef('users', IDS[0])}],
      [{a: {$eq: new DBRef('users', IDS[0])}}, {a: new DBRef('users', IDS[0])}],
      [{'a.b': {$gte: 1, $lt: 5}, c: null}, {a: [{b: 2}, {b: 9}]}],
    ];
    for (const [q, doc] of cases) {
      const decoded = BSON.deserialize(BSON.serialize(doc));
      assert.deepEqual(outcome(() => matchesDecoded(q, decoded)), outcome(() => matchesDecoded(q, decoded, 'mingo')), JSON.stringify(q));
    }
  });
});
