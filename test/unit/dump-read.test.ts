import assert from 'node:assert/strict';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {Readable} from 'node:stream';
import {after, before, describe, it} from 'node:test';
import zlib from 'node:zlib';
import {BSON} from 'bson';
import {crc64} from '../../src/dump/crc64.js';
import {inspectDump} from '../../src/dump/inspect.js';
import {collectionFileStem} from '../../src/dump/names.js';
import {detectFormat, readDump} from '../../src/dump/read.js';
import type {DumpInput, DumpStreamSource, ReadOptions} from '../../src/dump/types.js';
import {GravityError} from '../../src/errors.js';
import {
  bufferSource, buildArchive, everyTypeDocuments, type FixtureNamespace, folderSources, metadataJson, tarFolder, tempDir, writeFolder,
} from '../support/bson-fixtures.js';

const LONG_NAME = `long_${'é'.repeat(60)}_${'x'.repeat(150)}`; // escaped form is far over 238 bytes
const WEIRD_NAME = 'we ird/na,me?%50';

const docs = everyTypeDocuments(60);
const oplog = everyTypeDocuments(5, 99).slice(0, 5);
const namespaces: FixtureNamespace[] = [
  {db: 'shop', collection: 'artworks', docs, metadata: metadataJson('artworks', {indexes: [{v: 2, key: {_id: 1}, name: '_id_'}, {v: 2, key: {partner_id: 1}, name: 'partner_id_1'}]})},
  {db: 'shop', collection: WEIRD_NAME, docs: docs.slice(0, 9), metadata: metadataJson(WEIRD_NAME)},
  {db: 'shop', collection: 'empty', docs: [], metadata: metadataJson('empty')},
  {db: 'shop', collection: 'recent', metadata: metadataJson('recent', {type: 'view', options: {viewOn: 'artworks', pipeline: [{$match: {n: {$gt: 1}}}]}})},
  {db: 'shop', collection: 'weather', metadata: metadataJson('weather', {type: 'timeseries', options: {timeseries: {timeField: 't'}}})},
  {db: 'shop', collection: 'system.buckets.weather', docs: docs.slice(10, 14)},
  {db: 'other', collection: LONG_NAME, docs: docs.slice(20, 31), metadata: metadataJson(LONG_NAME)},
];
const total = (list: Buffer[]): number => list.reduce((s, d) => s + d.length, 0);

interface Collected {
  docs: Map<string, Buffer[]>;
  ends: Map<string, {documents: number; bytes: number}>;
  raw: Map<string, string>;
  order: string[];
  oplog?: {documents: number; bytes: number};
}

async function collect(input: DumpInput, options: ReadOptions = {}): Promise<Collected> {
  const out: Collected = {docs: new Map(), ends: new Map(), raw: new Map(), order: []};
  for await (const event of readDump(input, options)) {
    if (event.type === 'oplog') {
      out.oplog = {documents: event.documents, bytes: event.bytes};
      continue;
    }
    const key = `${event.db}.${event.collection}`;
    out.order.push(`${event.type}:${key}`);
    if (event.type === 'metadata') out.raw.set(key, event.raw);
    else if (event.type === 'documents') {
      assert.equal(event.bytes, total(event.docs));
      out.docs.set(key, [...(out.docs.get(key) ?? []), ...event.docs]);
    } else out.ends.set(key, {documents: event.documents, bytes: event.bytes});
  }
  return out;
}

/** Every namespace's documents byte-for-byte and in order, its metadata text exactly, its end counts. */
function assertAll(got: Collected, options: {oplog?: boolean} = {}): void {
  for (const ns of namespaces) {
    const key = `${ns.db}.${ns.collection}`;
    const expected = ns.docs ?? [];
    const actual = got.docs.get(key) ?? [];
    assert.equal(actual.length, expected.length, `${key}: document count`);
    for (let i = 0; i < expected.length; i++) assert.ok(actual[i]!.equals(expected[i]!), `${key}: document ${i} differs`);
    if (ns.metadata !== undefined) assert.equal(got.raw.get(key), ns.metadata, `${key}: metadata text`);
    assert.deepEqual(got.ends.get(key), {documents: expected.length, bytes: total(expected)}, `${key}: end counts`);
  }
  if (options.oplog !== false) assert.deepEqual(got.oplog, {documents: oplog.length, bytes: total(oplog)});
}

