import {Args, Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import type {BackupChoice} from '../catalog/list.js';
import type {NamespaceSummary} from '../dump/inspect.js';
import {formatBytes} from '../ui/reporter.js';
import {renderTable} from '../ui/table.js';

export default class Inspect extends BaseCommand<typeof Inspect> {
  static summary = 'Show the namespaces in a backup, dump folder, tarball, archive or .bson file';
  static description = 'One pass over the data: documents, bytes, indexes and options per namespace. Formats are detected by content.';
  static examples = ['<%= config.bin %> inspect ./dump', '<%= config.bin %> inspect 2026-11-18T14:00:00Z --source s3://bucket/db/backup/', '<%= config.bin %> inspect backup.archive.gz --json', '<%= config.bin %> inspect "2026-11-18 14:30" --tz America/New_York   # the newest backup at or before that time'];
  static args = {
    backup: Args.string({description: 'backup id, `latest`, a time (the newest backup at or before it), or a local path', required: true}),
  };
  static flags = {
    ...sourceFlags,
    tz: Flags.string({description: 'zone of a time given in place of a backup id, when it has no offset [default: --source-tz]', env: 'GRAVITY_RESTORE_TZ'}),
  };

  async run(): Promise<{source: string; backup: string | null; chosen?: BackupChoice; namespaces: NamespaceSummary[]; oplog?: {documents: number; bytes: number}}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {inspectDump} = await import('../dump/inspect.js');
    const {resolveInput} = await import('../extract/source.js');
    const source = await resolveInput(this.args.backup, this.settings);
    if (source.choice) {
      const {describeChoice} = await import('../catalog/list.js');
      this.reporter.notice(describeChoice(source.choice));
    }
    const total = source.objects.reduce((n, o) => n + o.size, 0);
    const bar = this.reporter.bar('Reading', total || 1, 'bytes');
    const result = await inspectDump(source.input, {onProgress: (p) => bar.update(p.bytesRead, p.totalBytes)});
    bar.done();
    this.log(
      renderTable(
        ['database', 'collection', 'type', 'documents', 'size', 'indexes'],
        result.namespaces.map((n) => [n.db, n.collection, n.type, n.documents, formatBytes(n.bytes), n.indexes.join(', ')]),
      ),
    );
    if (result.oplog) this.log(`\noplog.bson: ${result.oplog.documents} entries (${formatBytes(result.oplog.bytes)}), not restored as a collection`);
    return {source: source.location, backup: source.backup, ...(source.choice ? {chosen: source.choice} : {}), ...result};
  }
}
