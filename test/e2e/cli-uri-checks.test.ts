/**
 * Connection strings as users type them, through bin/run.js. A password that is not percent-encoded
 * (`p@ss#w/rd`) is refused at once, without printing it, instead of "Cannot reach" another host
 * after seconds. Masking hides secrets only: stack frames keep their line numbers under --debug,
 * hints and messages keep their ports.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {startMongo, withDb, type MongoBackend} from '../support/mongo-backend.js';

let mongo: MongoBackend;
let dir: string;
let cleanup: () => Promise<void>;
let setDir: string;
const DB = `uri${process.pid}`;

before(async () => {
  mongo = await startMongo({label: 'uri-checks'});
  ({dir, cleanup} = await tempDir('gr-cli-uri-'));
  setDir = path.join(dir, 'set');
  await writeSet(setDir, [{db: DB, name: 'customers', docs: [{_id: 1, name: 'a'}]}]);
});
after(async () => {
  await mongo?.stop();
  await cleanup?.();
});

/** host:port of the test server, where a correctly encoded string would connect. */
function hostPort(): string {
  return /^mongodb:\/\/(?:[^@/]*@)?([^/?]+)/.exec(mongo.uri)![1]!;
}

const PASSWORD = 'p@ss#w/rd';

function assertNoPassword(text: string): void {
  for (const piece of [PASSWORD, 'p@ss', 'ss#w', 'w/rd', encodeURIComponent(PASSWORD)]) assert.ok(!text.includes(piece), `"${piece}" was printed:\n${text}`);
}

describe('a password that is not percent-encoded', () => {
  it('is refused at once with "percent-encode the password", from --to and from the environment, never printed', async () => {
    const uri = `mongodb://restorer:${PASSWORD}@${hostPort()}/${DB}`;
    for (const [args, env] of [
      [['plan', setDir, '--to', uri], cleanEnv()],
      [['push', setDir, '--to', 'staging', '--yes'], cleanEnv({GRAVITY_RESTORE_STAGING_URI: uri})],
      [['verify', setDir, '--to', 'production'], cleanEnv({GRAVITY_RESTORE_PRODUCTION_URI: uri})],
    ] as const) {
      const result = await runCli([...args], {env});
      assertCleanError(result, /unencoded @, #, \/, \? or : in its user name or password.*percent-encode the password/);
      assert.equal(result.code, 2);
      assert.ok(result.ms < 4000, `took ${result.ms} ms: it waited on a server`);
      assertNoPassword(result.stdout + result.stderr);
    }
    const asJson = await runCli(['plan', setDir, '--to', uri, '--json'], {env: cleanEnv()});
    assert.equal(asJson.code, 2);
    assert.equal(json<{error: {code: string}}>(asJson).error.code, 'TARGET_INVALID');
    assertNoPassword(asJson.stdout + asJson.stderr);
  });

  it('each of @ # / ? : unencoded is caught; the encoded form is not', async () => {
    for (const pw of ['a@b', 'a#b', 'a/b', 'a?b', 'a:b']) {
      const result = await runCli(['plan', setDir, '--to', `mongodb://restorer:${pw}@${hostPort()}/${DB}`], {env: cleanEnv()});
      assertCleanError(result, /percent-encode the password/);
    }
    // Encoded, an '@' in an option value is a well-formed string that reaches the server.
    const options = await runCli(['plan', setDir, '--to', `${withDb(mongo.uri, DB)}${mongo.uri.includes('?') ? '&' : '?'}appName=ops%40example`, '--json'], {env: cleanEnv()});
    assert.equal(options.code, 0, options.stderr);
  });
});

describe('masking hides secrets, not line numbers or ports', () => {
  it('a hint keeps mongodb://host:port/db', async () => {
    const result = await runCli(['plan', setDir, '--to', 'nowhere'], {env: cleanEnv()});
    assertCleanError(result, /--to mongodb:\/\/host:port\/db/);
  });

  it('--debug stack frames keep file:line:column; the message keeps the port; the password stays masked', async () => {
    const secret = 'Xq7vRt9wLm';
    const result = await runCli(['plan', setDir, '--to', `mongodb://restorer:${secret}@127.0.0.1:9/${DB}`, '--debug'], {env: cleanEnv()});
    assert.equal(result.code, 5, result.stderr);
    assert.match(result.stderr, /Error: Cannot reach mongodb:\/\/restorer:\*\*\*\*@127\.0\.0\.1:9\/uri\d+ /);
    const frames = result.stderr.split('\n').filter((l) => /^\s+at /.test(l));
    assert.ok(frames.length > 0, `no stack under --debug:\n${result.stderr}`);
    for (const frame of frames.filter((f) => f.includes('.js'))) assert.match(frame, /\.js:\d+:\d+\)?$/, `frame lost its position: ${frame}`);
    assert.ok(!result.stderr.includes(secret));
  });
});
