import {readDump} from './read.js';
import type {DumpInput, ReadOptions} from './types.js';

export interface NamespaceSummary {
  db: string;
  collection: string;
  type: string;
  documents: number;
  bytes: number;
  indexes: string[];
  options: Record<string, unknown>;
}

/** Namespaces of a dump with their counts, indexes and options; reads every byte once, in constant memory, checking every document's structure. */
export async function inspectDump(
  input: DumpInput,
  options: {onProgress?: ReadOptions['onProgress']} = {},
): Promise<{namespaces: NamespaceSummary[]; oplog?: {documents: number; bytes: number}}> {
  const byNs = new Map<string, NamespaceSummary>();
  const get = (db: string, collection: string): NamespaceSummary => {
    const key = `${db}\u0000${collection}`;
    let summary = byNs.get(key);
    if (summary === undefined) {
      summary = {db, collection, type: 'collection', documents: 0, bytes: 0, indexes: [], options: {}};
      byNs.set(key, summary);
    }
    return summary;
  };
  let oplog: {documents: number; bytes: number} | undefined;
  // Counting needs no document handed on: a screen that keeps none makes no subarray (a backup of
  // hundreds of millions of tiny documents would otherwise churn as many short-lived objects), and
  // every document is still checked for structure.
  const none = (): boolean => false;
  const readOptions: ReadOptions = {screen: () => none, check: 'all', ...(options.onProgress === undefined ? {} : {onProgress: options.onProgress})};
  for await (const event of readDump(input, readOptions)) {
    switch (event.type) {
      case 'metadata': {
        const summary = get(event.db, event.collection);
        summary.type = event.metadata.type ?? 'collection';
        summary.options = event.metadata.options;
        summary.indexes = event.metadata.indexes.map((index) => (typeof index.name === 'string' ? index.name : JSON.stringify(index.key ?? index)));
        break;
      }
      case 'end': {
        const summary = get(event.db, event.collection);
        summary.documents += event.documents;
        summary.bytes += event.bytes;
        break;
      }
      case 'oplog':
        oplog = {documents: (oplog?.documents ?? 0) + event.documents, bytes: (oplog?.bytes ?? 0) + event.bytes};
        break;
      default:
        break;
    }
  }
  const result: {namespaces: NamespaceSummary[]; oplog?: {documents: number; bytes: number}} = {namespaces: [...byNs.values()]};
  if (oplog !== undefined) result.oplog = oplog;
  return result;
}
