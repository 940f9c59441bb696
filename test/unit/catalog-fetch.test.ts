import assert from 'node:assert/strict';
import {createHash, randomBytes} from 'node:crypto';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {after, before, describe, it} from 'node:test';

import {defaultCacheDir, fetchBackup} from '../../src/catalog/fetch.js';
import {listBackups, selectBackup} from '../../src/catalog/list.js';
import {openStore, type BackupStore, type ByteRange, type StoreObject} from '../../src/catalog/store.js';
import {GravityError} from '../../src/errors.js';
import {mapS3Error} from '../../src/s3/client.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Buffer) => createHash('md5').update(data).digest('hex');

/** A remote-like source whose connections can drop mid-transfer, and whose ETag can lie. */
class FlakyStore implements BackupStore {
  readonly kind = 's3' as const;
  readonly location = 's3://flaky/';
  readonly identity = 'flaky';
  drops = 0;
  requests: ByteRange[] = [];
  etag: string;

  constructor(private readonly data: Buffer, readonly key = '2026-11-18T14-00-00Z.tar') {
    this.etag = md5(data);
  }

  async list(): Promise<StoreObject[]> {
    return [{key: this.key, size: this.data.length, etag: this.etag, lastModified: new Date('2026-11-18T14:05:00Z')}];
  }

  async open(_key: string, range?: ByteRange): Promise<Readable> {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.data.length - 1;
    this.requests.push({start, end});
    const slice = this.data.subarray(start, end + 1);
    const drop = this.drops > 0;
    if (drop) this.drops--;
    async function* body(): AsyncGenerator<Buffer> {
      for (let offset = 0; offset < slice.length; offset += 64 * 1024) {
        if (drop && offset >= slice.length / 2) throw Object.assign(new Error('socket hang up'), {code: 'ECONNRESET'});
        yield slice.subarray(offset, offset + 64 * 1024);
      }
    }
    return Readable.from(body());
  }

  async head(): Promise<StoreObject | null> {
    return null;
  }

  mapError(error: unknown, key?: string): GravityError {
    return mapS3Error(error, {bucket: 'flaky', key});
  }
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'gravity-catalog-fetch-'));
});
after(async () => {
  await rm(tmp, {recursive: true, force: true});
});

describe('fetchBackup from a remote store', () => {
  it('retries a dropped connection from where it broke off', async () => {
    const data = randomBytes(1024 * 1024);
    const store = new FlakyStore(data);
    store.drops = 2;
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const result = await fetchBackup(store, backup, {cacheDir: path.join(tmp, 'retry')});
    assert.equal(result.files[0]?.sha256, sha256(data));
    assert.equal(result.bytesTransferred, data.length, 'bytes received before a drop are kept, not fetched again');
    assert.equal(store.requests.length, 3);
    assert.ok((store.requests[1]?.start ?? 0) > 0, 'the retry asks for the rest with an explicit range');
  });

  it('fails with S3_NETWORK when the connection keeps dropping, and the next fetch resumes', async () => {
    const data = randomBytes(1024 * 1024);
    const store = new FlakyStore(data);
    store.drops = 10;
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const cacheDir = path.join(tmp, 'drops');
    await assert.rejects(fetchBackup(store, backup, {cacheDir, attempts: 2}), (error: unknown) => error instanceof GravityError && error.code === 'S3_NETWORK');
    store.drops = 0;
    const result = await fetchBackup(store, backup, {cacheDir});
    assert.equal(result.resumed, true);
    assert.ok(result.bytesTransferred < data.length);
    assert.equal(result.files[0]?.sha256, sha256(data));
  });

  it('rejects data that disagrees with a plain-MD5 ETag and keeps no copy', async () => {
    const data = randomBytes(10_000);
    const store = new FlakyStore(data);
    store.etag = md5(Buffer.from('something else'));
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const cacheDir = path.join(tmp, 'etag');
    await assert.rejects(fetchBackup(store, backup, {cacheDir}), (error: unknown) => error instanceof GravityError && error.code === 'DOWNLOAD_CORRUPT' && /ETag/.test(error.message));
    // The download did go through the cache folder, and the bad copy (and its resume state) is gone.
    const downloads = path.join(cacheDir, 'downloads');
    assert.equal(existsSync(downloads), true, 'the download was written under downloads/');
    const files = (await readdir(downloads, {recursive: true, withFileTypes: true})).filter((entry) => entry.isFile()).map((entry) => entry.name);
    assert.deepEqual(files, [], 'no file of the rejected download is kept');
  });

  it('starts over when the object changed since the interrupted attempt', async () => {
    const data = randomBytes(512 * 1024);
    const store = new FlakyStore(data);
    store.drops = 10;
    const [backup] = await listBackups(store, {sourceTz: 'UTC'});
    assert.ok(backup);
    const cacheDir = path.join(tmp, 'changed');
    await assert.rejects(fetchBackup(store, backup, {cacheDir, attempts: 1}));
    const replaced = randomBytes(512 * 1024);
    const newer = new FlakyStore(replaced);
    const [newBackup] = await listBackups(newer, {sourceTz: 'UTC'});
    assert.ok(newBackup);
    const result = await fetchBackup(newer, newBackup, {cacheDir});
    assert.equal(result.resumed, false);
    assert.equal(result.files[0]?.sha256, sha256(replaced));
  });
});

