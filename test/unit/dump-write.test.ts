import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {existsSync, promises as fsp} from 'node:fs';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import {BSON} from 'bson';
import {Crc64, crc64} from '../../src/dump/crc64.js';
import {collectionFileStem} from '../../src/dump/names.js';
import {readDump} from '../../src/dump/read.js';
import type {DumpInput} from '../../src/dump/types.js';
import {DumpFolderWriter, writeArchive} from '../../src/dump/write.js';
import {GravityError} from '../../src/errors.js';
import {everyTypeDocuments, metadataJson, tempDir} from '../support/bson-fixtures.js';

const PYTHON = '/usr/bin/python3';
const hasPythonBson = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import bson'], {encoding: 'utf8'}).status === 0;
const noPython = hasPythonBson ? false : 'Debian /usr/bin/python3 with python3-bson is not installed (apt-get install python3-bson)';
/** An independent reader of a mongodump --archive on python3-bson: prints what it holds as JSON. */
const ARCHIVE_CHECK = String.raw`
import gzip
import json
import struct
import sys

import bson

ECMA = 0xC96C5795D7870F42
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ ECMA if c & 1 else c >> 1
    TABLE.append(c)


def crc64(data, crc=0):
    crc ^= 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


path = sys.argv[1]
raw = gzip.open(path).read() if path.endswith('.gz') else open(path, 'rb').read()
assert struct.unpack('<I', raw[:4])[0] == 0x8199E26D, 'magic'
pos = 4


def item():
    global pos
    (size,) = struct.unpack('<i', raw[pos:pos + 4])
    if size == -1:
        pos += 4
        return None
    doc = raw[pos:pos + size]
    pos += size
    return doc


header = bson.decode(item())
prelude = []
while True:
    doc = item()
    if doc is None:
        break
    prelude.append(bson.decode(doc))
data = {}
crcs = {}
eof = {}
while pos < len(raw):
    h = bson.decode(item())
    ns = h['db'] + '.' + h['collection']
    if h['EOF']:
        eof[ns] = h['CRC']
        assert item() is None, 'terminator after EOF'
        continue
    while True:
        doc = item()
        if doc is None:
            break
        data.setdefault(ns, []).append(len(bson.decode_all(doc)))
        crcs[ns] = crc64(doc, crcs.get(ns, 0))
crc_ok = all(((crcs.get(ns, 0) + 2**63) % 2**64 - 2**63) == v for ns, v in eof.items())
print(json.dumps({
    'header': {'version': header['version'], 'concurrent_collections': header['concurrent_collections']},
    'prelude': [{'ns': p['db'] + '.' + p['collection'], 'type': p.get('type', ''), 'size': p['size'],
                 'metadata': json.loads(p['metadata'])['collectionName'] if p['metadata'] else None} for p in prelude],
    'documents': {ns: len(v) for ns, v in data.items()},
    'eof': sorted(eof),
    'crc_ok': crc_ok,
}))
`;

const docs = everyTypeDocuments(40);
const small = docs.slice(0, 40); // without the 3 MiB document, for the slow Python CRC
const WEIRD = 'odd name/with?chars';
const total = (list: Buffer[]): number => list.reduce((s, d) => s + d.length, 0);

async function gather(input: DumpInput): Promise<{docs: Map<string, Buffer[]>; raw: Map<string, string>}> {
  const out = {docs: new Map<string, Buffer[]>(), raw: new Map<string, string>()};
  for await (const event of readDump(input)) {
    if (event.type === 'documents') {
      const key = `${event.db}.${event.collection}`;
      out.docs.set(key, [...(out.docs.get(key) ?? []), ...event.docs]);
    } else if (event.type === 'metadata') out.raw.set(`${event.db}.${event.collection}`, event.raw);
  }
  return out;
}

let dir: string;
let root: string;
let written: Awaited<ReturnType<DumpFolderWriter['close']>>;
const artworksMeta = metadataJson('artworks');
const viewMeta = metadataJson('recent', {type: 'view', options: {viewOn: 'artworks', pipeline: []}});

