/**
 * Reading the target's replies as bytes (`walkCursor`), the `_id` key taken from a document's bytes
 * (`rawIdKey`), and the writer pool's behaviour when its source fails. The reply layout is the find
 * command's: `{cursor: {firstBatch | nextBatch: [documents], id: <int64>, ns}, ok: 1}`.
 * https://www.mongodb.com/docs/manual/reference/command/find/#output
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Decimal128, Int32, Long, ObjectId} from 'bson';
import type {Document} from 'bson';

import {idKey, idOf, rawIdKey} from '../../src/target/bson-util.js';
import {runPool} from '../../src/target/pool.js';
import {walkCursor} from '../../src/target/raw-find.js';

const bytes = (d: Document) => Buffer.from(BSON.serialize(d));

describe('walkCursor', () => {
  const docs = [{_id: new ObjectId(), a: 'x'}, {_id: 7, nested: {b: [1, 2]}}, {_id: 'k', when: new Date(0)}];

  it('hands out each document of firstBatch or nextBatch as its own bytes, and the cursor id', () => {
    for (const field of ['firstBatch', 'nextBatch']) {
      const seen: Buffer[] = [];
      const {id} = walkCursor(bytes({[field]: docs, id: Long.fromBigInt(12345678901234n), ns: 'db.c'}), (d) => seen.push(Buffer.from(d)));
      assert.equal(id, 12345678901234n);
      assert.deepEqual(seen, docs.map(bytes));
    }
    // Field order does not matter; an exhausted cursor has id 0.
    const seen: Buffer[] = [];
    assert.equal(walkCursor(bytes({id: Long.ZERO, ns: 'db.c', firstBatch: docs.slice(0, 1)}), (d) => seen.push(Buffer.from(d))).id, 0n);
    assert.deepEqual(seen, [bytes(docs[0]!)]);
    assert.equal(walkCursor(bytes({firstBatch: [], id: Long.ZERO}), () => assert.fail('no documents')).id, 0n);
  });

  it('refuses a reply whose batch is missing, holds non-documents, or runs past its end', () => {
    assert.throws(() => walkCursor(bytes({id: Long.ZERO, ns: 'db.c'}), () => undefined), /malformed: no firstBatch/);
    assert.throws(() => walkCursor(bytes({firstBatch: [1, 2], id: Long.ZERO}), () => undefined), /something other than documents/);
    const whole = bytes({firstBatch: docs, id: Long.ZERO});
    // The first document claims more bytes than its batch holds.
    const at = whole.indexOf(bytes(docs[0]!));
    const broken = Buffer.from(whole);
    broken.writeInt32LE(whole.length, at);
    assert.throws(() => walkCursor(broken, () => undefined), /malformed/);
  });
});

describe('rawIdKey', () => {
  it('is the key idKey gives for the decoded _id, for a leading ObjectId and for every other _id', () => {
    const ids: unknown[] = [new ObjectId(), 5, new Int32(5), Long.fromNumber(5), Decimal128.fromString('5.00'), 'five', {a: 1, b: 2}, [1, 2], new Date(5)];
    for (const _id of ids) {
      const raw = bytes({_id, other: 1});
      assert.equal(rawIdKey(raw), idKey(idOf(raw)), String(_id));
    }
    // _id not first: the slow path finds it.
    const late = bytes({a: 1, _id: new ObjectId('65a1b2c3d4e5f60718293a4b')});
    assert.equal(rawIdKey(late), '{"$oid":"65a1b2c3d4e5f60718293a4b"}');
    // A slice of a larger buffer reads its own bytes.
    const two = Buffer.concat([bytes({_id: new ObjectId('000000000000000000000001')}), bytes({_id: new ObjectId('000000000000000000000002')})]);
    assert.equal(rawIdKey(two.subarray(two.readInt32LE(0))), '{"$oid":"000000000000000000000002"}');
  });
});

describe('runPool', () => {
  it('when the source fails, the items in flight finish before the failure is thrown, and no new item starts', async () => {
    const finished: number[] = [];
    let started = 0;
    async function* source() {
      yield 1;
      yield 2;
      yield 3;
      throw new Error('source failed');
    }
    await assert.rejects(
      runPool(source(), 4, async (n) => {
        started++;
        await new Promise((resolve) => setTimeout(resolve, 30 * n));
        finished.push(n);
      }),
      /source failed/,
    );
    assert.equal(started, 3);
    assert.deepEqual(finished, [1, 2, 3], 'every item taken finished before the pool gave up');
  });
});
