import assert from 'node:assert/strict';
import {readFile, readdir, rm, unlink, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, ObjectId, Timestamp} from 'bson';

import {everyTypeDocuments, metadataJson, tempDir} from '../support/bson-fixtures.js';
import {createS3Client} from '../../src/s3/client.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {pbmV2MetadataString, uploadStorage, writePbmBackup, type GoTimestamp} from '../support/pbm-fixture.js';
import {s3EnvFor, startS3Server} from '../support/s3-server.js';

/**
 * Percona Backup for MongoDB storage (layout of PBM ≥ 2.4, OPLOG.md §6) as a source, through the
 * real CLI: listed by its metadata, read byte for byte, and refused clearly where it cannot be read.
 */
describe('Percona Backup for MongoDB storage through bin/run.js', () => {
  let dir: string;
  const artworks = everyTypeDocuments(60, 21);
  // A collection name with dots: PBM names the file <db>.<coll>, and only the database is dot-free.
  const saleItems = everyTypeDocuments(12, 22);
  const shard0 = everyTypeDocuments(20, 23);
  const shard1 = everyTypeDocuments(15, 24);
  const ts = (iso: string, i: number): GoTimestamp => ({T: Date.parse(iso) / 1000, I: i});

  /** Insert entries at `seconds` after `at`, as a replica set's oplog holds them. */
  const oplogOf = (at: string, seconds: number[]) =>
    seconds.map((second) => Buffer.from(BSON.serialize({ts: new Timestamp({t: Date.parse(at) / 1000 + second, i: 1}), t: 1n, v: 2, op: 'i', ns: 'gravity.artworks', o: {_id: second}})));
  const sources: Record<string, string> = {};
  before(async () => {
    dir = await tempDir('cli-pbm');
    // One source with every kind of PBM backup, and a mongodump folder beside them.
    const mixed = path.join(dir, 'mixed');
    await writePbmBackup(mixed, {
      name: '2026-11-18T14:00:00Z',
      firstWrite: ts('2026-11-18T14:00:10Z', 1),
      lastWrite: ts('2026-11-18T14:03:20Z', 4),
      replsets: [
        {
          name: 'rs0',
          namespaces: [
            {db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')},
            {db: 'gravity', collection: 'sale.items', docs: saleItems, metadata: metadataJson('sale.items')},
            {db: 'gravity', collection: 'empty', docs: [], metadata: metadataJson('empty')},
          ],
        },
      ],
    });
    await writePbmBackup(mixed, {
      name: '2026-11-18T15:00:00Z',
      status: 'error',
      firstWrite: ts('2026-11-18T15:00:10Z', 1),
      lastWrite: ts('2026-11-18T15:01:00Z', 1),
      replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: artworks.slice(0, 3), metadata: metadataJson('artworks')}]}],
    });
    await writePbmBackup(mixed, {
      name: '2026-11-18T16:00:00Z',
      type: 'physical',
      compression: 'none',
      firstWrite: ts('2026-11-18T16:00:10Z', 1),
      lastWrite: ts('2026-11-18T16:00:30Z', 1),
      replsets: [{name: 'rs0', namespaces: []}],
    });
    await writeFile(path.join(mixed, '.pbm.init'), 'Percona Backup for MongoDB\n');
    await writeFile(path.join(mixed, '2026-11-18T13-00-00Z.tar'), Buffer.alloc(0));

    // A sharded backup, uncompressed: one namespace spread over two replica sets.
    const sharded = path.join(dir, 'sharded');
    await writePbmBackup(sharded, {
      name: '2026-11-19T02:00:00Z',
      compression: 'none',
      firstWrite: ts('2026-11-19T02:00:10Z', 1),
      lastWrite: ts('2026-11-19T02:02:00Z', 7),
      replsets: [
        {name: 'shard0rs', namespaces: [{db: 'gravity', collection: 'artworks', docs: shard0, metadata: metadataJson('artworks')}], oplog: oplogOf('2026-11-19T02:00:10Z', [1, 4, 5, 9])},
        {name: 'shard1rs', namespaces: [{db: 'gravity', collection: 'artworks', docs: shard1, metadata: metadataJson('artworks')}], oplog: oplogOf('2026-11-19T02:00:10Z', [2, 3, 6, 7, 8])},
      ],
    });
    Object.assign(sources, {mixed, sharded});
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('list shows PBM backups by their consistent time (last_write_ts), type, status and namespaces', async () => {
    const result = await runCli(['list', '--source', sources.mixed!, '--json']);
    assert.equal(result.code, 0, result.stderr);
    type Listed = {id: string; takenAt: string; collections: string[] | null; pbm?: {type: string; status: string; compression: string; replsets: string[]; readable: boolean}};
    const {backups} = json<{backups: Listed[]}>(result);
    const byId = new Map(backups.map((b) => [b.id, b]));
    const done = byId.get('2026-11-18T14:00:00Z');
    assert.ok(done?.pbm, result.stdout);
    assert.equal(done.takenAt, '2026-11-18T14:03:20.000Z');
    assert.deepEqual(done.pbm, {...done.pbm, type: 'logical', status: 'done', compression: 'gzip', replsets: ['rs0'], readable: true});
    // No file for an empty collection: PBM skips it, so the backup is not known to hold it.
    assert.deepEqual(done.collections, ['artworks', 'sale.items']);
    assert.equal(byId.get('2026-11-18T15:00:00Z')?.pbm?.status, 'error');
    assert.equal(byId.get('2026-11-18T16:00:00Z')?.pbm?.type, 'physical');
    assert.equal(byId.get('2026-11-18T16:00:00Z')?.pbm?.readable, false);
    // The mongodump backup beside them is still listed; PBM's files make no backups of their own.
    assert.ok(byId.has('2026-11-18T13-00-00Z.tar'));
    assert.equal(backups.length, 4, backups.map((b) => b.id).join(', '));
  });

  it('latest and --before pass over a backup that is not done and a physical one', async () => {
    const result = await runCli(['list', '--source', sources.mixed!, '--before', '2026-11-18T17:00:00Z', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(json<{selected: string}>(result).selected, '2026-11-18T14:00:00Z');
    const table = await runCli(['list', '--source', sources.mixed!, '--tz', 'UTC']);
    assert.match(table.stdout, /pbm physical/);
    assert.match(table.stdout, /pbm error gzip/);
  });

  it('extract gives the documents byte for byte, a dotted collection name included', async () => {
    // A dotted collection is named with its database: --collection splits db from collection at the first dot.
    for (const [collection, docs] of [['artworks', artworks], ['sale.items', saleItems]] as const) {
      const out = path.join(dir, `set-${collection}`);
      const result = await runCli(['extract', '--source', sources.mixed!, '--from', 'latest', '--collection', collection.includes('.') ? `gravity.${collection}` : collection, '--query', '{}', '--out', out, '--json']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(json<{counts: Record<string, number>}>(result).counts[collection], docs.length);
      assert.ok((await readFile(path.join(out, 'dump', 'gravity', `${collection}.bson`))).equals(Buffer.concat(docs)), `${collection}: not byte-identical`);
      assert.equal(await readFile(path.join(out, 'dump', 'gravity', `${collection}.metadata.json`), 'utf8'), metadataJson(collection));
    }
  });

  it('inspect counts documents across every replica set of a sharded backup', async () => {
    const result = await runCli(['inspect', '2026-11-19T02:00:00Z', '--source', sources.sharded!, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const {namespaces} = json<{namespaces: Array<{db: string; collection: string; documents: number; bytes: number; indexes: string[]}>}>(result);
    const art = namespaces.find((ns) => ns.collection === 'artworks');
    assert.equal(art?.documents, shard0.length + shard1.length);
    assert.equal(art?.bytes, Buffer.concat([...shard0, ...shard1]).length);
    assert.deepEqual(art?.indexes, ['_id_']);
    // The oplog taken during the dump: both replica sets' chunks, each boundary entry (written twice) counted once.
    assert.equal(json<{oplog?: {documents: number}}>(result).oplog?.documents, 9);
    const out = path.join(dir, 'set-sharded');
    const extracted = await runCli(['extract', '--source', sources.sharded!, '--from', '2026-11-19T02:00:00Z', '--collection', 'artworks', '--query', '{}', '--out', out, '--json']);
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(Buffer.concat([...shard0, ...shard1])));
  });

  it('a physical backup and a failed one are refused with one line, nothing written', async () => {
    const cases: Array<[string, RegExp]> = [
      ['2026-11-18T16:00:00Z', /physical backup: it holds WiredTiger data files/],
      ['2026-11-18T15:00:00Z', /status "error".*not "done"/],
    ];
    for (const [id, pattern] of cases) {
      const out = path.join(dir, `refused-${id.replace(/:/g, '-')}`);
      const result = await runCli(['extract', '--source', sources.mixed!, '--from', id, '--collection', 'artworks', '--query', '{}', '--out', out]);
      assert.notEqual(result.code, 0);
      assertCleanError(result, pattern);
      await assert.rejects(readdir(out), /ENOENT/);
    }
  });

  it('from an S3 bucket: listed, streamed, and read again from the cache after fetch', async () => {
    const s3 = await startS3Server();
    try {
      await s3.createBucket('pbm');
      const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
      await uploadStorage(client, 'pbm', 'cluster/', sources.sharded!);
      const env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://pbm/cluster/', GRAVITY_RESTORE_CACHE: path.join(dir, 's3-cache')});
      const listed = await runCli(['list', '--json'], {env});
      assert.equal(listed.code, 0, listed.stderr);
      assert.deepEqual(json<{backups: Array<{id: string; takenAt: string}>}>(listed).backups.map((b) => [b.id, b.takenAt]), [['2026-11-19T02:00:00Z', '2026-11-19T02:02:00.000Z']]);
      const expected = Buffer.concat([...shard0, ...shard1]);
      for (const step of ['streamed', 'cached']) {
        if (step === 'cached') {
          const fetched = await runCli(['fetch', 'latest', '--json'], {env});
          assert.equal(fetched.code, 0, fetched.stderr);
          assert.ok(json<{files: unknown[]}>(fetched).files.length >= 5);
        }
        const out = path.join(dir, `s3-${step}`);
        const result = await runCli(['extract', '--from', 'latest', '--collection', 'artworks', '--query', '{}', '--out', out, '--json'], {env});
        assert.equal(result.code, 0, result.stderr);
        assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(expected), step);
      }
    } finally {
      await s3.stop();
    }
  });

  it('invalid .pbm.json and a listed namespace file that is missing: one line each, non-zero exit', async () => {
    const broken = path.join(dir, 'broken');
    await writePbmBackup(broken, {
      name: '2026-11-20T10:00:00Z',
      firstWrite: ts('2026-11-20T10:00:10Z', 1),
      lastWrite: ts('2026-11-20T10:01:00Z', 2),
      replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')}, {db: 'gravity', collection: 'sale.items', docs: saleItems, metadata: metadataJson('sale.items')}]}],
    });
    await writePbmBackup(broken, {
      name: '2026-11-20T11:00:00Z',
      firstWrite: ts('2026-11-20T11:00:10Z', 1),
      lastWrite: ts('2026-11-20T11:01:00Z', 2),
      replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')}]}],
    });
    await unlink(path.join(broken, '2026-11-20T10:00:00Z', 'rs0', 'gravity.sale.items.gz'));
    await writeFile(path.join(broken, '2026-11-20T11:00:00Z.pbm.json'), '{"type": "logical", "name": ');

    const listed = await runCli(['list', '--source', broken, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const invalid = await runCli(['inspect', '2026-11-20T11:00:00Z', '--source', broken]);
    assertCleanError(invalid, /2026-11-20T11:00:00Z\.pbm\.json is not valid JSON/);
    const out = path.join(dir, 'set-missing');
    const missing = await runCli(['extract', '--source', broken, '--from', '2026-11-20T10:00:00Z', '--collection', 'artworks', '--query', '{}', '--out', out]);
    assertCleanError(missing, /lists gravity\.sale\.items \(\d+ bytes\) on rs0, but 2026-11-20T10:00:00Z\/rs0\/gravity\.sale\.items\.gz is missing/);
    await assert.rejects(readdir(out), /ENOENT/);

    // A compression this version has no decoder for is named, not misread.
    const s2 = path.join(dir, 's2');
    await writePbmBackup(s2, {name: '2026-11-20T12:00:00Z', compression: 'none', firstWrite: ts('2026-11-20T12:00:10Z', 1), lastWrite: ts('2026-11-20T12:01:00Z', 2), replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')}]}]});
    const metaFile = path.join(s2, '2026-11-20T12:00:00Z.pbm.json');
    await writeFile(metaFile, (await readFile(metaFile, 'utf8')).replace('"compression": "none"', '"compression": "zstd"'));
    const refused = await runCli(['extract', '--source', s2, '--from', 'latest', '--collection', 'artworks', '--query', '{}', '--out', path.join(dir, 'set-s2')]);
    assertCleanError(refused, /compressed with zstd, which this version cannot read/);
    await assert.rejects(readdir(path.join(dir, 'set-s2')), /ENOENT/);
  });

  it('s2, PBM\'s default compression: a sharded backup read byte for byte; a damaged chunk refused in one line', async () => {
    const source = path.join(dir, 's2-sharded');
    await writePbmBackup(source, {
      name: '2026-11-23T02:00:00Z',
      compression: 's2',
      // Split into .pbmpart.N parts mid-chunk: the parts are one stream.
      splitAt: 1000,
      firstWrite: ts('2026-11-23T02:00:10Z', 1),
      lastWrite: ts('2026-11-23T02:02:00Z', 7),
      replsets: [
        {name: 'shard0rs', namespaces: [{db: 'gravity', collection: 'artworks', docs: shard0, metadata: metadataJson('artworks')}]},
        {name: 'shard1rs', namespaces: [{db: 'gravity', collection: 'artworks', docs: shard1, metadata: metadataJson('artworks')}]},
      ],
    });
    const out = path.join(dir, 'set-s2-sharded');
    const result = await runCli(['extract', '--source', source, '--from', 'latest', '--collection', 'artworks', '--query', '{}', '--out', out, '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(Buffer.concat([...shard0, ...shard1])));
    assert.ok((await readdir(path.join(source, '2026-11-23T02:00:00Z', 'shard0rs'))).includes('gravity.artworks.s2.pbmpart.2'));

    const file = path.join(source, '2026-11-23T02:00:00Z', 'shard1rs', 'gravity.artworks.s2');
    const bytes = await readFile(file);
    bytes[bytes.length - 3] ^= 0xff;
    await writeFile(file, bytes);
    const damaged = path.join(dir, 'set-s2-damaged');
    const refused = await runCli(['extract', '--source', source, '--from', 'latest', '--collection', 'artworks', '--query', '{}', '--out', damaged]);
    assertCleanError(refused, /gravity\.artworks\.s2.*(CRC|checksum)/i);
    await assert.rejects(readdir(damaged), /ENOENT/);
  });

  it('a local path: one backup\'s folder is read as that backup; storage of several asks which', async () => {
    const out = path.join(dir, 'set-local-path');
    const result = await runCli(['extract', '--from', path.join(sources.sharded!, '2026-11-19T02:00:00Z'), '--collection', 'artworks', '--query', '{}', '--out', out, '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(Buffer.concat([...shard0, ...shard1])));
    // Storage holding one backup is that backup.
    const inspected = await runCli(['inspect', sources.sharded!, '--json']);
    assert.equal(inspected.code, 0, inspected.stderr);
    assert.equal(json<{namespaces: Array<{documents: number}>}>(inspected).namespaces[0]?.documents, shard0.length + shard1.length);
    const several = await runCli(['inspect', sources.mixed!]);
    assertCleanError(several, /is Percona Backup for MongoDB storage holding 3 backups/);
  });

  it('every PBM layout by version: 1.x archive, 2.0 – 2.3 single oplog file, ≥ 2.8 meta.pbm alone', async () => {
    const layouts = path.join(dir, 'layouts');
    const ns = {db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')};
    const cases: Array<[string, string, string]> = [
      ['2026-11-21T01:00:00Z', '1.8.1', metadataJson('artworks')],
      ['2026-11-21T02:00:00Z', '2.3.1', metadataJson('artworks')],
      ['2026-11-21T03:00:00Z', '2.8.0', pbmV2MetadataString(ns)],
    ];
    for (const [name, version] of cases) {
      await writePbmBackup(layouts, {name, pbmVersion: version, firstWrite: ts(name, 1), lastWrite: {T: ts(name, 1).T + 30, I: 2}, replsets: [{name: 'rs0', namespaces: [ns], oplog: [Buffer.from(BSON.serialize({ts: new Timestamp({t: ts(name, 1).T, i: 1}), op: 'n', ns: '', o: {msg: 'periodic noop'}}))]}]});
    }
    // A backup PBM ≥ 2.8 wrote before metadata.json was generated from meta.pbm: the BSON metadata is read.
    await unlink(path.join(layouts, '2026-11-21T03:00:00Z', 'rs0', 'metadata.json'));
    const listed = await runCli(['list', '--source', layouts, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const collections = new Map(json<{backups: Array<{id: string; collections: string[] | null}>}>(listed).backups.map((b) => [b.id, b.collections]));
    // The 2.0 – 2.3 oplog file local.oplog.rs.bson is the oplog, not a collection.
    assert.deepEqual(collections.get('2026-11-21T02:00:00Z'), ['artworks']);
    for (const [name, version, metadata] of cases) {
      const out = path.join(dir, `layout-${version}`);
      const result = await runCli(['extract', '--source', layouts, '--from', name, '--collection', 'artworks', '--query', '{}', '--out', out, '--json']);
      assert.equal(result.code, 0, `${version}: ${result.stderr}`);
      assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(Buffer.concat(artworks)), `${version}: not byte-identical`);
      assert.equal(await readFile(path.join(out, 'dump', 'gravity', 'artworks.metadata.json'), 'utf8'), metadata, version);
    }
  });

  it('diff and extract --missing-in --follow between two PBM backups', async () => {
    const source = path.join(dir, 'history');
    const ids = Array.from({length: 20}, (_, i) => ObjectId.createFromTime(1_700_000_000 + i));
    const art = ids.map((_id, i) => Buffer.from(BSON.serialize({_id, title: `work ${i}`, '10': i, '2': -i})));
    const sales = ids.flatMap((artworkId, i) => [0, 1].map((k) => Buffer.from(BSON.serialize({_id: ObjectId.createFromTime(1_710_000_000 + i * 2 + k), artwork_id: artworkId, lot: k}))));
    const deleted = new Set([3, 7, 8, 15, 19]);
    const keptArt = art.filter((_, i) => !deleted.has(i));
    const keptSales = sales.filter((_, j) => !deleted.has(Math.floor(j / 2)));
    const meta = (collection: string) => metadataJson(collection);
    await writePbmBackup(source, {name: '2026-11-22T10:00:00Z', firstWrite: ts('2026-11-22T10:00:05Z', 1), lastWrite: ts('2026-11-22T10:01:00Z', 1), replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: art, metadata: meta('artworks')}, {db: 'gravity', collection: 'sale_artworks', docs: sales, metadata: meta('sale_artworks')}]}]});
    await writePbmBackup(source, {name: '2026-11-22T20:00:00Z', firstWrite: ts('2026-11-22T20:00:05Z', 1), lastWrite: ts('2026-11-22T20:01:00Z', 1), replsets: [{name: 'rs0', namespaces: [{db: 'gravity', collection: 'artworks', docs: keptArt, metadata: meta('artworks')}, {db: 'gravity', collection: 'sale_artworks', docs: keptSales, metadata: meta('sale_artworks')}]}]});
    const config = path.join(dir, 'pbm-relations.json');
    await writeFile(config, JSON.stringify({relations: [{from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'}]}));
    const env = cleanEnv({GRAVITY_RESTORE_SOURCE: source, GRAVITY_RESTORE_CONFIG: config, GRAVITY_RESTORE_CACHE: path.join(dir, 'history-cache')});

    const diff = await runCli(['diff', '2026-11-22T10:00:00Z', 'latest', '--collection', 'artworks', '--json'], {env});
    assert.equal(diff.code, 0, diff.stderr);
    const artworksDiff = json<{collections: Record<string, {missing: number; changed: number; same: number}>}>(diff).collections.artworks!;
    assert.deepEqual([artworksDiff.missing, artworksDiff.changed, artworksDiff.same], [deleted.size, 0, art.length - deleted.size]);

    const out = path.join(dir, 'history-set');
    const result = await runCli(['extract', '--from', '2026-11-22T10:00:00Z', '--collection', 'artworks', '--missing-in', 'latest', '--follow', '--out', out, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const lostArt = art.filter((_, i) => deleted.has(i));
    const lostSales = sales.filter((_, j) => deleted.has(Math.floor(j / 2)));
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {artworks: lostArt.length, sale_artworks: lostSales.length});
    assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'))).equals(Buffer.concat(lostArt)));
    assert.ok((await readFile(path.join(out, 'dump', 'gravity', 'sale_artworks.bson'))).equals(Buffer.concat(lostSales)));
  });
});
