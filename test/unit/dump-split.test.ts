import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {describe, it} from 'node:test';
import fc from 'fast-check';
import {Crc64, crc64} from '../../src/dump/crc64.js';
import {collectionFileStem, escapeCollectionName, isHashedStem, unescapeCollectionName} from '../../src/dump/names.js';
import {BsonSplitter, splitDocuments, TERMINATOR} from '../../src/dump/split.js';
import {GravityError} from '../../src/errors.js';
import {everyTypeDocuments} from '../support/bson-fixtures.js';

/** Bit-at-a-time CRC-64/ECMA as Go defines it: reflected, init and xorout all ones. */
function crcReference(data: Uint8Array): bigint {
  const poly = 0xc96c5795d7870f42n;
  let crc = 0xffffffffffffffffn;
  for (const byte of data) {
    crc ^= BigInt(byte);
    for (let k = 0; k < 8; k++) crc = crc & 1n ? (crc >> 1n) ^ poly : crc >> 1n;
  }
  return crc ^ 0xffffffffffffffffn;
}

describe('crc64 (ECMA, as Go hash/crc64 and mongodump compute it)', () => {
  it('matches the published check value', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0x995dc9bbdf1939fan);
    assert.equal(crc64(Buffer.alloc(0)), 0n);
  });

  it('matches a bitwise reference for any data, split anywhere', () => {
    fc.assert(fc.property(fc.uint8Array({maxLength: 200}), fc.array(fc.nat(200), {maxLength: 4}), (data, cuts) => {
      const expected = crcReference(data);
      assert.equal(crc64(data), expected);
      const c = new Crc64();
      let at = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        const end = Math.min(cut, data.length);
        if (end < at) continue;
        c.update(data.subarray(at, end));
        at = end;
      }
      c.update(data.subarray(at));
      assert.equal(c.digest(), expected);
      assert.equal(c.digestInt64(), BigInt.asIntN(64, expected));
    }), {numRuns: 300});
  });
});

describe('BsonSplitter', () => {
  const docs = everyTypeDocuments(24).slice(0, 24);
  const all = Buffer.concat(docs);

  it('returns the same documents however the stream is chunked, copying only those that span chunks', () => {
    fc.assert(fc.property(fc.array(fc.integer({min: 1, max: all.length - 1}), {maxLength: 30}), (cutsRaw) => {
      const cuts = [...new Set(cutsRaw)].sort((a, b) => a - b);
      const splitter = new BsonSplitter('t');
      const out: Buffer[] = [];
      let at = 0;
      const chunks: Buffer[] = [];
      for (const cut of [...cuts, all.length]) {
        const chunk = Buffer.from(all.subarray(at, cut)); // a fresh buffer per chunk, like a stream
        chunks.push(chunk);
        splitter.push(chunk, out);
        at = cut;
      }
      splitter.end();
      assert.equal(out.length, docs.length);
      out.forEach((d, i) => assert.ok(d.equals(docs[i]!)));
      // A document wholly inside one chunk is a view of that chunk, not a copy.
      let offset = 0;
      docs.forEach((d, i) => {
        let start = 0;
        const owner = chunks.find((c) => {
          const s = start;
          start += c.length;
          return offset >= s && offset + d.length <= s + c.length;
        });
        if (owner) assert.equal(out[i]!.buffer, owner.buffer);
        offset += d.length;
      });
    }), {numRuns: 100});
  });

  it('recognises archive terminators only when asked', () => {
    const stream = Buffer.concat([docs[0]!, TERMINATOR, docs[1]!]);
    const split = new BsonSplitter('a', {allowTerminator: true}).push(stream);
    assert.deepEqual(split.map((d) => (d === TERMINATOR ? 'T' : d.length)), [docs[0]!.length, 'T', docs[1]!.length]);
    assert.throws(() => new BsonSplitter('plain').push(stream), /document length -1 out of range at byte/);
  });

  it('reports trailing bytes, a missing NUL and a truncated document with their offsets', () => {
    const check = (data: Buffer, pattern: RegExp): void => {
      assert.throws(() => splitDocuments(data, 'f.bson'), (e: unknown) => e instanceof GravityError && e.code === 'DUMP_CORRUPT' && pattern.test(e.message));
    };
    check(Buffer.concat([docs[0]!, Buffer.from([1, 2])]), new RegExp(`f\\.bson: truncated document at byte ${docs[0]!.length} \\(2 trailing bytes\\)`));
    const noNul = Buffer.from(docs[0]!);
    noNul[noNul.length - 1] = 1;
    check(noNul, /document at byte 0 does not end with a NUL byte/);
    check(all.subarray(0, all.length - 1), /truncated document at byte \d+ \(needs \d+ bytes/);
  });
});

describe('collection file names (mongodump escaping)', () => {
  it('escapes like Go url.PathEscape and reverses exactly', () => {
    assert.equal(escapeCollectionName('a b/c,d;e?f$g&h+i:j=k@l~m-n_o.p%q'), 'a%20b%2Fc%2Cd%3Be%3Ff$g&h+i:j=k@l~m-n_o.p%25q');
    assert.equal(escapeCollectionName('café'), 'caf%C3%A9');
    fc.assert(fc.property(fc.string({unit: 'grapheme', minLength: 1, maxLength: 40}), (name) => {
      assert.equal(unescapeCollectionName(escapeCollectionName(name)), name);
    }));
    assert.equal(unescapeCollectionName('100%'), '100%');
  });

  it('hashes names whose escaped form exceeds 238 bytes', () => {
    const name = `${'a'.repeat(230)}/${'b'.repeat(20)}`;
    const stem = collectionFileStem(name);
    const sha = createHash('sha1').update(name).digest('base64url');
    assert.equal(stem, `${escapeCollectionName(name).slice(0, 208)}%24${sha}`);
    assert.equal(stem.length, 238);
    assert.ok(isHashedStem(stem));
    assert.equal(collectionFileStem('short'), 'short');
    assert.ok(!isHashedStem('short'));
  });
});
