/**
 * The MongoDB backend chooser (test/support/mongo-backend.ts): which server the tests, the sandbox
 * and the demo get, how fast it gives up on an unreachable download host, and that it says why.
 * Every test passes its own environment, so nothing here depends on this machine's network.
 */
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {mkdtemp, readdir, rm} from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {gzipSync} from 'node:zlib';
import {after, describe, it} from 'node:test';

import {MongoClient} from 'mongodb';
import tar from 'tar-stream';

import {
  backendMode,
  downloadHostReachable,
  findLocalMongod,
  MODE_VAR,
  PROBE_VAR,
  probeCacheFile,
  startMongo,
  type MongoBackend,
} from '../support/mongo-backend.js';

// Made before the suites are defined: they look for a mongod binary under it while defining tests.
const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-mongo-backend-unit-'));
const cacheFiles: string[] = [];

after(async () => {
  await rm(dir, {recursive: true, force: true});
  for (const f of cacheFiles) await rm(f, {force: true});
});

/** This process's environment without anything that would steer the chooser. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env};
  for (const k of Object.keys(env)) {
    if (k.startsWith('MONGOMS_') || k === 'MONGODB_TEST_URI' || k === MODE_VAR || k === PROBE_VAR || /(^|_)(https?-?)?proxy$/i.test(k)) delete env[k];
  }
  return {...env, HOME: dir, MONGOMS_DOWNLOAD_DIR: path.join(dir, 'binaries'), ...extra};
}

async function ping(b: MongoBackend): Promise<void> {
  const client = await new MongoClient(b.uri, {serverSelectionTimeoutMS: 2000}).connect();
  try {
    assert.equal((await client.db('x').command({ping: 1})).ok, 1);
  } finally {
    await client.close();
  }
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A download mirror address; its probe result is cached in a temp file this test removes. */
function mirror(url: string): string {
  cacheFiles.push(probeCacheFile(url));
  return url;
}

