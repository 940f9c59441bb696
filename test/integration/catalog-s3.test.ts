/**
 * The catalog against a real S3 server (s3rver on 127.0.0.1, started per file).
 */

import assert from 'node:assert/strict';
import {createHash, randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import {gzipSync} from 'node:zlib';

import {PutObjectCommand, type S3Client} from '@aws-sdk/client-s3';
import tar from 'tar-stream';

import {fetchBackup} from '../../src/catalog/fetch.js';
import {listBackups, resolveBackup, selectBackup} from '../../src/catalog/list.js';
import {openStore} from '../../src/catalog/store.js';
import {GravityError} from '../../src/errors.js';
import {createS3Client, type S3Settings} from '../../src/s3/client.js';
import {startS3Server, type S3Server} from '../support/s3-server.js';

const BUCKET = 'gravity-backups';
let server: S3Server;
let settings: S3Settings;
let client: S3Client;
let cacheRoot: string;

async function put(key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({Bucket: BUCKET, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body}));
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function dumpTar(collections: string[], bsonBytes = 100_000): Promise<Buffer> {
  const pack = tar.pack();
  for (const collection of collections) {
    pack.entry({name: `dump/gravity/${collection}.bson`}, randomBytes(bsonBytes));
    pack.entry({name: `dump/gravity/${collection}.metadata.json`}, JSON.stringify({indexes: []}));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An HTTP proxy in front of the S3 server that records each request's method, path and Range. */
async function startRecordingProxy(upstream: string): Promise<{endpoint: string; requests: Array<{method: string; path: string; range: string | undefined}>; close(): Promise<void>}> {
  const target = new URL(upstream);
  const requests: Array<{method: string; path: string; range: string | undefined}> = [];
  const proxy = http.createServer((req, res) => {
    requests.push({method: req.method ?? '', path: req.url ?? '', range: req.headers.range});
    // Headers go through untouched (Host included): the request signature covers them.
    const forward = http.request({host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      proxy.closeAllConnections();
      proxy.close(() => resolve());
    }),
  };
}

let cacheCount = 0;
async function freshCache(): Promise<string> {
  const dir = path.join(cacheRoot, `cache-${++cacheCount}`);
  return dir;
}

before(async () => {
  server = await startS3Server({bucket: BUCKET});
  settings = {endpoint: server.endpoint, region: server.region, credentials: {accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey}};
  client = createS3Client(settings);
  cacheRoot = await mkdtemp(path.join(os.tmpdir(), 'gravity-catalog-s3-'));
});

after(async () => {
  client?.destroy();
  await server?.stop();
  await rm(cacheRoot, {recursive: true, force: true});
});

describe('listing from S3', () => {
  it('lists across pages (1,100 objects, more than one ListObjectsV2 page)', async () => {
    const keys: string[] = [];
    for (let backup = 0; backup < 110; backup++) {
      const time = new Date(Date.UTC(2026, 10, 1) + backup * 3_600_000).toISOString().slice(0, 19).replace(/:/g, '-');
      for (let file = 0; file < 10; file++) keys.push(`many/hourly/${time}Z/dump/gravity/c${file}.bson`);
    }
    let next = 0;
    await Promise.all(
      Array.from({length: 16}, async () => {
        while (next < keys.length) await put(keys[next++] as string, 'x');
      }),
    );
    const store = openStore(`s3://${BUCKET}/many/`, settings);
    assert.equal((await store.list()).length, 1100);
    const backups = await listBackups(store, {sourceTz: 'UTC'});
    assert.equal(backups.length, 110);
    assert.equal(backups[0]?.id, 'hourly/2026-11-05T13-00-00Z');
    assert.equal(backups[0]?.objects.length, 10);
    assert.equal(backups[0]?.kind, 'hourly');
    assert.deepEqual(backups[0]?.collections?.length, 10);
    // A small page size takes the same path many more times.
    const paged = openStore(`s3://${BUCKET}/many`, settings, {pageSize: 97});
    const keys97 = (await paged.list()).map((object) => object.key);
    assert.equal(keys97.length, 1100);
    assert.equal(new Set(keys97).size, 1100, 'no page repeats a key');
  });

  it('reports an empty prefix as NO_BACKUPS', async () => {
    const store = openStore(`s3://${BUCKET}/nothing-here/`, settings);
    await assert.rejects(listBackups(store, {sourceTz: 'UTC'}), (error: unknown) => error instanceof GravityError && error.code === 'NO_BACKUPS' && error.message.includes(`s3://${BUCKET}/nothing-here/`));
  });

  it('reports wrong credentials as S3_CREDENTIALS', async () => {
    const store = openStore(`s3://${BUCKET}/many/`, {...settings, credentials: {accessKeyId: 'WRONG', secretAccessKey: 'WRONG'}});
    await assert.rejects(store.list(), (error: unknown) => error instanceof GravityError && error.code === 'S3_CREDENTIALS' && error.exitCode === 4);
  });

  it('reports a missing bucket as S3_NO_BUCKET naming it', async () => {
    const store = openStore('s3://no-such-bucket/db/', settings);
    await assert.rejects(store.list(), (error: unknown) => error instanceof GravityError && error.code === 'S3_NO_BUCKET' && error.message.includes('no-such-bucket'));
  });

  it('reports a closed port as S3_NETWORK within a few seconds', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address() as net.AddressInfo;
        probe.close(() => resolve(address.port));
      });
    });
    const endpoint = `http://127.0.0.1:${port}`;
    const store = openStore(`s3://${BUCKET}/db/`, {...settings, endpoint});
    const started = Date.now();
    await assert.rejects(store.list(), (error: unknown) => error instanceof GravityError && error.code === 'S3_NETWORK' && (error.hint ?? '').includes(endpoint));
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  });
});

