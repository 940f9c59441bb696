import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {readFile, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import zlib from 'node:zlib';

import {crc64} from '../../src/dump/crc64.js';
import {readDump} from '../../src/dump/read.js';
import {buildArchive, everyTypeDocuments, metadataJson, tarFolder, tempDir, writeFolder, type FixtureNamespace} from '../support/bson-fixtures.js';
import {assertCleanError, json, runCli} from '../support/cli.js';

/**
 * The promise of the tool: what comes out of a backup is exactly what went in, whatever layout
 * the backup has. Each layout goes through the real CLI: `extract --query {}` must write the
 * documents byte for byte, and `export` must give an archive that reads back identically.
 */
describe('every backup layout through bin/run.js', () => {
  let dir: string;
  const artworks = everyTypeDocuments(80, 11);
  const sales = everyTypeDocuments(25, 12);
  const namespaces: FixtureNamespace[] = [
    {db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')},
    {db: 'gravity', collection: 'sales', docs: sales, metadata: metadataJson('sales')},
  ];
  const layouts: Record<string, string> = {};

  before(async () => {
    dir = await tempDir('cli-layouts');
    await writeFolder(path.join(dir, 'folder', 'dump', 'db-host_27017'), namespaces);
    await writeFolder(path.join(dir, 'gzfolder', 'dump'), namespaces, {gzip: true});
    tarFolder(path.join(dir, 'folder'), 'dump', path.join(dir, 'backup.tar'), {format: 'gnu'});
    tarFolder(path.join(dir, 'folder'), 'dump', path.join(dir, 'backup.tgz'), {gzip: true, format: 'pax'});
    const archive = buildArchive(namespaces, {segment: 7, crc: (d) => crc64(Buffer.concat(d))});
    await writeFile(path.join(dir, 'backup.archive'), archive);
    await writeFile(path.join(dir, 'backup.archive.gz'), zlib.gzipSync(archive));
    await writeFile(path.join(dir, 'artworks.bson.gz'), zlib.gzipSync(Buffer.concat(artworks)));
    // Named wrongly on purpose: the format is told by content.
    await writeFile(path.join(dir, 'misnamed.json'), zlib.gzipSync(archive));
    Object.assign(layouts, {
      'mongodump folder (nested under a host folder)': path.join(dir, 'folder'),
      'mongodump --gzip folder': path.join(dir, 'gzfolder'),
      '.tar (GNU headers)': path.join(dir, 'backup.tar'),
      '.tgz (pax headers)': path.join(dir, 'backup.tgz'),
      '--archive': path.join(dir, 'backup.archive'),
      '--archive --gzip': path.join(dir, 'backup.archive.gz'),
      'a gzipped archive named .json': path.join(dir, 'misnamed.json'),
    });
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('extract {} is byte-identical to the source for every layout', async () => {
    for (const [label, input] of Object.entries(layouts)) {
      const out = path.join(dir, `set-${Object.keys(layouts).indexOf(label)}`);
      const result = await runCli(['extract', '--from', input, '--collection', 'artworks', '--out', out, '--json']);
      assert.equal(result.code, 0, `${label}: ${result.stderr}`);
      assert.equal(json<{counts: Record<string, number>}>(result).counts.artworks, artworks.length, label);
      const written = await readFile(path.join(out, 'dump', 'gravity', 'artworks.bson'));
      assert.ok(written.equals(Buffer.concat(artworks)), `${label}: not byte-identical`);
      assert.equal(await readFile(path.join(out, 'dump', 'gravity', 'artworks.metadata.json'), 'utf8'), metadataJson('artworks'), `${label}: metadata`);
    }
  });

  it('a single .bson.gz works too (namespace from the file name)', async () => {
    const out = path.join(dir, 'set-single');
    const result = await runCli(['extract', '--from', path.join(dir, 'artworks.bson.gz'), '--collection', 'artworks', '--out', out, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const set = json<{set: string}>(result).set;
    const [file] = spawnSync('find', [path.join(set, 'dump'), '-name', 'artworks.bson'], {encoding: 'utf8'}).stdout.trim().split('\n');
    assert.ok((await readFile(file!)).equals(Buffer.concat(artworks)));
  });

  it('inspect reports documents, bytes and indexes for every layout', async () => {
    for (const [label, input] of Object.entries(layouts)) {
      const result = await runCli(['inspect', input, '--json']);
      assert.equal(result.code, 0, `${label}: ${result.stderr}`);
      const {namespaces: found} = json<{namespaces: Array<{db: string; collection: string; documents: number; bytes: number; indexes: string[]}>}>(result);
      const art = found.find((n) => n.collection === 'artworks');
      assert.equal(art?.documents, artworks.length, label);
      assert.equal(art?.bytes, Buffer.concat(artworks).length, label);
      assert.deepEqual(art?.indexes, ['_id_'], label);
      assert.equal(found.find((n) => n.collection === 'sales')?.documents, sales.length, label);
    }
  });

  it('export writes an archive (plain and gzip) that reads back byte for byte', async () => {
    const set = path.join(dir, 'set-export');
    assert.equal((await runCli(['extract', '--from', layouts['.tar (GNU headers)']!, '--collection', 'artworks', '--query', '{}', '--out', set])).code, 0);
    for (const gzip of [false, true]) {
      const archive = path.join(dir, gzip ? 'export.archive.gz' : 'export.archive');
      const result = await runCli(['export', set, '--archive', archive, ...(gzip ? ['--gzip'] : []), '--json']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(json<{documents: number}>(result).documents, artworks.length);
      const docs: Buffer[] = [];
      for await (const event of readDump(archive)) if (event.type === 'documents') docs.push(...event.docs);
      assert.ok(Buffer.concat(docs).equals(Buffer.concat(artworks)), `gzip=${gzip}`);
    }
  });

  it('a corrupt archive (one flipped byte) fails with one line naming the CRC, and no set is left', async () => {
    const archive = Buffer.from(await readFile(layouts['--archive']!));
    // A byte inside one artworks document: its length prefix stays sane, so only the CRC can tell.
    const at = archive.indexOf(artworks[40]!);
    assert.ok(at > 0);
    archive[at + Math.floor(artworks[40]!.length / 2)] ^= 0xff;
    const bad = path.join(dir, 'flipped.archive');
    await writeFile(bad, archive);
    const out = path.join(dir, 'set-flipped');
    const result = await runCli(['extract', '--from', bad, '--collection', 'artworks', '--out', out]);
    assertCleanError(result, /flipped\.archive: bad CRC for namespace gravity\.artworks/);
    assert.equal(spawnSync('ls', [out]).status !== 0, true, 'no restore set left behind');
  });
});
