import {parseQuery} from '../query/parse.js';
import type {Settings} from '../config/settings.js';
import {maskUri} from '../config/redact.js';
import type {Reporter} from '../ui/reporter.js';
import {formatBytes} from '../ui/reporter.js';
import {extract, type ExtractResult} from './extract.js';
import {MongoSelector, openScratch, type Scratch} from './scratch.js';
import {resolveInput} from './source.js';

export interface ExtractRequest {
  from: string;
  collection: string;
  query: string;
  follow: boolean;
  engine: 'stream' | 'mongod';
  scratchUri?: string;
  keepScratch?: boolean;
  out: string;
  force?: boolean;
  version: string;
}

export interface ExtractCommandResult extends ExtractResult {
  backup: string | null;
  scratchUri?: string;
  scratchDb?: string;
  scratchStop?: string;
}

/** What `extract` does, with the terminal kept at arm's length through the reporter. */
export async function runExtract(request: ExtractRequest, settings: Settings, reporter: Reporter, signal: AbortSignal): Promise<ExtractCommandResult> {
  const filter = parseQuery(request.query);
  reporter.spin(`Opening ${request.from}`);
  const source = await resolveInput(request.from, settings);
  reporter.succeed(`Reading ${source.location}${source.readFrom === 'cache' ? ' (from the local cache)' : source.readFrom === 'stream' ? ' (streaming, no download first)' : ''}`);
  // The scratch server is opened before the backup is read, so a missing one fails in seconds.
  let scratch: Scratch | null = null;
  if (request.engine === 'mongod') {
    reporter.spin('Starting the scratch MongoDB');
    scratch = await openScratch({scratchUri: request.scratchUri, keep: request.keepScratch});
    reporter.succeed(`Scratch MongoDB at ${maskUri(scratch.uri)}, database ${scratch.db}`);
  }
  const totalBytes = source.objects.reduce((n, o) => n + o.size, 0);
  const bar = reporter.bar('Reading', totalBytes || 1, 'bytes');
  const started = Date.now();
  try {
    const result = await extract({
      source,
      collection: request.collection,
      queryText: request.query,
      filter,
      follow: request.follow,
      relations: settings.relations,
      out: request.out,
      force: request.force,
      engine: request.engine,
      toolVersion: request.version,
      signal,
      onNote: (m) => reporter.note(m),
      onProgress: (p) => {
        if (p.phase === 'read') {
          const mbs = p.bytesRead / 1e6 / Math.max((Date.now() - started) / 1000, 0.001);
          bar.update(p.bytesRead, p.totalBytes, `${p.collection}: ${p.scanned} scanned, ${p.matched} matched, ${mbs.toFixed(0)} MB/s`);
        }
      },
      createSelector: async (spools, metadata) => {
        bar.done();
        reporter.spin(`Loading ${[...spools.keys()].join(', ')} into the scratch MongoDB`);
        const selector = await MongoSelector.load(scratch!, spools, metadata, signal);
        reporter.succeed(`Loaded into ${maskUri(scratch!.uri)} database ${scratch!.db}`);
        return selector;
      },
    });
    bar.done();
    reporter.note(`Read ${formatBytes(totalBytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const kept = scratch as Scratch | null;
    return {
      ...result,
      backup: source.backup,
      ...(kept?.kept ? {scratchUri: maskUri(kept.uri), scratchDb: kept.db, ...(kept.stopHint ? {scratchStop: kept.stopHint} : {})} : {}),
    };
  } catch (error) {
    // The selector stops the scratch server when it was built; before that it is ours to stop.
    await (scratch as Scratch | null)?.stop().catch(() => undefined);
    throw error;
  } finally {
    bar.done();
  }
}
