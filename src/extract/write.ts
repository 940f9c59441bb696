/** The write stage: selected documents copied from the spools into the set, byte for byte, in backup order. */
import type {DumpFolderWriter} from '../dump/write.js';
import type {SpoolFile} from './spool.js';

export async function writeSelected(
  writer: DumpFolderWriter,
  db: string,
  collection: string,
  spool: SpoolFile | undefined,
  metadataRaw: string | undefined,
  picked: Set<number>,
  signal?: AbortSignal,
): Promise<void> {
  if (metadataRaw !== undefined) await writer.writeMetadata(db, collection, metadataRaw);
  await writer.append(db, collection, []);
  if (!spool || picked.size === 0) return;
  let batch: Buffer[] = [];
  for await (const {ordinal, doc} of spool.documentsWithOrdinal(signal)) {
    if (!picked.has(ordinal)) continue;
    batch.push(doc);
    if (batch.length >= 1000) {
      await writer.append(db, collection, batch);
      batch = [];
    }
  }
  await writer.append(db, collection, batch);
}
