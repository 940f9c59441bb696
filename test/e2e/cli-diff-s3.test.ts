/**
 * diff and extract --missing-in with both backups streamed from S3 (.tar.gz objects, no fetch
 * first): the same counts and bytes as the fixture says.
 */
import assert from 'node:assert/strict';
import {readFile, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';
import {BSON, type Document, type ObjectId} from 'bson';

import {generateGravity, snapshot, writeBackupTarGz} from '../../scripts/demo/data.js';
import {splitDocuments} from '../../src/dump/split.js';
import {createS3Client} from '../../src/s3/client.js';
import {tempDir} from '../support/bson-fixtures.js';
import {cleanEnv, json, runCli} from '../support/cli.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';

describe('diff between backups in S3 through bin/run.js', () => {
  let dir: string;
  let s3: S3Server;
  let env: NodeJS.ProcessEnv;
  const data = generateGravity({artworks: 400, seed: 9});
  const at14 = new Date('2026-11-18T14:00:00Z');
  const at15 = new Date('2026-11-18T21:00:00Z');
  const before14 = snapshot(data.collections.artworks, at14);
  // Between the backups: every 7th artwork deleted, `title` nulled in every 11th (not deleted), and whatever was created.
  const deleted = before14.filter((_d, i) => i % 7 === 0);
  const nulled = before14.filter((_d, i) => i % 11 === 0 && i % 7 !== 0);
  const created = snapshot(data.collections.artworks, at15).length - before14.length;
  const salesAt = (at: Date) => snapshot(data.collections.sale_artworks, at);
  const isIn = (list: Document[], d: Document) => list.some((x) => (x._id as ObjectId).equals(d._id as ObjectId));
  const after15 = snapshot(data.collections.artworks, at15)
    .filter((d) => !isIn(deleted, d))
    .map((d) => (isIn(nulled, d) ? {...d, title: null} : d));

  before(async () => {
    dir = await tempDir('cli-diff-s3');
    s3 = await startS3Server();
    await s3.createBucket('backups');
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    // The daily holds the dependents, the 14:00 hourly does not; the 21:00 one (AGAINST) does, without those of the deleted artworks.
    const backups: Array<[string, Record<string, Document[]>]> = [
      ['gravity-daily-2026-11-18.tar.gz', {artworks: snapshot(data.collections.artworks, new Date('2026-11-18T00:00:00Z')), sale_artworks: salesAt(new Date('2026-11-18T00:00:00Z'))}],
      ['gravity-hourly-2026-11-18T14-00-00Z.tar.gz', {artworks: before14}],
      ['gravity-hourly-2026-11-18T21-00-00Z.tar.gz', {artworks: after15, sale_artworks: salesAt(at15).filter((x) => !isIn(deleted, {_id: x.artwork_id}))}],
    ];
    for (const [name, collections] of backups) {
      const file = path.join(dir, name);
      await writeBackupTarGz(file, collections);
      await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${name}`, Body: await readFile(file)}));
    }
    const config = path.join(dir, 'gravity-restore.config.json');
    await writeFile(config, JSON.stringify({relations: [{from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'}]}));
    env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache'), GRAVITY_RESTORE_CONFIG: config});
  });
  after(async () => {
    await s3.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('diff counts what happened between two S3 backups; extract --missing-in takes exactly the deleted artworks', async () => {
    assert.ok(deleted.length > 10 && nulled.length > 10 && created > 0, `fixture: ${deleted.length} deleted, ${nulled.length} nulled, ${created} created`);
    const result = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z.tar.gz', 'latest', '--collection', 'artworks', '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{from: string; against: string; collections: Record<string, {missing: number; changed: number; same: number; added: number; fields: Record<string, {changed: number; nulled: number}>}>}>(result);
    assert.equal(out.against, 'gravity-hourly-2026-11-18T21-00-00Z.tar.gz');
    const art = out.collections.artworks!;
    assert.deepEqual([art.missing, art.changed, art.same, art.added], [deleted.length, nulled.length, before14.length - deleted.length - nulled.length, created]);
    assert.deepEqual(Object.keys(art.fields), ['title']);
    assert.equal(art.fields.title!.nulled, nulled.length);

    const set = path.join(dir, 'lost');
    const extracted = await runCli(['extract', '--from', 'gravity-hourly-2026-11-18T14-00-00Z.tar.gz', '--collection', 'artworks', '--missing-in', 'latest', '--out', set, '--json'], {env});
    assert.equal(extracted.code, 0, extracted.stderr);
    const docs = splitDocuments(await readFile(path.join(set, 'dump', 'gravity', 'artworks.bson')));
    assert.deepEqual(
      docs.map((d) => d.toString('hex')),
      deleted.map((d) => Buffer.from(BSON.serialize(d)).toString('hex')),
    );
  });

  it('--follow from an hourly tarball without the dependents reads them from the daily tarball', async () => {
    const set = path.join(dir, 'followed');
    const result = await runCli(['extract', '--from', 'gravity-hourly-2026-11-18T14-00-00Z.tar.gz', '--collection', 'artworks', '--missing-in', 'latest', '--follow', '--out', set, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    // The dependents of the deleted artworks, as the daily holds them: all of them are gone by 21:00.
    const daily = salesAt(new Date('2026-11-18T00:00:00Z'));
    const expected = daily.filter((s) => isIn(deleted, {_id: s.artwork_id}));
    assert.ok(expected.length > 0);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {artworks: deleted.length, sale_artworks: expected.length});
    const written = splitDocuments(await readFile(path.join(set, 'dump', 'gravity', 'sale_artworks.bson')));
    assert.deepEqual(written.map((d) => d.toString('hex')), expected.map((d) => Buffer.from(BSON.serialize(d)).toString('hex')));
    assert.match(result.stderr, /sale_artworks is not in the backup: taken from gravity-daily-2026-11-18\.tar\.gz \(14\.0 h older/);
    const manifest = JSON.parse(await readFile(path.join(set, 'manifest.json'), 'utf8')) as {collections: Record<string, {from?: {backup: string}}>};
    assert.equal(manifest.collections.sale_artworks!.from!.backup, 'gravity-daily-2026-11-18.tar.gz');
  });
});
