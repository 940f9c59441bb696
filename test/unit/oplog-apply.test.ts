/**
 * Applying operations to exact bytes, as mongod applies oplog entries. Each expected document is
 * built by python3-bson (an independent encoder), so field order and value types are checked byte for
 * byte. Sources: OPLOG.md §2.2 ($v:1, mongodb/mongo `update_object_node.h`, VER, PATHNV), §2.3 ($v:2,
 * `document_diff_serialization.cpp` SER, `document_diff_applier.cpp` APPLY50/APPLY-NEW, the worked
 * examples table), §5 (idempotency rules, `oplog.cpp` OPLOGCPP), §9 and §10 traps 6, 7, 8, 12, 13;
 * replacements: mongodb/mongo `object_replace_executor.cpp`.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {Decimal128, Double, Int32, Long, ObjectId} from 'bson';

import {GravityError} from '../../src/errors.js';
import {applyOperation, replayOperation, type ApplyMode} from '../../src/oplog/apply/index.js';
import {OplogDecoder} from '../../src/oplog/decode.js';
import type {DocumentOperation} from '../../src/oplog/types.js';
import {D, bytes, deleteEntry, insertEntry, noPython, pythonDocs, raw, updateEntry, type Doc} from '../support/oplog-entries.js';

const NS = 'shop.orders';
const py = pythonDocs(String.raw`
out['ex1'] = S(('_id', 1), ('p', 'keep'))
out['ex2'] = S(('_id', 1), ('x', 's'), ('y', 999), ('a', 'foo'))
out['ex3'] = S(('_id', 1), ('sub', S(('a', 1), ('b', 2), ('c', 'foo'))))
out['ex4'] = S(('_id', 1), ('z', 'baz'), ('y', 'bar'), ('x', 'foo'))
out['ex5'] = S(('_id', 1), ('a', [1, 2, 3, 4, 5]))
out['ex6'] = S(('_id', 1), ('a', [1, 2]))
out['ex7'] = S(('_id', 1), ('a', [1, S(('b', 9),)]))
out['ex8'] = S(('_id', 1), ('a', [1, 2, 3, 4]))
out['uMissing'] = S(('_id', 1), ('x', 1), ('m', 5), ('n', 6))
out['onlyId'] = S(('_id', 1),)
out['mismatchDoc'] = S(('_id', 1), ('sub', None), ('z', 1))
out['mismatchArr'] = S(('_id', 1), ('a', None))
out['pad'] = S(('_id', 1), ('a', [1, None, None]))
out['padU'] = S(('_id', 1), ('a', [1, None, None, 'x']))
out['move'] = S(('_id', 1), ('y', 2), ('x', 1))
out['dMissing'] = S(('_id', 1), ('x', 1))
out['intKeys'] = S(('_id', 1), ('sub', S(('10', 8), ('2', -8), ('b', 1))), ('top', 2))
out['intKeysSub'] = S(('_id', 1), ('sub', S(('10', 8), ('2', -9), ('b', 1))), ('top', 1))
out['types'] = S(('_id', Int64(5)), ('d', Decimal128('1.10')), ('l', Int64(8)), ('f', 1.0), ('i', 1), ('big', Int64(9007199254740993)))
out['typesV1'] = S(('_id', Int64(5)), ('d', Decimal128('1.10')), ('l', Int64(7)), ('f', 2.0), ('i', 1), ('big', Int64(9007199254740993)))
out['nestedArr'] = S(('_id', 1), ('m', [[1, 2], S(('k', [S(('z', 1), ('y', 3))]),)]))
out['v1lex'] = S(('_id', 10), ('a', 2), ('z', 1))
out['v1items'] = S(('_id', 1), ('items', ['a', 'b', 'pen']), ('qty', 3))
out['v1pad'] = S(('_id', 1), ('items', ['a', 'b', None, None, None, 'x']))
out['v1create'] = S(('_id', 1), ('k', 0), ('a', S(('b', S(('c', 1),)),)))
out['v1createIn'] = S(('_id', 1), ('a', S(('x', 0), ('b', S(('c', 1), ('d', 2))))))
out['v1numericDoc'] = S(('_id', 1), ('a', S(('0', 1),)))
out['v1unsetArr'] = S(('_id', 1), ('arr', [1, None, 3]))
out['v1inPlace'] = S(('_id', 1), ('a', 1), ('b', 3), ('c', 1), ('n', 'new'))
out['v1notViable'] = S(('_id', 1), ('x', 5), ('c', 1))
out['v1sub'] = S(('_id', 1), ('sub', S(('10', 8), ('2', 7), ('b', 1))))
out['v1arrDoc'] = S(('_id', 1), ('arr', [S(('q', 1), ('r', 2)), S(('q', 5),)]))
out['dotted'] = S(('_id', 1), ('a.b', S(('c', 2),)), ('a', S(('b', 1),)), ('\u00e9t\u00e9', 'summer'), ('$price', 5))
out['repl'] = S(('_id', 1), ('z', 1), ('10', 2), ('a', Decimal128('0.10')))
out['replNoId'] = S(('_id', 1), ('q', 2), ('10', 1))
`);

/** A decoded DocumentOperation from an entry, as the replayer receives it. */
function opOf(entry: Doc): DocumentOperation {
  const ops = new OplogDecoder().decode(raw(entry));
  assert.equal(ops.length, 1);
  return ops[0] as DocumentOperation;
}

