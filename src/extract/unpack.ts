import {randomBytes} from 'node:crypto';
import {mkdir, rename, rm} from 'node:fs/promises';
import path from 'node:path';

import {SpaceGuard} from '../dump/disk-space.js';
import {readDump} from '../dump/read.js';
import {DumpFolderWriter} from '../dump/write.js';

/**
 * Unpack only the named collections of a fetched backup file into a mongodump folder tree
 * (`<root>/<db>/<coll>.bson`; fetch names a root per source and backup), written aside and
 * renamed into place.
 */
export async function unpackCollections(file: string, collections: string[], root: string, signal?: AbortSignal): Promise<Record<string, string>> {
  if (collections.length === 0) return {};
  const wanted = new Set(collections);
  const temp = `${root}.tmp-${randomBytes(4).toString('hex')}`;
  await mkdir(temp, {recursive: true});
  try {
    const writer = new DumpFolderWriter(temp, {space: new SpaceGuard(temp, 'the unpacked collections', {shown: path.dirname(root), hint: 'Free some space, or point --cache (GRAVITY_RESTORE_CACHE) at a larger disk'})});
    for await (const event of readDump(file, {signal, want: (ns) => wanted.has(ns.collection) || wanted.has(`${ns.db}.${ns.collection}`)})) {
      if (event.type === 'oplog') continue;
      if (!wanted.has(event.collection) && !wanted.has(`${event.db}.${event.collection}`)) continue;
      if (event.type === 'metadata') await writer.writeMetadata(event.db, event.collection, event.raw);
      else if (event.type === 'documents') await writer.append(event.db, event.collection, event.docs);
      else await writer.append(event.db, event.collection, []);
    }
    const written = await writer.close();
    await rm(root, {recursive: true, force: true});
    await mkdir(path.dirname(root), {recursive: true});
    await rename(temp, root);
    const out: Record<string, string> = {};
    for (const w of written) out[w.collection] = path.join(root, w.file);
    return out;
  } catch (error) {
    await rm(temp, {recursive: true, force: true});
    throw error;
  }
}