describe('selection from S3', () => {
  it('chooses by time and by collection across hourly tarballs and daily tarballs', async () => {
    const hourly = await dumpTar(['artworks', 'sale_artworks']);
    const daily = gzipSync(await dumpTar(['artworks', 'sale_artworks', 'partners', 'users']));
    for (const hour of ['10', '11', '12']) await put(`sel/hourly/2026-11-18-${hour}-00/gravity.tar`, hourly);
    await put('sel/daily/2026-11-18/gravity.tar.gz', daily);
    await put('sel/daily/2026-11-17/gravity.tar.gz', daily);
    const store = openStore(`s3://${BUCKET}/sel/`, settings);
    const backups = await listBackups(store, {sourceTz: 'America/New_York'});
    assert.deepEqual(
      backups.map((backup) => [backup.id, backup.kind, backup.takenAt.toISOString()]),
      [
        ['hourly/2026-11-18-12-00', 'hourly', '2026-11-18T17:00:00.000Z'],
        ['hourly/2026-11-18-11-00', 'hourly', '2026-11-18T16:00:00.000Z'],
        ['hourly/2026-11-18-10-00', 'hourly', '2026-11-18T15:00:00.000Z'],
        ['daily/2026-11-18', 'daily', '2026-11-18T05:00:00.000Z'],
        ['daily/2026-11-17', 'daily', '2026-11-17T05:00:00.000Z'],
      ],
    );
    // Exactly at a backup's time selects it.
    assert.equal((await selectBackup(store, backups, {before: new Date('2026-11-18T16:00:00Z')}))?.id, 'hourly/2026-11-18-11-00');
    assert.equal((await selectBackup(store, backups, {before: new Date('2026-11-18T15:59:59Z')}))?.id, 'hourly/2026-11-18-10-00');
    const cacheDir = await freshCache();
    const skipped: string[] = [];
    const selected = await selectBackup(store, backups, {collection: 'partners', before: new Date('2026-11-18T16:30:00Z'), cacheDir, onSkip: (id) => skipped.push(id)});
    assert.equal(selected?.id, 'daily/2026-11-18');
    assert.deepEqual(skipped, ['hourly/2026-11-18-11-00', 'hourly/2026-11-18-10-00']);
    assert.equal((await selectBackup(store, backups, {collection: 'sale_artworks', cacheDir}))?.id, 'hourly/2026-11-18-12-00');
    assert.equal((await resolveBackup(store, backups, 'latest', {collection: 'users', cacheDir})).id, 'daily/2026-11-18');
  });
});