const KEY = D(['_id', 1]);
const diffEntry = (diff: Doc, id: unknown = 1) => updateEntry(NS, D(['_id', id]), D(['$v', 2], ['diff', diff]), 1710000001, 1);
const v1Entry = (o: [string, Doc][]) => {
  // 4.4's format: `h: NumberLong(0)` still present, `$v: 1` modifiers (OPLOG.md §1, §2.1).
  const e = updateEntry(NS, KEY, D(['$v', 1], ...o), 1600000000, 1);
  e.set('h', Long.fromNumber(0));
  return e;
};

function apply(pre: Doc, entry: Doc, mode: ApplyMode = 'strict'): Buffer | null {
  return applyOperation(bytes(pre), opOf(entry), {mode});
}

function expectRefused(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof GravityError, String(error));
    assert.equal(error.code, 'OPLOG_UNSUPPORTED');
    assert.match(error.message, pattern);
    // The message names the namespace, the _id and the optime.
    assert.match(error.message, /shop\.orders _id .* at Timestamp\(\d+, \d+\)/);
    return true;
  });
}

describe('$v:2 diffs: the worked examples of OPLOG.md §2.3', {skip: noPython}, () => {
  const cases: [string, Doc, Doc][] = [
    ['ex1', D(['_id', 1], ['x', 3], ['y', 3], ['p', 'keep']), D(['d', D(['x', false], ['y', false])])],
    ['ex2', D(['_id', 1], ['x', 's'], ['y', 0]), D(['u', D(['y', 999])], ['i', D(['a', 'foo'])])],
    ['ex3', D(['_id', 1], ['sub', D(['a', 1], ['b', 2])]), D(['ssub', D(['i', D(['c', 'foo'])])])],
    ['ex4', D(['_id', 1], ['x', 'foo'], ['y', 'bar'], ['z', 'baz']), D(['i', D(['y', 'bar'], ['x', 'foo'])])],
    ['ex5', D(['_id', 1], ['a', [1, 2, 3]]), D(['sa', D(['a', true], ['u3', 4], ['u4', 5])])],
    ['ex6', D(['_id', 1], ['a', [1, 2, 3]]), D(['sa', D(['a', true], ['l', 2])])],
    ['ex7', D(['_id', 1], ['a', [1, D(['b', 10]), 3]]), D(['sa', D(['a', true], ['l', 2], ['s1', D(['u', D(['b', 9])])])])],
    ['ex8', D(['_id', 1], ['a', [1, 2, 999, 3, 4]]), D(['sa', D(['a', true], ['l', 4], ['u2', 3], ['u3', 4])])],
  ];
  for (const [name, pre, diff] of cases) {
    it(`${name}: ${JSON.stringify(Object.fromEntries(diff))}`, () => {
      assert.deepEqual(apply(pre, diffEntry(diff)), py[name]);
    });
  }
});

