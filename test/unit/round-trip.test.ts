/**
 * The byte walk that tells, without decoding, that a document writes back unchanged. Its yes must
 * always be right (it lets a plan skip the decode-and-serialise check); its "don't know" only costs
 * time. Random documents are built byte by byte, including what a driver cannot write back.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Int32, Timestamp} from 'bson';
import fc from 'fast-check';

import {benchDocument} from '../../bench/data.js';
import {plainForm, writeForm} from '../../src/target/exact.js';
import {roundTripsPlainly} from '../../src/target/round-trip.js';

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
};
const cstring = (b: Buffer) => Buffer.concat([b, Buffer.from([0])]);
const withLength = (body: Buffer) => Buffer.concat([int32(body.length + 5), body, Buffer.from([0])]);
const bstring = (b: Buffer) => Buffer.concat([int32(b.length + 1), b, Buffer.from([0])]);

const nameBytes = fc.oneof(
  {weight: 8, arbitrary: fc.stringMatching(/^[a-c][a-c0-9]{0,2}$/).map((s) => Buffer.from(s, 'utf8'))},
  {weight: 2, arbitrary: fc.constantFrom('0', '1', '2', '9', '10', '11', '2020', '2147483648', '4294967294', '4294967295').map((s) => Buffer.from(s, 'utf8'))},
  fc.constantFrom('a', 'b', '_id', 'x y', 'é', '', '10', '0', '007', '$ref', '$id', '$db', '__proto__', 'constructor').map((s) => Buffer.from(s, 'utf8')),
  fc.stringMatching(/^[a-c0-9]{1,3}$/).map((s) => Buffer.from(s, 'utf8')),
  fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xc3]), Buffer.from([0xe2, 0x82, 0xac])),
);

const utf8Text = fc.oneof(fc.string({maxLength: 6}), fc.constantFrom('', 'a\u0000b', '€', '😀'));
const textBytes = fc.oneof({weight: 5, arbitrary: utf8Text.map((s) => Buffer.from(s, 'utf8'))}, {weight: 1, arbitrary: fc.constantFrom(Buffer.from([0xff]), Buffer.from([0xed, 0xa0, 0x80]))});

const doubleBytes = fc.oneof(
  fc.double().map((d) => {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(d);
    return b;
  }),
  fc.uint8Array({minLength: 8, maxLength: 8}).map((u) => Buffer.from(u)),
  fc.constantFrom('000000000000f87f', '010000000000f07f', '0000000000000080', '000000000000f0ff').map((h) => Buffer.from(h, 'hex')),
);

const int64Bytes = fc.oneof(
  fc.bigInt({min: -(2n ** 63n), max: 2n ** 63n - 1n}).map((v) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(v);
    return b;
  }),
  fc.constantFrom(8_640_000_000_000_000n, 8_640_000_000_000_001n, -8_640_000_000_000_001n, 2n ** 53n + 1n).map((v) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(v);
    return b;
  }),
);

const regexFlags = fc.oneof({weight: 3, arbitrary: fc.constantFrom('', 'i', 'im', 'imsx', 'ilmsux', 'u')}, fc.constantFrom('mi', 'g', 'ii', 'xs'), fc.stringMatching(/^[ilmsuxg]{0,4}$/));

/** One element: type byte, name, value bytes. Documents and arrays nest to `depth`. */
function element(depth: number): fc.Arbitrary<Buffer> {
  const leaf: Array<fc.Arbitrary<[number, Buffer]>> = [
    doubleBytes.map((v) => [0x01, v]),
    textBytes.map((v) => [0x02, bstring(v)]),
    fc.tuple(fc.constantFrom(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x80), fc.uint8Array({maxLength: 20})).map(([sub, data]) => {
      const body = sub === 2 ? Buffer.concat([int32(data.length), Buffer.from(data)]) : Buffer.from(data);
      return [0x05, Buffer.concat([int32(body.length), Buffer.from([sub]), body])];
    }),
    fc.constant<[number, Buffer]>([0x06, Buffer.alloc(0)]),
    fc.uint8Array({minLength: 12, maxLength: 12}).map((u) => [0x07, Buffer.from(u)]),
    fc.constantFrom(0, 1, 2).map((v) => [0x08, Buffer.from([v])]),
    fc.oneof({weight: 4, arbitrary: fc.integer({min: -(2 ** 31), max: 2 ** 31 - 1}).map((v) => BigInt(v) * 4_000_000n)}, {weight: 1, arbitrary: fc.constant(0n)}).map((v) => {
      const b = Buffer.alloc(8);
      b.writeBigInt64LE(v);
      return b;
    }).chain((inRange) => fc.oneof({weight: 4, arbitrary: fc.constant(inRange)}, {weight: 1, arbitrary: int64Bytes})).map((v) => [0x09, v]),
    fc.constant<[number, Buffer]>([0x0a, Buffer.alloc(0)]),
    fc.tuple(utf8Text, regexFlags).map(([p, f]) => [0x0b, Buffer.concat([cstring(Buffer.from(p.replaceAll('\u0000', ''), 'utf8')), cstring(Buffer.from(f))])]),
    fc.uint8Array({minLength: 12, maxLength: 12}).map((u) => [0x0c, Buffer.concat([bstring(Buffer.from('c')), Buffer.from(u)])]),
    textBytes.map((v) => [0x0d, bstring(v)]),
    textBytes.map((v) => [0x0e, bstring(v)]),
    fc.integer({min: -(2 ** 31), max: 2 ** 31 - 1}).map((v) => [0x10, int32(v)]),
    fc.oneof(fc.constant(Buffer.alloc(8)), fc.uint8Array({minLength: 8, maxLength: 8}).map((u) => Buffer.from(u))).map((v) => [0x11, v]),
    int64Bytes.map((v) => [0x12, v]),
    fc.uint8Array({minLength: 16, maxLength: 16}).map((u) => [0x13, Buffer.from(u)]),
    fc.constantFrom<[number, Buffer]>([0x7f, Buffer.alloc(0)], [0xff, Buffer.alloc(0)]),
  ];
  const nested: Array<fc.Arbitrary<[number, Buffer]>> =
    depth > 0
      ? [
          fc.array(element(depth - 1), {maxLength: 4}).map((els) => [0x03, withLength(Buffer.concat(els))]),
          arrayBody(depth - 1).map((body) => [0x04, withLength(body)]),
        ]
      : [];
  // Types a driver writes back are drawn three times as often as those it cannot.
  const hostile = new Set([3, 9, 10, 11]);
  const weighted = leaf.map((arbitrary, i) => ({weight: hostile.has(i) ? 1 : 3, arbitrary}));
  return fc.tuple(nameBytes, fc.oneof(...weighted, ...nested.map((arbitrary) => ({weight: 3, arbitrary})))).map(([name, [type, value]]) => Buffer.concat([Buffer.from([type]), cstring(name), value]));
}

