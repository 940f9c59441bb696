/**
 * A bench step: the `artworks` of a local backup file matching `query` (every document when there is
 * none) into a restore set at `out`, with the stream engine. The extractor loads when this is
 * called, so a child process timing the call counts its loading, as a CLI run would.
 */
import type {ExtractComparison, ExtractResult} from '../src/extract/extract.js';

export async function extractArtworks(file: string, out: string, options: {query?: string; comparisons?: ExtractComparison[]} = {}): Promise<ExtractResult> {
  const {extract} = await import('../src/extract/extract.js');
  const filter = options.query === undefined ? {} : (await import('../src/query/parse.js')).parseQuery(options.query);
  return extract({
    source: {input: file, backup: null, location: file, takenAt: null, objects: []},
    collection: 'artworks',
    queryText: options.query ?? '{}',
    filter,
    follow: false,
    relations: [],
    out,
    engine: 'stream',
    toolVersion: 'bench',
    ...(options.comparisons ? {comparisons: options.comparisons} : {}),
  });
}