describe('$v:2 application rules (OPLOG.md §2.3, APPLY50/APPLY-NEW; traps 7 and 8)', {skip: noPython}, () => {
  it('`i` of an existing field moves it to the end, never duplicating it (existence always checked, trap 8)', () => {
    assert.deepEqual(apply(D(['_id', 1], ['x', 1], ['y', 2]), diffEntry(D(['i', D(['x', 1])]))), py.move);
  });

  it('`d` of a missing field is a no-op', () => {
    assert.deepEqual(apply(D(['_id', 1], ['x', 1]), diffEntry(D(['d', D(['gone', false])]))), py.dMissing);
  });

  it('`l` pads with null, and a `u` past the end pads up to it', () => {
    assert.deepEqual(apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['l', 3])]))), py.pad);
    assert.deepEqual(apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['u3', 'x'])]))), py.padU);
  });

  it('sub-diffs nest through arrays of arrays and documents in arrays', () => {
    const pre = D(['_id', 1], ['m', [[1], D(['k', [D(['y', 3])]])]]);
    const diff = D(['sm', D(['a', true], ['s0', D(['a', true], ['u1', 2])], ['s1', D(['sk', D(['a', true], ['s0', D(['i', D(['z', 1], ['y', 3])])])])])]);
    assert.deepEqual(apply(pre, diffEntry(diff)), py.nestedArr);
  });

  describe('where the document is not the pre-image the entry was written against', () => {
    it('idempotent mode (inside a dump\'s capture window) does what mongod does: a missing `u` field is appended before the `i` fields', () => {
      const result = replayOperation(bytes(D(['_id', 1], ['x', 1])), opOf(diffEntry(D(['u', D(['m', 5])], ['i', D(['n', 6])]))), {mode: 'idempotent'});
      assert.deepEqual(result.doc, py.uMissing);
      assert.deepEqual(result.provisional, ['m']);
    });

    it('idempotent mode: a sub-diff of a missing field creates nothing', () => {
      assert.deepEqual(apply(D(['_id', 1]), diffEntry(D(['sq', D(['u', D(['a', 1])])])), 'idempotent'), py.onlyId);
    });

    it('idempotent mode: a type mismatch writes null ("some future oplog entry will re-write the value", APPLY50)', () => {
      assert.deepEqual(apply(D(['_id', 1], ['sub', 5], ['z', 1]), diffEntry(D(['ssub', D(['u', D(['a', 1])])])), 'idempotent'), py.mismatchDoc);
      assert.deepEqual(apply(D(['_id', 1], ['a', D(['x', 1])]), diffEntry(D(['sa', D(['a', true], ['u0', 1])])), 'idempotent'), py.mismatchArr);
    });

    it('strict mode (a consistent base) refuses each of them: the result would not be what the primary held', () => {
      expectRefused(() => apply(D(['_id', 1], ['x', 1]), diffEntry(D(['u', D(['m', 5])]))), /update of a field that is not there at "m"/);
      expectRefused(() => apply(D(['_id', 1]), diffEntry(D(['sq', D(['u', D(['a', 1])])]))), /sub-diff of a field that is not there at "q"/);
      expectRefused(() => apply(D(['_id', 1], ['sub', 5]), diffEntry(D(['ssub', D(['u', D(['a', 1])])]))), /document diff meeting a value of BSON type 0x10 at "sub"/);
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['s4', D(['u', D(['b', 1])])])]))), /array element that is not there at "a\.4"/);
    });
  });

  describe('what cannot be applied exactly is refused, naming ns, _id and ts', () => {
    const pre = D(['_id', 1], ['x', 1]);
    it('a binary (`b`) section (time-series buckets only)', () => {
      expectRefused(() => apply(pre, diffEntry(D(['b', D(['x', D(['o', 0], ['d', Buffer.alloc(1)])])]))), /binary \("b"\) section/);
    });
    it('an unknown section letter', () => {
      expectRefused(() => apply(pre, diffEntry(D(['q', D(['x', 1])]))), /unknown section "q"/);
    });
    it('sections out of the order the server writes (d, u, i, b, then s…)', () => {
      expectRefused(() => apply(pre, diffEntry(D(['u', D(['x', 2])], ['d', D(['y', false])]))), /section "d" out of order/);
      expectRefused(() => apply(pre, diffEntry(D(['sx', D(['u', D(['y', 2])])], ['i', D(['y', 2])]))), /section "i" out of order/);
    });
    it('a malformed array diff', () => {
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['x0', 1])]))), /unexpected key "x0"/);
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['u2', 1], ['u1', 1])]))), /not ascending/);
      expectRefused(() => apply(D(['_id', 1], ['a', [1, 2, 3]]), diffEntry(D(['sa', D(['a', true], ['l', 1], ['u2', 1])]))), /past the new length/);
    });
    it('an empty diff or sub-diff, and an array length that is not an Int32 (SER assertDiffNonEmpty, checkSection)', () => {
      expectRefused(() => apply(pre, diffEntry(D())), /empty/);
      expectRefused(() => apply(D(['_id', 1], ['s', D()]), diffEntry(D(['ss', D()]))), /empty/);
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['l', Long.fromNumber(1)])]))), /length/);
    });
    it('an array index or length no 16 MiB document can reach (no padding loop of a billion nulls)', () => {
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['u999999999', 1])]))), /past what a 16 MiB document can hold/);
      expectRefused(() => apply(D(['_id', 1], ['a', [1]]), diffEntry(D(['sa', D(['a', true], ['l', 2_000_000_000])]))), /length/);
    });
    it('a field named twice in one diff', () => {
      expectRefused(() => apply(pre, diffEntry(D(['u', D(['x', 2])], ['i', D(['x', 3])]))), /appears twice/);
    });
    it('an update of unknown version', () => {
      expectRefused(() => applyOperation(bytes(pre), opOf(updateEntry(NS, KEY, D(['$v', 3], ['diff', D()]), 1710000001, 1))), /\$v:3/);
    });
    it('an ObjectId _id is shown in Extended JSON', () => {
      const id = D(['_id', new ObjectId('65f0c0ffee0000000000abcd')]);
      const entry = updateEntry(NS, id, D(['$v', 2], ['diff', D(['q', D()])]), 1710000001, 7);
      assert.throws(() => applyOperation(bytes(D(['_id', 1])), opOf(entry)), /shop\.orders _id \{"\$oid":"65f0c0ffee0000000000abcd"\} at Timestamp\(1710000001, 7\)/);
    });
  });
});

