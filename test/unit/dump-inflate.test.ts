/**
 * gunzip on a thread of its own (src/dump/inflate.ts), through `gunzip(…, {offThread: true})` as the
 * dump reader calls it: the same bytes as zlib on the calling thread for any chunking of the input,
 * concatenated gzip members included (RFC 1952 §2.2: a gzip file is a series of members), and the
 * same one-line errors for a truncated or damaged stream.
 */
import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {describe, it} from 'node:test';
import zlib from 'node:zlib';

import {GravityError} from '../../src/errors.js';
import {prewarmInflate} from '../../src/dump/inflate.js';
import {gunzip} from '../../src/dump/streams.js';

async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield data.subarray(at, at + size);
    at += size;
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

// Compressible text and incompressible bytes: output chunks both full (1 MiB) and partial.
const plain = Buffer.concat([Buffer.from('artwork '.repeat(400_000)), randomBytes(1_500_000), Buffer.from('x'.repeat(3_000_001))]);
const members = Buffer.concat([zlib.gzipSync(plain.subarray(0, 2_000_000)), zlib.gzipSync(plain.subarray(2_000_000))]);

describe('gunzip off the reading thread', () => {
  it('gives the bytes zlib gives, whatever the input chunking, across gzip members', async () => {
    for (const sizes of [[members.length], [65_536], [7, 1_048_576, 13_001], [3_000_000]]) {
      assert.ok((await collect(gunzip(chunked(members, sizes), 'test.gz', {offThread: true}))).equals(plain), `chunks of ${sizes.join(', ')}`);
    }
    // Byte by byte, on a whole small member.
    const small = zlib.gzipSync(Buffer.from('a small member, read one byte at a time'));
    assert.equal((await collect(gunzip(chunked(small, [1]), 'small.gz', {offThread: true}))).toString(), 'a small member, read one byte at a time');
  });

  it('a worker started ahead (prewarmInflate) serves the next gunzip, and the one after starts its own', async () => {
    prewarmInflate();
    assert.ok((await collect(gunzip(chunked(members, [1_048_576]), 'warm.gz', {offThread: true}))).equals(plain));
    assert.ok((await collect(gunzip(chunked(members, [1_048_576]), 'cold.gz', {offThread: true}))).equals(plain));
  });

  it('a truncated stream is DUMP_CORRUPT, "truncated gzip", as on the reading thread', async () => {
    const cut = members.subarray(0, members.length - 1000);
    for (const offThread of [true, false]) {
      await assert.rejects(collect(gunzip(chunked(cut, [65_536]), 'cut.tar.gz', {offThread})), (e: unknown) => {
        assert.ok(e instanceof GravityError, String(e));
        assert.equal(e.code, 'DUMP_CORRUPT');
        assert.match(e.message, /^cut\.tar\.gz: truncated gzip/);
        return true;
      });
    }
  });

  it('damaged data is DUMP_CORRUPT, "corrupt gzip data", as on the reading thread', async () => {
    const damaged = Buffer.from(members);
    for (let i = 5000; i < 5100; i++) damaged[i] = damaged[i]! ^ 0xa5;
    for (const offThread of [true, false]) {
      await assert.rejects(collect(gunzip(chunked(damaged, [65_536]), 'bad.gz', {offThread})), (e: unknown) => {
        assert.ok(e instanceof GravityError, String(e));
        assert.equal(e.code, 'DUMP_CORRUPT');
        assert.match(e.message, /^bad\.gz: corrupt gzip data/);
        return true;
      });
    }
  });

  it('a reader that stops early ends the worker and the reading of the input', async () => {
    let closed = false;
    async function* source(): AsyncGenerator<Buffer> {
      try {
        // An endless stream: only stopping ends it.
        const member = zlib.gzipSync(randomBytes(2_000_000));
        for (;;) yield member;
      } finally {
        closed = true;
      }
    }
    for await (const chunk of gunzip(source(), 'endless.gz', {offThread: true})) {
      assert.ok(chunk.length > 0);
      break;
    }
    // The feeding loop notices on its next chunk.
    for (let i = 0; i < 50 && !closed; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(closed, true);
  });
});
