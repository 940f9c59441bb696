import {EJSON} from 'bson';

import {regexSources} from '../query/compile.js';
import {configureMatchGuard} from '../query/guard.js';
import {parseQuery} from '../query/parse.js';
import type {BackupChoice} from '../catalog/list.js';
import type {Settings} from '../config/settings.js';
import {maskUri} from '../config/redact.js';
import type {Reporter} from '../ui/reporter.js';
import {formatBytes, type ProgressHandle} from '../ui/reporter.js';
import {parseUserTime} from '../catalog/names.js';
import type {Against} from './compare.js';
import type {ExtractComparison, ExtractProgress, ExtractResult} from './extract.js';
import {dropEarlyWorker, extractInWorker, readsOnWorker} from './in-worker.js';
import {splitNamespace} from './namespace.js';
import {relationClosure} from './relations.js';
import type {Scratch} from './scratch.js';
import {olderBackupHolding, resolveInput} from './source.js';
import type {PlannedPointInTime} from './at-base.js';
import type {ReplayWindow} from '../oplog/rebuild.js';
import {GravityError} from '../errors.js';

export interface ExtractRequest {
  /** A backup id, `latest`, a path; with --at it may be left out (the base is chosen). */
  from?: string;
  /** --at TIME: the documents as they were just before TIME (backup + oplog). */
  at?: string;
  /** --changed-between T1..T2: only documents the oplog says changed in [T1, T2). */
  changedBetween?: string;
  /** With --changed-between: only changes to these fields count. */
  fields?: string[];
  /** Zone of TIMEs written without an offset (default: the source timezone). */
  tz?: string;
  collection: string;
  query: string;
  follow: boolean;
  engine: 'stream' | 'mongod';
  scratchUri?: string;
  keepScratch?: boolean;
  out: string;
  force?: boolean;
  version: string;
  /** Keep only documents absent from this backup or target. */
  missingIn?: string;
  /** Keep only documents present but different in this backup or target. */
  changedIn?: string;
  /** When the incident happened (a time as --before takes it). */
  incidentAt?: string;
  strictBackup?: boolean;
  /** Matching budget of a query with regular expressions: how long matching may go without progress (0: no limit). */
  matchTimeoutMs?: number;
}

/** Default matching budget: 60 s without progress. */
export const DEFAULT_MATCH_TIMEOUT_MS = 60_000;

export interface ExtractCommandResult extends ExtractResult {
  backup: string | null;
  /** Times given in place of backup ids (--from, --missing-in, --changed-in), and the backups they selected. */
  chosen: Array<BackupChoice & {for: 'from' | 'missing-in' | 'changed-in'}>;
  scratchUri?: string;
  scratchDb?: string;
  scratchStop?: string;
}

/** What `extract` does, with the terminal kept at arm's length through the reporter. */
export async function runExtract(request: ExtractRequest, settings: Settings, reporter: Reporter, signal: AbortSignal): Promise<ExtractCommandResult> {
  // Regexes matched on this thread (a backup streamed from S3, --follow, comparisons) run on a worker it can end.
  configureMatchGuard({timeoutMs: request.matchTimeoutMs ?? DEFAULT_MATCH_TIMEOUT_MS, label: `collection ${request.collection}`});
  try {
    return await extractFor(request, settings, reporter, signal);
  } finally {
    configureMatchGuard(null);
    // A worker the command started early that this extract did not take (it read in process, or failed first).
    dropEarlyWorker();
  }
}

