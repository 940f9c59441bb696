/**
 * `extractInWorker` called directly (from source, the worker entry loaded through the inherited
 * loader): the result, progress and notes cross the thread, an abort stops it as one in-process
 * would, and a failure arrives as the same typed error.
 */
import assert from 'node:assert/strict';
import {access, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {EJSON} from 'bson';

import {GravityError} from '../../src/errors.js';
import {extract} from '../../src/extract/extract.js';
import type {ExtractProgress} from '../../src/extract/extract.js';
import {extractInWorker} from '../../src/extract/in-worker.js';
import {parseQuery} from '../../src/query/parse.js';
import {everyTypeDocuments, tempDir} from '../support/bson-fixtures.js';

async function setBson(out: string): Promise<Buffer> {
  const [db] = await readdir(path.join(out, 'dump'));
  return readFile(path.join(out, 'dump', db!, 'things.bson'));
}

describe('extract on a worker thread', () => {
  let dir: string;
  let file: string;
  const query = '{"n": {"$lt": NumberInt(40)}}';
  const common = (out: string) => ({
    collection: 'things',
    queryText: query,
    follow: false,
    relations: [],
    out,
    engine: 'stream' as const,
    toolVersion: 'test',
  });

  before(async () => {
    dir = await tempDir('extract-worker');
    file = path.join(dir, 'things.bson');
    await writeFile(file, Buffer.concat(everyTypeDocuments(300, 9)));
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('gives the in-process result and set, with progress on the way', async () => {
    const progress: ExtractProgress[] = [];
    const out = path.join(dir, 'worker-set');
    const source = {backup: null, location: file, takenAt: null, objects: []};
    const result = await extractInWorker(
      {options: common(out), source, input: file, filter: EJSON.stringify(parseQuery(query), {relaxed: false})},
      {onProgress: (p) => progress.push(p)},
    );
    const reference = await extract({...common(path.join(dir, 'library-set')), source: {...source, input: file}, filter: parseQuery(query)});
    assert.deepEqual([result.counts, result.scanned], [reference.counts, reference.scanned]);
    assert.ok((result.counts.things ?? 0) > 0);
    assert.ok((await setBson(out)).equals(await setBson(path.join(dir, 'library-set'))));
    assert.ok(progress.some((p) => p.phase === 'read'), 'progress crossed the thread');
  });

  it('an abort stops it with INTERRUPTED and leaves no set', async () => {
    const controller = new AbortController();
    controller.abort();
    const out = path.join(dir, 'aborted-set');
    const source = {backup: null, location: file, takenAt: null, objects: []};
    await assert.rejects(
      extractInWorker({options: common(out), source, input: file, filter: EJSON.stringify(parseQuery(query), {relaxed: false})}, {signal: controller.signal}),
      (e: unknown) => e instanceof GravityError && e.code === 'INTERRUPTED' && e.exitCode === 130,
    );
    assert.equal(await access(out).then(() => true, () => false), false);
  });

  it('a missing collection arrives as the typed error it is in-process', async () => {
    const source = {backup: null, location: file, takenAt: null, objects: []};
    await assert.rejects(
      extractInWorker({options: {...common(path.join(dir, 'x')), collection: 'nope'}, source, input: file, filter: '{}'}, {}),
      (e: unknown) => e instanceof GravityError && e.code === 'UNKNOWN_COLLECTION' && /nope/.test(e.message) && e.hint !== undefined,
    );
  });
});
