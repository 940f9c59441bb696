/**
 * Property: for random pre- and post-images, a `$v:2` diff of the kind mongod writes (OPLOG.md §2.3,
 * from CALC `document_diff_calculator.cpp` and V2LB: unchanged fields omitted, changed ones `u` in
 * place, removed ones `d`, changes inside sub-documents and arrays as `s…` sub-diffs, array growth as
 * `u<index>`, shrinking as `l`, and fields out of order deleted and re-inserted at the end with `i`)
 * applied to the pre-image gives the post-image byte for byte. The diff is computed here from the
 * two images by those rules, independently of the applier, which never sees the post-image.
 * Keys include integer-like names ("0", "10", "2") and dotted ones, values several numeric types.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Double, Long} from 'bson';
import fc from 'fast-check';

import {applyDocDiff} from '../../src/oplog/apply/diff-v2.js';
import {ApplyContext} from '../../src/oplog/apply/context.js';

type Value = number | string | null | Long | Double | Doc | Value[];
type Doc = Map<string, Value>;

const KEYS = ['a', 'b', 'c', 'x.y', '0', '1', '2', '10', '_z', 'é'];

const leaf: fc.Arbitrary<Value> = fc.oneof(
  fc.integer({min: -2, max: 2}),
  fc.constantFrom('x', 'y', ''),
  fc.constant(null),
  fc.integer({min: -2, max: 2}).map((n) => Long.fromNumber(n)),
  fc.constantFrom(new Double(1), new Double(1.5)),
);

const {value} = fc.letrec<{value: Value; doc: Doc; arr: Value[]}>((tie) => ({
  value: fc.oneof({depthSize: 'small', withCrossShrink: true}, leaf, tie('doc'), tie('arr')),
  doc: fc.array(fc.tuple(fc.constantFrom(...KEYS), tie('value')), {maxLength: 5}).map((pairs) => new Map(pairs)),
  arr: fc.array(tie('value'), {maxLength: 4}),
}));
const docArb = fc.array(fc.tuple(fc.constantFrom(...KEYS), value), {maxLength: 6}).map((pairs) => new Map(pairs));

const isDoc = (v: Value): v is Doc => v instanceof Map;
const bytesOf = (v: Value) => Buffer.from(BSON.serialize(new Map([['v', v]])));
const same = (a: Value, b: Value) => bytesOf(a).equals(bytesOf(b));

/** The diff mongod would log for pre → post (null when nothing changed). */
function diffDoc(pre: Doc, post: Doc): Doc | null {
  const preKeys = [...pre.keys()];
  const d = new Map<string, boolean>();
  const u = new Map<string, Value>();
  const i = new Map<string, Value>();
  const s = new Map<string, Value>();
  let last = -1;
  let appending = false;
  for (const [k, v] of post) {
    const pos = preKeys.indexOf(k);
    if (!appending && pos > last) {
      // Kept in place: fields before it in the pre-image either stay in front or are deleted / re-inserted.
      last = pos;
      const old = pre.get(k)!;
      if (same(old, v)) continue;
      const sub = isDoc(old) && isDoc(v) ? diffDoc(old, v) : Array.isArray(old) && Array.isArray(v) ? diffArray(old, v) : undefined;
      if (sub === undefined) u.set(k, v);
      else if (sub !== null) s.set(`s${k}`, sub);
      continue;
    }
    // Out of order: deleted from its place (if there) and inserted at the end, as are all after it.
    appending = true;
    i.set(k, v);
  }
  for (const k of preKeys) if (!post.has(k)) d.set(k, false);
  const out = new Map<string, Value>();
  if (d.size) out.set('d', d as unknown as Value);
  if (u.size) out.set('u', u);
  if (i.size) out.set('i', i);
  for (const [k, v] of s) out.set(k, v);
  return out.size ? out : null;
}

function diffArray(pre: Value[], post: Value[]): Doc | null {
  const out = new Map<string, Value>([['a', true as unknown as Value]]);
  if (post.length < pre.length) out.set('l', post.length);
  for (let n = 0; n < post.length; n++) {
    const v = post[n]!;
    if (n < pre.length) {
      const old = pre[n]!;
      if (same(old, v)) continue;
      const sub = isDoc(old) && isDoc(v) ? diffDoc(old, v) : Array.isArray(old) && Array.isArray(v) ? diffArray(old, v) : undefined;
      if (sub === undefined) out.set(`u${n}`, v);
      else if (sub !== null) out.set(`s${n}`, sub);
    } else {
      out.set(`u${n}`, v);
    }
  }
  return out.size > 1 ? out : null;
}

describe('$v:2 diffs written by the server\'s rules reproduce the post-image exactly', () => {
  it('for random pre- and post-images (1,000 pairs)', () => {
    fc.assert(
      fc.property(docArb, docArb, (pre, post) => {
        const diff = diffDoc(pre, post);
        fc.pre(diff !== null);
        const out = applyDocDiff(Buffer.from(BSON.serialize(pre)), Buffer.from(BSON.serialize(diff!)), new ApplyContext('strict'));
        assert.deepEqual(out, Buffer.from(BSON.serialize(post)));
      }),
      {numRuns: 1000},
    );
  });

  it('for a post-image derived from the pre-image by small edits (1,000 pairs)', () => {
    const edited = docArb.chain((pre) =>
      fc
        .array(fc.tuple(fc.constantFrom('drop', 'set', 'move', 'keep'), fc.constantFrom(...KEYS), value), {maxLength: 4})
        .map((edits) => {
          const post = new Map(pre);
          for (const [kind, key, v] of edits) {
            if (kind === 'drop') post.delete(key);
            else if (kind === 'set') post.set(key, v);
            else if (kind === 'move' && post.has(key)) {
              const moved = post.get(key)!;
              post.delete(key);
              post.set(key, moved);
            }
          }
          return [pre, post] as const;
        }),
    );
    fc.assert(
      fc.property(edited, ([pre, post]) => {
        const diff = diffDoc(pre, post);
        fc.pre(diff !== null);
        const out = applyDocDiff(Buffer.from(BSON.serialize(pre)), Buffer.from(BSON.serialize(diff!)), new ApplyContext('strict'));
        assert.deepEqual(out, Buffer.from(BSON.serialize(post)));
      }),
      {numRuns: 1000},
    );
  });
});
