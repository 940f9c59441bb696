import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {describe, it} from 'node:test';

import {ObjectId} from 'bson';

import {ObjectIdTable} from '../../src/restore-set/oid-table.js';

describe('ObjectIdTable (the report keeps every restored ObjectId _id in it)', () => {
  it('answers like a Set of hex strings, through growth, with the collections holding each id', () => {
    const table = new ObjectIdTable(4);
    const truth = new Map<string, Set<number>>();
    const ids: Uint8Array[] = [];
    // Ids made the way drivers make them (same seconds, consecutive counters) and random ones.
    for (let i = 0; i < 20_000; i++) {
      const id = i % 2 === 0 ? new ObjectId().id : new Uint8Array(randomBytes(12));
      const collection = i % 5 === 0 ? 31 : i % 7 === 0 ? 40 : i % 3;
      table.add(id, collection);
      const hex = Buffer.from(id).toString('hex');
      truth.set(hex, (truth.get(hex) ?? new Set()).add(collection));
      ids.push(id);
    }
    // The same id again, from another collection.
    table.add(ids[0]!, 2);
    truth.get(Buffer.from(ids[0]!).toString('hex'))!.add(2);

    assert.equal(table.size, truth.size);
    assert.ok(table.capacity * 0.6 >= table.size);
    for (const id of ids) {
      const slot = table.slotOf(id);
      assert.ok(slot >= 0);
      assert.deepEqual(new Set(table.collectionsAt(slot)), truth.get(Buffer.from(id).toString('hex')));
    }
    for (let i = 0; i < 2_000; i++) {
      const absent = new Uint8Array(randomBytes(12));
      assert.equal(table.slotOf(absent) >= 0, truth.has(Buffer.from(absent).toString('hex')));
    }
    assert.equal(table.has(ids[0]!, 2), true);
    assert.equal(table.has(ids[1]!, 2), truth.get(Buffer.from(ids[1]!).toString('hex'))!.has(2));
  });
});
