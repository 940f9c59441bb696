/**
 * A hand-edited manifest cannot point a push outside its set: a `file` of `../../…/secret.bson` (with
 * that file's sha256, size and count), an absolute path, or a symbolic link inside the set that leads
 * out of it is refused as tampered (SET_INVALID, exit 6) by every command, and nothing is written.
 * Through bin/run.js.
 */
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {cp, mkdir, readFile, symlink, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON} from 'bson';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {MongoClient} from 'mongodb';

import {assertCleanError, cleanEnv, runCli} from '../support/cli.js';
import {startMongo, withDb, type MongoBackend} from '../support/mongo-backend.js';

let mongo: MongoBackend;
let client: MongoClient;
let dir: string;
let cleanup: () => Promise<void>;
let original: string;
let secret: string;
let copies = 0;
const DB = `paths${process.pid}`;
let env: NodeJS.ProcessEnv;

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

before(async () => {
  mongo = await startMongo({label: 'set-paths'});
  client = await MongoClient.connect(mongo.uri);
  ({dir, cleanup} = await tempDir('gr-cli-set-paths-'));
  original = path.join(dir, 'set');
  await writeSet(original, [{db: DB, name: 'customers', docs: [{_id: 1, name: 'a'}, {_id: 2, name: 'b'}]}]);
  // Someone else's documents, outside the set.
  secret = path.join(dir, 'elsewhere', 'secret.bson');
  await mkdir(path.dirname(secret), {recursive: true});
  await writeFile(secret, Buffer.concat([BSON.serialize({_id: 'x1', card: '4111'}), BSON.serialize({_id: 'x2', card: '5500'})]));
  env = cleanEnv({GRAVITY_RESTORE_STAGING_URI: withDb(mongo.uri, DB)});
});
after(async () => {
  await client?.db(DB).dropDatabase().catch(() => undefined);
  await client?.close();
  await mongo?.stop();
  await cleanup?.();
});

async function copy(): Promise<string> {
  const target = path.join(dir, `copy-${++copies}`);
  await cp(original, target, {recursive: true});
  return target;
}

type Entry = {file: string; sha256: string; bytes: number; documents: number; metadataFile: string | null};

async function editManifest(set: string, edit: (c: Entry) => void): Promise<void> {
  const file = path.join(set, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as {collections: Record<string, Entry>};
  edit(manifest.collections.customers!);
  await writeFile(file, JSON.stringify(manifest, null, 2));
}

/** Point the collection at the secret file, with its real checksum, size and count: only the path gives it away. */
async function pointAt(set: string, file: string): Promise<void> {
  const data = await readFile(secret);
  await editManifest(set, (c) => Object.assign(c, {file, sha256: sha(data), bytes: data.length, documents: 2}));
}

async function refusedEverywhere(set: string, what: RegExp): Promise<void> {
  for (const args of [
    ['plan', set, '--to', 'staging'],
    ['push', set, '--to', 'staging', '--yes'],
    ['verify', set, '--to', 'staging'],
    ['export', set, '--archive', path.join(dir, `${path.basename(set)}.archive`)],
  ]) {
    const result = await runCli(args, {env});
    assertCleanError(result, what);
    assert.equal(result.code, 6, `${args[0]}: exit ${result.code}\n${result.stderr}`);
  }
  assert.equal(await client.db(DB).collection('customers').countDocuments(), 0, 'the target was written to');
}

describe('paths a manifest names stay inside the set', () => {
  it('a relative path climbing out with ..', async () => {
    const set = await copy();
    await pointAt(set, path.relative(set, secret));
    await refusedEverywhere(set, /Restore set tampered with: manifest\.json customers\.file \(\.\.\/elsewhere\/secret\.bson\) points outside the set\. Do not edit a restore set by hand/);
  });

  it('an absolute path', async () => {
    const set = await copy();
    await pointAt(set, secret);
    await refusedEverywhere(set, /tampered with: manifest\.json customers\.file \(.*secret\.bson\) is not a path inside the set/);
  });

  it('a symbolic link inside the set that leads out of it', async () => {
    const set = await copy();
    await symlink(secret, path.join(set, 'dump', DB, 'link.bson'));
    await pointAt(set, path.join('dump', DB, 'link.bson'));
    await refusedEverywhere(set, /tampered with: manifest\.json customers\.file \(dump\/.*\/link\.bson\) leads outside the set through a symbolic link/);
  });

  it('the metadata file too', async () => {
    const set = await copy();
    await editManifest(set, (c) => (c.metadataFile = '../../etc/passwd'));
    await refusedEverywhere(set, /tampered with: manifest\.json customers\.metadataFile \(\.\.\/\.\.\/etc\/passwd\) points outside the set/);
  });

  it('a path that goes through .. but stays inside is still the set\'s own file', async () => {
    const set = await copy();
    await editManifest(set, (c) => (c.file = `dump/../dump/${DB}/customers.bson`));
    const plan = await runCli(['plan', set, '--to', 'staging', '--json'], {env});
    assert.equal(plan.code, 0, plan.stderr);
  });
});
