import {Args, Flags} from '@oclif/core';

import {BaseCommand, oplogFlags, sourceFlags} from '../base-command.js';
import type {HistoryResult} from '../oplog/history.js';

export default class History extends BaseCommand<typeof History> {
  static summary = 'One document\'s timeline from the oplog: each operation, the fields it set or removed, and its state at the end';
  static description =
    'The document is read from a base backup (--from, else the newest backup of --source from which the oplog runs unbroken), then every ' +
    'operation on its _id is replayed exactly as mongod applies it, up to --until. Operations at or after --since are listed with their time ' +
    '(in --tz), the field paths they set or removed, and whether they were part of a transaction.';
  static examples = [
    `<%= config.bin %> history artworks 'ObjectId("65f0c0ffee0000000000abcd")' --oplog production --since "2026-11-18 14:00" --tz America/New_York`,
    '<%= config.bin %> history gravity.users 5 --from ./dump-2026-11-18T14-00-00Z --oplog ./oplog-dumps --json',
  ];
  static args = {
    collection: Args.string({description: 'collection (`coll` or `db.coll`)', required: true}),
    id: Args.string({description: 'the document\'s _id in shell syntax or Extended JSON: ObjectId("…"), 5, "abc"', required: true}),
  };
  static flags = {
    ...sourceFlags,
    ...oplogFlags,
    since: Flags.string({description: 'list operations from this time on (ISO 8601, without an offset read in --tz; or Timestamp(t, i)) [default: the base\'s point]'}),
    until: Flags.string({description: 'stop before this time (exclusive) [default: the end of the oplog]'}),
    from: Flags.string({description: 'base backup: an id of --source, `latest`, or a local dump (folder, tarball, archive) [default: the newest the oplog follows unbroken]'}),
  };

  async run(): Promise<HistoryResult> {
    const {parseOplogTime} = await import('../oplog/time.js');
    const {openOplogSources} = await import('../oplog/sources/open.js');
    const {runHistory} = await import('../oplog/history.js');
    const {renderHistory} = await import('../ui/oplog.js');
    const tz = this.flags.tz ? this.settings.tz : this.settings.sourceTz;
    const since = this.flags.since ? parseOplogTime(this.flags.since, tz) : null;
    const until = this.flags.until ? parseOplogTime(this.flags.until, tz) : null;
    const opened = await openOplogSources(this.settings);
    try {
      const result = await runHistory(opened.sources, {
        collection: this.args.collection,
        id: this.args.id,
        since,
        until,
        from: this.flags.from,
        signal: this.abort.signal,
        onProgress: (text) => this.reporter.spin(text),
      }, this.settings);
      this.reporter.succeed(`${result.events.length} operation${result.events.length === 1 ? '' : 's'} on ${result.collection} ${JSON.stringify(result._id)}`);
      this.log(renderHistory(result, tz));
      return result;
    } finally {
      await opened.close();
    }
  }
}
