/**
 * A restore set changed by hand after extract is refused through bin/run.js with one clear line,
 * before anything reaches a target or an archive.
 */
import assert from 'node:assert/strict';
import {existsSync} from 'node:fs';
import {cp, readFile, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import type {ObjectId} from 'bson';

import {generateGravity, RELATIONS, snapshot, writeBackupTarGz} from '../../scripts/demo/data.js';
import {tempDir} from '../integration/target-fixture.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {withDb} from '../support/mongo-backend.js';
import {startWorld, type PromoteWorld} from '../support/promote-fixture.js';

describe('a tampered restore set', () => {
  let world: PromoteWorld;
  let dir: string;
  let cleanup: () => Promise<void>;
  let original: string;
  let env: NodeJS.ProcessEnv;
  let copies = 0;
  const DB = `tamper${process.pid}`;

  before(async () => {
    world = await startWorld();
    ({dir, cleanup} = await tempDir('gr-cli-tamper-'));
    const data = generateGravity({artworks: 300, seed: 7});
    const at = new Date('2026-11-18T14:00:00Z');
    const backup = path.join(dir, 'gravity-2026-11-18T14-00-00Z.tar.gz');
    await writeBackupTarGz(backup, {artworks: snapshot(data.collections.artworks, at), sale_artworks: snapshot(data.collections.sale_artworks, at)});
    await writeFile(path.join(dir, 'gravity-restore.config.json'), JSON.stringify({relations: RELATIONS}));
    env = cleanEnv({GRAVITY_RESTORE_STAGING_URI: withDb(world.staging.uri, DB), GRAVITY_RESTORE_PRODUCTION_URI: withDb(world.production.uri, DB)});
    original = path.join(dir, 'set');
    const query = `{"partner_id": ObjectId("${(data.partnerId as ObjectId).toHexString()}")}`;
    const extracted = await runCli(['extract', '--from', backup, '-c', 'artworks', '-q', query, '--follow', '--out', original, '--json'], {cwd: dir, env});
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.ok(json<{counts: Record<string, number>}>(extracted).counts.artworks! > 1);
  });
  after(async () => {
    await world.stagingClient.db(DB).dropDatabase().catch(() => undefined);
    await world.productionClient.db(DB).dropDatabase().catch(() => undefined);
    await world?.stop();
    await cleanup?.();
  });

  async function copy(): Promise<string> {
    const target = path.join(dir, `copy-${++copies}`);
    await cp(original, target, {recursive: true});
    return target;
  }

  async function editManifest(set: string, edit: (m: {collections: Record<string, {documents: number; sha256: string}>; query: {text: string}}) => void): Promise<void> {
    const file = path.join(set, 'manifest.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as Parameters<typeof edit>[0];
    edit(manifest);
    await writeFile(file, JSON.stringify(manifest, null, 2));
  }

  async function stagingIsEmpty(): Promise<void> {
    for (const c of ['artworks', 'sale_artworks']) assert.equal(await world.stagingClient.db(DB).collection(c).countDocuments(), 0, `${c} was written to`);
  }

  /** plan, push, verify and export all refuse the set with one line naming `what`; nothing is written. */
  async function refusedEverywhere(set: string, what: RegExp): Promise<void> {
    for (const args of [
      ['plan', set, '--to', 'staging'],
      ['push', set, '--to', 'staging', '--yes'],
      ['verify', set, '--to', 'staging'],
      ['export', set, '--archive', path.join(set, '..', `${path.basename(set)}.archive`)],
    ]) {
      const result = await runCli(args, {cwd: dir, env});
      assertCleanError(result, what);
      assert.equal(result.code, 6, `${args[0]}: exit ${result.code}\n${result.stderr}`);
    }
    await stagingIsEmpty();
    assert.equal(existsSync(path.join(set, '..', `${path.basename(set)}.archive`)), false, 'export wrote an archive');
  }

  it('a data file edited after extract (same length, one byte changed)', async () => {
    const set = await copy();
    const file = path.join(set, 'dump', 'gravity', 'artworks.bson');
    const bytes = await readFile(file);
    const at = bytes.indexOf(Buffer.from('Oil on canvas'));
    assert.ok(at > 0, 'the backup holds a medium to edit');
    bytes[at] = 'X'.charCodeAt(0);
    await writeFile(file, bytes);
    await refusedEverywhere(set, /dump\/gravity\/artworks\.bson does not match its sha256 in the manifest \(changed after extract\)/);
  });

  it('a metadata file edited after extract (an index removed)', async () => {
    const set = await copy();
    const file = path.join(set, 'dump', 'gravity', 'artworks.metadata.json');
    const metadata = JSON.parse(await readFile(file, 'utf8')) as {indexes: Array<{name: string}>};
    metadata.indexes = metadata.indexes.filter((ix) => ix.name !== 'slug_1');
    await writeFile(file, JSON.stringify(metadata));
    const result = await runCli(['push', set, '--to', 'staging', '--yes'], {cwd: dir, env});
    assertCleanError(result, /artworks\.metadata\.json does not match its sha256 in the manifest/);
    assert.equal(result.code, 6);
    await stagingIsEmpty();
    const exported = await runCli(['export', set, '--archive', path.join(dir, 'meta.archive')], {cwd: dir, env});
    assertCleanError(exported, /artworks\.metadata\.json does not match/);
    assert.equal(existsSync(path.join(dir, 'meta.archive')), false);
  });

  it('a manifest edited to claim another document count', async () => {
    const set = await copy();
    await editManifest(set, (m) => (m.collections.artworks!.documents += 1));
    await refusedEverywhere(set, /artworks\.bson holds \d+ documents but the manifest says \d+/);
  });

  it('a manifest edited to another checksum', async () => {
    const set = await copy();
    await editManifest(set, (m) => (m.collections.sale_artworks!.sha256 = '0'.repeat(64)));
    await refusedEverywhere(set, /sale_artworks\.bson does not match its sha256/);
  });

  it('a manifest edited after the staging push and verify no longer counts as verified for production', async () => {
    const set = await copy();
    assert.equal((await runCli(['push', set, '--to', 'staging', '--yes'], {cwd: dir, env})).code, 0);
    assert.equal((await runCli(['verify', set, '--to', 'staging'], {cwd: dir, env})).code, 0);
    await editManifest(set, (m) => (m.query.text = '{}'));
    const result = await runCli(['push', set, '--to', 'production', '--db', DB, '--confirm', DB], {cwd: dir, env});
    assertCleanError(result, /has not been pushed to and verified on staging/);
    assert.equal(result.code, 7);
    assert.equal(await world.productionClient.db(DB).collection('artworks').countDocuments(), 0);
    for (const c of ['artworks', 'sale_artworks']) await world.stagingClient.db(DB).collection(c).deleteMany({});
  });
});
