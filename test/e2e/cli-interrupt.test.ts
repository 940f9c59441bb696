/**
 * Ctrl-C and crashes through bin/run.js: fetch, extract, push and rollback each stop with one
 * line and a non-zero exit, leave nothing half-written at a final path, and the same command run
 * again finishes the job. A TCP proxy freezes the server's replies at a known point first, so the
 * interruption always lands mid-work.
 */
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {appendFile, readdir, readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';
import type {ObjectId} from 'bson';

import {generateGravity, snapshot, writeBackupTarGz} from '../../scripts/demo/data.js';
import {createS3Client} from '../../src/s3/client.js';
import {tempDir} from '../integration/target-fixture.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {startCli, type RunningCli} from '../support/cli-session.js';
import {withDb} from '../support/mongo-backend.js';
import {artworkDocs, bytesOf, idKeyOf, ledger, rawDocs, scenario, startWorld, type PromoteWorld, type Scenario} from '../support/promote-fixture.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';
import {mongoCommandMarker, startTcpProxy, type TcpProxy} from '../support/tcp-proxy.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, {recursive: true, withFileTypes: true})).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Waits for the proxy to freeze the CLI; a CLI that ends first fails the test with its output. */
async function held(frozen: Promise<void>, cli: RunningCli): Promise<void> {
  const ended = cli.done.then((r) => {
    throw new Error(`the CLI ended (exit ${r.code}) before the proxy froze it:\n${r.stdout}\n${r.stderr}`);
  });
  await Promise.race([frozen, ended]);
}

/**
 * Ctrl-C once, then let the frozen reply through. The CLI notices the interruption at its next
 * step; should it get a further request out first, that one is frozen and let through too.
 */
async function interrupt(cli: RunningCli, proxy: TcpProxy, marker?: Buffer): Promise<void> {
  cli.child.kill('SIGINT');
  for (;;) {
    const heldAgain = marker ? proxy.holdRepliesTo(marker) : new Promise<void>(() => undefined);
    proxy.release();
    const next = await Promise.race([cli.done.then(() => 'done' as const), heldAgain.then(() => 'held' as const)]);
    if (next === 'done') break;
  }
  proxy.release();
}

describe('Ctrl-C during fetch and extract (S3 through a proxy)', () => {
  let s3: S3Server;
  let proxy: TcpProxy;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let tarball: Buffer;
  let expectedArtworks: number;
  const data = generateGravity({artworks: 3000, seed: 11});
  const query = `{"partner_id": ObjectId("${(data.partnerId as ObjectId).toHexString()}")}`;
  const BACKUP = 'gravity-hourly-2026-11-18-14-00.tar.gz';

  before(async () => {
    ({dir} = await tempDir('gr-cli-interrupt-'));
    s3 = await startS3Server({bucket: 'backups'});
    const at = new Date('2026-11-18T14:00:00Z');
    const file = path.join(dir, BACKUP);
    const artworks = snapshot(data.collections.artworks, at);
    expectedArtworks = artworks.filter((a) => (a.partner_id as ObjectId).equals(data.partnerId)).length;
    await writeBackupTarGz(file, {artworks, sale_artworks: snapshot(data.collections.sale_artworks, at)});
    tarball = await readFile(file);
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${BACKUP}`, Body: tarball}));
    client.destroy();
    proxy = await startTcpProxy(Number(new URL(s3.endpoint).port));
    env = cleanEnv({
      ...s3EnvFor(s3),
      GRAVITY_RESTORE_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
      GRAVITY_RESTORE_SOURCE: 's3://backups/prod/',
      GRAVITY_RESTORE_CACHE: path.join(dir, 'cache'),
    });
  });
  after(async () => {
    await proxy?.close();
    await s3?.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('fetch: exit 130 with one line, no file at its final path, and the next fetch resumes', async () => {
    assert.ok(tarball.length > 200_000, `backup is ${tarball.length} bytes`);
    const frozen = proxy.holdRepliesAfter(tarball.length / 2);
    const cli = startCli(['fetch', BACKUP, '--json'], {env});
    await held(frozen, cli);
    await interrupt(cli, proxy);
    const stopped = await cli.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    assertCleanError(stopped, /interrupted.*run the same fetch again to resume/i);
    const left = await filesUnder(path.join(dir, 'cache', 'downloads'));
    assert.ok(left.length > 0, 'the partial download is kept for resuming');
    assert.deepEqual(left.filter((f) => !/\.part(\.json)?$/.test(f)), [], 'only .part files, nothing at the final path');

    const again = await runCli(['fetch', BACKUP, '--json'], {env});
    assert.equal(again.code, 0, again.stderr);
    const result = json<{resumed: boolean; bytesTransferred: number; files: Array<{path: string; sha256: string}>}>(again);
    assert.equal(result.resumed, true);
    assert.ok(result.bytesTransferred < tarball.length, `transferred ${result.bytesTransferred} of ${tarball.length} again`);
    assert.equal(result.files[0]!.sha256, sha256(tarball));
    assert.ok((await readFile(result.files[0]!.path)).equals(tarball));
    assert.deepEqual((await filesUnder(path.join(dir, 'cache', 'downloads'))).filter((f) => /\.part/.test(f)), []);
  });

  it('extract (streaming from S3): exit 130 with one line, no restore set or temp folder left, and a re-run completes', async () => {
    const out = path.join(dir, 'sets', 'restore');
    // A cache of its own, so the extract streams from S3 rather than reading the earlier fetch.
    const streaming = {...env, GRAVITY_RESTORE_CACHE: path.join(dir, 'cache-extract')};
    const frozen = proxy.holdRepliesAfter(tarball.length / 2);
    const cli = startCli(['extract', '--from', BACKUP, '-c', 'artworks', '-q', query, '--out', out, '--json'], {env: streaming});
    await held(frozen, cli);
    await interrupt(cli, proxy);
    const stopped = await cli.done;
    assert.notEqual(stopped.code, 0);
    assert.equal(stopped.code, 130, stopped.stderr);
    assertCleanError(stopped, /interrupted/i);
    assert.deepEqual(await readdir(path.dirname(out)).catch(() => []), [], 'neither the set nor a temporary folder is left');

    const again = await runCli(['extract', '--from', BACKUP, '-c', 'artworks', '-q', query, '--out', out, '--json'], {env: streaming});
    assert.equal(again.code, 0, again.stderr);
    assert.equal(json<{counts: Record<string, number>}>(again).counts.artworks, expectedArtworks);
    assert.deepEqual(await readdir(path.dirname(out)), ['restore']);
  });
});

describe('Ctrl-C and crashes during push and rollback (MongoDB through a proxy)', () => {
  let world: PromoteWorld;
  let proxy: TcpProxy;
  const scenarios: Scenario[] = [];
  const INSERT = mongoCommandMarker('insert');
  const DELETE = mongoCommandMarker('delete');

  before(async () => {
    world = await startWorld();
    proxy = await startTcpProxy(Number(/:(\d+)/.exec(world.staging.uri.replace(/^mongodb:\/\//, ''))![1]));
  });
  after(async () => {
    for (const s of scenarios) await s.cleanup();
    await proxy?.close();
    await world?.stop();
  });

  /** 4,500 artworks: five insert batches. Staging is reached through the proxy. */
  async function bigSet(): Promise<Scenario> {
    const s = await scenario(world, {artworks: artworkDocs(4500, 'i')});
    scenarios.push(s);
    s.env.GRAVITY_RESTORE_STAGING_URI = withDb(`mongodb://127.0.0.1:${proxy.port}`, s.db);
    return s;
  }

  /** Whatever staging holds is byte for byte what the set holds. */
  async function onlySetDocuments(s: Scenario): Promise<number> {
    const held = await rawDocs(world.stagingClient, s.db, 'artworks');
    const wanted = new Map(s.docs.artworks!.map((d) => [idKeyOf(d._id), bytesOf(d)]));
    for (const [id, raw] of held) assert.deepEqual(raw, wanted.get(id), `document ${id} is not the set's`);
    return held.size;
  }

  async function journalLines(s: Scenario): Promise<string[]> {
    const names = (await readdir(path.join(s.setDir, 'journal'))).filter((n) => n.endsWith('.jsonl'));
    assert.equal(names.length, 1, names.join(' '));
    return (await readFile(path.join(s.setDir, 'journal', names[0]!), 'utf8')).split('\n');
  }

  it('push: exit 130 with one line, only whole batches written, and the re-run resumes to the full set', async () => {
    const s = await bigSet();
    const frozen = proxy.holdRepliesTo(INSERT, {skip: 1});
    const cli = startCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    await held(frozen, cli);
    await interrupt(cli, proxy, INSERT);
    const stopped = await cli.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    assertCleanError(stopped, /Push interrupted; the journal journal\/staging-.*\.jsonl records what was written/);
    const written = await onlySetDocuments(s);
    assert.ok(written >= 2000 && written < 4500 && written % 1000 === 0, `${written} documents written`);
    assert.deepEqual((await ledger(s.setDir)).filter((l) => l.action === 'push').map((l) => l.outcome), ['partial'], 'the ledger records the push as partial');

    const again = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    assert.equal(again.code, 0, again.stderr);
    const result = json<{resumed: boolean; collections: Record<string, {inserted: number}>}>(again);
    assert.equal(result.resumed, true);
    assert.equal(await onlySetDocuments(s), 4500);
    const verified = await runCli(['verify', s.setDir, '--to', 'staging', '--json'], {env: s.env});
    assert.equal(verified.code, 0, verified.stderr);
  });

  it('push killed mid-batch with a torn last journal line: the re-run resumes, journals on a fresh line, and completes', async () => {
    const s = await bigSet();
    // The server carries out the second batch, but the CLI dies before it hears back.
    const frozen = proxy.holdRepliesTo(INSERT, {skip: 1});
    const cli = startCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    await held(frozen, cli);
    cli.child.kill('SIGKILL');
    await cli.done;
    proxy.release();
    const journal = (await readdir(path.join(s.setDir, 'journal')))[0]!;
    // A crash in the middle of writing a record leaves half a line without its newline.
    await appendFile(path.join(s.setDir, 'journal', journal), '{"type":"inserted","collection":"artw');

    const again = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    assert.equal(again.code, 0, again.stderr);
    assert.equal(json<{resumed: boolean}>(again).resumed, true);
    assert.equal(await onlySetDocuments(s), 4500);
    const lines = (await journalLines(s)).filter((l) => l.trim());
    const unparsable = lines.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    assert.deepEqual(unparsable, ['{"type":"inserted","collection":"artw'], 'only the torn fragment is unreadable');
    const types = lines.filter((l) => !unparsable.includes(l)).map((l) => (JSON.parse(l) as {type: string}).type);
    assert.ok(types.includes('resume'), types.join(' '));
    assert.equal(types.at(-1), 'end');
    assert.equal((await runCli(['verify', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);
  });

  it('rollback: Ctrl-C mid-way exits 130 with one line, and the re-run removes the rest', async () => {
    const s = await bigSet();
    assert.equal((await runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env})).code, 0);
    assert.equal(await onlySetDocuments(s), 4500);
    const frozen = proxy.holdRepliesTo(DELETE);
    const cli = startCli(['rollback', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    await held(frozen, cli);
    await interrupt(cli, proxy, DELETE);
    const stopped = await cli.done;
    assert.equal(stopped.code, 130, stopped.stderr);
    assertCleanError(stopped, /Rollback interrupted; the journal .* records what was undone/);
    const left = await onlySetDocuments(s);
    assert.ok(left > 0 && left < 4500 && left % 1000 === 500, `${left} documents left`);

    const again = await runCli(['rollback', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    assert.equal(again.code, 0, again.stderr);
    const result = json<{collections: Record<string, {deleted: number; skipped: number}>}>(again);
    assert.equal(result.collections.artworks!.deleted, left);
    assert.equal(await onlySetDocuments(s), 0);
    const rollbacks = (await ledger(s.setDir)).filter((l) => l.action === 'rollback');
    assert.equal(rollbacks.at(-1)!.outcome, 'ok', JSON.stringify(rollbacks));
  });
});