describe('a local folder source', () => {
  let folder: string;
  const artworks = randomBytes(20_000);
  const archive = randomBytes(5_000);

  before(async () => {
    folder = path.join(tmp, 'backups');
    await mkdir(path.join(folder, 'daily', '2026-11-17', 'dump', 'gravity'), {recursive: true});
    await writeFile(path.join(folder, 'daily', '2026-11-17', 'dump', 'gravity', 'artworks.bson'), artworks);
    await writeFile(path.join(folder, 'daily', '2026-11-17', 'dump', 'gravity', 'artworks.metadata.json'), '{}');
    await mkdir(path.join(folder, 'hourly'), {recursive: true});
    await writeFile(path.join(folder, 'hourly', 'gravity-2026-11-18T14-00-00Z.archive.gz'), archive);
    await writeFile(path.join(folder, 'hourly', 'gravity-2026-11-18T14-00-00Z.archive.gz.sha256'), `${sha256(archive)}\n`);
    await writeFile(path.join(folder, 'hourly', 'gravity-2026-11-18T15-00-00Z.archive.gz'), archive);
    await writeFile(path.join(folder, 'hourly', 'gravity-2026-11-18T15-00-00Z.archive.gz.sha256'), `${'1'.repeat(64)}\n`);
  });

  it('lists backups the same way as S3', async () => {
    const store = openStore(folder, {});
    assert.equal(store.location, path.resolve(folder));
    const backups = await listBackups(store, {sourceTz: 'UTC'});
    assert.deepEqual(
      backups.map((backup) => [backup.id, backup.kind, backup.objects.length, backup.collections]),
      [
        ['hourly/gravity-2026-11-18T15-00-00Z.archive.gz', 'hourly', 2, null],
        ['hourly/gravity-2026-11-18T14-00-00Z.archive.gz', 'hourly', 2, null],
        ['daily/2026-11-17', 'daily', 2, ['artworks']],
      ],
    );
    assert.equal((await selectBackup(store, backups, {collection: 'artworks', before: new Date('2026-11-18T00:00:00Z')}))?.id, 'daily/2026-11-17');
  });

  it('fetches in place without copying, with verified checksums', async () => {
    const store = openStore(folder, {});
    const backups = await listBackups(store, {sourceTz: 'UTC'});
    const tree = backups.find((backup) => backup.id === 'daily/2026-11-17');
    assert.ok(tree);
    const result = await fetchBackup(store, tree, {cacheDir: path.join(tmp, 'local-cache')});
    assert.equal(result.bytesTransferred, 0);
    assert.equal(result.collections.artworks, path.join(folder, 'daily', '2026-11-17', 'dump', 'gravity', 'artworks.bson'));
    assert.equal(result.files.find((file) => file.key.endsWith('artworks.bson'))?.sha256, sha256(artworks));
    const archived = backups.find((backup) => backup.id === 'hourly/gravity-2026-11-18T14-00-00Z.archive.gz');
    assert.ok(archived);
    const good = await fetchBackup(store, archived, {cacheDir: path.join(tmp, 'local-cache')});
    assert.deepEqual(good.files.map((file) => file.key), ['hourly/gravity-2026-11-18T14-00-00Z.archive.gz'], 'sidecars are checks, not files');
  });

  it('reports a local file that disagrees with its sidecar without deleting the file', async () => {
    const store = openStore(folder, {});
    const backups = await listBackups(store, {sourceTz: 'UTC'});
    const bad = backups.find((backup) => backup.id === 'hourly/gravity-2026-11-18T15-00-00Z.archive.gz');
    assert.ok(bad);
    await assert.rejects(fetchBackup(store, bad, {cacheDir: path.join(tmp, 'local-cache')}), (error: unknown) => error instanceof GravityError && error.code === 'DOWNLOAD_CORRUPT');
    assert.deepEqual(await readFile(path.join(folder, 'hourly', 'gravity-2026-11-18T15-00-00Z.archive.gz')), archive);
  });
});

describe('defaultCacheDir', () => {
  it('prefers GRAVITY_RESTORE_CACHE, then XDG_CACHE_HOME', () => {
    const saved = {cache: process.env.GRAVITY_RESTORE_CACHE, xdg: process.env.XDG_CACHE_HOME};
    try {
      process.env.GRAVITY_RESTORE_CACHE = '/tmp/gr-cache';
      assert.equal(defaultCacheDir(), '/tmp/gr-cache');
      delete process.env.GRAVITY_RESTORE_CACHE;
      process.env.XDG_CACHE_HOME = '/tmp/xdg';
      assert.equal(defaultCacheDir(), '/tmp/xdg/gravity-restore');
      delete process.env.XDG_CACHE_HOME;
      assert.equal(defaultCacheDir(), path.join(os.homedir(), '.cache', 'gravity-restore'));
    } finally {
      if (saved.cache === undefined) delete process.env.GRAVITY_RESTORE_CACHE;
      else process.env.GRAVITY_RESTORE_CACHE = saved.cache;
      if (saved.xdg === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved.xdg;
    }
  });
});