describe('field names as bytes (OPLOG.md §2.3: "s" + name verbatim, never split on dots)', {skip: noPython}, () => {
  it('a sub-diff of a field named "a.b", a non-ASCII name and a $-led name (legal since 5.0)', () => {
    const pre = D(['_id', 1], ['a.b', D(['c', 1])], ['a', D(['b', 1])], ['été', 'winter'], ['$price', 4]);
    const diff = D(['u', D(['été', 'summer'], ['$price', 5])], ['sa.b', D(['u', D(['c', 2])])]);
    assert.deepEqual(apply(pre, diffEntry(diff)), py.dotted);
  });
});

describe('exact bytes: integer-like keys never move, numeric types and bytes survive (OPLOG.md §9, trap 13)', {skip: noPython}, () => {
  const intKeys = () => D(['_id', 1], ['sub', D(['10', 8], ['2', -8], ['b', 1])], ['top', 1]);

  it('a $v:2 update of another field leaves a sub-document with keys "10", "2" in stored order', () => {
    assert.deepEqual(apply(intKeys(), diffEntry(D(['u', D(['top', 2])]))), py.intKeys);
  });

  it('a $v:2 sub-diff and a $v:1 dotted $set inside that sub-document keep the order too', () => {
    assert.deepEqual(apply(intKeys(), diffEntry(D(['ssub', D(['u', D(['2', -9])])]))), py.intKeysSub);
    const pre = D(['_id', 1], ['sub', D(['10', 8], ['2', -8], ['b', 1])]);
    assert.deepEqual(apply(pre, v1Entry([['$set', D(['sub.2', 7])]])), py.v1sub);
  });

  it('Decimal128, Int64 (above 2^53) and a whole-number Double keep their types and bytes', () => {
    const pre = D(['_id', Long.fromNumber(5)], ['d', Decimal128.fromString('1.10')], ['l', Long.fromNumber(7)], ['f', new Double(1)], ['i', new Int32(1)], ['big', Long.fromString('9007199254740993')]);
    assert.deepEqual(apply(pre, diffEntry(D(['u', D(['l', Long.fromNumber(8)])]), Long.fromNumber(5))), py.types);
    const v1 = updateEntry(NS, D(['_id', Long.fromNumber(5)]), D(['$v', 1], ['$set', D(['f', new Double(2)])]), 1600000000, 1);
    assert.deepEqual(apply(pre, v1), py.typesV1);
  });
});

