/**
 * gunzip on a thread of its own (src/dump/inflate.ts), through `gunzip(…, {offThread: true})` as the
 * dump reader calls it: the same bytes as zlib on the calling thread for any chunking of the input,
 * concatenated gzip members included (RFC 1952 §2.2: a gzip file is a series of members), and the
 * same one-line errors for a truncated or damaged stream.
 */
import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {createReadStream} from 'node:fs';
import {mkdir, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import zlib from 'node:zlib';

import {BSON} from 'bson';

import {GravityError} from '../../src/errors.js';
import {gunzipOffThread, offerFileInflate, startFileInflate, takeFileInflate} from '../../src/dump/inflate.js';
import {readDump} from '../../src/dump/read.js';
import type {DumpEvent} from '../../src/dump/types.js';
import {gunzip, gunzipPort} from '../../src/dump/streams.js';
import {tarFolder} from '../support/bson-fixtures.js';

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

  it('gives the bytes zlib gives whatever the size of its output buffers, shared small ones or its own', async () => {
    // Under 4 KiB zlib's buffers may come from the shared pool: those pieces are copied. From 64 KiB
    // up each buffer is zlib's own, sent once full with every piece written into it, partial ones too.
    for (const chunkSize of [1024, 65_536, 1_048_576]) {
      for (const sizes of [[65_536], [7, 300_001]]) {
        assert.ok((await collect(gunzipOffThread(chunked(members, sizes), chunkSize))).equals(plain), `zlib buffers of ${chunkSize}, input chunks of ${sizes.join(', ')}`);
      }
    }
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

describe('a gzip file inflated ahead by a worker that reads it (startFileInflate)', () => {
  let dir: string;
  let file: string;
  before(async () => {
    dir = path.join(os.tmpdir(), `gr-inflate-${process.pid}`);
    await mkdir(dir, {recursive: true});
    file = path.join(dir, 'members.gz');
    await writeFile(file, members);
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('gives zlib\'s bytes through its port, and counts every compressed byte read', async () => {
    const inflate = startFileInflate(file);
    let read = 0;
    try {
      assert.ok((await collect(gunzipPort(inflate.port, (n) => (read += n), 'members.gz'))).equals(plain));
    } finally {
      await inflate.stop();
    }
    assert.equal(read, members.length);
  });

  it('a truncated file is DUMP_CORRUPT, "truncated gzip"', async () => {
    const cut = path.join(dir, 'cut.gz');
    await writeFile(cut, members.subarray(0, members.length - 1000));
    const inflate = startFileInflate(cut);
    try {
      await assert.rejects(collect(gunzipPort(inflate.port, () => undefined, 'cut.tar.gz')), (e: unknown) => e instanceof GravityError && e.code === 'DUMP_CORRUPT' && /^cut\.tar\.gz: truncated gzip/.test(e.message));
    } finally {
      await inflate.stop();
    }
  });

  it('stopped before anyone reads it, its reader is told, not left waiting', async () => {
    const inflate = startFileInflate(file);
    await inflate.stop();
    await assert.rejects(collect(gunzipPort(inflate.port, () => undefined, 'members.gz')), /stopped before the end/);
  });

  it('a local file read by its own inflate, or by one offered, gives the events and progress of a stream of it; an abort stops it', async () => {
    // A .tar.gz of a dump folder: two collections with their metadata.
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'dump', 'gravity'), {recursive: true});
    const docs = Array.from({length: 3000}, (_v, i) => BSON.serialize({_id: i, title: `artwork ${i}`, pad: randomBytes(64)}));
    await writeFile(path.join(tree, 'dump', 'gravity', 'artworks.bson'), Buffer.concat(docs));
    await writeFile(path.join(tree, 'dump', 'gravity', 'artworks.metadata.json'), JSON.stringify({options: {}, indexes: [{v: 2, key: {_id: 1}, name: '_id_'}], collectionName: 'artworks'}));
    await writeFile(path.join(tree, 'dump', 'gravity', 'users.bson'), Buffer.from(BSON.serialize({_id: 'u1'})));
    const tarball = path.join(dir, 'backup.tar.gz');
    tarFolder(tree, 'dump', tarball, {gzip: true});
    const size = (await stat(tarball)).size;

    // 'stream': a source with no local file (as from S3), inflated from the chunks this thread reads.
    // 'file': the path, which its reader inflates on a worker reading the file. 'offered': that worker started beforehand.
    const read = async (how: 'stream' | 'file' | 'offered', signal?: AbortSignal) => {
      const events: string[] = [];
      let bytesRead = 0;
      const inflate = how === 'offered' ? startFileInflate(tarball) : null;
      if (inflate) offerFileInflate(path.resolve(tarball), inflate.port);
      const input = how === 'stream' ? {name: 'backup.tar.gz', size, open: async () => createReadStream(tarball, {highWaterMark: 4096})} : tarball;
      try {
        // Batches follow the inflated chunks, which follow the reads: a namespace's batches are joined.
        let docs: string | null = null;
        for await (const event of readDump(input, {signal, onProgress: (p: {bytesRead: number}) => (bytesRead = p.bytesRead)}) as AsyncIterable<DumpEvent>) {
          const batch = event.type === 'documents' ? `documents ${event.db}.${event.collection} ` : null;
          if (docs !== null && !(batch !== null && docs.startsWith(batch))) {
            events.push(docs);
            docs = null;
          }
          if (event.type === 'documents') docs = (docs ?? batch!) + Buffer.concat(event.docs).toString('hex');
          else events.push(JSON.stringify(event));
        }
        if (docs !== null) events.push(docs);
      } finally {
        await inflate?.stop();
      }
      // The reader took the offered inflate (it is not there to take any more).
      if (how === 'offered') assert.equal(takeFileInflate(path.resolve(tarball)), null);
      return {events, bytesRead};
    };
    const stream = await read('stream');
    assert.ok(stream.events.some((e) => e.startsWith('documents gravity.artworks')));
    assert.equal(stream.bytesRead, size);
    for (const how of ['file', 'offered'] as const) {
      const other = await read(how);
      assert.deepEqual(other.events, stream.events, how);
      assert.equal(other.bytesRead, size, how);
    }
    await assert.rejects(read('file', AbortSignal.abort()), (e: unknown) => e instanceof GravityError && e.code === 'INTERRUPTED');
  });
});
