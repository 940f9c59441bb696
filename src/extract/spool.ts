import {createWriteStream, type WriteStream} from 'node:fs';
import {mkdir} from 'node:fs/promises';
import path from 'node:path';
import {once} from 'node:events';

import type {SpaceGuard} from '../dump/disk-space.js';
import {readDump} from '../dump/read.js';

/**
 * Raw documents of a collection copied once from the backup to a local .bson file, so that
 * relation levels can re-read a collection without reading the backup (or S3) again.
 */
export class SpoolFile {
  readonly file: string;
  documents = 0;
  bytes = 0;
  private out: WriteStream | null = null;

  /** @param space counts the spool's bytes against the disk's free space (the set's own guard) */
  constructor(dir: string, db: string, collection: string, private readonly space?: SpaceGuard) {
    // One folder per namespace keeps file names free of escaping problems.
    this.file = path.join(dir, encodeURIComponent(db), `${encodeURIComponent(collection)}.bson`);
  }

  async append(docs: Buffer[]): Promise<void> {
    if (!this.out) {
      await mkdir(path.dirname(this.file), {recursive: true});
      this.out = createWriteStream(this.file);
    }
    if (this.space !== undefined && docs.length > 0) await this.space.reserve(docs.reduce((sum, doc) => sum + doc.length, 0));
    for (const doc of docs) {
      this.documents++;
      this.bytes += doc.length;
      if (!this.out.write(doc)) await once(this.out, 'drain');
    }
  }

  async close(): Promise<void> {
    if (!this.out) {
      await this.append([]);
    }
    const out = this.out!;
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }

  /** Documents in spool order (= backup order), with their ordinal. */
  async *documentsWithOrdinal(signal?: AbortSignal): AsyncGenerator<{ordinal: number; doc: Buffer}> {
    let ordinal = 0;
    // Every document was checked when it was read from the backup: reading the spool back does not again.
    for await (const event of readDump(this.file, {signal, check: 'none'})) {
      if (event.type !== 'documents') continue;
      for (const doc of event.docs) yield {ordinal: ordinal++, doc};
    }
  }
}
