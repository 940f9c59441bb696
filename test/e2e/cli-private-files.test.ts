/**
 * Restore sets, exports and the download cache hold production data: everything the CLI creates is
 * readable by its owner only, folders 0700 and files 0600, whatever the caller's umask.
 */
import assert from 'node:assert/strict';
import {mkdir, readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {everyTypeDocuments, metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {cleanEnv, json, runCli} from '../support/cli.js';

async function modes(root: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [[root, (await stat(root)).mode & 0o777]];
  for (const entry of await readdir(root, {withFileTypes: true})) {
    const full = path.join(root, entry.name);
    if (entry.isDirectory()) out.push(...(await modes(full)));
    else out.push([full, (await stat(full)).mode & 0o777]);
  }
  return out;
}

function assertPrivate(list: Array<[string, number]>): void {
  assert.ok(list.length > 1, 'something was written');
  for (const [file, mode] of list) assert.ok((mode & 0o077) === 0, `${file} is ${mode.toString(8)}, readable by others`);
}

describe('files holding production data are private', () => {
  let dir: string;

  before(async () => {
    dir = await tempDir('cli-private');
    const ns = [{db: 'gravity', collection: 'artworks', docs: everyTypeDocuments(20, 5), metadata: metadataJson('artworks')}];
    await writeFolder(path.join(dir, 'src', 'dump'), ns);
    await mkdir(path.join(dir, 'backups'));
    // A backup source folder holding one timestamped tarball, as `list`/`fetch` expect.
    tarFolder(path.join(dir, 'src'), 'dump', path.join(dir, 'backups', 'gravity-2026-11-18T14-00-00Z.tar.gz'), {gzip: true, format: 'pax'});
  });
  after(async () => {
    const {rm} = await import('node:fs/promises');
    await rm(dir, {recursive: true, force: true});
  });

  it('extract, export and fetch create 0700 folders and 0600 files even under a permissive umask', async () => {
    const env = cleanEnv();
    const set = path.join(dir, 'set');
    const extract = await runCli(['extract', '--from', path.join(dir, 'backups', 'gravity-2026-11-18T14-00-00Z.tar.gz'), '--collection', 'artworks', '--query', '{}', '--out', set, '--json'], {env});
    assert.equal(extract.code, 0, extract.stderr);
    assertPrivate(await modes(set));
    const archive = path.join(dir, 'out', 'set.archive');
    const exported = await runCli(['export', set, '--archive', archive, '--json'], {env});
    assert.equal(exported.code, 0, exported.stderr);
    assert.equal((await stat(archive)).mode & 0o777, 0o600);
    const cache = path.join(dir, 'cache');
    const fetched = await runCli(['fetch', 'latest', '--source', path.join(dir, 'backups'), '--cache', cache, '--json'], {env});
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.ok(json<{files: unknown[]}>(fetched).files.length > 0);
    assertPrivate(await modes(cache));
  });
});
