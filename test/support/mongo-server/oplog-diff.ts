/**
 * The `$v: 2` update description of an oplog entry, computed from a document's pre- and post-image
 * as mongod computes it for pipeline updates (OPLOG.md §2.3; mongodb/mongo
 * src/mongo/db/update/document_diff_calculator.cpp `computeDocDiff`, `computeArrayDiff`,
 * `computeOplogDiff`; serialised as src/mongo/db/update/document_diff_serialization.cpp writes it).
 *
 * mongod builds the diff of an operator update from the operators themselves (v2_log_builder.h);
 * applied to the pre-image, both give the same post-image, which is what a replayer depends on.
 *
 * Document level, walking both images in order:
 * - a field binary-equal in both is skipped;
 * - same name, both documents or both arrays: a sub-diff (`s<name>`), or `u` when the sub-diff would
 *   not be smaller than the post value;
 * - same name otherwise: `u` (kept in place when applied);
 * - different names: the pre field is remembered as a possible delete and only the pre side advances;
 * - pre fields left over: `d`; post fields left over: `i` (appended when applied, which is how a
 *   field that moved is re-ordered), and a remembered delete that is re-inserted is not deleted.
 * Sections are written `d`, `u`, `i`, then every `s…`, each in the order its entries were added;
 * remembered deletes come after the left-over ones, in byte order (a `std::set<StringData>`).
 * Array level (`a: true`): elements by position; `u<i>` for a changed or appended element, `s<i>` for
 * a sub-diff, `l` (new length) when the array shrank; entries in index order.
 * The whole diff is used only when smaller than the post-image; otherwise the entry is a replacement
 * (`computeOplogDiff`: "diff.objsize() < post.objsize()").
 */
import {BArr, BDoc, BT, BVal, type Value} from './tree.js';

type DocNode = {
  kind: 'doc';
  deletes: string[];
  updates: Array<[string, Value]>;
  inserts: Array<[string, Value]>;
  subs: Array<[string, DiffNode]>;
};
type ArrNode = {kind: 'arr'; resize: number | undefined; children: Map<number, {u: Value} | {s: DiffNode}>};
type DiffNode = DocNode | ArrNode;

const TRUE = new BVal(BT.BOOL, Buffer.of(1));
const FALSE = new BVal(BT.BOOL, Buffer.of(0));

function int32(n: number): BVal {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n, 0);
  return new BVal(BT.INT32, b);
}

function binaryEqual(a: Value, b: Value): boolean {
  return a.type === b.type && a.bytes.equals(b.bytes);
}

function isContainer(v: Value): v is BDoc | BArr {
  return v instanceof BDoc || v instanceof BArr;
}

function serialize(node: DiffNode): BDoc {
  if (node.kind === 'arr') {
    const entries: Array<[string, Value]> = [['a', TRUE]];
    if (node.resize !== undefined) entries.push(['l', int32(node.resize)]);
    for (const [i, c] of [...node.children.entries()].sort(([x], [y]) => x - y)) {
      entries.push('u' in c ? [`u${i}`, c.u] : [`s${i}`, serialize(c.s)]);
    }
    return BDoc.fromEntries(entries);
  }
  const entries: Array<[string, Value]> = [];
  if (node.deletes.length) entries.push(['d', BDoc.fromEntries(node.deletes.map((k) => [k, FALSE] as const))]);
  if (node.updates.length) entries.push(['u', BDoc.fromEntries(node.updates)]);
  if (node.inserts.length) entries.push(['i', BDoc.fromEntries(node.inserts)]);
  for (const [k, s] of node.subs) entries.push([`s${k}`, serialize(s)]);
  return BDoc.fromEntries(entries);
}

/** A sub-diff, or undefined when it would not be smaller than the post value (then the caller logs `u`). */
function subDiff(pre: BDoc | BArr, post: BDoc | BArr): DiffNode | undefined {
  const node = pre instanceof BDoc ? docDiff(pre, post as BDoc) : arrDiff(pre, post as BArr);
  return serialize(node).bytes.length < post.bytes.length ? node : undefined;
}

function docDiff(pre: BDoc, post: BDoc): DocNode {
  const node: DocNode = {kind: 'doc', deletes: [], updates: [], inserts: [], subs: []};
  const remembered = new Set<string>();
  let p = 0;
  let q = 0;
  while (p < pre.entries.length && q < post.entries.length) {
    const [pk, pv] = pre.entries[p]!;
    const [qk, qv] = post.entries[q]!;
    if (pk === qk && binaryEqual(pv, qv)) {
      p++;
      q++;
      continue;
    }
    if (pk === qk) {
      const sub = isContainer(pv) && pv.type === qv.type ? subDiff(pv, qv as BDoc | BArr) : undefined;
      if (sub) node.subs.push([pk, sub]);
      else node.updates.push([pk, qv]);
      p++;
      q++;
    } else {
      remembered.add(pk);
      p++;
    }
  }
  for (; p < pre.entries.length; p++) node.deletes.push(pre.entries[p]![0]);
  for (; q < post.entries.length; q++) {
    const [k, v] = post.entries[q]!;
    node.inserts.push([k, v]);
    remembered.delete(k);
  }
  const sorted = [...remembered].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
  node.deletes.push(...sorted);
  return node;
}

function arrDiff(pre: BArr, post: BArr): ArrNode {
  const node: ArrNode = {kind: 'arr', resize: undefined, children: new Map()};
  const n = Math.min(pre.items.length, post.items.length);
  for (let i = 0; i < n; i++) {
    const a = pre.items[i]!;
    const b = post.items[i]!;
    if (binaryEqual(a, b)) continue;
    const sub = isContainer(a) && a.type === b.type ? subDiff(a, b as BDoc | BArr) : undefined;
    node.children.set(i, sub ? {s: sub} : {u: b});
  }
  for (let i = n; i < post.items.length; i++) node.children.set(i, {u: post.items[i]!});
  if (pre.items.length > post.items.length) node.resize = post.items.length;
  return node;
}

/** The `$v: 2` `o` of an update entry, or undefined when the entry must be a replacement. */
export function computeOplogDiff(pre: BDoc, post: BDoc): BDoc | undefined {
  const diff = serialize(docDiff(pre, post));
  if (diff.bytes.length >= post.bytes.length) return undefined;
  return BDoc.fromEntries([['$v', int32(2)], ['diff', diff]]);
}
