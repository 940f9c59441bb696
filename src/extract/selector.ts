import type {Document} from 'bson';

/** Finds the documents of a spooled collection that match a filter, by ordinal (backup order). */
export interface Selector {
  select(
    collection: string,
    filter: Document,
    onProgress?: (p: {collection: string; scanned: number; matched: number}) => void,
  ): Promise<Array<{ordinal: number; doc: Document}>>;
  close(): Promise<void>;
}