/** An array's elements, named 0, 1, 2, … or now and then otherwise. */
function arrayBody(depth: number): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.array(element(depth), {maxLength: 4}), fc.oneof({weight: 4, arbitrary: fc.constant(true)}, {weight: 1, arbitrary: fc.constant(false)})).map(([els, renumber]) =>
    Buffer.concat(
      els.map((el, i) => {
        if (!renumber) return el;
        const nameEnd = el.indexOf(0, 1);
        return Buffer.concat([el.subarray(0, 1), cstring(Buffer.from(String(i))), el.subarray(nameEnd + 1)]);
      }),
    ),
  );
}

const documentBytes = fc.tuple(fc.array(element(2), {maxLength: 6}), fc.oneof({weight: 8, arbitrary: fc.constant(0)}, {weight: 1, arbitrary: fc.integer({min: -3, max: 3})})).map(([els, skew]) => {
  const doc = withLength(Buffer.concat(els));
  // Now and then a length that lies.
  if (skew) doc.writeInt32LE(doc.length + skew, 0);
  return doc;
});

describe('round-trip byte walk', () => {
  it('a yes always agrees with decoding and serialising (random documents built byte by byte)', () => {
    let yes = 0;
    fc.assert(
      fc.property(documentBytes, (raw) => {
        if (!roundTripsPlainly(raw)) return;
        yes++;
        assert.equal(Buffer.from(BSON.serialize(plainForm(raw))).toString('hex'), raw.toString('hex'));
        assert.equal(writeForm(raw).inexact, null);
      }),
      {numRuns: 4000},
    );
    // The property is not vacuous: a good share of the documents get a yes.
    assert.ok(yes > 800, `only ${yes} of 4000 got a yes`);
  });

  it('ordinary documents get a yes; each thing a driver writes back otherwise gets a no', () => {
    for (let i = 0; i < 200; i++) assert.equal(roundTripsPlainly(benchDocument(i)), true);
    const m = (entries: Array<[string, unknown]>) => Buffer.from(BSON.serialize(new Map(entries)));
    assert.equal(roundTripsPlainly(m([['_id', 1], ['b', 1], ['10', 2]])), false, 'integer-like key after another');
    assert.equal(roundTripsPlainly(m([['2', 1], ['10', 2], ['b', 3]])), true, 'integer-like keys first, ascending');
    assert.equal(roundTripsPlainly(m([['10', 1], ['2', 2]])), false, 'integer-like keys descending');
    assert.equal(roundTripsPlainly(m([['b', 1], ['007', 2]])), false, 'digits with a leading zero: left to the full check');
    assert.equal(roundTripsPlainly(m([['_id', 1], ['s', new Map<string, unknown>([['$ref', 'c'], ['x', 1]])]])), false, '$ name');
    assert.equal(roundTripsPlainly(m([['_id', 1], ['t', new Timestamp({t: 0, i: 0})]])), false, 'empty top-level timestamp');
    assert.equal(roundTripsPlainly(m([['_id', 1], ['s', new Map([['t', new Timestamp({t: 0, i: 0})]])]])), true, 'empty timestamp in a subdocument is kept');
    assert.equal(roundTripsPlainly(m([['_id', 1], ['n', new Int32(3)]])), true);
    const repeated = withLength(Buffer.concat([Buffer.from([0x10]), cstring(Buffer.from('a')), int32(1), Buffer.from([0x10]), cstring(Buffer.from('a')), int32(2)]));
    assert.equal(roundTripsPlainly(repeated), false, 'repeated name');
    const many = m([['_id', 1], ...Array.from({length: 300}, (_v, i): [string, unknown] => [`f${i}`, i])]);
    assert.equal(roundTripsPlainly(many), true, 'many distinct names');
    const manyRepeated = withLength(Buffer.concat([many.subarray(4, many.length - 1), Buffer.from([0x10]), cstring(Buffer.from('f150')), int32(0)]));
    assert.equal(roundTripsPlainly(manyRepeated), false, 'a repeat among many names');
    assert.equal(roundTripsPlainly(m([['_id', 1]]).subarray(0, 8)), false, 'truncated');
  });
});
