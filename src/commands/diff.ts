import {Args, Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import type {DiffResult} from '../diff/diff.js';

export default class Diff extends BaseCommand<typeof Diff> {
  static summary = 'Compare a backup with a later backup or the live database: what was deleted, changed (which fields), added';
  static description =
    'For each collection: missing (in FROM, absent from AGAINST by _id), changed (present, other bytes), same, and added (in AGAINST only; ' +
    'for a live target only with --added, which scans it). Changed documents are summarised per field path: how many changed it, and how ' +
    'many of those went to null, lost it, or gained it. Read-only on both sides. The path when nobody knows the query: follow it with ' +
    '`extract --missing-in AGAINST`.';
  static examples = [
    '<%= config.bin %> diff 2026-11-18T14:00:00Z 2026-11-18T15:00:00Z',
    '<%= config.bin %> diff latest production --collection artworks --collection sale_artworks',
    '<%= config.bin %> diff ./dump-before ./dump-after --query \'{"partner_id": ObjectId("57d1e4a2cd530e65f6000001")}\' --json',
  ];
  static args = {
    from: Args.string({description: 'the earlier state: backup id, `latest`, a time (the newest backup at or before it), or a local path', required: true}),
    against: Args.string({description: 'the later state: backup id, `latest`, a time, a local path, or a target (staging, production, mongodb://…)', required: true}),
  };
  static flags = {
    ...sourceFlags,
    collection: Flags.string({description: 'collection to compare (`coll` or `db.coll`; repeatable) [default: every collection of FROM]', char: 'c', multiple: true}),
    query: Flags.string({description: 'compare only documents matching this filter (MongoDB shell syntax or Extended JSON)', char: 'q'}),
    added: Flags.boolean({description: 'against a live target, also count documents FROM lacks (scans the target)'}),
    tz: Flags.string({description: 'zone of a time given as FROM or AGAINST without an offset [default: --source-tz]', env: 'GRAVITY_RESTORE_TZ'}),
    db: Flags.string({description: 'database of an AGAINST target [default: GRAVITY_RESTORE_<TARGET>_DB, targets.<name>.db, the URI path, else FROM\'s database]'}),
  };

  async run(): Promise<DiffResult> {
    const {runDiff} = await import('../diff/diff.js');
    const {renderDiff} = await import('../diff/render.js');
    const result = await runDiff(
      {from: this.args.from, against: this.args.against, collections: this.flags.collection ?? [], query: this.flags.query, added: this.flags.added},
      this.settings,
      {
        signal: this.abort.signal,
        onNote: (m) => this.reporter.note(m),
        onChoice: (m) => this.reporter.notice(m),
        // How long the sides take is unknown up front (compressed streams): a running count, not a bar.
        onProgress: (p) => this.reporter.spin(`${p.phase === 'against' ? 'Indexing AGAINST' : 'Compared'}: ${p.documents.toLocaleString('en-US')} documents, ${p.mbPerSecond.toFixed(0)} MB/s`),
      },
    );
    const {documents, bytes, ms} = result.compared;
    this.reporter.succeed(`Compared ${documents} documents (${(bytes / 1e6).toFixed(1)} MB) in ${(ms / 1000).toFixed(1)} s, ${(bytes / 1e6 / Math.max(ms / 1000, 0.001)).toFixed(0)} MB/s`);
    this.log(renderDiff(result));
    return result;
  }
}
