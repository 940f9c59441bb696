/**
 * Guarded matching (src/query/guard.ts): with a budget in force, a query with regexes is answered
 * by a worker thread a batch at a time. Its answers must be the in-thread answers for every
 * document, stay right when a reader reuses a buffer for other bytes, report an error only for the
 * document it concerns, and end a regex that backtracks without end at the budget.
 */
import assert from 'node:assert/strict';
import {after, describe, it} from 'node:test';

import {BSON, BSONRegExp, type Document} from 'bson';

import {GravityError} from '../../src/errors.js';
import {compileQuery} from '../../src/query/compile.js';
import {configureMatchGuard} from '../../src/query/guard.js';

function chunk(docs: Document[]): {buffer: Buffer; spans: Array<[number, number]>} {
  const parts = docs.map((d) => Buffer.from(BSON.serialize(d)));
  // Offset inside a larger allocation, as a reader's chunk is.
  const buffer = Buffer.alloc(parts.reduce((n, p) => n + p.length, 0) + 64, 0xee).subarray(16);
  const spans: Array<[number, number]> = [];
  let at = 0;
  for (const p of parts) {
    p.copy(buffer, at);
    spans.push([at, at + p.length]);
    at += p.length;
  }
  return {buffer, spans};
}

const names = ['Warhol', 'warhol', 'Émile', 'O’Keeffe', 'Basquiat', 'Kahlo', 'straße', 'abc\n', ''];

describe('guarded regex matching', () => {
  after(() => configureMatchGuard(null));

  it('answers every document of a chunk as the in-thread matcher does, one round trip per chunk', () => {
    const docs = Array.from({length: 500}, (_, i) => ({_id: i, name: names[i % names.length]!, n: i}));
    const {buffer, spans} = chunk(docs);
    const filter = {$or: [{name: new BSONRegExp('^w', 'i')}, {name: {$regex: '\\p{L}+e$'}}], n: {$gte: 3}};
    const plain = compileQuery(filter);
    configureMatchGuard({timeoutMs: 10_000, label: 'collection test'});
    const guarded = compileQuery(filter);
    configureMatchGuard(null);
    assert.match(guarded.plan, /matching worker/);
    let matched = 0;
    for (const [start, end] of spans) {
      const expected = plain.matchesAt(buffer, start, end);
      assert.equal(guarded.matchesAt(buffer, start, end), expected, `document at ${start}`);
      if (expected) matched++;
    }
    assert.ok(matched > 50 && matched < 450, `${matched} matched`);
    // matches(doc) on a subarray of the chunk answers alike.
    for (const [start, end] of spans.slice(0, 20)) assert.equal(guarded.matches(buffer.subarray(start, end)), plain.matches(buffer.subarray(start, end)));
  });

  it('answers for the bytes a reused buffer holds now, not those it held', () => {
    configureMatchGuard({timeoutMs: 10_000, label: 'collection test'});
    const guarded = compileQuery({name: /^W/});
    configureMatchGuard(null);
    const first = chunk([{_id: 1, name: 'Warhol'}, {_id: 2, name: 'Kahlo'}]);
    assert.equal(guarded.matchesAt(first.buffer, ...first.spans[0]!), true);
    // Same lengths, other bytes, same memory.
    const second = chunk([{_id: 1, name: 'Xarhol'}, {_id: 2, name: 'Wahlo'}]);
    second.buffer.copy(first.buffer, 0, 0, second.spans[1]![1]);
    assert.equal(guarded.matchesAt(first.buffer, ...first.spans[0]!), false);
    assert.equal(guarded.matchesAt(first.buffer, ...first.spans[1]!), true);
  });

  it('reports an error only for the document it concerns', () => {
    configureMatchGuard({timeoutMs: 10_000, label: 'collection test'});
    const guarded = compileQuery({name: new BSONRegExp('^\\w+é$', 'i')});
    configureMatchGuard(null);
    const {buffer, spans} = chunk([{name: 'CAFÉ'}, {name: 'ſé'}, {name: 'cafe'}]);
    assert.equal(guarded.matchesAt(buffer, ...spans[0]!), true);
    assert.equal(guarded.matchesAt(buffer, ...spans[2]!), false);
    assert.throws(() => guarded.matchesAt(buffer, ...spans[1]!), (e: unknown) => e instanceof GravityError && e.code === 'QUERY_UNSUPPORTED');
  });

  it('ends a regex that backtracks without end at the budget, naming it', () => {
    configureMatchGuard({timeoutMs: 500, label: 'collection things'});
    const guarded = compileQuery({s: /(a+)+$/});
    configureMatchGuard(null);
    const {buffer, spans} = chunk([{s: 'aaa'}, {s: `${'a'.repeat(40)}b`}]);
    const started = Date.now();
    assert.throws(
      () => guarded.matchesAt(buffer, ...spans[0]!),
      (e: unknown) => e instanceof GravityError && e.code === 'RESOURCE_LIMIT' && e.exitCode === 10 && /collection things with \/\(a\+\)\+\$\//.test(e.message),
    );
    assert.ok(Date.now() - started < 10_000);
    // The matcher starts a fresh worker for the next question.
    const ok = chunk([{s: 'aaa'}]);
    assert.equal(guarded.matchesAt(ok.buffer, ...ok.spans[0]!), true);
  });

  it('leaves queries without regexes in the thread', () => {
    configureMatchGuard({timeoutMs: 500, label: 'collection things'});
    const q = compileQuery({name: 'Warhol', n: {$gt: 1}});
    configureMatchGuard(null);
    assert.doesNotMatch(q.plan, /worker/);
  });
});
