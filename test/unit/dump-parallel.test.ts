import assert from 'node:assert/strict';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {after, before, describe, it} from 'node:test';

import {readDump} from '../../src/dump/read.js';
import {interleave} from '../../src/dump/streams.js';
import type {DumpStreamSource} from '../../src/dump/types.js';
import {everyTypeDocuments, metadataJson, tempDir, writeFolder} from '../support/bson-fixtures.js';

function deferred(): {promise: Promise<void>; resolve: () => void} {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return {promise, resolve};
}

/** Rejects if `promise` has not settled within `ms`: a liveness bound, so a missing overlap fails instead of hanging. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((_r, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('interleave', () => {
  it('runs jobs at the same time: one can wait on another', async () => {
    const bStarted = deferred();
    const a = async function* (): AsyncGenerator<string> {
      yield 'a1';
      await within(bStarted.promise, 2000, 'b never ran beside a');
      yield 'a2';
    };
    const b = async function* (): AsyncGenerator<string> {
      bStarted.resolve();
      yield 'b1';
    };
    const got: string[] = [];
    for await (const item of interleave([a, b], 2)) got.push(item);
    assert.deepEqual([...got].sort(), ['a1', 'a2', 'b1']);
    assert.ok(got.indexOf('a1') < got.indexOf('a2'));
    await assert.rejects(async () => {
      const never = deferred();
      const c = async function* (): AsyncGenerator<string> {
        await within(never.promise, 200, 'one at a time');
        yield 'c';
      };
      for await (const _item of interleave([c, b], 1)) {
        // Sequential: c waits for something only a concurrent job could give.
      }
    }, /one at a time/);
  });

  it('keeps each job\'s order, never runs more than the limit, and runs every job', async () => {
    let running = 0;
    let most = 0;
    const job = (name: string, n: number) => async function* (): AsyncGenerator<string> {
      running++;
      most = Math.max(most, running);
      try {
        for (let i = 0; i < n; i++) {
          await new Promise((r) => setImmediate(r));
          yield `${name}${i}`;
        }
      } finally {
        running--;
      }
    };
    const got: string[] = [];
    for await (const item of interleave([job('a', 5), job('b', 3), job('c', 4), job('d', 1)], 2)) got.push(item);
    assert.equal(most, 2);
    assert.equal(running, 0);
    for (const [name, n] of [['a', 5], ['b', 3], ['c', 4], ['d', 1]] as const) {
      assert.deepEqual(got.filter((g) => g.startsWith(name)), Array.from({length: n}, (_v, i) => `${name}${i}`));
    }
  });

  it('closes every running job on early exit and on a failure', async () => {
    const closed: string[] = [];
    const endless = (name: string) => async function* (): AsyncGenerator<string> {
      try {
        for (;;) {
          await new Promise((r) => setImmediate(r));
          yield name;
        }
      } finally {
        closed.push(name);
      }
    };
    for await (const _item of interleave([endless('a'), endless('b')], 2)) break;
    assert.deepEqual(closed.sort(), ['a', 'b']);
    closed.length = 0;
    const failing = async function* (): AsyncGenerator<string> {
      await new Promise((r) => setImmediate(r));
      if (closed.length === 0) throw new Error('broken job');
      yield 'never';
    };
    await assert.rejects(async () => {
      for await (const _item of interleave([endless('a'), failing], 2)) {
        // Runs until the failure.
      }
    }, /broken job/);
    assert.deepEqual(closed, ['a']);
  });
});

describe('readDump: a --gzip folder read for several collections', () => {
  let dir: string;
  const colls = ['artworks', 'sales', 'users'].map((name, i) => ({name, docs: everyTypeDocuments(30 + i, 40 + i)}));

  before(async () => {
    dir = await tempDir('dump-parallel');
    await writeFolder(dir, colls.map((c) => ({db: 'gravity', collection: c.name, docs: c.docs, metadata: metadataJson(c.name)})), {gzip: true});
  });
  after(async () => {
    await fsp.rm(dir, {recursive: true, force: true});
  });

  for (const parallel of [undefined, 1, 3]) it(`gives each collection byte-identical, in order, metadata first, with its end (parallel: ${parallel ?? 'default'})`, async () => {
    const docs = new Map<string, Buffer[]>();
    const events: string[] = [];
    const options = parallel === undefined ? {} : {parallel};
    for await (const event of readDump(dir, {...options, want: (ns) => ns.collection !== 'sales'})) {
      if (event.type === 'oplog') continue;
      events.push(`${event.type}:${event.collection}`);
      if (event.type === 'documents') docs.set(event.collection, [...(docs.get(event.collection) ?? []), ...event.docs]);
      if (event.type === 'end') assert.equal(event.documents, colls.find((c) => c.name === event.collection)!.docs.length);
    }
    for (const c of colls) {
      if (c.name === 'sales') {
        assert.equal(docs.has('sales'), false);
        assert.ok(events.includes('metadata:sales'), 'metadata of an unwanted collection still comes');
        continue;
      }
      const got = docs.get(c.name) ?? [];
      assert.equal(got.length, c.docs.length);
      assert.ok(got.every((d, i) => d.equals(c.docs[i]!)), `${c.name}: byte-identical, in order`);
      assert.ok(events.indexOf(`metadata:${c.name}`) < events.indexOf(`documents:${c.name}`));
      assert.equal(events.at(-1)?.startsWith('end:') || events.includes(`end:${c.name}`), true);
      assert.ok(events.lastIndexOf(`documents:${c.name}`) < events.indexOf(`end:${c.name}`));
    }
  });

  it('stopping early closes every source it opened', async () => {
    let opened = 0;
    let closed = 0;
    const sources: DumpStreamSource[] = [];
    for (const name of await fsp.readdir(path.join(dir, 'gravity'))) {
      const data = await fsp.readFile(path.join(dir, 'gravity', name));
      sources.push({
        name: `gravity/${name}`,
        size: data.length,
        open: async () => {
          opened++;
          const stream = Readable.from((function* () {
            for (let i = 0; i < data.length; i += 997) yield data.subarray(i, i + 997);
          })(), {objectMode: false});
          stream.once('close', () => closed++);
          return stream;
        },
      });
    }
    for await (const event of readDump(sources)) if (event.type === 'documents') break;
    await new Promise((r) => setImmediate(r));
    assert.ok(opened >= 3, `the metadata files and at least one data file were opened (${opened})`);
    assert.equal(closed, opened);
  });
});