before(async () => {
  dir = await tempDir('dump-write');
  root = path.join(dir, 'set', 'dump');
  const writer = new DumpFolderWriter(root);
  await writer.writeMetadata('gravity', 'artworks', artworksMeta);
  for (let i = 0; i < docs.length; i += 7) await writer.append('gravity', 'artworks', docs.slice(i, i + 7));
  await writer.append('gravity', WEIRD, small.slice(0, 5));
  await writer.writeMetadata('gravity', WEIRD, metadataJson(WEIRD));
  await writer.open('gravity', 'empty');
  await writer.writeMetadata('gravity', 'empty', metadataJson('empty'));
  await writer.writeMetadata('gravity', 'recent', viewMeta);
  written = await writer.close();
});

after(async () => {
  await fsp.rm(dir, {recursive: true, force: true});
});

describe('DumpFolderWriter', () => {
  it('writes the documents byte-for-byte, in order, with mongodump file names and checksums', async () => {
    const artworks = await fsp.readFile(path.join(root, 'gravity', 'artworks.bson'));
    assert.ok(artworks.equals(Buffer.concat(docs)));
    assert.equal(await fsp.readFile(path.join(root, 'gravity', 'artworks.metadata.json'), 'utf8'), artworksMeta);
    const weird = await fsp.readFile(path.join(root, 'gravity', `${collectionFileStem(WEIRD)}.bson`));
    assert.ok(weird.equals(Buffer.concat(small.slice(0, 5))));
    assert.ok(existsSync(path.join(root, 'gravity', 'odd%20name%2Fwith%3Fchars.metadata.json')));
    assert.equal((await fsp.stat(path.join(root, 'gravity', 'empty.bson'))).size, 0);
    const a = written.find((w) => w.collection === 'artworks')!;
    assert.deepEqual(a, {
      db: 'gravity', collection: 'artworks', file: 'gravity/artworks.bson', metadataFile: 'gravity/artworks.metadata.json',
      documents: docs.length, bytes: total(docs), sha256: createHash('sha256').update(artworks).digest('hex'),
      metadataSha256: createHash('sha256').update(artworksMeta).digest('hex'),
    });
  });

  it('reads back identically through readDump', async () => {
    const got = await gather(root);
    assert.ok(got.docs.get('gravity.artworks')!.every((d, i) => d.equals(docs[i]!)));
    assert.equal(got.docs.get(`gravity.${WEIRD}`)!.length, 5);
    assert.equal(got.raw.get(`gravity.${WEIRD}`), metadataJson(WEIRD));
  });

  it('refuses something that is not one whole BSON document', async () => {
    const writer = new DumpFolderWriter(path.join(dir, 'bad'));
    await assert.rejects(writer.append('db', 'c', [docs[0]!.subarray(0, 10)]), GravityError);
  });

  it('writes files python3-bson decodes', {skip: noPython}, () => {
    const script = 'import bson,sys,json; d=bson.decode_all(open(sys.argv[1],"rb").read()); print(json.dumps([len(d), [str(x["_id"]) for x in d]]))';
    const result = spawnSync(PYTHON, ['-c', script, path.join(root, 'gravity', 'artworks.bson')], {encoding: 'utf8'});
    assert.equal(result.status, 0, result.stderr);
    const [count, ids] = JSON.parse(result.stdout) as [number, string[]];
    assert.equal(count, docs.length);
    assert.deepEqual(ids, docs.map((d) => String((BSON.deserialize(d) as {_id: unknown})._id)));
  });
});

