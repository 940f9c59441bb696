import assert from 'node:assert/strict';
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {Readable} from 'node:stream';
import {after, before, describe, it} from 'node:test';
import {gzipSync} from 'node:zlib';

import {serialize} from 'bson';
import tar from 'tar-stream';

import {listBackups, resolveBackup, selectBackup, type Backup} from '../../src/catalog/list.js';
import {scanPackedObject} from '../../src/catalog/members.js';
import type {BackupStore, ByteRange, StoreObject} from '../../src/catalog/store.js';
import {GravityError} from '../../src/errors.js';

/** An in-memory source that counts what it serves, so tests can tell headers-only reads from full downloads. */
class MemoryStore implements BackupStore {
  readonly kind = 's3' as const;
  readonly identity: string;
  bytesServed = 0;
  opens = 0;
  private readonly objects = new Map<string, {data: Buffer; lastModified: Date}>();

  constructor(readonly location = 's3://memory/backups/') {
    this.identity = `memory|${location}`;
  }

  put(key: string, data: Buffer | string, lastModified = new Date('2026-11-18T00:00:00Z')): void {
    this.objects.set(key, {data: Buffer.from(data), lastModified});
  }

  async list(): Promise<StoreObject[]> {
    return [...this.objects].map(([key, {data, lastModified}]) => ({key, size: data.length, etag: `etag-${key}`, lastModified}));
  }

  async open(key: string, range?: ByteRange): Promise<Readable> {
    const object = this.objects.get(key);
    if (!object) throw new GravityError('BACKUP_NOT_FOUND', `${key} does not exist`);
    const slice = range ? object.data.subarray(range.start, range.end === undefined ? undefined : range.end + 1) : object.data;
    this.opens++;
    this.bytesServed += slice.length;
    // Several chunks, as a network stream would deliver.
    const chunks: Buffer[] = [];
    for (let offset = 0; offset < slice.length; offset += 4096) chunks.push(slice.subarray(offset, offset + 4096));
    return Readable.from(chunks);
  }

  async head(key: string): Promise<StoreObject | null> {
    const object = this.objects.get(key);
    return object ? {key, size: object.data.length, lastModified: object.lastModified} : null;
  }

  mapError(error: unknown): GravityError {
    return error instanceof GravityError ? error : new GravityError('INTERNAL', String(error));
  }
}