describe('fetching from S3', () => {
  it('fetches a dump tree, only the wanted collections, verified, and a second fetch transfers nothing', async () => {
    const artworks = randomBytes(300_000);
    const partners = randomBytes(50_000);
    await put('tree/2026-11-18T14-00-00Z/dump/gravity/artworks.bson', artworks);
    await put('tree/2026-11-18T14-00-00Z/dump/gravity/artworks.metadata.json', '{"indexes":[]}');
    await put('tree/2026-11-18T14-00-00Z/dump/gravity/partners.bson', partners);
    await put('tree/2026-11-18T14-00-00Z/dump/gravity/partners.metadata.json', '{"indexes":[]}');
    await put('tree/2026-11-18T14-00-00Z/dump/gravity/artworks.bson.sha256', `${sha256(artworks)}  artworks.bson\n`);
    const store = openStore(`s3://${BUCKET}/tree/`, settings);
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const cacheDir = await freshCache();
    const progress: number[] = [];
    const first = await fetchBackup(store, backup, {cacheDir, collections: ['artworks'], onProgress: (p) => progress.push(p.bytes)});
    assert.deepEqual(first.files.map((file) => file.key).sort(), ['2026-11-18T14-00-00Z/dump/gravity/artworks.bson', '2026-11-18T14-00-00Z/dump/gravity/artworks.metadata.json']);
    assert.equal(first.bytesTransferred, artworks.length + '{"indexes":[]}'.length);
    assert.equal(first.resumed, false);
    const bson = first.files.find((file) => file.key.endsWith('artworks.bson'));
    assert.equal(bson?.sha256, sha256(artworks));
    assert.deepEqual(await readFile(bson?.path ?? ''), artworks);
    assert.deepEqual(Object.keys(first.collections), ['artworks']);
    assert.equal(first.collections.artworks, bson?.path);
    assert.ok(progress.includes(artworks.length));

    const second = await fetchBackup(store, backup, {cacheDir, collections: ['artworks']});
    assert.equal(second.bytesTransferred, 0);
    assert.deepEqual(second.files, first.files);

    await assert.rejects(fetchBackup(store, backup, {cacheDir, collections: ['nope']}), (error: unknown) => error instanceof GravityError && error.code === 'UNKNOWN_COLLECTION' && /artworks, partners/.test(error.hint ?? ''));
  });

  it('downloads a large object in parallel ranged parts and hands tarballs to unpack', async () => {
    const tarball = await dumpTar(['artworks', 'partners'], 1_500_000);
    await put('big/2026-11-18T14-00-00Z.tar', tarball);
    // The store talks to S3 through a recording proxy: what matters is what reached the server.
    const recorder = await startRecordingProxy(server.endpoint);
    try {
      const store = openStore(`s3://${BUCKET}/big/`, {...settings, endpoint: recorder.endpoint});
      const [backup] = await listBackups(store, {sourceTz: 'UTC'});
      assert.ok(backup);
      const unpacked: Array<{key: string; collections: string[]}> = [];
      const result = await fetchBackup(store, backup, {
        cacheDir: await freshCache(),
        collections: ['partners'],
        parallelThreshold: 512 * 1024,
        unpack: async (file, collections) => {
          unpacked.push({key: file.key, collections});
          assert.deepEqual(await readFile(file.path), tarball);
          return {partners: '/tmp/unpacked/partners.bson'};
        },
      });
      assert.equal(result.files[0]?.sha256, sha256(tarball));
      assert.equal(result.bytesTransferred, tarball.length);
      assert.deepEqual(unpacked, [{key: '2026-11-18T14-00-00Z.tar', collections: ['partners']}]);
      assert.deepEqual(result.collections, {partners: '/tmp/unpacked/partners.bson'});

      const gets = recorder.requests.filter((r) => r.method === 'GET' && r.path.startsWith(`/${BUCKET}/big/2026-11-18T14-00-00Z.tar`));
      assert.ok(gets.length > 1, `${gets.length} GET request(s) for the object`);
      const ranges = gets.map((r) => {
        const match = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '');
        assert.ok(match, `a GET without an explicit range: ${r.range}`);
        return [Number(match[1]), Number(match[2])] as const;
      });
      // Together the parts cover the object exactly once, end to end.
      ranges.sort((a, b) => a[0] - b[0]);
      let next = 0;
      for (const [start, end] of ranges) {
        assert.equal(start, next, `ranges ${JSON.stringify(ranges)} leave a gap or overlap`);
        next = end + 1;
      }
      assert.equal(next, tarball.length);
    } finally {
      await recorder.close();
    }
  });

  for (const [mode, parallelThreshold] of [['one stream', 64 * 1024 * 1024], ['four parallel parts', 4 * 1024 * 1024]] as const) {
    it(`resumes an interrupted download where it stopped (${mode})`, async () => {
      const data = randomBytes(24 * 1024 * 1024);
      const key = `resume-${parallelThreshold}/gravity-2026-11-18T14-00-00Z.archive.gz`;
      await put(key, data);
      const store = openStore(`s3://${BUCKET}/${path.dirname(key)}/`, settings);
      const [backup] = await listBackups(store, {sourceTz: 'UTC'});
      assert.ok(backup);
      const cacheDir = await freshCache();
      const controller = new AbortController();
      await assert.rejects(
        fetchBackup(store, backup, {
          cacheDir,
          parallelThreshold,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.bytes >= 2 * 1024 * 1024 && p.bytes < p.total) controller.abort();
          },
        }),
        (error: unknown) => error instanceof GravityError && error.code === 'INTERRUPTED' && /resume/.test(error.hint ?? ''),
      );
      const result = await fetchBackup(store, backup, {cacheDir, parallelThreshold});
      assert.equal(result.resumed, true);
      assert.ok(result.bytesTransferred < data.length, `transferred ${result.bytesTransferred} of ${data.length}`);
      assert.ok(result.bytesTransferred > 0);
      assert.equal(result.files[0]?.sha256, sha256(data));
      assert.deepEqual(await readFile(result.files[0]?.path ?? ''), data);
      assert.equal(existsSync(`${result.files[0]?.path}.part`), false);
    });
  }

  it('detects a corrupted download from a disagreeing .sha256 sidecar and deletes the bad file', async () => {
    const data = randomBytes(100_000);
    await put('corrupt/2026-11-18T14-00-00Z/gravity.tar.gz', data);
    await put('corrupt/2026-11-18T14-00-00Z/gravity.tar.gz.sha256', `${'0'.repeat(64)}  gravity.tar.gz\n`);
    const store = openStore(`s3://${BUCKET}/corrupt/`, settings);
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const cacheDir = await freshCache();
    await assert.rejects(fetchBackup(store, backup, {cacheDir}), (error: unknown) => {
      assert.ok(error instanceof GravityError);
      assert.equal(error.code, 'DOWNLOAD_CORRUPT');
      assert.match(error.message, /gravity\.tar\.gz\.sha256/);
      return true;
    });
    // The download went through the cache, and nothing of the bad copy is left there.
    const target = path.join(cacheDir, 'downloads');
    assert.equal(existsSync(target), true, 'the download was written under downloads/');
    const leftovers = (await readdir(target, {recursive: true, withFileTypes: true})).filter((entry) => entry.isFile()).map((entry) => entry.name);
    assert.deepEqual(leftovers, []);
  });
});
