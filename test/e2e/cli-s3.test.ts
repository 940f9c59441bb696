import assert from 'node:assert/strict';
import {readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';
import type {ObjectId} from 'bson';

import {generateGravity, snapshot, writeBackupTarGz} from '../../scripts/demo/data.js';
import {createS3Client} from '../../src/s3/client.js';
import {tempDir} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';

describe('backups in S3 through bin/run.js', () => {
  let dir: string;
  let s3: S3Server;
  let env: NodeJS.ProcessEnv;
  const data = generateGravity({artworks: 400, seed: 5});
  const query = `{"partner_id": ObjectId("${(data.partnerId as ObjectId).toHexString()}")}`;

  before(async () => {
    dir = await tempDir('cli-s3');
    s3 = await startS3Server();
    await s3.createBucket('backups');
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    // Names in New York time without an offset: 09:00 and 10:00 EST are 14:00Z and 15:00Z.
    for (const [name, at] of [['gravity-hourly-2026-11-18-09-00.tar.gz', '2026-11-18T14:00:00Z'], ['gravity-hourly-2026-11-18-10-00.tar.gz', '2026-11-18T15:00:00Z']] as const) {
      const file = path.join(dir, name);
      await writeBackupTarGz(file, {artworks: snapshot(data.collections.artworks, new Date(at)), sale_artworks: snapshot(data.collections.sale_artworks, new Date(at))});
      await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${name}`, Body: await readFile(file)}));
    }
    env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_SOURCE_TZ: 'America/New_York', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
  });
  after(async () => {
    await s3.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('list --before reads names in the source timezone and selects the backup at or before the time', async () => {
    const at = await runCli(['list', '--before', '2026-11-18T14:00:00Z', '--json'], {env});
    assert.equal(at.code, 0, at.stderr);
    assert.equal(json<{selected: string}>(at).selected, 'gravity-hourly-2026-11-18-09-00.tar.gz', 'exactly at the backup time selects it');
    const between = await runCli(['list', '--before', '2026-11-18 09:59', '--tz', 'America/New_York', '--json'], {env});
    assert.equal(json<{selected: string}>(between).selected, 'gravity-hourly-2026-11-18-09-00.tar.gz');
    const listed = json<{backups: Array<{id: string; takenAt: string; kind: string}>}>(between).backups;
    assert.deepEqual(listed.map((b) => [b.id, b.takenAt, b.kind]), [
      ['gravity-hourly-2026-11-18-10-00.tar.gz', '2026-11-18T15:00:00.000Z', 'hourly'],
      ['gravity-hourly-2026-11-18-09-00.tar.gz', '2026-11-18T14:00:00.000Z', 'hourly'],
    ]);
    const none = await runCli(['list', '--before', '2026-11-18T13:59:59Z', '--json'], {env});
    assert.equal(json<{selected: string | null}>(none).selected, null);
  });

  it('extract streams a backup straight from S3, and reads the cache once it is fetched: same bytes', async () => {
    const streamed = await runCli(['extract', '--from', 'gravity-hourly-2026-11-18-10-00.tar.gz', '-c', 'artworks', '-q', query, '--out', path.join(dir, 'streamed')], {env});
    assert.equal(streamed.code, 0, streamed.stderr);
    assert.match(streamed.stderr, /streaming, no download first/);
    const fetched = await runCli(['fetch', 'latest', '--json'], {env});
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.ok(json<{bytesTransferred: number}>(fetched).bytesTransferred > 0);
    const again = await runCli(['fetch', 'latest', '--json'], {env});
    assert.equal(json<{bytesTransferred: number}>(again).bytesTransferred, 0, 'a second fetch transfers nothing');
    const cached = await runCli(['extract', '--from', 'latest', '-c', 'artworks', '-q', query, '--out', path.join(dir, 'cached')], {env});
    assert.equal(cached.code, 0, cached.stderr);
    assert.match(cached.stderr, /from the local cache/);
    const a = await readFile(path.join(dir, 'streamed', 'dump', 'gravity', 'artworks.bson'));
    const b = await readFile(path.join(dir, 'cached', 'dump', 'gravity', 'artworks.bson'));
    assert.ok(a.length > 0 && a.equals(b));
  });

  it('an unknown backup id, wrong credentials and a missing bucket each fail with one clear line', async () => {
    assertCleanError(await runCli(['extract', '--from', 'gravity-hourly-2026-11-19-10-00.tar.gz', '-c', 'artworks', '--out', path.join(dir, 'x')], {env}), /gravity-hourly-2026-11-19-10-00/);
    const denied = await runCli(['list'], {env: {...env, AWS_ACCESS_KEY_ID: 'WRONG', AWS_SECRET_ACCESS_KEY: 'nope-secret'}});
    assertCleanError(denied, /credential|access key/i);
    assert.equal(`${denied.stdout}${denied.stderr}`.includes('nope-secret'), false, 'secret printed');
    assertCleanError(await runCli(['list', '--source', 's3://no-such-bucket/x/'], {env}), /no-such-bucket/);
  });
});