/** A tar holding mongodump files for the given collections, each .bson `bsonBytes` long. */
async function dumpTar(collections: string[], bsonBytes = 200_000): Promise<Buffer> {
  const pack = tar.pack();
  for (const collection of collections) {
    pack.entry({name: `dump/gravity/${collection}.bson`}, Buffer.alloc(bsonBytes, 7));
    pack.entry({name: `dump/gravity/${collection}.metadata.json`}, JSON.stringify({indexes: [], uuid: collection}));
  }
  // A member with a name longer than 100 bytes needs a pax/GNU long-name record.
  pack.entry({name: `dump/gravity/${'x'.repeat(120)}.bson`}, Buffer.alloc(10));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function archivePrelude(namespaces: Array<[string, string]>): Buffer {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(0x8199e26d);
  const header = serialize({concurrent_collections: 4, version: '0.1', server_version: '7.0.0', tool_version: '100.9.0'});
  const collections = namespaces.map(([db, collection]) => serialize({db, collection, metadata: '{}', size: 0, type: 'collection'}));
  const terminator = Buffer.alloc(4, 0xff);
  return Buffer.concat([magic, header, ...collections, terminator, Buffer.alloc(1000, 1)]);
}

let cacheDir: string;
before(async () => {
  cacheDir = await mkdtemp(path.join(os.tmpdir(), 'gravity-catalog-list-'));
});
after(async () => {
  await rm(cacheDir, {recursive: true, force: true});
});

describe('listBackups', () => {
  it('groups folders, single archives, dump trees and sidecars into backups, newest first', async () => {
    const store = new MemoryStore();
    store.put('hourly/2026-11-18T14-00-00Z/gravity.tar.gz', 'a'.repeat(10));
    store.put('hourly/2026-11-18T14-00-00Z/gravity.tar.gz.sha256', 'f'.repeat(64));
    store.put('daily/2026-11-17/dump/gravity/artworks.bson', 'b'.repeat(30));
    store.put('daily/2026-11-17/dump/gravity/artworks.metadata.json', '{}');
    store.put('daily/2026-11-17/dump/gravity/partners.bson.gz', 'c'.repeat(5));
    store.put('gravity-1763500000.gz', 'd'.repeat(7));
    store.put('gravity-1763500000.gz.md5', 'e'.repeat(32));
    store.put('README.md', 'not a backup');

    const backups = await listBackups(store, {sourceTz: 'UTC'});
    assert.deepEqual(
      backups.map((backup) => [backup.id, backup.kind, backup.takenAt.toISOString(), backup.size, backup.objects.length]),
      [
        ['hourly/2026-11-18T14-00-00Z', 'hourly', '2026-11-18T14:00:00.000Z', 74, 2],
        ['daily/2026-11-17', 'daily', '2026-11-17T00:00:00.000Z', 37, 3],
        ['gravity-1763500000.gz', 'unknown', '2025-11-18T21:06:40.000Z', 39, 2],
      ],
    );
    assert.deepEqual(backups[1]?.collections, ['artworks', 'partners']);
    assert.deepEqual(backups[1]?.namespaces, ['gravity.artworks', 'gravity.partners']);
    assert.equal(backups[0]?.collections, null, 'a tarball not yet read has unknown collections');
  });

  it('takes the kind from the source prefix when the name has no word for it', async () => {
    const store = new MemoryStore('s3://bucket/db/hourly/');
    store.put('2026-11-18T14-00-00Z.tar', 'x');
    assert.equal((await listBackups(store, {sourceTz: 'UTC'}))[0]?.kind, 'hourly');
  });

  it('fails with NO_BACKUPS saying what it looked at', async () => {
    const empty = new MemoryStore();
    await assert.rejects(listBackups(empty, {sourceTz: 'UTC'}), (error: unknown) => error instanceof GravityError && error.code === 'NO_BACKUPS' && /holds no objects/.test(error.message));
    const unnamed = new MemoryStore();
    unnamed.put('notes/readme.txt', 'x');
    unnamed.put('gravity.tar.gz', 'x');
    await assert.rejects(
      listBackups(unnamed, {sourceTz: 'UTC'}),
      (error: unknown) => error instanceof GravityError && error.code === 'NO_BACKUPS' && /Looked at 2 objects \(notes\/readme.txt, gravity.tar.gz\)/.test(error.hint ?? ''),
    );
  });

  it('warns when upload times show the source timezone is wrong', async () => {
    const store = new MemoryStore();
    // Named in New York local time, uploaded a few minutes after: read as UTC they look written 5 h after.
    for (let hour = 9; hour <= 12; hour++) {
      store.put(`hourly/2026-11-18-${String(hour).padStart(2, '0')}-00/dump.tar`, 'x', new Date(Date.UTC(2026, 10, 18, hour + 5, 4)));
    }
    const wrong = await listBackups(store, {sourceTz: 'UTC'});
    assert.equal(wrong.length, 4);
    for (const backup of wrong) assert.match(backup.warnings.join('\n'), /timezone is probably wrong/);
    const right = await listBackups(store, {sourceTz: 'America/New_York'});
    for (const backup of right) assert.deepEqual(backup.warnings, []);
    assert.equal(right[0]?.takenAt.toISOString(), '2026-11-18T17:00:00.000Z');
  });

  it('does not warn about backups copied long after, but does about one written before its time', async () => {
    const store = new MemoryStore();
    store.put('daily/2026-11-10/dump.tar', 'x', new Date('2026-11-20T08:13:00Z'));
    store.put('daily/2026-11-11/dump.tar', 'x', new Date('2026-11-20T08:13:00Z'));
    store.put('daily/2026-11-12T06-00-00Z/dump.tar', 'x', new Date('2026-11-11T23:00:00Z'));
    const backups = await listBackups(store, {sourceTz: 'UTC'});
    assert.deepEqual(backups.filter((backup) => backup.warnings.length > 0).map((backup) => backup.id), ['daily/2026-11-12T06-00-00Z']);
    assert.match(backups[0]?.warnings[0] ?? '', /7\.0 h before/);
  });

  it('warns about a name that falls in a repeated DST hour', async () => {
    const store = new MemoryStore();
    store.put('hourly/2026-11-01-01-30/dump.tar', 'x', new Date('2026-11-01T05:35:00Z'));
    const [backup] = await listBackups(store, {sourceTz: 'America/New_York'});
    assert.match(backup?.warnings.join('\n') ?? '', /happens twice in America\/New_York/);
  });
});

describe('selectBackup and resolveBackup', () => {
  let store: MemoryStore;
  let backups: Backup[];
  let hourlyTar: Buffer;

  before(async () => {
    store = new MemoryStore();
    hourlyTar = await dumpTar(['artworks', 'sale_artworks']);
    for (let hour = 10; hour <= 13; hour++) store.put(`hourly/2026-11-18T${hour}-00-00Z/gravity.tar`, hourlyTar);
    const dailyTar = await dumpTar(['artworks', 'sale_artworks', 'partners', 'users']);
    store.put('daily/2026-11-18/gravity.tar.gz', gzipSync(dailyTar));
    store.put('daily/2026-11-17/gravity.tar.gz', gzipSync(dailyTar));
    backups = await listBackups(store, {sourceTz: 'UTC'});
  });

  it('selects the newest at or before --before, inclusive of the exact time', async () => {
    assert.equal((await selectBackup(store, backups, {}))?.id, 'hourly/2026-11-18T13-00-00Z');
    assert.equal((await selectBackup(store, backups, {before: new Date('2026-11-18T12:00:00Z')}))?.id, 'hourly/2026-11-18T12-00-00Z');
    assert.equal((await selectBackup(store, backups, {before: new Date('2026-11-18T11:59:59.999Z')}))?.id, 'hourly/2026-11-18T11-00-00Z');
    assert.equal((await selectBackup(store, backups, {before: new Date('2026-11-18T09:59:59Z')}))?.id, 'daily/2026-11-18');
    assert.equal(await selectBackup(store, backups, {before: new Date('2026-11-16T23:59:59Z')}), null);
  });

  it('chooses by collection: hourly tarballs lack partners, the daily one holds it', async () => {
    const skipped: string[] = [];
    store.bytesServed = 0;
    const selected = await selectBackup(store, backups, {collection: 'partners', cacheDir, onSkip: (id) => skipped.push(id)});
    assert.equal(selected?.id, 'daily/2026-11-18');
    assert.deepEqual(skipped, ['hourly/2026-11-18T13-00-00Z', 'hourly/2026-11-18T12-00-00Z', 'hourly/2026-11-18T11-00-00Z', 'hourly/2026-11-18T10-00-00Z']);
    // Uncompressed tarballs are read by their headers only: far less than the four tarballs.
    const tarBytes = hourlyTar.length * 4;
    assert.ok(store.bytesServed < tarBytes / 2, `served ${store.bytesServed} of ${tarBytes}`);
    // What was learnt is known on the next listing, and the next selection reads nothing.
    const relisted = await listBackups(store, {sourceTz: 'UTC', cacheDir});
    assert.deepEqual(relisted.find((backup) => backup.id === 'hourly/2026-11-18T12-00-00Z')?.collections, ['sale_artworks', 'artworks', 'x'.repeat(120)].sort());
    store.bytesServed = 0;
    assert.equal((await selectBackup(store, relisted, {collection: 'gravity.partners', cacheDir}))?.id, 'daily/2026-11-18');
    assert.ok(store.bytesServed < 2 * 1024 * 1024, 'the partial daily index still needs the stream, but no hourly tarball is read');
    store.bytesServed = 0;
    assert.equal((await selectBackup(store, relisted, {collection: 'sale_artworks', cacheDir}))?.id, 'hourly/2026-11-18T13-00-00Z');
    assert.equal(store.bytesServed, 0);
  });

  it('returns null when no backup holds the collection', async () => {
    assert.equal(await selectBackup(store, backups, {collection: 'nothing_here', cacheDir}), null);
  });

  it("resolves 'latest' and ids, and names nearby ids for a wrong one", async () => {
    assert.equal((await resolveBackup(store, backups, 'latest')).id, 'hourly/2026-11-18T13-00-00Z');
    assert.equal((await resolveBackup(store, backups, 'daily/2026-11-17/')).id, 'daily/2026-11-17');
    assert.equal((await resolveBackup(store, backups, `${store.location}daily/2026-11-17`)).id, 'daily/2026-11-17');
    await assert.rejects(resolveBackup(store, backups, 'hourly/2026-11-18T11-30-00Z'), (error: unknown) => {
      assert.ok(error instanceof GravityError);
      assert.equal(error.code, 'BACKUP_NOT_FOUND');
      assert.deepEqual((error.details?.nearby as string[]).slice(0, 2).sort(), ['hourly/2026-11-18T11-00-00Z', 'hourly/2026-11-18T12-00-00Z']);
      return true;
    });
    await assert.rejects(resolveBackup(store, backups, 'latest', {before: new Date('2020-01-01T00:00:00Z')}), (error: unknown) => error instanceof GravityError && error.code === 'NO_BACKUPS');
  });
});

describe('scanPackedObject', () => {
  it('reads the collection list from a mongodump archive prelude, plain and gzipped', async () => {
    const store = new MemoryStore();
    const prelude = archivePrelude([['gravity', 'artworks'], ['gravity', 'partners']]);
    store.put('a/2026-11-18.archive', prelude);
    store.put('a/2026-11-18.archive.gz', gzipSync(prelude));
    for (const key of ['a/2026-11-18.archive', 'a/2026-11-18.archive.gz']) {
      const scan = await scanPackedObject(store, {key, size: 0});
      assert.deepEqual(scan, {namespaces: ['gravity.artworks', 'gravity.partners'], complete: true, format: 'archive'});
    }
  });

  it('tells a gzipped tar from a gzipped archive by content, and reports a broken tar', async () => {
    const store = new MemoryStore();
    store.put('gravity-1763500000.gz', gzipSync(await dumpTar(['users'], 10)));
    assert.deepEqual((await scanPackedObject(store, {key: 'gravity-1763500000.gz', size: 0}))?.namespaces, ['gravity.users', `gravity.${'x'.repeat(120)}`]);
    const broken = Buffer.alloc(2048, 9);
    store.put('broken.tar', broken);
    await assert.rejects(scanPackedObject(store, {key: 'broken.tar', size: broken.length}), (error: unknown) => error instanceof GravityError && error.code === 'DUMP_CORRUPT');
  });
});
