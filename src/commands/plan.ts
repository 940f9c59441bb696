import {Args, Flags} from '@oclif/core';

import {BaseCommand, dbFlag, fieldsFlag, targetFlag, whereTargetFlag} from '../base-command.js';
import type {TargetDatabase} from '../promote/target-db.js';
import type {ShownPlan} from '../target/plan.js';
import {renderPlan} from '../ui/plan.js';

export default class PlanCommand extends BaseCommand<typeof PlanCommand> {
  static summary = 'Compare a restore set with a target: what would be inserted, what is the same, what changed since the backup';
  static description = 'Reads only. insert: missing on the target; same: identical; conflict: exists but differs (changed since the backup); keyMatch: another _id holds the same natural key (--match-on); clash: a unique index holds its key under another _id; with --fields, repair: those fields differ, excluded: --where-target no longer matches. First says which database it compares with when that is not the set\'s, or does not exist. The plan is saved in the set with its hash.';
  static examples = ['<%= config.bin %> plan ./restore-artworks --to staging', '<%= config.bin %> plan ./restore-artworks --to production --match-on slug', '<%= config.bin %> plan ./set --to mongodb://127.0.0.1:27017/gravity --json'];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    to: targetFlag,
    db: dbFlag,
    fields: fieldsFlag,
    'where-target': whereTargetFlag,
    'match-on': Flags.string({description: 'natural key fields (comma-separated) to find records re-created under a new _id'}),
  };

  async run(): Promise<ShownPlan & {file: string; targetDatabase: TargetDatabase}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {openContext, repairOptions, withConnection} = await import('../promote/context.js');
    const {planSet, savePlan, shownPlan} = await import('../target/plan.js');
    const {describeTargetDatabase, targetDatabaseNotes} = await import('../promote/target-db.js');
    const repair = await repairOptions(this.flags.fields, this.flags['where-target']);
    const {set, target} = await openContext(this.args.set, this.flags.to, this.settings);
    return withConnection(target, async (conn) => {
      // Said before anything else: a set planned against the wrong database looks like a fine plan.
      const targetDatabase = await describeTargetDatabase(set, conn, target);
      for (const note of targetDatabaseNotes(targetDatabase, target)) this.reporter.warn(note);
      const total = Object.values(set.manifest.collections).reduce((n, c) => n + c.documents, 0);
      const bar = this.reporter.bar(`Planning against ${target.label}`, Math.max(total, 1), 'docs');
      const done = new Map<string, number>();
      const plan = await planSet(set, conn, {
        matchOn: this.flags['match-on']?.split(',').map((s) => s.trim()).filter(Boolean),
        ...repair,
        onProgress: (p) => {
          done.set(p.collection, p.done);
          bar.update([...done.values()].reduce((a, b) => a + b, 0));
        },
      });
      bar.done();
      this.reporter.spin('Saving the plan');
      const file = await savePlan(set, plan);
      this.reporter.succeed(`Plan ${plan.hash.slice(0, 12)} saved to ${file}`);
      this.log(renderPlan(plan));
      // The class codes (a byte a document) stay in the plan file; --json shows the counts and the ids that matter.
      const shown = shownPlan(plan);
      // `excluded`: push's and verify's word for documents left out on purpose; `skipped` stays for older scripts.
      const collections = Object.fromEntries(Object.entries(shown.collections).map(([c, n]) => [c, n.skipped === undefined ? n : {...n, excluded: n.skipped}]));
      return {...shown, collections, file, targetDatabase};
    });
  }
}
