import {Flags} from '@oclif/core';

import {BaseCommand, oplogFlags, sourceFlags} from '../base-command.js';
import type {ChangesResult} from '../oplog/changes.js';

export default class Changes extends BaseCommand<typeof Changes> {
  static summary = 'What the oplog says happened in a window: inserts, updates, replacements, deletes per collection, and which fields changed';
  static description =
    'Counts the operations with ts in [--since, --until) per collection (operations inside transactions and applyOps batches one by one, ' +
    'at their commit; aborted transactions not at all), lists the deleted _ids, and per field path how often updates set it, set it to null ' +
    'or removed it, with example _ids. `diff` without a second backup: "what did the 14:30 deploy do?". The oplog must cover the window unbroken.';
  static examples = [
    `<%= config.bin %> changes --since "2026-11-18 14:30" --until "2026-11-18 14:45" --tz America/New_York --oplog production --collection artworks`,
    '<%= config.bin %> changes --since 2026-11-18T19:30:00Z --oplog ./oplog-dumps --json',
    "<%= config.bin %> changes --since 'Timestamp(1763494200, 1)' --until 'Timestamp(1763494260, 0)' --oplog s3://bucket/oplog/",
  ];
  static flags = {
    ...sourceFlags,
    ...oplogFlags,
    since: Flags.string({description: 'start of the window, inclusive (ISO 8601, without an offset read in --tz; or Timestamp(t, i))', required: true}),
    until: Flags.string({description: 'end of the window, exclusive [default: the end of the oplog]'}),
    collection: Flags.string({description: 'only this collection (`coll` or `db.coll`; repeatable) [default: all]', char: 'c', multiple: true}),
  };

  async run(): Promise<ChangesResult> {
    const {parseOplogTime} = await import('../oplog/time.js');
    const {openOplogSources} = await import('../oplog/sources/open.js');
    const {runChanges} = await import('../oplog/changes.js');
    const {renderChanges} = await import('../ui/oplog.js');
    const tz = this.flags.tz ? this.settings.tz : this.settings.sourceTz;
    const since = parseOplogTime(this.flags.since, tz);
    const until = this.flags.until ? parseOplogTime(this.flags.until, tz) : null;
    const opened = await openOplogSources(this.settings);
    try {
      const result = await runChanges(opened.sources, {
        since,
        until,
        collections: this.flags.collection ?? [],
        signal: this.abort.signal,
        onProgress: (p) => this.reporter.spin(`${p.phase === 'coverage' ? 'Checking the oplog' : 'Reading the window'}: ${p.entries.toLocaleString('en-US')} entries`),
      });
      this.reporter.succeed(`Read ${result.entries.toLocaleString('en-US')} oplog entries`);
      for (const warning of result.warnings) this.reporter.warn(warning);
      this.log(renderChanges(result, tz));
      return result;
    } finally {
      await opened.close();
    }
  }
}
