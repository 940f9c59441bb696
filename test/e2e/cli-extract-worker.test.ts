/**
 * A local backup of WORKER_MIN_BYTES or more is extracted on a worker thread (src/extract/in-worker.ts).
 * Through bin/run.js, that path must give what the in-process extract gives, byte for byte, report
 * a damaged backup as the one-line error it would be in-process, and leave nothing half-written.
 */
import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {access, mkdir, readdir, readFile, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';
import {BSON} from 'bson';

import {benchDocument, partnerId} from '../../bench/data.js';
import {extract} from '../../src/extract/extract.js';
import {WORKER_MIN_BYTES} from '../../src/extract/in-worker.js';
import {parseQuery} from '../../src/query/parse.js';
import {createS3Client} from '../../src/s3/client.js';
import {everyTypeDocuments, tarFolder, tempDir} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {s3EnvFor, startS3Server} from '../support/s3-server.js';

/** The set's one `artworks.bson`, whatever database folder the backup's name gave it. */
async function setBson(out: string): Promise<Buffer> {
  const [db] = await readdir(path.join(out, 'dump'));
  return readFile(path.join(out, 'dump', db!, 'artworks.bson'));
}

const QUERY = `{"partner_id": ObjectId("${partnerId(7).toHexString()}")}`;

/** The set's `artworks.bson` from the library's extract, in process (no worker): what the CLI must match. */
async function libraryExtract(input: string, query: string, out: string): Promise<Buffer> {
  await extract({
    source: {input, backup: null, location: input, takenAt: null, objects: []},
    collection: 'artworks',
    queryText: query,
    filter: parseQuery(query),
    follow: false,
    relations: [],
    out,
    engine: 'stream',
    toolVersion: 'test',
  });
  return setBson(out);
}

/**
 * `whole` without its last `bytes` (still over the worker threshold), extracted through the CLI: one
 * line that says it is truncated, exit 6, and no set left behind.
 */
async function refusedCutShort(whole: string, cut: string, bytes: number, collection: string, query: string): Promise<void> {
  const data = await readFile(whole);
  await writeFile(cut, data.subarray(0, data.length - bytes));
  assert.ok((await stat(cut)).size >= WORKER_MIN_BYTES);
  const out = `${cut}-set`;
  const result = await runCli(['extract', '--from', cut, '-c', collection, '-q', query, '--out', out]);
  assertCleanError(result, /truncated/i);
  assert.equal(result.code, 6);
  assert.equal(await access(out).then(() => true, () => false), false);
}

describe('extract of a large local backup on a worker thread (bin/run.js)', () => {
  let dir: string;
  let file: string;
  let docs: Buffer[];

  before(async () => {
    dir = await tempDir('cli-extract-worker');
    // Every BSON type first, then enough ordinary documents to pass the worker threshold.
    docs = everyTypeDocuments(120, 41);
    let size = docs.reduce((n, d) => n + d.length, 0);
    for (let i = 0; size < WORKER_MIN_BYTES + 1024 * 1024; i++) {
      const doc = benchDocument(i);
      docs.push(doc);
      size += doc.length;
    }
    file = path.join(dir, 'artworks.bson');
    await writeFile(file, Buffer.concat(docs));
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('writes the same restore set as the in-process extract, byte for byte', async () => {
    const out = path.join(dir, 'cli-set');
    const result = await runCli(['extract', '--from', file, '-c', 'artworks', '-q', QUERY, '--out', out, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const report = json<{counts: Record<string, number>; scanned: Record<string, number>}>(result);
    // The oracle: every document decoded by bson and its partner_id compared.
    const wanted = docs.filter((d) => {
      const value = (BSON.deserialize(d) as {partner_id?: {toHexString?: () => string}}).partner_id;
      return value?.toHexString?.() === partnerId(7).toHexString();
    });
    assert.ok(wanted.length > 0);
    assert.deepEqual([report.counts.artworks, report.scanned.artworks], [wanted.length, docs.length]);
    const cliBson = await setBson(out);
    assert.ok(cliBson.equals(Buffer.concat(wanted)), 'the set holds the matching documents byte for byte');

    assert.ok(cliBson.equals(await libraryExtract(file, QUERY, path.join(dir, 'library-set'))));
  });

  it('a truncated backup fails with one line, exit 6, and no set left behind', async () => {
    await refusedCutShort(file, path.join(dir, 'cut.bson'), 100, 'cut', QUERY);
  });

  it('a bad query, found after the worker was started early, is one line and exit 2, and nothing waits on the worker', async () => {
    const out = path.join(dir, 'bad-query-set');
    const started = Date.now();
    const result = await runCli(['extract', '--from', file, '-c', 'artworks', '-q', '{"partner_id": ObjectId("nope")', '--out', out]);
    assertCleanError(result, /query/i);
    assert.equal(result.code, 2);
    assert.ok(Date.now() - started < 10_000, 'the unused worker does not hold the process');
    assert.equal(await access(out).then(() => true, () => false), false);
  });

  it('a .tar.gz of 32 MiB or more, inflated from the moment the flags are read: the same set as in process; cut short, one line and exit 6', async () => {
    // Random bytes do not compress: 36 MiB of documents make a tarball over the worker threshold.
    const tree = path.join(dir, 'gz-tree');
    await mkdir(path.join(tree, 'dump', 'gravity'), {recursive: true});
    const big = Array.from({length: 9000}, (_v, i) => Buffer.from(BSON.serialize({_id: i, k: i % 50, blob: randomBytes(4096)})));
    await writeFile(path.join(tree, 'dump', 'gravity', 'artworks.bson'), Buffer.concat(big));
    const tarball = path.join(dir, 'gravity-2026-11-18T10-00-00Z.tar.gz');
    tarFolder(tree, 'dump', tarball, {gzip: true});
    assert.ok((await stat(tarball)).size >= WORKER_MIN_BYTES);

    const query = '{"k": 7}';
    const out = path.join(dir, 'gz-set');
    const result = await runCli(['extract', '--from', tarball, '-c', 'artworks', '-q', query, '--out', out, '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {artworks: 180});
    const cliBson = await setBson(out);
    assert.ok(cliBson.equals(await libraryExtract(tarball, query, path.join(dir, 'gz-library-set'))));
    assert.ok(cliBson.equals(Buffer.concat(big.filter((_d, i) => i % 50 === 7))));

    await refusedCutShort(tarball, path.join(dir, 'gravity-cut.tar.gz'), 4096, 'artworks', query);
  });

  it('a fetched backup is read from the cache on the worker: the same set as streaming it from S3', async () => {
    // An uncompressed tar keeps the object over the threshold with a test-sized collection.
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'dump', 'gravity'), {recursive: true});
    await writeFile(path.join(tree, 'dump', 'gravity', 'artworks.bson'), Buffer.concat(docs));
    const tarball = path.join(dir, 'gravity-hourly-2026-11-18-10-00.tar');
    tarFolder(tree, 'dump', tarball);
    const s3 = await startS3Server();
    try {
      await s3.createBucket('backups');
      const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
      await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${path.basename(tarball)}`, Body: await readFile(tarball)}));
      const env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
      const streamed = await runCli(['extract', '--from', 'latest', '-c', 'artworks', '-q', QUERY, '--out', path.join(dir, 's3-streamed')], {env});
      assert.equal(streamed.code, 0, streamed.stderr);
      assert.match(streamed.stderr, /streaming, no download first/);
      const fetched = await runCli(['fetch', 'latest'], {env});
      assert.equal(fetched.code, 0, fetched.stderr);
      const cached = await runCli(['extract', '--from', 'latest', '-c', 'artworks', '-q', QUERY, '--out', path.join(dir, 's3-cached')], {env});
      assert.equal(cached.code, 0, cached.stderr);
      assert.match(cached.stderr, /from the local cache/);
      const a = await setBson(path.join(dir, 's3-streamed'));
      assert.ok(a.length > 0 && a.equals(await setBson(path.join(dir, 's3-cached'))));
    } finally {
      await s3.stop();
    }
  });
});
