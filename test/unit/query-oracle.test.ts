/**
 * The stream engine against the trap table (test/support/query-traps.ts), whose expectations come
 * from the MongoDB manual rather than from the engine: each filter is parsed as `extract --query`
 * parses it and compiled, and the compiled matcher runs on the document's raw BSON.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {compileQuery} from '../../src/query/compile.js';
import {parseQuery} from '../../src/query/parse.js';
import {TRAPS, trapBytes} from '../support/query-traps.js';

/** The document inside a larger buffer, as it sits in a dump chunk: byteOffset ≠ 0 and bytes after it. */
function inChunk(bytes: Buffer): Buffer {
  const chunk = Buffer.alloc(bytes.length + 48, 0xab);
  bytes.copy(chunk, 16);
  return chunk.subarray(16, 16 + bytes.length);
}

describe('stream engine matches what the MongoDB manual documents', () => {
  it('the trap table is large, named uniquely and cites the manual', () => {
    assert.ok(TRAPS.length >= 150, `${TRAPS.length} traps`);
    assert.equal(new Set(TRAPS.map((t) => t.name)).size, TRAPS.length, 'trap names are unique');
    for (const t of TRAPS) assert.match(t.manual, /^https:\/\/www\.mongodb\.com\/docs\//, t.name);
    const outcomes = new Set(TRAPS.map((t) => t.expected));
    assert.deepEqual([...outcomes].sort(), [false, true]);
  });

  for (const trap of TRAPS) {
    it(trap.name, () => {
      const where = `${trap.name}\n  filter: ${trap.filter}\n  manual: ${trap.manual}`;
      const compiled = compileQuery(parseQuery(trap.filter));
      const got = compiled.matches(inChunk(trapBytes(trap.doc)));
      assert.equal(got, trap.expected, `${where}\n  expected ${trap.expected}, engine said ${got}`);
    });
  }
});