describe('$v:1 modifier updates of a 4.4 oplog (OPLOG.md §2.2, trap 12)', {skip: noPython}, () => {
  it('fields one update creates come out in lexicographic order: {$set: {z: 1, a: 2}} on {_id: 10} (VER, mongo commit 5bac585)', () => {
    const entry = updateEntry(NS, D(['_id', 10]), D(['$v', 1], ['$set', D(['z', 1], ['a', 2])]), 1600000000, 1);
    entry.set('h', Long.fromNumber(0));
    assert.deepEqual(applyOperation(bytes(D(['_id', 10])), opOf(entry)), py.v1lex);
  });

  it('the OPLOG.md §1 example: $set of an array element and a field, $unset of another', () => {
    const pre = D(['_id', 1], ['items', ['a', 'b', 'c']], ['note', 'x'], ['qty', 2]);
    assert.deepEqual(apply(pre, v1Entry([['$set', D(['qty', 3], ['items.2', 'pen'])], ['$unset', D(['note', true])]])), py.v1items);
  });

  it('a $set past the end of an array pads with null', () => {
    assert.deepEqual(apply(D(['_id', 1], ['items', ['a', 'b']]), v1Entry([['$set', D(['items.5', 'x'])]])), py.v1pad);
  });

  it('missing parents are created as documents, nested, after the existing fields', () => {
    assert.deepEqual(apply(D(['_id', 1], ['k', 0]), v1Entry([['$set', D(['a.b.c', 1])]])), py.v1create);
    assert.deepEqual(apply(D(['_id', 1], ['a', D(['x', 0])]), v1Entry([['$set', D(['a.b.d', 2], ['a.b.c', 1])]])), py.v1createIn);
    // A numeric component creates a document field "0", not an array.
    assert.deepEqual(apply(D(['_id', 1]), v1Entry([['$set', D(['a.0', 1])]])), py.v1numericDoc);
  });

  it('$unset of an array element sets it to null; of a missing field does nothing', () => {
    assert.deepEqual(apply(D(['_id', 1], ['arr', [1, 2, 3]]), v1Entry([['$unset', D(['arr.1', true], ['nothere', true])]])), py.v1unsetArr);
  });

  it('an existing field is set in place, a new one appended', () => {
    assert.deepEqual(apply(D(['_id', 1], ['a', 1], ['b', 2], ['c', 1]), v1Entry([['$set', D(['n', 'new'], ['b', 3])]])), py.v1inPlace);
  });

  it('paths through documents inside arrays', () => {
    const pre = D(['_id', 1], ['arr', [D(['q', 1]), D(['q', 2])]]);
    assert.deepEqual(apply(pre, v1Entry([['$set', D(['arr.0.r', 2], ['arr.1.q', 5])]])), py.v1arrDoc);
  });

  it('a path through a scalar is a no-op during oplog application (PATHNV) in idempotent mode, refused in strict mode', () => {
    const pre = D(['_id', 1], ['x', 5]);
    const entry = v1Entry([['$set', D(['x.y', 1], ['c', 1])]]);
    assert.deepEqual(apply(pre, entry, 'idempotent'), py.v1notViable);
    expectRefused(() => apply(pre, entry), /\$set through a value that is not a document or array at "x\.y"/);
  });

  it('new sibling fields "9" and "10" (ordered differently by server generations) are refused', () => {
    expectRefused(() => apply(D(['_id', 1]), v1Entry([['$set', D(['9', 1], ['10', 2])]])), /server versions order differently/);
  });

  it('an operator other than $set / $unset is refused', () => {
    expectRefused(() => apply(D(['_id', 1], ['n', 1]), v1Entry([['$inc', D(['n', 1])]])), /operator "\$inc"/);
  });

  it('a $-led `o` without $v is a modifier update (older entries, OPLOG.md §2.1)', () => {
    const entry = updateEntry(NS, KEY, D(['$set', D(['z', 1], ['a', 2])]), 1500000000, 1);
    assert.equal(opOf(entry).kind, 'update');
    assert.deepEqual(
      applyOperation(bytes(D(['_id', 1])), opOf(entry)),
      bytes(D(['_id', 1], ['a', 2], ['z', 1])),
    );
  });
});