describe('mongo backend chooser', () => {
  it('reads the mode from GRAVITY_RESTORE_TEST_MONGO and rejects unknown values by naming the valid ones', () => {
    assert.equal(backendMode({}), 'auto');
    assert.equal(backendMode({[MODE_VAR]: ' Test-Server '}), 'test-server');
    assert.equal(backendMode({[MODE_VAR]: 'replset'}), 'replset');
    assert.throws(() => backendMode({[MODE_VAR]: 'docker'}), /auto, test-server, mongod, replset/);
  });

  it('GRAVITY_RESTORE_TEST_MONGO=test-server starts the in-repo server even when MONGODB_TEST_URI is set', async () => {
    const started = performance.now();
    const b = await startMongo({label: 'unit', env: cleanEnv({[MODE_VAR]: 'test-server', MONGODB_TEST_URI: 'mongodb://db.example:27017'})});
    try {
      assert.equal(b.kind, 'test-server');
      assert.match(b.detail, /^unit: GRAVITY_RESTORE_TEST_MONGO=test-server$/);
      await ping(b);
    } finally {
      await b.stop();
    }
    assert.ok(performance.now() - started < 2000);
  });

  it('MONGODB_TEST_URI wins in every other mode, without probing or downloading, password masked', async () => {
    for (const mode of ['', 'auto', 'mongod', 'replset']) {
      // An address that would hang: reaching it would show the URI did not win.
      const env = cleanEnv({[MODE_VAR]: mode, MONGODB_TEST_URI: 'mongodb://app:s3cret@db.example:27017/gravity', MONGOMS_DOWNLOAD_MIRROR: 'http://10.255.255.1'});
      const started = performance.now();
      const b = await startMongo({label: 'unit', env});
      assert.equal(b.kind, 'external', mode);
      assert.equal(b.uri, 'mongodb://app:s3cret@db.example:27017/gravity');
      assert.doesNotMatch(b.detail, /s3cret/);
      assert.equal(env[PROBE_VAR], undefined, 'no probe');
      assert.ok(performance.now() - started < 500, `${mode}: ${performance.now() - started} ms`);
      await b.stop();
    }
  });

  describe('without a mongod binary on disk', async () => {
    const local = await findLocalMongod(cleanEnv());
    const skip = local ? `a mongod exists on this machine (${local}), the chooser would use it` : false;

    it('a refused download host falls back to the test server at once and names the host and the error', {skip}, async () => {
      const host = mirror(`http://127.0.0.1:${await closedPort()}`);
      const env = cleanEnv({MONGOMS_DOWNLOAD_MIRROR: host});
      const started = performance.now();
      const b = await startMongo({label: 'unit', env});
      try {
        const ms = performance.now() - started;
        assert.equal(b.kind, 'test-server');
        assert.match(b.detail, /no real mongod: no local binary and http:\/\/127\.0\.0\.1:\d+ unreachable \(.*ECONNREFUSED/);
        assert.match(b.detail, /MONGODB_TEST_URI/);
        assert.ok(ms < 1500, `took ${ms} ms`);
        await ping(b);
      } finally {
        await b.stop();
      }
      // The result travels to child processes in the environment: no second probe.
      assert.match(env[PROBE_VAR] ?? '', /"reachable":false/);
      const again = await downloadHostReachable(env);
      assert.equal(again.source, 'env');
      assert.equal(again.reachable, false);
    });

    it('a download host that never answers is given up on after the probe timeout (3 s)', {skip, timeout: 15_000}, async () => {
      const sockets = new Set<net.Socket>();
      const silent = net.createServer((s) => sockets.add(s));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      try {
        const host = mirror(`http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`);
        const started = performance.now();
        const b = await startMongo({label: 'unit', env: cleanEnv({MONGOMS_DOWNLOAD_MIRROR: host})});
        const ms = performance.now() - started;
        await b.stop();
        assert.equal(b.kind, 'test-server');
        assert.match(b.detail, /unreachable \(no answer within 3 s/);
        assert.ok(ms >= 2900 && ms < 4500, `took ${ms} ms`);
        // A sibling process (another test file) reuses the result from the temp file.
        const sibling = await downloadHostReachable(cleanEnv({MONGOMS_DOWNLOAD_MIRROR: host}));
        assert.equal(sibling.source, 'file');
        assert.equal(sibling.reachable, false);
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    });

    it('a reachable download host gets mongod fetched into the cache; a mongod that cannot start still falls back', {skip, timeout: 60_000}, async () => {
      const archive = await fakeMongodArchive();
      const md5 = createHash('md5').update(archive).digest('hex');
      const requests: string[] = [];
      const server = http.createServer((req, res) => {
        requests.push(`${req.method} ${req.url}`);
        if (req.url?.endsWith('.tgz')) res.end(req.method === 'HEAD' ? undefined : archive);
        else if (req.url?.endsWith('.tgz.md5')) res.end(`${md5}  ${path.basename(req.url.slice(0, -4))}\n`);
        else res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const host = mirror(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`);
        // MONGOMS_USE_HTTP: the downloader speaks plain HTTP to this mirror.
        const env = cleanEnv({MONGOMS_DOWNLOAD_MIRROR: host, MONGOMS_USE_HTTP: 'true', MONGOMS_VERSION: '7.0.14'});
        const b = await startMongo({label: 'unit', env});
        await b.stop();
        assert.equal(b.kind, 'test-server');
        assert.match(b.detail, /mongod at .*mongod-[^ ]*-7\.0\.14 failed to start/);
        assert.ok(requests.some((r) => r.startsWith('HEAD ')), 'probed first');
        assert.ok(requests.some((r) => /^GET \/.*7\.0\.14\.tgz$/.test(r)), requests.join(', '));
        const cached = await readdir(path.join(dir, 'binaries'));
        assert.ok(cached.some((f) => /^mongod-.*-7\.0\.14$/.test(f)), cached.join(', '));
        // Next time the binary on disk is found without any request.
        const before = requests.length;
        assert.match((await findLocalMongod(env)) ?? '', /7\.0\.14$/);
        assert.equal(requests.length, before);
      } finally {
        server.close();
      }
    });
  });
});

/** A .tgz laid out like MongoDB's, whose bin/mongod is a script that fails at once. */
async function fakeMongodArchive(): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({name: 'mongodb-linux-x86_64-fake/bin/mongod', mode: 0o755}, '#!/bin/sh\necho "not a real mongod" >&2\nexit 1\n');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return gzipSync(Buffer.concat(chunks));
}
