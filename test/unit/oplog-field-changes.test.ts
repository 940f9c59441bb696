/**
 * The field paths an operation changes, for `changes`, `history` and `--changed-between --fields`:
 * read from the `$v:2` diff sections (OPLOG.md §2.3: d removes, u and i set, s… descends, array
 * `u<n>` sets an element, `l` resizes; an `i` of an unchanged value only re-orders), the `$v:1`
 * `$set`/`$unset` paths (§2.2), or a replacement compared with the document before it.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {OplogDecoder} from '../../src/oplog/decode.js';
import {changesAny, fieldChanges, touchesField} from '../../src/oplog/field-changes.js';
import {compareOpTime, formatOpTime, parseOpTime, startOfSecond} from '../../src/oplog/optime.js';
import type {DocumentOperation, FieldChanges} from '../../src/oplog/types.js';
import {D, bytes, deleteEntry, insertEntry, raw, updateEntry, type Doc} from '../support/oplog-entries.js';

const NS = 'shop.orders';
const KEY = D(['_id', 1]);
const opOf = (entry: Doc) => new OplogDecoder().decode(raw(entry))[0] as DocumentOperation;
const sorted = (c: FieldChanges) => ({set: [...c.set].sort(), unset: [...c.unset].sort(), nulled: [...c.nulled].sort()});
const diff = (d: Doc) => opOf(updateEntry(NS, KEY, D(['$v', 2], ['diff', d]), 10, 1));

describe('fieldChanges', () => {
  it('a $v:2 diff: deletes, updates (nulled when set to null), inserts, nested sub-diffs and array elements', () => {
    const op = diff(
      D(
        ['d', D(['old', false])],
        ['u', D(['phone', null], ['qty', 3])],
        ['i', D(['paidAt', new Date(0)])],
        ['saddr', D(['u', D(['city', 'Paris'])], ['d', D(['zip', false])])],
        ['stags', D(['a', true], ['u3', 'x'], ['s1', D(['u', D(['n', null])])])],
      ),
    );
    const pre = bytes(D(['_id', 1], ['old', 1], ['phone', '555'], ['qty', 2], ['addr', D(['city', 'Lyon'], ['zip', '69'])], ['tags', ['a', D(['n', 1]), 'c']]));
    assert.deepEqual(sorted(fieldChanges(op, pre)), {
      set: ['addr.city', 'paidAt', 'phone', 'qty', 'tags.1.n', 'tags.3'],
      unset: ['addr.zip', 'old'],
      nulled: ['phone', 'tags.1.n'],
    });
  });

  it('an `i` that only re-orders an unchanged field is no change; a resized array is', () => {
    const pre = bytes(D(['_id', 1], ['x', 'foo'], ['y', 'bar'], ['a', [1, 2, 3]]));
    assert.deepEqual(fieldChanges(diff(D(['i', D(['x', 'foo'])])), pre), {set: [], unset: [], nulled: []});
    assert.deepEqual(fieldChanges(diff(D(['i', D(['x', 'new'])])), pre).set, ['x']);
    assert.deepEqual(fieldChanges(diff(D(['sa', D(['a', true], ['l', 2])])), pre).set, ['a']);
    // Without the previous state an `i` counts as a set.
    assert.deepEqual(fieldChanges(diff(D(['i', D(['x', 'foo'])])), null).set, ['x']);
  });

  it('$v:1 modifiers: the $set and $unset paths as written', () => {
    const op = opOf(updateEntry(NS, KEY, D(['$v', 1], ['$set', D(['items.2', 'pen'], ['phone', null])], ['$unset', D(['note', true])]), 10, 1));
    assert.deepEqual(sorted(fieldChanges(op, null)), {set: ['items.2', 'phone'], unset: ['note'], nulled: ['phone']});
  });

  it('a replacement compared with the document before it, sub-documents field by field', () => {
    const op = opOf(updateEntry(NS, KEY, D(['_id', 1], ['a', 1], ['sub', D(['k', 2], ['m', null])], ['n', null]), 10, 1));
    const pre = bytes(D(['_id', 1], ['a', 1], ['b', 5], ['sub', D(['k', 1], ['m', 3])]));
    assert.deepEqual(sorted(fieldChanges(op, pre)), {set: ['n', 'sub.k', 'sub.m'], unset: ['b'], nulled: ['n', 'sub.m']});
  });

  it('an insert sets every field but _id; a delete unsets every field it had', () => {
    assert.deepEqual(fieldChanges(opOf(insertEntry(NS, D(['_id', 1], ['a', 1], ['b', null]), 10, 1)), null), {set: ['a', 'b'], unset: [], nulled: ['b']});
    assert.deepEqual(fieldChanges(opOf(deleteEntry(NS, KEY, 10, 2)), bytes(D(['_id', 1], ['a', 1]))), {set: [], unset: ['a'], nulled: []});
    assert.deepEqual(fieldChanges(opOf(deleteEntry(NS, KEY, 10, 2)), null), {set: [], unset: [], nulled: []});
  });

  it('--fields matching: a path concerns a field when it is the field, inside it, or contains it', () => {
    assert.ok(touchesField('title', 'title'));
    assert.ok(touchesField('addr.city', 'addr'));
    assert.ok(touchesField('addr', 'addr.city'));
    assert.ok(!touchesField('address', 'addr'));
    assert.ok(changesAny({set: ['a.b'], unset: [], nulled: []}, ['x', 'a']));
    assert.ok(!changesAny({set: ['ab'], unset: ['c'], nulled: []}, ['a']));
  });
});

describe('optime', () => {
  it('compares (t, i) as unsigned pairs (OPLOG.md §9)', () => {
    assert.ok(compareOpTime({t: 1, i: 0xffffffff}, {t: 2, i: 0}) < 0);
    assert.ok(compareOpTime({t: 0x80000000, i: 0}, {t: 0x7fffffff, i: 5}) > 0);
    assert.ok(compareOpTime({t: 5, i: 0x80000000}, {t: 5, i: 1}) > 0);
    assert.equal(compareOpTime({t: 5, i: 1}, {t: 5, i: 1}), 0);
  });

  it('formats and parses Timestamp(t, i) and its Extended JSON', () => {
    assert.equal(formatOpTime({t: 1710000000, i: 3}), 'Timestamp(1710000000, 3)');
    assert.deepEqual(parseOpTime('Timestamp(1710000000, 3)'), {t: 1710000000, i: 3});
    assert.deepEqual(parseOpTime('{"$timestamp": {"t": 4294967295, "i": 1}}'), {t: 4294967295, i: 1});
    assert.deepEqual(parseOpTime('12:7'), {t: 12, i: 7});
    assert.throws(() => parseOpTime('Timestamp(4294967296, 0)'), /out of range/);
    assert.throws(() => parseOpTime('yesterday'), /not an oplog time/);
    assert.deepEqual(startOfSecond(99), {t: 99, i: 0});
  });
});
