import assert from 'node:assert/strict';
import {describe, it} from 'node:test';
import {inspect} from 'node:util';

import {BSON, BSONRegExp, Binary, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID} from 'bson';
import fc from 'fast-check';

import {GravityError} from '../../src/errors.js';
import {compileQuery} from '../../src/query/compile.js';
import {parseQuery} from '../../src/query/parse.js';

const HEX = '57d1c0ffee0000000000cafe';

function syntaxErrorOf(text: string): GravityError {
  try {
    parseQuery(text);
  } catch (error) {
    assert.ok(error instanceof GravityError, `expected a GravityError, got ${String(error)}`);
    assert.equal(error.code, 'QUERY_SYNTAX');
    assert.ok(error.hint && error.hint.includes('ObjectId('), 'hint shows valid syntax');
    assert.ok(!error.message.endsWith('.'), 'message has no trailing period');
    return error;
  }
  assert.fail(`parseQuery accepted ${text}`);
}

describe('parseQuery: shell syntax', () => {
  it('builds ESM bson classes for every constructor form', () => {
    const q = parseQuery(
      `{partner_id: ObjectId("${HEX}"), d: ISODate("1960-01-01T00:00:00Z"), n: new Date(5), l: NumberLong("9007199254740993"),` +
        ` i: NumberInt(3), dec: NumberDecimal("1.10"), u: UUID("0123456789abcdef0123456789abcdef"), b: BinData(0, "AQID"),` +
        ` t: Timestamp(7, 2), r: /ab+c/i, mn: MinKey, mx: MaxKey(), s: 'single', "quoted key": 1}`,
    );
    assert.ok(q.partner_id instanceof ObjectId);
    assert.equal(q.partner_id.toHexString(), HEX);
    assert.ok(q.d instanceof Date);
    assert.equal(q.d.toISOString(), '1960-01-01T00:00:00.000Z');
    assert.equal(q.n.getTime(), 5);
    assert.ok(q.l instanceof Long);
    assert.equal(q.l.toString(), '9007199254740993');
    assert.ok(q.i instanceof Int32);
    assert.equal(q.i.value, 3);
    assert.ok(q.dec instanceof Decimal128);
    assert.equal(q.dec.toString(), '1.10');
    assert.ok(q.u instanceof Binary);
    assert.equal(q.u.sub_type, 4);
    assert.equal(Buffer.from(q.u.buffer).toString('hex'), '0123456789abcdef0123456789abcdef');
    assert.ok(q.b instanceof Binary);
    assert.deepEqual([...q.b.buffer], [1, 2, 3]);
    assert.ok(q.t instanceof Timestamp);
    assert.equal(q.t.t, 7);
    assert.equal(q.t.i, 2);
    assert.equal(q.r.pattern, 'ab+c');
    assert.equal(q.r.options, 'i');
    assert.ok(q.mn instanceof MinKey);
    assert.ok(q.mx instanceof MaxKey);
    assert.equal(q.s, 'single');
    assert.ok('quoted key' in q);
  });

  it('reads Extended JSON, canonical and relaxed', () => {
    const q = parseQuery(
      `{"o": {"$oid": "${HEX}"}, "d": {"$date": {"$numberLong": "-5"}}, "r": {"$date": "2020-01-01T00:00:00Z"},` +
        ` "l": {"$numberLong": "7"}, "x": {"$numberDecimal": "2.5"}, "u": {"$uuid": "01234567-89ab-cdef-0123-456789abcdef"}}`,
    );
    assert.ok(q.o instanceof ObjectId);
    assert.equal(q.d.getTime(), -5);
    assert.equal(q.r.toISOString(), '2020-01-01T00:00:00.000Z');
    assert.ok(q.l instanceof Long);
    assert.equal(q.l.toString(), '7');
    assert.ok(q.x instanceof Decimal128);
    assert.equal(q.x.toString(), '2.5');
    assert.ok(q.u instanceof Binary || q.u instanceof UUID);
    assert.equal(q.u.sub_type, 4);
    assert.equal(Buffer.from(q.u.buffer).toString('hex'), '0123456789abcdef0123456789abcdef');
    assert.equal(q.o.toHexString(), HEX);
  });

  it('parses operators and regex forms into the values typed', () => {
    const q = parseQuery(`{a: {$in: [1, /x/m, "s", NumberLong("7")]}, b: {$regex: 'ab', $options: 'i'}, $or: [{c: {$gt: 2.5}}, {c: null}]}`);
    assert.deepEqual(Object.keys(q), ['a', 'b', '$or']);
    const list = q.a.$in as unknown[];
    assert.equal(list.length, 4);
    assert.ok(list[0] instanceof Int32 || list[0] === 1, `1 parsed as ${String(list[0])}`);
    assert.equal(Number(list[0]), 1);
    assert.ok(list[1] instanceof BSONRegExp, 'regex literal is a BSON regex');
    assert.equal((list[1] as BSONRegExp).pattern, 'x');
    assert.equal((list[1] as BSONRegExp).options, 'm');
    assert.equal(list[2], 's');
    assert.ok(list[3] instanceof Long);
    assert.equal(String(list[3]), '7');
    // Extended JSON reads {$regex, $options} (its legacy regex form) as one regex value: a regex match, as the operator is.
    assert.ok(q.b instanceof BSONRegExp);
    assert.equal(q.b.pattern, 'ab');
    assert.equal(q.b.options, 'i');
    assert.equal(q.$or.length, 2);
    assert.deepEqual(Object.keys(q.$or[0].c), ['$gt']);
    assert.ok(q.$or[0].c.$gt instanceof Double || q.$or[0].c.$gt === 2.5);
    assert.equal(Number(q.$or[0].c.$gt), 2.5);
    assert.deepEqual(q.$or[1], {c: null});
  });

  it('keeps the field order of the query, integer-like keys included', () => {
    const q = parseQuery('{sub: {b: 1, a: 2}, "2020": 1, x: 1}');
    assert.deepEqual(Object.keys(q.sub), ['b', 'a']);
    assert.ok(Object.keys(q).includes('2020'));
  });

  it('the parsed ObjectId query matches the document (ESM and CommonJS bson classes agree)', () => {
    const id = new ObjectId(HEX);
    const q = parseQuery(`{"partner_id": ObjectId("${HEX}")}`);
    const bytes = Buffer.from(BSON.serialize({_id: 1, partner_id: id}));
    assert.equal(compileQuery(q).matches(bytes), true);
    assert.equal(compileQuery(q).matches(Buffer.from(BSON.serialize({partner_id: HEX}))), false);
  });
});

