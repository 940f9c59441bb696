/**
 * diff and extract --missing-in with both backups streamed from S3 (.tar.gz objects, no fetch
 * first): the same counts and bytes as the fixture says.
 */
import assert from 'node:assert/strict';
import {readFile, rm} from 'node:fs/promises';
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
  const isIn = (list: Document[], d: Document) => list.some((x) => (x._id as ObjectId).equals(d._id as ObjectId));
  const after15 = snapshot(data.collections.artworks, at15)
    .filter((d) => !isIn(deleted, d))
    .map((d) => (isIn(nulled, d) ? {...d, title: null} : d));

  before(async () => {
    dir = await tempDir('cli-diff-s3');
    s3 = await startS3Server();
    await s3.createBucket('backups');
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    for (const [name, docs] of [['gravity-hourly-2026-11-18T14-00-00Z.tar.gz', before14], ['gravity-hourly-2026-11-18T21-00-00Z.tar.gz', after15]] as const) {
      const file = path.join(dir, name);
      await writeBackupTarGz(file, {artworks: docs});
      await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${name}`, Body: await readFile(file)}));
    }
    env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
  });
  after(async () => {
    await s3.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('diff counts what happened between two S3 backups; extract --missing-in takes exactly the deleted artworks', async () => {
    assert.ok(deleted.length > 10 && nulled.length > 10 && created > 0, `fixture: ${deleted.length} deleted, ${nulled.length} nulled, ${created} created`);
    const result = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z.tar.gz', 'latest', '--json'], {env});
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
});
