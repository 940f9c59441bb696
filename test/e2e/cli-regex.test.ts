/**
 * Regular expressions through bin/run.js: PCRE2 patterns (as mongod runs them) select the
 * documents PCRE2 selects, byte for byte; constructs with no exact form are refused by name; a
 * pattern that backtracks without end stops at the matching budget (exit 10) naming pattern and
 * collection; Ctrl-C and SIGTERM end such an extract at once (exit 130), leaving no temporary folder.
 * Expected selections follow pcre2pattern(3) of PCRE2 10.42 (mongod's, src/third_party/pcre2).
 */
import assert from 'node:assert/strict';
import {readdir, readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {PutObjectCommand} from '@aws-sdk/client-s3';
import {BSON, type Document} from 'bson';

import {createS3Client} from '../../src/s3/client.js';
import {metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, runCli} from '../support/cli.js';
import {startCli} from '../support/cli-session.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';

const DOCS: Document[] = [
  {_id: 1, name: 'Warhol', code: 'abc'},
  {_id: 2, name: 'Émile', code: 'abc\n'},
  {_id: 3, name: 'warhol', code: 'xabc'},
  {_id: 4, name: 'O’Keeffe', code: 'aaab'},
  {_id: 5, name: 'Basquiat', code: 'a'.repeat(40) + 'b'},
];
const RAW = DOCS.map((d) => Buffer.from(BSON.serialize(d)));

/** The `_id`s in a set's things.bson, checking each document is byte for byte the backup's. */
async function idsInSet(out: string): Promise<number[]> {
  const data = await readFile(path.join(out, 'dump', 'shop', 'things.bson'));
  const ids: number[] = [];
  for (let at = 0; at < data.length; ) {
    const size = data.readInt32LE(at);
    const doc = data.subarray(at, at + size);
    const id = BSON.deserialize(doc)._id as number;
    assert.deepEqual(doc, RAW[id - 1], `document ${id} is the backup's bytes`);
    ids.push(id);
    at += size;
  }
  return ids;
}

async function leftovers(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.includes('.tmp-'));
}

