import assert from 'node:assert/strict';
import {access, readFile, rename, rm} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';

import {createS3Client} from '../../src/s3/client.js';
import {everyTypeDocuments, metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {cleanEnv, json, runCli} from '../support/cli.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';

/**
 * `tar czf` stores a dump folder's members in directory order, which often puts `<coll>.bson`
 * before `<coll>.metadata.json`. Whatever the order and the tar header format, the restore set
 * carries the collection's metadata exactly as the backup has it, and the documents byte for byte;
 * a collection with no metadata at all still extracts.
 */
const artworks = everyTypeDocuments(50, 31);
const users = everyTypeDocuments(14, 32);
const filler = everyTypeDocuments(20, 33);
const artworksMeta = metadataJson('artworks', {
  indexes: [{v: 2, key: {_id: 1}, name: '_id_'}, {v: 2, key: {slug: 1}, name: 'slug_1', unique: true}],
  options: {collation: {locale: 'en', strength: 2}},
});

const ORDERS = {
  before: ['artworks.metadata.json', 'artworks.bson', 'users.bson', 'zfiller.bson'],
  after: ['artworks.bson', 'users.bson', 'zfiller.bson', 'artworks.metadata.json'],
  absent: ['artworks.bson', 'users.bson', 'zfiller.bson'],
} as const;

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

async function assertSet(out: string, collection: string, docs: Buffer[], metadata: string | null, label: string): Promise<void> {
  const data = await readFile(path.join(out, 'dump', 'gravity', `${collection}.bson`));
  assert.ok(data.equals(Buffer.concat(docs)), `${label}: ${collection}.bson not byte-identical`);
  const metaFile = path.join(out, 'dump', 'gravity', `${collection}.metadata.json`);
  if (metadata === null) assert.equal(await exists(metaFile), false, `${label}: no metadata in the backup, none in the set`);
  else assert.equal(await readFile(metaFile, 'utf8'), metadata, `${label}: ${collection}.metadata.json`);
}

describe('extract from tarballs whose metadata comes before, after or not at all (bin/run.js)', () => {
  let dir: string;
  let src: string;

  before(async () => {
    dir = await tempDir('cli-meta-after');
    src = path.join(dir, 'src');
    await writeFolder(src, [
      {db: 'gravity', collection: 'artworks', docs: artworks, metadata: artworksMeta},
      {db: 'gravity', collection: 'users', docs: users},
      {db: 'gravity', collection: 'zfiller', docs: filler},
    ]);
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    for (const gzip of [false, true]) {
      it(`${format} .tar${gzip ? '.gz' : ''}: metadata before, after and absent`, async () => {
        for (const [order, members] of Object.entries(ORDERS)) {
          const label = `${format} ${order}${gzip ? ' gz' : ''}`;
          const file = path.join(dir, `${format}-${order}.tar${gzip ? '.gz' : ''}`);
          tarFolder(src, members.map((m) => `gravity/${m}`), file, {format, gzip});
          const out = path.join(dir, `set-${format}-${order}-${gzip}`);
          const result = await runCli(['extract', '--from', file, '--collection', 'artworks', '--query', '{}', '--out', out, '--json']);
          assert.equal(result.code, 0, `${label}: ${result.stderr}`);
          assert.equal(json<{counts: Record<string, number>}>(result).counts.artworks, artworks.length, label);
          await assertSet(out, 'artworks', artworks, order === 'absent' ? null : artworksMeta, label);

          const usersOut = `${out}-users`;
          const bare = await runCli(['extract', '--from', file, '--collection', 'gravity.users', '--out', usersOut, '--json']);
          assert.equal(bare.code, 0, `${label} users: ${bare.stderr}`);
          await assertSet(usersOut, 'users', users, null, `${label} users`);
        }
      });
    }
  }

  describe('streamed from S3 (GetObject → gunzip → tar, no download first)', () => {
    let s3: S3Server;
    let env: NodeJS.ProcessEnv;

    before(async () => {
      s3 = await startS3Server();
      await s3.createBucket('backups');
      const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
      const name = 'gravity-daily-2026-11-18-14-00.tar.gz';
      const file = path.join(dir, name);
      tarFolder(src, ORDERS.after.map((m) => `gravity/${m}`), path.join(dir, 'after-s3.tar.gz'), {format: 'gnu', gzip: true});
      await rename(path.join(dir, 'after-s3.tar.gz'), file);
      await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${name}`, Body: await readFile(file)}));
      env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_SOURCE_TZ: 'UTC', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
    });
    after(async () => {
      await s3.stop();
    });

    it('metadata after the data: the set still carries it', async () => {
      const out = path.join(dir, 'set-s3');
      const result = await runCli(['extract', '--from', 'latest', '--collection', 'artworks', '--out', out], {env});
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /streaming, no download first/);
      await assertSet(out, 'artworks', artworks, artworksMeta, 'S3');
    });
  });
});
