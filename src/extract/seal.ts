/**
 * The seal stage: the manifest (sources, query, comparisons, per-collection files and checksums)
 * written into the temporary set, which is then renamed into place, so a set either exists whole
 * or not at all.
 */
import {mkdir, rename, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';

import type {WrittenNamespace} from '../dump/write.js';
import {GravityError} from '../errors.js';
import {canonicalJson, manifestHash, MANIFEST_FILE, type Manifest, type ManifestCollection} from '../restore-set/manifest.js';

export async function prepareOut(out: string, force: boolean | undefined): Promise<string> {
  const target = path.resolve(out);
  const exists = await stat(target).then(
    () => true,
    () => false,
  );
  if (exists && !force) {
    throw new GravityError('SET_EXISTS', `Output folder ${target} already exists`, {hint: 'Choose another --out, or pass --force to replace it'});
  }
  await mkdir(path.dirname(target), {recursive: true});
  return target;
}

/** Manifest entries of the written files, in push order. */
export function manifestCollections(
  written: WrittenNamespace[],
  db: string,
  order: string[],
  extra: (collection: string) => Pick<ManifestCollection, 'scanned' | 'selectedBy' | 'from' | 'fromBackup' | 'replayed' | 'createdAfterBackup' | 'deletedBeforeAt'>,
): Record<string, ManifestCollection> {
  const collections: Record<string, ManifestCollection> = {};
  for (const collection of order) {
    const file = written.find((w) => w.collection === collection && w.db === db);
    if (!file) throw new GravityError('INTERNAL', `Restore set file for ${collection} was not written`);
    const more = extra(collection);
    collections[collection] = {
      db,
      collection,
      documents: file.documents,
      bytes: file.bytes,
      file: path.posix.join('dump', file.file.split(path.sep).join('/')),
      sha256: file.sha256,
      metadataFile: file.metadataFile ? path.posix.join('dump', file.metadataFile.split(path.sep).join('/')) : null,
      metadataSha256: file.metadataSha256,
      scanned: more.scanned ?? 0,
      selectedBy: more.selectedBy,
      ...(more.from ? {from: more.from} : {}),
      ...(more.fromBackup === undefined
        ? {}
        : {fromBackup: more.fromBackup, replayed: more.replayed ?? 0, createdAfterBackup: more.createdAfterBackup ?? 0, deletedBeforeAt: more.deletedBeforeAt ?? 0}),
    };
  }
  return collections;
}

/** Writes the manifest into `temp`, replaces `target` with it, and returns the set's hash. */
export async function seal(temp: string, target: string, manifest: Manifest): Promise<string> {
  const canonical = canonicalJson(manifest);
  await writeFile(path.join(temp, MANIFEST_FILE), `${JSON.stringify(JSON.parse(canonical), null, 2)}\n`);
  await rm(target, {recursive: true, force: true});
  await rename(temp, target);
  return manifestHash(JSON.parse(canonical) as Manifest);
}
