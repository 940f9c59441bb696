/** Builds restore sets on disk for the target tests: manifest, .bson and .metadata.json written here, never committed. */
import {createHash} from 'node:crypto';
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {BSON, EJSON} from 'bson';
import type {Document} from 'bson';

import {canonicalJson, readRestoreSet} from '../../src/restore-set/manifest.js';
import type {Manifest, ManifestCollection, RestoreSet} from '../../src/restore-set/manifest.js';

export interface FixtureCollection {
  db: string;
  name: string;
  /** Documents, or their raw BSON when the bytes themselves matter (field order, deprecated types). */
  docs: Array<Document | Uint8Array>;
  indexes?: Document[];
  options?: Document;
}

export async function tempDir(prefix = 'gr-target-'): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})};
}

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

export async function writeSet(dir: string, collections: FixtureCollection[], extra: Partial<Manifest> = {}): Promise<RestoreSet> {
  const entries: Record<string, ManifestCollection> = {};
  for (const c of collections) {
    const folder = path.join(dir, 'dump', c.db);
    await mkdir(folder, {recursive: true});
    const data = Buffer.concat(c.docs.map((d) => (d instanceof Uint8Array ? Buffer.from(d) : Buffer.from(BSON.serialize(d)))));
    const file = path.join('dump', c.db, `${c.name}.bson`);
    await writeFile(path.join(dir, file), data);
    const metadata = canonicalJson(
      EJSON.serialize(
        {
          options: c.options ?? {},
          indexes: [{v: 2, key: {_id: 1}, name: '_id_'}, ...(c.indexes ?? [])],
          uuid: '00000000000000000000000000000000',
          collectionName: c.name,
          type: 'collection',
        },
        {relaxed: false},
      ),
    );
    const metadataFile = path.join('dump', c.db, `${c.name}.metadata.json`);
    await writeFile(path.join(dir, metadataFile), metadata);
    entries[c.name] = {
      db: c.db,
      collection: c.name,
      documents: c.docs.length,
      bytes: data.length,
      file,
      sha256: sha(data),
      metadataFile,
      metadataSha256: sha(metadata),
      selectedBy: 'query',
    };
  }
  const manifest: Manifest = {
    formatVersion: 1,
    tool: {name: 'gravity-restore', version: '0.1.0'},
    createdAt: '2026-11-20T10:00:00.000Z',
    source: {backup: '2026-11-18T14:00:00Z', location: 's3://bucket/db/backup/2026-11-18T14:00:00Z/', takenAt: '2026-11-18T14:00:00.000Z', objects: []},
    query: {collection: collections[0]?.name ?? 'x', text: '{"partner_id": 1}', canonical: '{"partner_id":1}'},
    engine: 'stream',
    follow: collections.length > 1,
    relations: [],
    order: collections.map((c) => c.name),
    collections: entries,
    ...extra,
  };
  await writeFile(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return readRestoreSet(dir);
}