describe('regular expressions in extract (bin/run.js)', () => {
  let dir: string;
  let dump: string;
  let n = 0;
  const out = () => path.join(dir, `set-${++n}`);

  before(async () => {
    dir = await tempDir('cli-regex');
    dump = path.join(dir, 'dump');
    await writeFolder(dump, [{db: 'shop', collection: 'things', docs: RAW, metadata: metadataJson('things')}]);
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  const extract = (query: string, extra: string[] = [], env = cleanEnv()) =>
    runCli(['extract', '--from', dump, '--collection', 'things', '--query', query, '--out', out(), ...extra], {env});

  const cases: Array<[string, number[], string]> = [
    ['{name: /^[[:alpha:]]+$/}', [1, 3, 5], 'POSIX CHARACTER CLASSES: ASCII letters only without UCP (É, ’ are not)'],
    ['{code: /\\Aabc\\z/}', [1], 'SIMPLE ASSERTIONS: \\z is the very end, so "abc\\n" does not match'],
    ['{code: /^abc$/}', [1, 2], 'CIRCUMFLEX AND DOLLAR: $ matches before a final newline'],
    ['{name: /^\\p{L}+$/}', [1, 2, 3, 5], 'UNICODE CHARACTER PROPERTIES: \\p{L} takes É; ’ is not a letter'],
    ['{name: /(?i)^warhol$/}', [1, 3], 'INTERNAL OPTION SETTING: (?i) at the start'],
    ['{name: {$regex: "^WAR", $options: "i"}}', [1, 3], 'the i option'],
    ['{code: /^a++b$/}', [4, 5], 'POSSESSIVE QUANTIFIERS: a++ then b'],
    ['{code: /^a*+ab$/}', [], 'POSSESSIVE QUANTIFIERS: a*+ gives no a back'],
    ['{name: /(\\w)\\1/}', [4], 'BACKREFERENCES: a doubled letter (the ee of O’Keeffe)'],
  ];
  for (const [query, ids, doc] of cases) {
    it(`${query} selects ${JSON.stringify(ids)} (pcre2pattern ${doc})`, async () => {
      const target = path.join(dir, `set-${n + 1}`);
      const result = await extract(query);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(await idsInSet(target), ids);
    });
  }

  it('refuses a construct with no exact JavaScript form, naming it (exit 2, nothing written)', async () => {
    const target = path.join(dir, `set-${n + 1}`);
    const result = await extract('{name: /(x|(\\w))\\2/}');
    assertCleanError(result, /backreference \\2 to a group that may not have taken part/);
    assert.equal(result.code, 2);
    await assert.rejects(readdir(target));
    assert.deepEqual(await leftovers(dir), []);
  });

  it('stops a regex that backtracks without end at --match-timeout: exit 10, the pattern and collection named, nothing left', async () => {
    const target = path.join(dir, `set-${n + 1}`);
    const result = await extract('{code: /(a+)+$/}', ['--match-timeout', '2']);
    assertCleanError(result, /no progress for \d+ s on collection things with \/\(a\+\)\+\$\//);
    assert.equal(result.code, 10);
    assert.ok(result.ms < 15_000, `stopped after ${result.ms} ms`);
    await assert.rejects(readdir(target));
    assert.deepEqual(await leftovers(dir), []);
  });

  it('takes the budget from GRAVITY_RESTORE_MATCH_TIMEOUT, and says it under --json', async () => {
    const result = await extract('{code: /(a+)+$/}', ['--json'], cleanEnv({GRAVITY_RESTORE_MATCH_TIMEOUT: '1'}));
    assert.equal(result.code, 10);
    const error = (JSON.parse(result.stdout) as {error: {code: string; exitCode: number; details: {patterns: string[]; collection: string}}}).error;
    assert.equal(error.code, 'RESOURCE_LIMIT');
    assert.equal(error.exitCode, 10);
    assert.deepEqual(error.details.patterns, ['/(a+)+$/']);
    assert.equal(error.details.collection, 'things');
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} during the spin ends extract at once (exit 130) and removes its temporary folder`, async () => {
      const target = out();
      const cli = startCli(['extract', '--from', dump, '--collection', 'things', '--query', '{code: /(a+)+$/}', '--out', target], {env: cleanEnv()});
      // The worker has made its temporary set folder and is spinning on the fifth document.
      for (let i = 0; i < 100 && (await leftovers(dir)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await leftovers(dir)).length, 1, 'the extract is under way');
      await new Promise((r) => setTimeout(r, 500));
      const sent = Date.now();
      cli.child.kill(signal);
      const result = await cli.done;
      assert.equal(result.code, 130, result.stderr);
      assert.ok(Date.now() - sent < 5000, `ended ${Date.now() - sent} ms after ${signal}`);
      assertCleanError(result, /Interrupted/);
      assert.deepEqual(await leftovers(dir), []);
      await assert.rejects(readdir(target));
    });
  }
});

/**
 * Where matching runs on the main thread (a backup streamed from S3, --follow, diff --query), the
 * regexes run on a matching worker that thread asks a batch at a time and can end.
 */
describe('regular expressions matched for the main thread (S3 streaming, --follow, diff)', () => {
  let dir: string;
  let dump: string;
  let s3: S3Server;
  let s3Env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await tempDir('cli-regex-main');
    dump = path.join(dir, 'tree', 'dump');
    await writeFolder(dump, [{db: 'shop', collection: 'things', docs: RAW, metadata: metadataJson('things')}]);
    const tarball = path.join(dir, 'shop-hourly-2026-11-18-10-00.tar.gz');
    tarFolder(path.join(dir, 'tree'), 'dump', tarball, {gzip: true});
    s3 = await startS3Server();
    await s3.createBucket('backups');
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    await client.send(new PutObjectCommand({Bucket: 'backups', Key: `prod/${path.basename(tarball)}`, Body: await readFile(tarball)}));
    s3Env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://backups/prod/', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
  });
  after(async () => {
    await s3.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('a backup streamed from S3: PCRE2 selection byte for byte, and the budget stops a runaway regex (exit 10)', async () => {
    const good = await runCli(['extract', '--from', 'latest', '-c', 'things', '-q', '{name: /^[[:alpha:]]+$/}', '--out', path.join(dir, 's3-good')], {env: s3Env});
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stderr, /streaming, no download first/);
    assert.deepEqual(await idsInSet(path.join(dir, 's3-good')), [1, 3, 5]);
    const spin = await runCli(['extract', '--from', 'latest', '-c', 'things', '-q', '{code: /(a+)+$/}', '--out', path.join(dir, 's3-spin'), '--match-timeout', '2'], {env: s3Env});
    assertCleanError(spin, /no progress for \d+ s on collection things with \/\(a\+\)\+\$\//);
    assert.equal(spin.code, 10);
    assert.deepEqual(await leftovers(dir), []);
  });

  it('--follow: the budget, and Ctrl-C during the spin (exit 130 at once, no temporary folder)', async () => {
    const timed = await runCli(['extract', '--from', dump, '-c', 'things', '-q', '{code: /(a+)+$/}', '--follow', '--out', path.join(dir, 'follow-1'), '--match-timeout', '2'], {env: cleanEnv()});
    assertCleanError(timed, /no progress/);
    assert.equal(timed.code, 10);
    const cli = startCli(['extract', '--from', dump, '-c', 'things', '-q', '{code: /(a+)+$/}', '--follow', '--out', path.join(dir, 'follow-2')], {env: cleanEnv()});
    for (let i = 0; i < 100 && (await leftovers(dir)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 700));
    const sent = Date.now();
    cli.child.kill('SIGINT');
    const result = await cli.done;
    assert.equal(result.code, 130, result.stderr);
    assert.ok(Date.now() - sent < 5000, `ended ${Date.now() - sent} ms after SIGINT`);
    assert.deepEqual(await leftovers(dir), []);
    const good = await runCli(['extract', '--from', dump, '-c', 'things', '-q', '{code: /^a++b$/}', '--follow', '--out', path.join(dir, 'follow-3')], {env: cleanEnv()});
    assert.equal(good.code, 0, good.stderr);
    assert.deepEqual(await idsInSet(path.join(dir, 'follow-3')), [4, 5]);
  });

  it('diff --query: GRAVITY_RESTORE_MATCH_TIMEOUT bounds the matching (exit 10)', async () => {
    const result = await runCli(['diff', dump, dump, '--query', '{code: /(a+)+$/}'], {env: cleanEnv({GRAVITY_RESTORE_MATCH_TIMEOUT: '2'})});
    assertCleanError(result, /no progress for \d+ s on the diff --query with \/\(a\+\)\+\$\//);
    assert.equal(result.code, 10);
  });
});

describe('query parse errors a person makes (bin/run.js)', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('cli-regex-parse');
    await writeFolder(path.join(dir, 'dump'), [{db: 'shop', collection: 'things', docs: RAW, metadata: metadataJson('things')}]);
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });
  const extract = (query: string) => runCli(['extract', '--from', path.join(dir, 'dump'), '--collection', 'things', '--query', query, '--out', path.join(dir, 'set')], {env: cleanEnv()});

  it('a bare word is named as not a value, with the quoted form', async () => {
    const result = await extract('{region: corse}');
    assertCleanError(result, /`corse` is not a value.*\{region: "corse"\}/);
    assert.equal(result.code, 2);
  });
  it('$where says JavaScript is not supported, and why', async () => {
    const result = await extract('{$where: "this.name == \'Warhol\'"}');
    assertCleanError(result, /\$where \(JavaScript\) is not supported: .*runs no JavaScript/);
    assert.equal(result.code, 2);
  });
});
