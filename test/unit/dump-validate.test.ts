import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {describe, it} from 'node:test';

import {BSON, Code, ObjectId} from 'bson';
import fc from 'fast-check';

import {bsonProblem, MAX_BSON_DEPTH, readableId} from '../../src/dump/validate.js';
import {everyTypeDocuments, rawDocument} from '../support/bson-fixtures.js';
import {nestedDocument} from '../support/hostile-fixtures.js';

const nested = (levels: number): Buffer => nestedDocument(levels);

const ok = (doc: Buffer) => bsonProblem(doc, 0, doc.length);

describe('structural BSON check (dump/validate.ts)', () => {
  it('accepts every BSON type a backup may carry, code with scope and deprecated types included', () => {
    for (const doc of everyTypeDocuments(80, 3)) assert.equal(ok(doc), null);
    const withScope = Buffer.from(BSON.serialize({_id: 1, f: new Code('function () { return x; }', {x: {y: [1, 2]}})}));
    assert.equal(ok(withScope), null);
  });

  it('refuses an unknown type byte (0x77) and names where it is', () => {
    const doc = rawDocument([
      {type: 0x07, key: '_id', value: Buffer.from(new ObjectId('65a1b2c3d4e5f60718293a4b').id)},
      {type: 0x77, key: 'x', value: Buffer.from([1, 2, 3, 4])},
    ]);
    const problem = ok(doc);
    assert.ok(problem);
    assert.match(problem.what, /unknown BSON type byte 0x77/);
    assert.equal(problem.at, 4 + 1 + 4 + 12);
    assert.equal(readableId(doc, 0, doc.length), '{"$oid":"65a1b2c3d4e5f60718293a4b"}');
  });

  it('refuses a string without its terminating NUL, and a string length past the document', () => {
    const value = Buffer.alloc(4 + 3);
    value.writeInt32LE(3, 0);
    value.write('abc', 4); // length says 3 (two bytes and the NUL) but the third byte is 'c'
    const doc = rawDocument([{type: 0x10, key: '_id', value: Buffer.from([7, 0, 0, 0])}, {type: 0x02, key: 's', value}]);
    assert.match(ok(doc)!.what, /string/);
    assert.equal(readableId(doc, 0, doc.length), '{"$numberInt":"7"}');
    const long = Buffer.alloc(8);
    long.writeInt32LE(1000, 0);
    assert.match(ok(rawDocument([{type: 0x02, key: 's', value: long}]))!.what, /string/);
  });

  it('refuses an embedded document whose length does not fit its parent', () => {
    const inner = Buffer.from(BSON.serialize({b: 1}));
    inner.writeInt32LE(inner.length + 3, 0);
    assert.match(ok(rawDocument([{type: 0x03, key: 'a', value: inner}]))!.what, /embedded document/);
  });

  it('walks 100,000 levels of nesting without recursion and says the nesting is too deep', () => {
    const deep = nested(100_000);
    const problem = ok(deep);
    assert.ok(problem?.tooDeep);
    assert.match(problem.what, new RegExp(`deeper than ${MAX_BSON_DEPTH} levels`));
    assert.equal(ok(nested(MAX_BSON_DEPTH)), null);
    assert.ok(ok(nested(MAX_BSON_DEPTH + 1))?.tooDeep);
  });

  it('agrees with python3-bson (an independent C decoder) on valid documents', (t) => {
    const docs = everyTypeDocuments(40, 9);
    const script = 'import sys, bson\ndata = sys.stdin.buffer.read()\nprint(len(bson.decode_all(data)))';
    const run = spawnSync('/usr/bin/python3', ['-c', script], {input: Buffer.concat(docs)});
    if (run.status !== 0) {
      t.skip('Debian python3-bson is not installed');
      return;
    }
    assert.equal(Number(run.stdout.toString().trim()), docs.length);
    for (const doc of docs) assert.equal(ok(doc), null);
  });

  it('any document it accepts, the bson decoder reads without reading outside it (random damage)', () => {
    const docs = everyTypeDocuments(40, 21);
    fc.assert(
      fc.property(fc.integer({min: 0, max: docs.length - 1}), fc.array(fc.tuple(fc.nat(), fc.integer({min: 0, max: 255})), {minLength: 1, maxLength: 4}), (which, edits) => {
        const doc = Buffer.from(docs[which]!);
        for (const [at, byte] of edits) {
          const i = 4 + (at % (doc.length - 5));
          doc[i] = byte;
        }
        if (ok(doc) !== null) return;
        // Accepted: the decoder, which checks every length itself, must agree it is whole (UTF-8 and
        // regular expression syntax are values, not structure).
        try {
          BSON.deserialize(doc, {validation: {utf8: false}, promoteValues: false, bsonRegExp: true});
        } catch (error) {
          if (!/regular expression option/.test((error as Error).message)) throw error;
        }
      }),
      {numRuns: 3000, seed: 7},
    );
  });
});
