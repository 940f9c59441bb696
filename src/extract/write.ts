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
    // A copy: `doc` is a view of a whole read chunk, and a sparse selection would keep one chunk alive
    // per batched document (600 documents of a 700 MB spool held 600 MB until the batch was written).
    batch.push(Buffer.from(doc));
    if (batch.length >= 1000) {
      await writer.append(db, collection, batch);
      batch = [];
    }
  }
  await writer.append(db, collection, batch);
}
