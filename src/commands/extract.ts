import {statSync} from 'node:fs';

import {Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import {readsOnWorker, startWorkerEarly} from '../extract/in-worker.js';
import type {ExtractCommandResult} from '../extract/run.js';

export default class Extract extends BaseCommand<typeof Extract> {
  static summary = 'Pull the documents matching a query (and their dependents) out of a backup into a restore set';
  static description =
    'Reads the backup once, streaming, and writes SET/dump/<db>/<coll>.bson with the matching documents byte-for-byte as in the backup, ' +
    'in backup order, plus a manifest with checksums. --follow adds dependent documents through the relations of the config file.';
  static examples = [
    `<%= config.bin %> extract --from 2026-11-18T14:00:00Z --collection artworks --query '{"partner_id": ObjectId("57d1e4a2cd530e65f6000001")}' --follow --out ./restore-artworks`,
    `<%= config.bin %> extract --from ./backup.tar.gz --collection gravity.users --query '{"email": /@example\\.com$/i}' --out ./users-set`,
    `<%= config.bin %> extract --from 2026-11-18T14:00:00Z --collection artworks --missing-in 2026-11-18T15:00:00Z --follow --out ./lost-artworks`,
    `<%= config.bin %> extract --from 2026-11-18T14:00:00Z --collection artworks --changed-in production --incident-at "2026-11-18 14:30" --out ./clobbered`,
    `<%= config.bin %> extract --at "2026-11-18 14:29:59" --oplog production --collection artworks --query '{"partner_id": ObjectId("57d1e4a2cd530e65f6000001")}' --follow --out ./as-of-1429`,
    `<%= config.bin %> extract --changed-between 2026-11-18T14:00:00Z..2026-11-18T14:30:00Z --fields title --oplog ./oplog-dumps --collection artworks --out ./revert-title`,
    `<%= config.bin %> extract --from latest --collection artworks --query '{"_id": {"$in": [ObjectId("…"), ObjectId("…")]}}' --engine mongod --scratch-uri mongodb://127.0.0.1:27017 --out ./set`,
  ];
  static flags = {
    ...sourceFlags,
    from: Flags.string({description: 'backup id (see `list`), `latest`, a time (the newest backup at or before it), or a local dump folder / tarball / archive / .bson file [with --at: the base, chosen when left out]'}),
    at: Flags.string({description: 'the documents as they were just before TIME, from a base backup plus the oplog (ISO 8601, read in --tz or the source timezone, or Timestamp(t, i))', helpGroup: 'POINT IN TIME'}),
    oplog: Flags.string({description: 'oplog source: a file or folder of local.oplog.rs dumps, s3://bucket/prefix/, staging, production or mongodb://… (repeatable)', multiple: true, helpGroup: 'POINT IN TIME'}),
    'changed-between': Flags.string({description: 'keep only documents the oplog says changed in [T1, T2): T1..T2 (as they were at --at, default T1)', helpGroup: 'POINT IN TIME'}),
    fields: Flags.string({description: 'with --changed-between: only changes to these fields count (comma-separated dotted paths)', helpGroup: 'POINT IN TIME'}),
    collection: Flags.string({description: 'collection to query (`coll` or `db.coll`)', required: true, char: 'c'}),
    query: Flags.string({description: 'MongoDB shell syntax or Extended JSON filter', default: '{}', char: 'q'}),
    follow: Flags.boolean({description: 'also take dependent documents, following the relations of the config file transitively'}),
    engine: Flags.option({options: ['stream', 'mongod'] as const, default: 'stream', description: 'stream: in-process, no server; mongod: a scratch MongoDB with exact server semantics'})(),
    'scratch-uri': Flags.string({description: 'MongoDB to use as scratch server for --engine mongod', env: 'GRAVITY_RESTORE_SCRATCH_URI'}),
    'keep-scratch': Flags.boolean({description: 'leave the scratch database/server running for exploration (prints its URI)'}),
    out: Flags.string({description: 'restore set folder to create', required: true, char: 'o'}),
    force: Flags.boolean({description: 'replace --out if it exists'}),
    'missing-in': Flags.string({description: 'keep only documents absent (by _id) from this backup (id, latest, a time, path) or target (staging, production, URI)', helpGroup: 'COMPARE'}),
    'changed-in': Flags.string({description: 'keep only documents present but different in this backup or target (with --missing-in: either)', helpGroup: 'COMPARE'}),
    db: Flags.string({description: 'database of a --missing-in/--changed-in target [default: as for --to]', helpGroup: 'COMPARE'}),
    'incident-at': Flags.string({description: 'when the incident happened (ISO 8601; without an offset, read in --tz); recorded for `report`'}),
    tz: Flags.string({description: 'timezone of --incident-at without an offset [default: machine timezone], and of times given as backups (--from, --missing-in, --changed-in) [default: --source-tz]', env: 'GRAVITY_RESTORE_TZ'}),
    'strict-backup': Flags.boolean({description: 'refuse rather than take a dependent collection the backup lacks from an older backup'}),
    'match-timeout': Flags.integer({
      description: 'with a regular expression in the query: stop (exit 10) when matching makes no progress for this many seconds; 0: no limit',
      env: 'GRAVITY_RESTORE_MATCH_TIMEOUT',
      default: 60,
      min: 0,
    }),
  };

  /**
   * A large local backup file read by the stream engine, with nothing to compare or follow, is read
   * on a worker thread (see extract/in-worker.ts): that thread starts now, while settings are read
   * and the query is parsed. The extract hands it its request, or ends it if it reads in process.
   */
  protected onFlagsParsed(): void {
    const {flags} = this;
    let localBytes: number | null = null;
    if (!flags.from || flags.at || flags['changed-between']) return;
    try {
      const info = statSync(flags.from);
      if (info.isFile()) localBytes = info.size;
    } catch {
      // Not a local file (a backup id, or a path the extract reports): nothing to start early.
    }
    // A regex (a /…/ literal or $regex, guessed from the text: a wrong guess only costs a dropped worker) reads on a worker whatever the size.
    const regex = /\$regex|\/.*\//.test(flags.query);
    if (readsOnWorker({engine: flags.engine, follow: flags.follow, comparing: Boolean(flags['missing-in'] || flags['changed-in']), localBytes, regex})) startWorkerEarly(flags.from);
  }

  async run(): Promise<ExtractCommandResult> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {runExtract} = await import('../extract/run.js');
    const {flags} = this;
    const result = await runExtract(
      {
        ...(flags.from ? {from: flags.from} : {}),
        ...(flags.at ? {at: flags.at} : {}),
        ...(flags['changed-between'] ? {changedBetween: flags['changed-between']} : {}),
        ...(flags.fields ? {fields: flags.fields.split(',').map((f) => f.trim()).filter(Boolean)} : {}),
        ...(flags.tz ? {tz: flags.tz} : {}),
        collection: flags.collection,
        query: flags.query,
        follow: flags.follow,
        engine: flags.engine,
        scratchUri: flags['scratch-uri'],
        keepScratch: flags['keep-scratch'],
        out: flags.out,
        force: flags.force,
        version: this.config.version,
        missingIn: flags['missing-in'],
        changedIn: flags['changed-in'],
        incidentAt: flags['incident-at'],
        strictBackup: flags['strict-backup'],
        matchTimeoutMs: flags['match-timeout'] * 1000,
      },
      this.settings,
      this.reporter,
      this.abort.signal,
    );
    for (const c of result.order) {
      const from = result.from?.[c];
      this.log(`${c.padEnd(32)} ${String(result.counts[c]).padStart(8)} of ${result.scanned[c] ?? 0} documents${from ? `  (from ${from.backup ?? from.location})` : ''}`);
    }
    const pit = result.pointInTime;
    if (pit) {
      this.log(`State at ${pit.at}: base ${pit.base.backup ?? pit.base.location} + ${pit.oplog.operations} oplog operations from ${pit.oplog.sources.join(', ')}`);
      for (const [c, n] of Object.entries(pit.counts)) {
        this.log(`  ${c}: ${n.fromBackup} as in the backup, ${n.replayed} replayed, ${n.createdAfterBackup} created after it, ${n.deleted} deleted before TIME`);
      }
    }
    for (const cmp of result.comparison ?? []) {
      const totals = Object.values(cmp.counts).reduce((t, c) => ({missing: t.missing + c.missing, changed: t.changed + c.changed, same: t.same + c.same}), {missing: 0, changed: 0, same: 0});
      this.log(`Compared with ${cmp.against.label}: ${totals.missing} missing, ${totals.changed} changed, ${totals.same} the same; kept ${cmp.keep.join(' and ')}`);
    }
    this.log(`\nRestore set ${result.set} (manifest ${result.manifestHash.slice(0, 12)}) in ${(result.durationMs / 1000).toFixed(1)} s`);
    if (result.scratchUri) this.log(`Scratch MongoDB kept at ${result.scratchUri} (database ${result.scratchDb})${result.scratchStop ? `; stop it with: ${result.scratchStop}` : ''}`);
    this.log(`Next: gravity-restore plan ${result.set} --to staging`);
    return result;
  }
}