describe('replacements, inserts and deletes (OPLOG.md §2.1, §5; object_replace_executor.cpp)', {skip: noPython}, () => {
  it('a replacement is the logged document, as is', () => {
    const o = D(['_id', 1], ['z', 1], ['10', 2], ['a', Decimal128.fromString('0.10')]);
    const op = opOf(updateEntry(NS, KEY, o, 1710000002, 1));
    assert.equal(op.kind, 'replace');
    assert.deepEqual(applyOperation(bytes(D(['_id', 1], ['old', true])), op), py.repl);
  });

  it('an old replacement without _id keeps the document\'s _id first', () => {
    const op = opOf(updateEntry(NS, KEY, D(['q', 2], ['10', 1]), 1400000000, 1));
    assert.equal(op.kind, 'replace');
    assert.deepEqual(applyOperation(bytes(D(['_id', 1], ['old', true])), op), py.replNoId);
  });

  it('an insert on an existing _id replaces the document (OPLOG.md §5 rule 3)', () => {
    const doc = D(['_id', 1], ['z', 1], ['10', 2], ['a', Decimal128.fromString('0.10')]);
    const result = replayOperation(bytes(D(['_id', 1], ['old', true])), opOf(insertEntry(NS, doc, 1710000003, 1)));
    assert.equal(result.outcome, 'insert-over-existing');
    assert.deepEqual(result.doc, py.repl);
    assert.equal(replayOperation(null, opOf(insertEntry(NS, doc, 1710000003, 1))).outcome, 'inserted');
  });

  it('a delete removes the document; of a missing one is a no-op', () => {
    const op = opOf(deleteEntry(NS, KEY, 1710000004, 1));
    assert.equal(applyOperation(bytes(D(['_id', 1])), op), null);
    assert.equal(replayOperation(null, op).outcome, 'delete-on-missing');
  });

  it('an update or replacement of a missing document is not upserted, and says so (OPLOG.md §5 rule 4, trap 6)', () => {
    const missed: string[] = [];
    const onMissing = (outcome: string) => missed.push(outcome);
    assert.equal(applyOperation(null, opOf(diffEntry(D(['u', D(['x', 2])]))), {onMissing}), null);
    assert.equal(applyOperation(null, opOf(v1Entry([['$set', D(['x', 2])]])), {onMissing}), null);
    assert.equal(applyOperation(null, opOf(updateEntry(NS, KEY, D(['_id', 1], ['x', 2]), 1710000005, 1)), {onMissing}), null);
    assert.deepEqual(missed, ['update-on-missing', 'update-on-missing', 'update-on-missing']);
  });
});
