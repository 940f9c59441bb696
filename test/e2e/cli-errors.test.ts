import assert from 'node:assert/strict';
import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON} from 'bson';

import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {findLocalMongod} from '../support/mongo-backend.js';

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the CLI through bin/run.js: help and bad input', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gr-e2e-errors-'));
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('--help lists all eight commands of the contract', async () => {
    const result = await runCli(['--help']);
    assert.equal(result.code, 0);
    for (const command of ['list', 'fetch', 'inspect', 'extract', 'plan', 'push', 'verify', 'rollback']) {
      assert.match(result.stdout, new RegExp(`^\\s+${command}\\s`, 'm'), `${command} missing from --help`);
    }
  });

  it('every command has --help with examples', async () => {
    for (const command of ['list', 'fetch', 'inspect', 'extract', 'plan', 'push', 'verify', 'rollback', 'relations', 'export', 'report']) {
      const result = await runCli([command, '--help']);
      assert.equal(result.code, 0, command);
      assert.match(result.stdout, /EXAMPLES/, `${command} --help has no examples`);
      assert.match(result.stdout, /--json/, `${command} has no --json`);
    }
  });

  it('an unknown flag fails with a non-zero exit and names the flag', async () => {
    const result = await runCli(['list', '--frobnicate']);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /frobnicate/);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  it('bad query syntax: one line with the position, exit 2, no set written', async () => {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, BSON.serialize({_id: 1, a: 1}));
    const out = path.join(dir, 'set-bad-query');
    const result = await runCli(['extract', '--from', bson, '--collection', 'artworks', '--query', '{"partner_id": ObjectId("abc"', '--out', out]);
    assertCleanError(result, /query/i);
    assert.equal(result.code, 2);
    assert.equal((await readdir(dir)).includes('set-bad-query'), false);
  });

  it('a truncated .bson: names the file and byte offset, leaves no restore set behind', async () => {
    const good = Buffer.concat([BSON.serialize({_id: 1, x: 'a'}), BSON.serialize({_id: 2, x: 'b'})]);
    const bson = path.join(dir, 'things.bson');
    await writeFile(bson, good.subarray(0, good.length - 7));
    const out = path.join(dir, 'set-truncated');
    const result = await runCli(['extract', '--from', bson, '--collection', 'things', '--out', out]);
    assertCleanError(result, /things\.bson.*(byte|offset)/i);
    const leftovers = (await readdir(dir)).filter((n) => n.includes('set-truncated'));
    assert.deepEqual(leftovers, []);
  });

  it('an unknown collection: the error lists the known ones', async () => {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, BSON.serialize({_id: 1, a: 1}));
    const result = await runCli(['extract', '--from', bson, '--collection', 'nope', '--out', path.join(dir, 'set-unknown')]);
    assertCleanError(result, /nope.*Known collections: artworks/);
  });

  it('a missing backup path says there is no such file; a name without a source says what to do', async () => {
    const result = await runCli(['inspect', path.join(dir, 'does-not-exist.tar.gz')]);
    assertCleanError(result, /No such file or folder: .*does-not-exist\.tar\.gz/);
    const named = await runCli(['inspect', 'gravity-hourly-2026-11-18-14-00.tar.gz']);
    assertCleanError(named, /not a local path.*--source/);
  });

  it('--json errors: stdout holds one JSON document with the error code', async () => {
    const result = await runCli(['inspect', path.join(dir, 'missing.tar.gz'), '--json']);
    assert.notEqual(result.code, 0);
    const body = json<{error: {code: string; message: string}}>(result);
    assert.equal(body.error.code, 'SOURCE_NOT_FOUND');
  });

  it('an unreachable target fails within seconds and masks the password', async () => {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, BSON.serialize({_id: 1, a: 1}));
    const set = path.join(dir, 'set-unreachable');
    assert.equal((await runCli(['extract', '--from', bson, '--collection', 'artworks', '--out', set])).code, 0);
    const port = await closedPort();
    const result = await runCli(['plan', set, '--to', 'staging'], {env: cleanEnv({GRAVITY_RESTORE_STAGING_URI: `mongodb://restorer:hunter2secret@127.0.0.1:${port}/gravity`})});
    assertCleanError(result, /reach/i);
    assert.equal(result.stderr.includes('hunter2secret'), false, 'password printed');
    assert.match(result.stderr, /restorer:\*\*\*\*@/);
    assert.ok(result.ms < 15_000, `took ${result.ms} ms`);
  });

  it('--engine mongod with no mongod binary and no --scratch-uri fails within seconds and says what to set', async () => {
    const local = await findLocalMongod();
    if (local) {
      console.log(`# a local mongod exists (${local}); the no-binary error cannot be shown here`);
      return;
    }
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, BSON.serialize({_id: 1, a: 1}));
    const result = await runCli(['extract', '--from', bson, '--collection', 'artworks', '--engine', 'mongod', '--out', path.join(dir, 'set-scratch')]);
    assertCleanError(result, /MONGOMS_SYSTEM_BINARY.*--scratch-uri/);
    assert.ok(result.ms < 10_000, `took ${result.ms} ms`);
    assert.equal((await readdir(dir)).includes('set-scratch'), false);
  });

  it('a config file with an unknown key names the key', async () => {
    const config = path.join(dir, 'bad.config.json');
    await writeFile(config, JSON.stringify({source: dir, relatoins: []}));
    const result = await runCli(['relations', '--config', config]);
    assertCleanError(result, /relatoins/);
  });

  it('a missing target connection string names the variable to set', async () => {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, BSON.serialize({_id: 1, a: 1}));
    const set = path.join(dir, 'set-no-target');
    assert.equal((await runCli(['extract', '--from', bson, '--collection', 'artworks', '--out', set])).code, 0);
    const result = await runCli(['push', set, '--to', 'production']);
    assertCleanError(result, /GRAVITY_RESTORE_PRODUCTION_URI/);
  });
});