function archiveOf(list: FixtureNamespace[], extra: Parameters<typeof buildArchive>[1] = {}): Buffer {
  const withOplog = [...list, {db: '', collection: 'oplog', docs: oplog}];
  return buildArchive(withOplog, {crc: (d) => crc64(Buffer.concat(d)), ...extra});
}

async function rejectsWith(input: DumpInput, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(collect(input), (error: unknown) => {
    assert.ok(error instanceof GravityError, `expected a GravityError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    assert.ok(error.hint, 'a hint names the next step');
    return true;
  });
}

let dir: string;
let folder: string; // <dir>/backup/dump/db/host_27017/<db>/...
let gzFolder: string;

before(async () => {
  dir = await tempDir('dump-read');
  folder = path.join(dir, 'backup');
  const nested = path.join(folder, 'dump', 'db', 'host_27017');
  await writeFolder(nested, namespaces, {stemOf: collectionFileStem, oplog});
  gzFolder = path.join(dir, 'gzbackup');
  await writeFolder(gzFolder, namespaces, {stemOf: collectionFileStem, oplog, gzip: true});
});

after(async () => {
  await fsp.rm(dir, {recursive: true, force: true});
});

describe('readDump: every layout yields the backup byte-for-byte', () => {
  it('a mongodump folder nested at any depth, with escaped, hashed, view and time-series names', async () => {
    const got = await collect(folder);
    assertAll(got);
    // Metadata comes before the namespace's documents in a folder.
    assert.ok(got.order.indexOf('metadata:shop.artworks') < got.order.indexOf('documents:shop.artworks'));
    assert.deepEqual(got.ends.get('shop.recent'), {documents: 0, bytes: 0});
  });

  it('a --gzip folder', async () => {
    assertAll(await collect(gzFolder));
  });

  it('a virtual folder of stream sources (S3 keys)', async () => {
    assertAll(await collect(await folderSources(folder)));
  });

  for (const [label, format, gzip] of [['tar (GNU long names)', 'gnu', false], ['tar.gz (pax headers)', 'pax', true], ['tar.gz of a --gzip folder', 'gnu', true]] as const) {
    it(`a ${label}`, async () => {
      const out = path.join(dir, `b-${format}.tar${gzip ? '.gz' : ''}`);
      const source = label.includes('--gzip') ? gzFolder : folder;
      tarFolder(path.dirname(source), path.basename(source), out, {format, gzip});
      assertAll(await collect(out));
      assertAll(await collect(bufferSource(path.basename(out), await fsp.readFile(out), 1531)));
    });
  }

  it('a tar whose hashed long-name data comes before its metadata (second pass, no buffering)', async () => {
    const base = path.join(folder, 'dump', 'db', 'host_27017', 'other');
    const stem = collectionFileStem(LONG_NAME);
    assert.equal(stem.length, 238);
    const out = path.join(dir, 'ordered.tar');
    tarFolder(path.dirname(base), [`other/${stem}.bson`, `other/${stem}.metadata.json`], out, {format: 'gnu'});
    const source = bufferSource('ordered.tar', await fsp.readFile(out));
    const got = await collect(source);
    const expected = namespaces.find((n) => n.collection === LONG_NAME)!.docs!;
    assert.equal(got.docs.get(`other.${LONG_NAME}`)?.length, expected.length);
    assert.ok(got.docs.get(`other.${LONG_NAME}`)!.every((d, i) => d.equals(expected[i]!)));
    assert.equal(source.opens, 2);
  });

  it('a --archive with interleaved segments, and --archive --gzip', async () => {
    const archive = archiveOf(namespaces);
    assertAll(await collect(bufferSource('dump.archive', archive, 777)));
    const file = path.join(dir, 'dump.archive.gz');
    await fsp.writeFile(file, zlib.gzipSync(archive));
    assertAll(await collect(file));
  });

  it('a backup folder holding a tarball or an archive beside other files', async () => {
    const holder = path.join(dir, 'holder');
    await fsp.mkdir(holder, {recursive: true});
    await fsp.copyFile(path.join(dir, 'b-pax.tar.gz'), path.join(holder, 'dump.tar.gz'));
    await fsp.writeFile(path.join(holder, 'manifest.json'), '{"taken": "2026-11-18"}');
    assertAll(await collect(holder));
    assertAll(await collect([bufferSource('b/2026/gravity.archive', archiveOf(namespaces)), bufferSource('b/2026/notes.txt', Buffer.from('hi'))]));
  });

  it('a single .bson and .bson.gz file, named by file and parent folder', async () => {
    const file = path.join(dir, 'single', 'gallery', 'artworks.bson');
    await fsp.mkdir(path.dirname(file), {recursive: true});
    await fsp.writeFile(file, Buffer.concat(docs));
    await fsp.writeFile(`${file}.gz`, zlib.gzipSync(Buffer.concat(docs)));
    for (const input of [file, `${file}.gz`]) {
      const got = await collect(input);
      assert.equal(got.docs.get('gallery.artworks')?.length, docs.length);
      assert.ok(got.docs.get('gallery.artworks')!.every((d, i) => d.equals(docs[i]!)));
    }
    // Tiny chunks: length prefixes and documents split across every possible boundary.
    const small = docs.slice(0, 12);
    const streamed = await collect(bufferSource('artworks.bson', Buffer.concat(small), 3));
    assert.ok(streamed.docs.get('unknown.artworks')!.every((d, i) => d.equals(small[i]!)));
    assert.equal(streamed.docs.get('unknown.artworks')!.length, small.length);
  });

  it('a wrongly named file still opens by its content', async () => {
    const asBin = await collect(bufferSource('artworks.dat', Buffer.concat(docs)));
    assert.equal(asBin.docs.get('unknown.artworks')?.length, docs.length);
    const archiveNamedBson = await collect(bufferSource('dump.bson', archiveOf(namespaces)));
    assertAll(archiveNamedBson);
    const tgz = path.join(dir, 'b-pax.tar.gz');
    assertAll(await collect(bufferSource('latest-backup', await fsp.readFile(tgz))));
  });
});

describe('readDump: detection and refusal', () => {
  it('detects by content first, name second', async () => {
    assert.equal(await detectFormat(Buffer.from([0x1f, 0x8b, 8, 0]), 'x.bson'), 'gzip');
    assert.equal(await detectFormat(Buffer.from([0x6d, 0xe2, 0x99, 0x81, 0]), 'x.tar'), 'archive');
    assert.equal(await detectFormat(docs[0]!.subarray(0, 64), 'x.json'), 'bson');
    assert.equal(await detectFormat(Buffer.from(' {"indexes": []}'), 'a.bson'), 'json');
    assert.equal(await detectFormat(Buffer.alloc(0), 'empty.bson'), 'bson');
    assert.equal(await detectFormat(Buffer.from('hello there, world'), 'notes.txt'), 'unknown');
  });

  it('refuses an unknown file with what was expected', async () => {
    await rejectsWith(bufferSource('notes.txt', Buffer.from('hello there, this is text\n'.repeat(40))), 'DUMP_UNKNOWN_FORMAT', /notes\.txt: not a mongodump backup/);
  });
});

describe('readDump: corrupt input fails with one clear DUMP_CORRUPT', () => {
  const all = Buffer.concat(docs);
  it('a truncated document names the file, namespace and byte offset', async () => {
    const cut = all.subarray(0, all.length - 100);
    const lastStart = all.length - docs[docs.length - 1]!.length;
    await rejectsWith(bufferSource('shop/artworks.bson', cut), 'DUMP_CORRUPT', new RegExp(`shop/artworks\\.bson \\(shop\\.artworks\\): truncated document at byte ${lastStart}`));
  });

  it('a length out of range', async () => {
    const bad = Buffer.from(all);
    const at = docs[0]!.length + docs[1]!.length;
    bad.writeInt32LE(3, at);
    await rejectsWith(bufferSource('shop/artworks.bson', bad), 'DUMP_CORRUPT', new RegExp(`document length 3 out of range at byte ${at}`));
  });

  it('a bad CRC in an archive', async () => {
    await rejectsWith(bufferSource('x.archive', archiveOf(namespaces, {corruptCrcOf: 'artworks'})), 'DUMP_CORRUPT', /bad CRC for namespace shop\.artworks/);
  });

  it('an archive cut at a block boundary (a namespace never finished)', async () => {
    await rejectsWith(bufferSource('x.archive', archiveOf(namespaces, {omitEof: 'empty'})), 'DUMP_CORRUPT', /truncated archive.*shop\.empty/);
  });

  it('an archive cut inside a document', async () => {
    const archive = archiveOf(namespaces);
    await rejectsWith(bufferSource('x.archive', archive.subarray(0, Math.floor(archive.length / 2))), 'DUMP_CORRUPT', /x\.archive: truncated document at byte \d+/);
  });

  it('a truncated gzip', async () => {
    const gz = zlib.gzipSync(all);
    await rejectsWith(bufferSource('artworks.bson.gz', gz.subarray(0, gz.length - 500)), 'DUMP_CORRUPT', /artworks\.bson\.gz: truncated gzip/);
  });

  it('not a tar', async () => {
    await rejectsWith(bufferSource('backup.tar', Buffer.from('this is not a tar file at all\n'.repeat(100))), 'DUMP_CORRUPT', /backup\.tar: not a tar archive/);
  });

  it('a truncated tar', async () => {
    const tarFile = path.join(dir, 'b-gnu.tar');
    const data = await fsp.readFile(tarFile);
    await rejectsWith(bufferSource('backup.tar', data.subarray(0, Math.floor(data.length * 0.6))), 'DUMP_CORRUPT', /backup\.tar.*truncated/);
  });

  it('invalid metadata JSON', async () => {
    const bad = path.join(dir, 'badmeta', 'shop');
    await fsp.mkdir(bad, {recursive: true});
    await fsp.writeFile(path.join(bad, 'a.metadata.json'), '{"indexes": [');
    await rejectsWith(path.dirname(bad), 'DUMP_CORRUPT', /a\.metadata\.json: metadata is not valid Extended JSON/);
  });
});

describe('readDump: consumers', () => {
  it('a screen hands on only the documents it keeps, asked where each lies, in every layout; the counts cover them all', async () => {
    const tgz = path.join(dir, 'b-pax.tar.gz');
    const archive = archiveOf(namespaces);
    const archiveGz = path.join(dir, 'screen.archive.gz');
    await fsp.writeFile(archiveGz, zlib.gzipSync(archive));
    const layouts: Array<[string, DumpInput]> = [
      ['folder', folder],
      ['--gzip folder', gzFolder],
      ['tar.gz', tgz],
      ['tar in chunks that cut documents', bufferSource('b.tar', zlib.gunzipSync(await fsp.readFile(tgz)), 1531)],
      ['archive in chunks that cut documents', bufferSource('dump.archive', archive, 777)],
      ['archive.gz', archiveGz],
    ];
    // Keeps documents of an even length: which ones, only their bytes tell.
    const keep = (buffer: Buffer, start: number, end: number) => {
      assert.equal(buffer.readInt32LE(start), end - start, 'asked about one whole document');
      return (end - start) % 2 === 0;
    };
    for (const [label, input] of layouts) {
      const kept = new Map<string, Buffer[]>();
      const scanned = new Map<string, number>();
      const bytes = new Map<string, number>();
      let seenOplog: {documents: number; bytes: number} | undefined;
      for await (const event of readDump(input, {screen: () => keep})) {
        if (event.type === 'oplog') seenOplog = {documents: event.documents, bytes: event.bytes};
        if (event.type === 'end') assert.equal(event.documents, scanned.get(`${event.db}.${event.collection}`) ?? 0, `${label}: end counts every document`);
        if (event.type !== 'documents') continue;
        const key = `${event.db}.${event.collection}`;
        kept.set(key, [...(kept.get(key) ?? []), ...event.docs]);
        scanned.set(key, (scanned.get(key) ?? 0) + event.scanned!);
        bytes.set(key, (bytes.get(key) ?? 0) + event.bytes);
      }
      for (const ns of namespaces) {
        const key = `${ns.db}.${ns.collection}`;
        const all = ns.docs ?? [];
        const expected = all.filter((d) => d.length % 2 === 0);
        assert.deepEqual((kept.get(key) ?? []).map((d) => d.toString('hex')), expected.map((d) => d.toString('hex')), `${label}: ${key} kept`);
        assert.equal(scanned.get(key) ?? 0, all.length, `${label}: ${key} scanned`);
        assert.equal(bytes.get(key) ?? 0, total(all), `${label}: ${key} bytes`);
      }
      // The oplog is never screened (a folder and an archive carry it; the tarballs here were made without).
      if (seenOplog !== undefined) assert.deepEqual(seenOplog, {documents: oplog.length, bytes: total(oplog)}, label);
    }
    // Not vacuous: the screen both kept and dropped documents of the main collection.
    const artworks = namespaces[0]!.docs!;
    assert.ok(artworks.some((d) => d.length % 2 === 0) && artworks.some((d) => d.length % 2 === 1));
  });

  it('want=false skips documents (tar members drained) but keeps metadata', async () => {
    const tgz = path.join(dir, 'b-pax.tar.gz');
    const got = await collect(tgz, {want: (ns) => ns.collection === 'artworks'});
    assert.deepEqual([...got.docs.keys()], ['shop.artworks']);
    assert.deepEqual([...got.ends.keys()], ['shop.artworks']);
    assert.ok(got.raw.has('shop.empty') && got.raw.has(`other.${LONG_NAME}`));
    assert.equal(got.oplog, undefined);
    const archive = await collect(bufferSource('a.archive', archiveOf(namespaces)), {want: (ns) => ns.collection === 'empty'});
    assert.deepEqual([...archive.docs.keys()], []);
    assert.deepEqual([...archive.ends.keys()], ['shop.empty']);
  });

  it('breaking out early closes the input and does not throw', async () => {
    let destroyed = 0;
    const data = archiveOf(namespaces);
    const source: DumpStreamSource = {
      name: 'x.archive.gz',
      open: async () => {
        const stream = Readable.from((function* () {
          const gz = zlib.gzipSync(data);
          for (let i = 0; i < gz.length; i += 1000) yield gz.subarray(i, i + 1000);
        })(), {objectMode: false});
        stream.once('close', () => destroyed++);
        return stream;
      },
    };
    for await (const event of readDump(source)) {
      if (event.type === 'documents') break;
    }
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(destroyed, 1);
    for await (const event of readDump(path.join(dir, 'b-gnu.tar'))) {
      if (event.type === 'documents') break;
    }
  });

  it('an aborted signal stops reading with INTERRUPTED', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    await assert.rejects(async () => {
      for await (const event of readDump(bufferSource('big.bson', Buffer.concat(docs), 65536), {signal: controller.signal})) {
        seen.push(event.type);
        controller.abort();
      }
    }, (error: unknown) => error instanceof GravityError && error.code === 'INTERRUPTED');
    assert.deepEqual(seen, ['documents']);
  });

  it('reports progress of the input bytes, ending at the total', async () => {
    const tgz = path.join(dir, 'b-pax.tar.gz');
    const size = (await fsp.stat(tgz)).size;
    const seen: Array<{bytesRead: number; totalBytes?: number}> = [];
    await collect(tgz, {onProgress: (p) => seen.push(p)});
    assert.deepEqual(seen.at(-1), {bytesRead: size, totalBytes: size});
  });

  it('inspectDump summarises namespaces, indexes, types and the oplog', async () => {
    const {namespaces: list, oplog: op} = await inspectDump(folder);
    const artworks = list.find((n) => n.collection === 'artworks')!;
    assert.deepEqual({documents: artworks.documents, bytes: artworks.bytes, indexes: artworks.indexes, type: artworks.type},
      {documents: docs.length, bytes: total(docs), indexes: ['_id_', 'partner_id_1'], type: 'collection'});
    assert.equal(list.find((n) => n.collection === 'recent')!.type, 'view');
    assert.equal(list.find((n) => n.collection === 'weather')!.type, 'timeseries');
    assert.deepEqual(op, {documents: oplog.length, bytes: total(oplog)});
    // Same answer from the archive.
    const fromArchive = await inspectDump(bufferSource('a.archive', archiveOf(namespaces)));
    const a2 = fromArchive.namespaces.find((n) => n.collection === 'artworks')!;
    assert.deepEqual([a2.documents, a2.bytes], [docs.length, total(docs)]);
  });

  it('relaxed Extended JSON metadata parses too', async () => {
    const root = path.join(dir, 'relaxed', 'shop');
    await fsp.mkdir(root, {recursive: true});
    await fsp.writeFile(path.join(root, 'r.bson'), Buffer.from(BSON.serialize({_id: 1})));
    await fsp.writeFile(path.join(root, 'r.metadata.json'), '{"indexes":[{"v":2,"key":{"_id":1},"name":"_id_"}],"collectionName":"real name","options":{"capped":true,"size":4096}}');
    const {namespaces: list} = await inspectDump(path.dirname(root));
    assert.deepEqual(list.map((n) => [n.collection, n.documents, n.indexes]), [['real name', 1, ['_id_']]]);
  });
});