async function extractFor(request: ExtractRequest, settings: Settings, reporter: Reporter, signal: AbortSignal): Promise<ExtractCommandResult> {
  const filter = parseQuery(request.query);
  const incidentAt = request.incidentAt ? parseUserTime(request.incidentAt, settings.tz).toISOString() : undefined;
  const planned = request.at || request.changedBetween ? await planReplay(request, settings, reporter, signal) : null;
  if (!planned && !request.from) throw new GravityError('USAGE', 'Missing --from', {hint: 'Name the backup to read (an id from `gravity-restore list`, latest, a time, or a path), or give --at TIME to rebuild from the oplog'});
  if (!planned) reporter.spin(`Opening ${request.from}`);
  const source = planned ? planned.source : await resolveInput(request.from!, settings);
  const chosen: ExtractCommandResult['chosen'] = [];
  const choose = async (role: ExtractCommandResult['chosen'][number]['for'], choice: BackupChoice) => {
    chosen.push({...choice, for: role});
    // The catalog is loaded already when a time was read as a backup: this costs nothing on a local --from.
    const {describeChoice} = await import('../catalog/list.js');
    reporter.notice(`${role === 'from' ? '--from' : `--${role}`}: ${describeChoice(choice)}`);
  };
  if (source.choice) await choose('from', source.choice);
  const followWarning = request.follow ? unusableFollow(request, settings) : null;
  if (followWarning) reporter.warn(followWarning);
  reporter.succeed(`Reading ${source.location}${source.readFrom === 'cache' ? ' (from the local cache)' : source.readFrom === 'stream' ? ' (streaming, no download first)' : ''}`);
  // The scratch server is opened before the backup is read, so a missing one fails in seconds.
  let scratch: Scratch | null = null;
  // The scratch engine and the comparisons load the MongoDB driver: only when asked for.
  const scratchModule = request.engine === 'mongod' ? await import('./scratch.js') : null;
  if (scratchModule) {
    reporter.spin('Starting the scratch MongoDB');
    scratch = await scratchModule.openScratch({scratchUri: request.scratchUri, keep: request.keepScratch});
    reporter.succeed(`Scratch MongoDB at ${maskUri(scratch.uri)}, database ${scratch.db}`);
  }
  const comparisons: ExtractComparison[] = [];
  const totalBytes = source.objects.reduce((n, o) => n + o.size, 0);
  let bar: ProgressHandle | null = null;
  const started = Date.now();
  try {
    // AGAINST backups are read (and indexed by _id) before FROM; targets are only connected to.
    comparisons.push(...(await openComparisons(request, settings, reporter, signal, choose)));
    bar = reporter.bar('Reading', totalBytes || 1, 'bytes');
    const reading = bar;
    const onProgress = (p: ExtractProgress) => {
      if (p.phase === 'read') {
        const mbs = p.bytesRead / 1e6 / Math.max((Date.now() - started) / 1000, 0.001);
        reading.update(p.bytesRead, p.totalBytes, `${p.collection}: ${p.scanned} scanned, ${p.matched} matched, ${mbs.toFixed(0)} MB/s`);
      } else if (p.phase === 'replay') {
        reading.done();
        reporter.spin(`Replaying the oplog${p.collection ? ` (${p.collection})` : ''}: ${p.scanned.toLocaleString('en-US')} operations`);
      } else if (p.phase === 'compare') {
        reading.done();
        reporter.spin(`Comparing ${p.collection}: ${p.scanned.toLocaleString('en-US')} documents`);
      }
    };
    const common = {
      collection: request.collection,
      queryText: request.query,
      follow: request.follow,
      relations: settings.relations,
      out: request.out,
      force: request.force,
      engine: request.engine,
      ...(incidentAt ? {incidentAt} : {}),
      ...(request.strictBackup ? {strictBackup: true} : {}),
      toolVersion: request.version,
    };
    const callbacks = {signal, onNote: (m: string) => reporter.note(m), onWarning: (m: string) => reporter.warn(m), onProgress};
    const {input, backupInfo: _backupInfo, readFrom: _readFrom, files, ...sourceInfo} = source;
    const local = typeof input === 'string' ? input : files;
    // A query with regular expressions is matched on a worker the main thread can end (its budget, Ctrl-C).
    const patterns = [...new Set(regexSources(filter))];
    const guard = {timeoutMs: request.matchTimeoutMs ?? DEFAULT_MATCH_TIMEOUT_MS, patterns, collection: request.collection};
    const result =
      local !== undefined && !planned && readsOnWorker({engine: request.engine, follow: request.follow, comparing: comparisons.length > 0, localBytes: totalBytes, regex: patterns.length > 0})
        ? await extractInWorker({options: common, source: sourceInfo, input: local, filter: EJSON.stringify(filter, {relaxed: false})}, callbacks, patterns.length > 0 ? guard : undefined)
        : await (await import('./extract.js')).extract({
            ...common,
            ...callbacks,
            source,
            filter,
            comparisons,
            ...(planned ? {pointInTime: planned.pointInTime} : {}),
            ...(source.backupInfo
              ? {
                  olderBackup: async (collection: string) => {
                    const older = await olderBackupHolding(source.backupInfo!, collection, settings, signal);
                    if (older) reporter.note(`${collection} is not in ${source.backup}: reading it from ${older.backup}`);
                    return older;
                  },
                }
              : {}),
            createSelector: async (spools, metadata) => {
              reading.done();
              reporter.spin(`Loading ${[...spools.keys()].join(', ')} into the scratch MongoDB`);
              const selector = await scratchModule!.MongoSelector.load(scratch!, spools, metadata, signal);
              reporter.succeed(`Loaded into ${maskUri(scratch!.uri)} database ${scratch!.db}`);
              return selector;
            },
          });
    reading.done();
    if (comparisons.length > 0) reporter.succeed(`Compared with ${comparisons.map((c) => c.against.info.label).join(' and ')}`);
    reporter.note(`Read ${formatBytes(totalBytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const kept = scratch as Scratch | null;
    return {
      ...result,
      backup: source.backup,
      chosen,
      ...(followWarning ? {warnings: [followWarning, ...result.warnings]} : {}),
      ...(kept?.kept ? {scratchUri: maskUri(kept.uri), scratchDb: kept.db, ...(kept.stopHint ? {scratchStop: kept.stopHint} : {})} : {}),
    };
  } catch (error) {
    // The selector stops the scratch server when it was built; before that it is ours to stop.
    await (scratch as Scratch | null)?.stop().catch(() => undefined);
    throw error;
  } finally {
    bar?.done();
    for (const c of comparisons) await c.against.close().catch(() => undefined);
    await planned?.close().catch(() => undefined);
  }
}

/**
 * --follow that cannot follow anything: no relations configured, or none starting at the queried
 * collection. Said up front, with the way to get some, rather than a set that silently lacks its dependents.
 */
function unusableFollow(request: ExtractRequest, settings: Settings): string | null {
  const from = request.from === undefined ? '<backup>' : /\s/.test(request.from) ? JSON.stringify(request.from) : request.from;
  const infer = `propose some from the data with \`gravity-restore relations --infer ${from}\` and add them to the config file ("relations")`;
  if (settings.relations.length === 0) {
    return `--follow: no relations are configured${settings.configFile ? ` in ${settings.configFile}` : ' (no config file)'}, so no dependent documents are followed; ${infer}`;
  }
  const [, collection] = splitNamespace(request.collection);
  if (!settings.relations.some((r) => r.from === collection)) {
    return `--follow: no configured relation starts at ${collection} (relations start at ${[...new Set(settings.relations.map((r) => r.from))].join(', ')}), so no dependent documents are followed; ${infer}`;
  }
  return null;
}

/** --at / --changed-between: TIME read, the base chosen, the oplog's coverage checked, before anything is read. */
async function planReplay(request: ExtractRequest, settings: Settings, reporter: Reporter, signal: AbortSignal): Promise<PlannedPointInTime> {
  const {parseOplogTime} = await import('../oplog/time.js');
  const tz = request.tz ?? settings.sourceTz;
  let window: ReplayWindow | undefined;
  if (request.changedBetween) {
    const parts = request.changedBetween.split('..');
    if (parts.length !== 2 || !parts[0]!.trim() || !parts[1]!.trim()) {
      throw new GravityError('USAGE', `--changed-between ${request.changedBetween} is not a window`, {hint: 'Write it as T1..T2, e.g. --changed-between 2026-11-18T14:00:00Z..2026-11-18T14:30:00Z'});
    }
    window = {since: parseOplogTime(parts[0]!, tz), until: parseOplogTime(parts[1]!, tz), fields: request.fields && request.fields.length > 0 ? request.fields : null};
  } else if (request.fields && request.fields.length > 0) {
    throw new GravityError('USAGE', '--fields on extract goes with --changed-between', {hint: 'Use --changed-between T1..T2 --fields a,b, or repair fields at push time with push --fields'});
  }
  const at = request.at ? parseOplogTime(request.at, tz) : window!.since;
  reporter.spin('Reading what the oplog sources cover');
  const {planPointInTime} = await import('./at-base.js');
  const planned = await planPointInTime({at, ...(request.from ? {from: request.from} : {}), ...(window ? {window} : {})}, settings, signal, (m) => reporter.note(m));
  reporter.succeed(`Rebuilding the state at ${new Date(at.t * 1000).toISOString()} from ${planned.source.backup ?? planned.source.location} and the oplog`);
  return planned;
}

/** --missing-in X / --changed-in Y: one comparison per distinct X (both flags may name the same one). */
async function openComparisons(
  request: ExtractRequest,
  settings: Settings,
  reporter: Reporter,
  signal: AbortSignal,
  choose: (role: 'missing-in' | 'changed-in', choice: BackupChoice) => Promise<void>,
): Promise<ExtractComparison[]> {
  const specs = new Map<string, {missing: boolean; changed: boolean}>();
  if (request.missingIn) specs.set(request.missingIn, {missing: true, changed: false});
  if (request.changedIn) specs.set(request.changedIn, {missing: specs.get(request.changedIn)?.missing ?? false, changed: true});
  const [wantDb, wantColl] = splitNamespace(request.collection);
  const closure = request.follow ? relationClosure(wantColl, settings.relations) : [wantColl];
  const out: ExtractComparison[] = [];
  if (specs.size === 0) return out;
  const {openAgainst} = await import('../diff/against.js');
  try {
    for (const [spec, modes] of specs) {
      const against: Against = await openAgainst(spec, settings, {
        want: (db, collection) => closure.includes(collection) && (wantDb === null || db === wantDb),
        signal,
        onNote: (m) => reporter.note(m),
        onChoice: (choice) => {
          if (modes.missing) void choose('missing-in', choice);
          if (modes.changed) void choose('changed-in', choice);
        },
      });
      out.push({against, ...modes});
    }
  } catch (error) {
    for (const c of out) await c.against.close().catch(() => undefined);
    throw error;
  }
  return out;
}
