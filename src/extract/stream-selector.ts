import {BSON, type Document} from 'bson';

import {compileQuery} from '../query/compile.js';
import type {Keep, Selector} from './selector.js';
import type {SpoolFile} from './spool.js';

/** In-process selection: the compiled query runs on raw BSON; only hits are decoded. */
export class StreamSelector implements Selector {
  constructor(
    private readonly spools: Map<string, SpoolFile>,
    private readonly signal?: AbortSignal,
  ) {}

  async select(
    collection: string,
    filter: Document,
    onProgress?: (p: {collection: string; scanned: number; matched: number}) => void,
    keep?: Keep,
    decode = true,
  ): Promise<Array<{ordinal: number; doc: Document}>> {
    const spool = this.spools.get(collection);
    if (!spool) return [];
    const query = compileQuery(filter);
    const hits: Array<{ordinal: number; doc: Document}> = [];
    let scanned = 0;
    for await (const {ordinal, doc} of spool.documentsWithOrdinal(this.signal)) {
      scanned++;
      // Matched on bytes first, the verdict second: only kept hits are decoded.
      if (query.matches(doc) && (!keep || keep(collection, ordinal))) hits.push({ordinal, doc: decode ? BSON.deserialize(doc, {promoteValues: true}) : {}});
      if ((scanned & 0xffff) === 0) onProgress?.({collection, scanned, matched: hits.length});
    }
    onProgress?.({collection, scanned, matched: hits.length});
    return hits;
  }

  async close(): Promise<void> {}
}