describe('writeArchive', () => {
  for (const gzip of [false, true]) {
    it(`writes an archive${gzip ? ' (gzip)' : ''} that reads back identically with every CRC verified`, async () => {
      const out = path.join(dir, `set${gzip ? '.archive.gz' : '.archive'}`);
      const result = await writeArchive(root, out, {gzip});
      assert.deepEqual(result, {namespaces: 4, documents: docs.length + 5, bytes: total(docs) + total(small.slice(0, 5))});
      const got = await gather(out);
      assert.equal(got.docs.get('gravity.artworks')!.length, docs.length);
      assert.ok(got.docs.get('gravity.artworks')!.every((d, i) => d.equals(docs[i]!)));
      assert.equal(got.raw.get('gravity.recent'), viewMeta);
      assert.deepEqual((await fsp.readdir(dir)).filter((f) => f.endsWith('.tmp')), []);
    });
  }

  it('a flipped byte in a document is caught by the CRC', async () => {
    const out = path.join(dir, 'flip.archive');
    await writeArchive(root, out);
    const data = await fsp.readFile(out);
    // Flip a byte inside a string value of the first artworks document (still valid BSON framing).
    const at = data.indexOf(docs[0]!) + docs[0]!.length - 20;
    data[at] = data[at]! ^ 0x01;
    await fsp.writeFile(out, data);
    await assert.rejects(gather(out), /bad CRC for namespace gravity\.artworks/);
  });

  it('is read by an independent archive parser (python3-bson) with matching CRCs', {skip: noPython}, async () => {
    const smallRoot = path.join(dir, 'small', 'dump');
    const writer = new DumpFolderWriter(smallRoot);
    await writer.writeMetadata('gravity', 'artworks', artworksMeta);
    await writer.append('gravity', 'artworks', small);
    await writer.writeMetadata('gravity', 'recent', viewMeta);
    await writer.close();
    const out = path.join(dir, 'small.archive.gz');
    await writeArchive(smallRoot, out, {gzip: true});
    const result = spawnSync(PYTHON, ['-c', ARCHIVE_CHECK, out], {encoding: 'utf8'});
    assert.equal(result.status, 0, result.stderr);
    const parsed = JSON.parse(result.stdout) as Record<string, unknown>;
    assert.deepEqual(parsed, {
      header: {version: '0.1', concurrent_collections: 1},
      prelude: [
        {ns: 'gravity.artworks', type: 'collection', size: total(small), metadata: 'artworks'},
        {ns: 'gravity.recent', type: 'view', size: 0, metadata: 'recent'},
      ],
      documents: {'gravity.artworks': small.length},
      eof: ['gravity.artworks', 'gravity.recent'],
      crc_ok: true,
    });
    // The same bytes through liblzma's CRC-64 (python's lzma module), an implementation independent of ours.
    const data = Buffer.concat(small);
    const liblzma = spawnSync(PYTHON, ['-c', LIBLZMA_CRC64], {input: data, encoding: 'utf8'});
    assert.equal(liblzma.status, 0, liblzma.stderr);
    assert.equal(crc64(data), BigInt(liblzma.stdout.trim()));
  });
});

/**
 * CRC-64 as liblzma computes it for an .xz block with CHECK_CRC64 (CRC-64/XZ: ECMA-182 polynomial,
 * reflected, init and final XOR all ones: what Go's crc64.MakeTable(crc64.ECMA) gives mongodump).
 * The check field is the 8 bytes just before the stream's index.
 */
const LIBLZMA_CRC64 = `
import lzma, struct, sys
data = sys.stdin.buffer.read()
xz = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
index_size = (struct.unpack('<I', xz[-8:-4])[0] + 1) * 4
index_start = len(xz) - 12 - index_size
print(struct.unpack('<Q', xz[index_start - 8:index_start])[0])
`;

describe('crc64', () => {
  // Expected values computed outside this project: the CRC-64/XZ catalogue check value for
  // "123456789", and liblzma (python3 lzma, CHECK_CRC64) for the others.
  it('gives the CRC-64/XZ check value and liblzma\'s results', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0x995dc9bbdf1939fan);
    assert.equal(crc64(Buffer.alloc(0)), 0n);
    assert.equal(crc64(Buffer.from('a')), 0x330284772e652b05n);
    // 1,024 bytes: the 8-bytes-at-a-time path, not only the byte loop.
    const ramp = Buffer.alloc(1024, 0).map((_, i) => i % 256);
    assert.equal(crc64(ramp), 0xd51fb58dc789c400n);
  });

  it('gives the same value fed in pieces of any size as in one go', () => {
    const data = Buffer.from(Array.from({length: 1000}, (_, i) => (i * 37 + 11) % 256));
    const whole = crc64(data);
    for (const cut of [1, 3, 8, 13, 500, 999]) {
      const c = new Crc64();
      c.update(data.subarray(0, cut)).update(data.subarray(cut));
      assert.equal(c.digest(), whole, `split at ${cut}`);
    }
  });
});
