import {Args, Flags} from '@oclif/core';

import {BaseCommand, dbFlag, targetFlag} from '../base-command.js';
import type {RollbackResult} from '../target/types.js';
import {renderTable} from '../ui/table.js';
import {formatValue} from '../ui/values.js';

export default class Rollback extends BaseCommand<typeof Rollback> {
  static summary = 'Undo a push from its journal, without touching documents changed after it';
  static description = 'Deletes inserted documents only while they are still identical to what was inserted, and restores overwritten ones only where nothing changed since. Reports what it skipped and why.';
  static examples = ['<%= config.bin %> rollback ./restore-artworks --to staging --yes', '<%= config.bin %> rollback ./restore-artworks --to production --confirm gravity'];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    to: targetFlag,
    db: dbFlag,
    yes: Flags.boolean({char: 'y', description: 'do not ask (staging and ad-hoc targets only)'}),
    confirm: Flags.string({description: 'production: the target database name, to confirm'}),
  };

  async run(): Promise<RollbackResult> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {runRollback} = await import('../promote/rollback.js');
    const result = await runRollback({set: this.args.set, to: this.flags.to, yes: this.flags.yes, confirm: this.flags.confirm}, this.settings, this.abort.signal, this.reporter);
    this.log(renderTable(['collection', 'deleted', 'restored', 'skipped'], Object.entries(result.collections).map(([c, n]) => [c, n.deleted, n.restored, n.skipped])));
    for (const s of result.skippedDetails.slice(0, 20)) this.log(`  skipped ${s.collection} _id ${formatValue(s._id)}: ${s.reason}`);
    return result;
  }
}
