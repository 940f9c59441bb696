/**
 * What a comparison says of a FROM document, by ordinal. Its own module: the extractor needs these
 * three numbers on every run, the comparison machinery (compare.ts) only with --missing-in or
 * --changed-in, and loading it costs a worker thread's start-up about 30 ms.
 */
export const SAME = 0;
export const CHANGED = 1;
export const MISSING = 2;
