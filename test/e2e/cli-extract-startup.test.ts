import assert from 'node:assert/strict';
import {readFile, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import {pathToFileURL} from 'node:url';

import {BSON, ObjectId} from 'bson';

import {tempDir} from '../support/bson-fixtures.js';
import {cleanEnv, json, REPO_ROOT, runCli} from '../support/cli.js';

const PRELOAD = pathToFileURL(path.join(REPO_ROOT, 'test', 'support', 'loaded-packages.mjs')).href;

/** npm package names in a list of module paths: the part after the last node_modules/. */
function packagesIn(paths: string): Set<string> {
  const names = new Set<string>();
  for (const line of paths.split('\n')) {
    const m = /.*node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}

/**
 * Start-up is most of a small extract: the plain path (a local backup, an equality query in JSON,
 * the stream engine, --json) must not load what only other paths use: the MongoDB driver (scratch
 * engine, live targets), mingo (filters with $or, $not, $elemMatch, …), the S3 client (backup ids),
 * the shell-syntax query parser, and the terminal spinners and bars.
 */
describe('extract loads only what its path needs', () => {
  let dir: string;
  const partner = new ObjectId('57d1c0ffee0000000000cafe');

  before(async () => {
    dir = await tempDir('extract-startup');
    const docs = Array.from({length: 50}, (_, i) => Buffer.from(BSON.serialize({_id: i, partner_id: i % 5 === 0 ? partner : new ObjectId(), n: i})));
    await writeFile(path.join(dir, 'artworks.bson'), Buffer.concat(docs));
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  async function extract(label: string, query: string): Promise<{packages: Set<string>; matched: number}> {
    const file = path.join(dir, `${label}.loaded`);
    const env = cleanEnv({NODE_OPTIONS: `--import=${PRELOAD}`, LOADED_PACKAGES_FILE: file});
    const result = await runCli(['extract', '--from', path.join(dir, 'artworks.bson'), '-c', 'artworks', '-q', query, '--out', path.join(dir, label), '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const packages = packagesIn(await readFile(file, 'utf8'));
    // The recording itself works: ES modules (bson) and CommonJS ones (@oclif/core's dependencies) are seen.
    assert.ok(packages.has('bson') && packages.has('@oclif/core') && packages.has('semver'), [...packages].join(', '));
    return {packages, matched: json<{counts: Record<string, number>}>(result).counts.artworks!};
  }

  it('an equality in Extended JSON loads neither the driver, mingo, the S3 client, the shell parser nor spinners', async () => {
    const {packages, matched} = await extract('equality', `{"partner_id": {"$oid": "${partner.toHexString()}"}}`);
    assert.equal(matched, 10);
    for (const name of ['mongodb', 'mingo', '@aws-sdk/client-s3', 'mongodb-query-parser', 'acorn', 'ora', 'cli-progress']) {
      assert.ok(!packages.has(name), `${name} was loaded`);
    }
  });

  it('shell syntax loads its parser, and an $or mingo, still without the driver', async () => {
    const {packages, matched} = await extract('or', `{$or: [{partner_id: ObjectId("${partner.toHexString()}")}, {n: {$lt: 3}}]}`);
    assert.equal(matched, 12);
    assert.ok(packages.has('mongodb-query-parser') && packages.has('mingo'), [...packages].join(', '));
    assert.ok(!packages.has('mongodb'), 'mongodb was loaded');
  });
});
