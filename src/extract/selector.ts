import type {Document} from 'bson';

/** Whether a query hit (collection, ordinal in backup order) stays selected: the compare stage's verdict. */
export type Keep = (collection: string, ordinal: number) => boolean;

/** Finds the documents of a spooled collection that match a filter, by ordinal (backup order). */
export interface Selector {
  select(
    collection: string,
    filter: Document,
    onProgress?: (p: {collection: string; scanned: number; matched: number}) => void,
    keep?: Keep,
    /** false: hits carry an empty document (nothing follows from this collection, so nothing is decoded). */
    decode?: boolean,
  ): Promise<Array<{ordinal: number; doc: Document}>>;
  close(): Promise<void>;
}
