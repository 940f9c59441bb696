import assert from 'node:assert/strict';
import {existsSync} from 'node:fs';
import {mkdtemp, readdir, rm, statfs} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {after, before, describe, it} from 'node:test';

import {fetchBackup} from '../../src/catalog/fetch.js';
import type {Backup} from '../../src/catalog/list.js';
import type {BackupStore, ByteRange, StoreObject} from '../../src/catalog/store.js';
import {MIN_FREE_ENV, minFreeBytes, SpaceGuard} from '../../src/dump/disk-space.js';
import {GravityError} from '../../src/errors.js';

const GIB = 1024 ** 3;

async function freeBytes(dir: string): Promise<number> {
  const disk = await statfs(dir);
  return disk.bavail * disk.bsize;
}

/** A remote-like store holding one object of `size` bytes. */
function remoteStore(size: number): BackupStore {
  const data = Buffer.alloc(size, 7);
  return {
    kind: 's3',
    location: 's3://space/',
    identity: 'space',
    list: async (): Promise<StoreObject[]> => [{key: 'b.tar', size}],
    open: async (_key: string, range?: ByteRange) => Readable.from([data.subarray(range?.start ?? 0, (range?.end ?? size - 1) + 1)]),
    head: async () => null,
    mapError: (error: unknown) => (error instanceof GravityError ? error : new GravityError('S3_NETWORK', String(error))),
  };
}

describe('free space kept on the disk (dump/disk-space.ts)', () => {
  let dir: string;
  const saved = process.env[MIN_FREE_ENV];
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gr-space-'));
  });
  after(async () => {
    if (saved === undefined) delete process.env[MIN_FREE_ENV];
    else process.env[MIN_FREE_ENV] = saved;
    await rm(dir, {recursive: true, force: true});
  });

  it('reads the reserve from GRAVITY_RESTORE_MIN_FREE_BYTES; by default the smaller of 1 GiB and 5 % of the disk', () => {
    assert.equal(minFreeBytes(100 * GIB, {}), GIB);
    assert.equal(minFreeBytes(10 * GIB, {}), Math.floor(0.5 * GIB));
    assert.equal(minFreeBytes(100 * GIB, {[MIN_FREE_ENV]: '12345'}), 12345);
    assert.equal(minFreeBytes(100 * GIB, {[MIN_FREE_ENV]: '512MiB'}), 512 * 1024 * 1024);
    assert.equal(minFreeBytes(100 * GIB, {[MIN_FREE_ENV]: '2GB'}), 2e9);
    assert.equal(minFreeBytes(100 * GIB, {[MIN_FREE_ENV]: '10%'}), 10 * GIB);
    assert.throws(() => minFreeBytes(100 * GIB, {[MIN_FREE_ENV]: 'lots'}), (e: unknown) => e instanceof GravityError && e.code === 'CONFIG_INVALID');
  });

  it('a guard lets writes through until the reserve, then refuses with what was written and what is left', async () => {
    process.env[MIN_FREE_ENV] = String((await freeBytes(dir)) - 8 * 1024 * 1024);
    const guard = new SpaceGuard(path.join(dir, 'not-yet', 'made'), 'the test data');
    for (let i = 0; i < 4; i++) await guard.reserve(1024 * 1024);
    await assert.rejects(guard.reserve(16 * 1024 * 1024), (e: unknown) => {
      assert.ok(e instanceof GravityError);
      assert.equal(e.code, 'RESOURCE_LIMIT');
      assert.equal(e.exitCode, 10);
      assert.match(e.message, /Stopped writing the test data before the disk fills: 4\.0 MiB written so far, .* left on the disk of /);
      return true;
    });
  });

  it('fetch asks for an object\'s space before downloading it, and leaves no part file when there is none', async () => {
    const cacheDir = path.join(dir, 'cache');
    const size = 4 * 1024 * 1024;
    const store = remoteStore(size);
    const backup = {id: 'b.tar', kind: 'unknown', takenAt: new Date('2026-11-18T14:00:00Z'), size, objects: [{key: 'b.tar', size}], collections: null} as unknown as Backup;
    process.env[MIN_FREE_ENV] = String((await freeBytes(dir)) - 1024 * 1024);
    await assert.rejects(fetchBackup(store, backup, {cacheDir}), (e: unknown) => e instanceof GravityError && e.code === 'RESOURCE_LIMIT' && /the download/.test(e.message));
    const downloads = path.join(cacheDir, 'downloads');
    const left = existsSync(downloads) ? (await readdir(downloads, {recursive: true})).map(String).filter((name) => name.endsWith('.part')) : [];
    assert.deepEqual(left, []);
    delete process.env[MIN_FREE_ENV];
    const fetched = await fetchBackup(store, backup, {cacheDir});
    assert.equal(fetched.files[0]!.size, size);
  });
});