describe('parseQuery: errors', () => {
  it('names line and column and shows a snippet', () => {
    const e = syntaxErrorOf('{a: 1,, b: 2}');
    assert.match(e.message, /line 1, column 7/);
    assert.match(e.message, /near ".*⟶, b: 2}"/);
    assert.deepEqual(e.details, {line: 1, column: 7});
  });

  it('counts lines in multi-line input', () => {
    const e = syntaxErrorOf('{\n  a: 1,\n  b: \n}');
    assert.match(e.message, /line 4, column 1/);
  });

  it('reports an unterminated document', () => {
    assert.match(syntaxErrorOf('{a: ').message, /line 1/);
  });

  it('refuses arrays, scalars and empty input', () => {
    assert.match(syntaxErrorOf('[1, 2]').message, /must be a document.*an array/);
    assert.match(syntaxErrorOf('5').message, /must be a document.*a number/);
    assert.match(syntaxErrorOf('   ').message, /empty/);
  });

  it('refuses functions that are not BSON constructors', () => {
    assert.match(syntaxErrorOf('{a: foo()}').message, /not allowed/);
  });

  it('refuses a malformed ObjectId', () => {
    assert.match(syntaxErrorOf('{a: ObjectId("zz")}').message, /24 character hex/);
  });
});

/** The parsed filter (shown whole: classes, -0 and invalid dates included), or the message it was refused with. */
function outcome(text: string): {filter: string} | {error: string} {
  try {
    return {filter: inspect(parseQuery(text), {depth: null})};
  } catch (error) {
    return {error: (error as Error).message};
  }
}

describe('parseQuery: strict JSON read without the shell parser', () => {
  /** Extended JSON wrappers, well-formed or not, and plain JSON values around them. */
  const ejson = fc.oneof(
    fc.record({$oid: fc.constantFrom(HEX, 'zz', '')}),
    fc.record({$date: fc.constantFrom('2024-01-01T00:00:00Z', 'soon')}),
    fc.record({$date: fc.record({$numberLong: fc.constantFrom('1700000000000', 'x')})}),
    fc.record({$numberLong: fc.constantFrom('9007199254740993', '-0', '1.5')}),
    fc.record({$numberDecimal: fc.constantFrom('1.10', 'NaN')}),
    fc.record({$regularExpression: fc.record({pattern: fc.constantFrom('^a', 'a b'), options: fc.constantFrom('', 'ix')})}),
    fc.record({$binary: fc.record({base64: fc.constantFrom('AQID', ''), subType: fc.constantFrom('00', '04')})}),
    fc.record({$minKey: fc.constant(1)}),
  );
  const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
    value: fc.oneof({depthSize: 'small'}, fc.jsonValue({maxDepth: 1}), ejson, tie('array'), tie('doc')),
    array: fc.array(tie('value'), {maxLength: 3}),
    doc: fc.dictionary(fc.oneof(fc.string(), fc.constantFrom('$in', '$gt', '__proto__', 'a.b')), tie('value'), {maxKeys: 3}),
  })).value;

  it('gives what the shell parser gives, refusals included', () => {
    fc.assert(
      fc.property(value, fc.constantFrom('', ' ', '\n\t'), (v, space) => {
        const json = `${space}${JSON.stringify(v, null, space ? 1 : undefined)}${space}`;
        // A comment is not JSON: the same text then goes through the shell parser.
        assert.deepStrictEqual(outcome(json), outcome(`${json}\n// shell syntax`));
      }),
      {numRuns: 3000},
    );
  });

  it('leaves to the shell parser what its grammar reads otherwise', () => {
    assert.match(syntaxErrorOf('{"a": "line\u2028separator"}').message, /line 1/);
    assert.match(syntaxErrorOf('{"__proto__": 1, "__proto__": 2}').message, /__proto__/);
    assert.deepEqual(Object.keys(parseQuery('{"__proto__": {"$oid": "57d1c0ffee0000000000cafe"}}')), ['__proto__']);
  });
});
