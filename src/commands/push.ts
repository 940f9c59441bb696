import {Args, Flags} from '@oclif/core';

import {BaseCommand, dbFlag, fieldsFlag, targetFlag, whereTargetFlag} from '../base-command.js';
import type {TargetDatabase} from '../promote/target-db.js';
import type {ShownPlan} from '../target/plan.js';
import type {PushResult} from '../target/types.js';
import {GravityError} from '../errors.js';
import {andMore} from '../ui/plan.js';
import {renderTable} from '../ui/table.js';
import {formatValue} from '../ui/values.js';

export default class Push extends BaseCommand<typeof Push> {
  static summary = 'Write a restore set to a target, parents first, journaled, behind confirmation gates';
  static description =
    'Plans again first (a script with --yes after `plan`, to staging or an ad-hoc target: plans each batch again just before writing it, and stops with PLAN_CHANGED at a batch showing a risk the plan did not). staging: asks on a terminal, needs --yes without one. production: needs the same set pushed to and verified on staging in the same mode (--fields, --where-target, --on-conflict, --inexact, --skip-clashes, --bypass-document-validation, --match-on), and into the set\'s own database unless --db names another, ' +
    'and --confirm <db> (or the database name typed at the prompt); --yes alone never reaches production. Documents changed since the backup ' +
    'are skipped unless --on-conflict overwrite. An interrupted push resumes from its journal when run again. One push, field repair or rollback of a set on a target at a time (a lock file in the set; LOCKED, exit 7).';
  static examples = [
    '<%= config.bin %> push ./restore-artworks --to staging --yes',
    '<%= config.bin %> push ./restore-artworks --to production --confirm gravity',
    '<%= config.bin %> push ./restore-artworks --to production --confirm gravity --skip-staging --reason "staging is down, incident #123"',
  ];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    to: targetFlag,
    db: dbFlag,
    fields: fieldsFlag,
    'where-target': whereTargetFlag,
    yes: Flags.boolean({char: 'y', description: 'do not ask (staging and ad-hoc targets only)'}),
    confirm: Flags.string({description: 'production: the target database name, to confirm'}),
    'on-conflict': Flags.option({options: ['skip', 'overwrite', 'fail'] as const, default: 'skip', description: 'documents changed since the backup: leave them (skip), replace them (overwrite, pre-images journaled) or stop (fail)'})(),
    'match-on': Flags.string({description: 'natural key fields (comma-separated) for keyMatch detection'}),
    'skip-staging': Flags.boolean({description: 'production without a verified staging push (recorded in the ledger; needs --reason)'}),
    reason: Flags.string({description: 'why staging is skipped (recorded)'}),
    inexact: Flags.option({
      options: ['fail', 'skip', 'write'] as const,
      default: 'fail',
      description: 'documents that cannot be written byte for byte (BSON undefined, DBPointer, repeated field names, an empty top-level Timestamp): stop before writing (fail), leave them out (skip) or write the re-encoded form (write); skip and write are recorded',
    })(),
    'skip-clashes': Flags.boolean({description: 'leave out documents whose unique key another _id holds on the target (recorded; verify accepts them) instead of reporting them refused'}),
    'bypass-document-validation': Flags.boolean({description: 'write past the target collection\'s validator, as mongorestore --bypassDocumentValidation (recorded in the journal and ledger)'}),
  };

  async run(): Promise<PushResult & {plan: ShownPlan; targetDatabase: TargetDatabase}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {runPush} = await import('../promote/push.js');
    const {flags} = this;
    const result = await runPush(
      {
        set: this.args.set,
        to: flags.to,
        yes: flags.yes,
        confirm: flags.confirm,
        onConflict: flags['on-conflict'],
        inexact: flags.inexact,
        skipClashes: flags['skip-clashes'],
        bypassDocumentValidation: flags['bypass-document-validation'],
        matchOn: flags['match-on']?.split(',').map((s) => s.trim()).filter(Boolean),
        ...(flags.fields ? {fields: flags.fields} : {}),
        ...(flags['where-target'] ? {whereTarget: flags['where-target']} : {}),
        skipStaging: flags['skip-staging'],
        reason: flags.reason,
      },
      this.settings,
      this.reporter,
      this.abort.signal,
      (line) => this.log(line),
    );
    this.log('');
    this.log(
      renderTable(
        // JSON's `skipped` counts documents already the same on the target: shown under plan's word for them.
        ['collection', 'inserted', 'overwritten', 'repaired', 'same', 'conflicts', 'refused', 'excluded'],
        Object.entries(result.collections).map(([c, n]) => [c, n.inserted, n.overwritten, n.repaired ?? 0, n.skipped, n.conflicts, n.refused, n.excluded]),
      ),
    );
    const shown = result.refusedDetails.slice(0, 20);
    for (const r of shown) this.log(`  refused: ${r.collection} _id ${formatValue(r._id)}${r.codeName ? ` (${r.codeName})` : ''}: ${r.reason}`);
    const refusedTotal = Object.values(result.collections).reduce((n, c) => n + c.refused, 0);
    for (const line of andMore(shown.length, Math.max(refusedTotal, result.refusedDetails.length))) this.log(line);
    if (!result.complete) {
      const refused = Object.values(result.collections).reduce((n, c) => n + c.refused, 0);
      const error = new GravityError('PUSH_INCOMPLETE', `${refused} document(s) were not restored on ${result.target}; the others were written and journaled in ${result.journal}`, {
        hint: 'Fix the cause shown for each (or pass --skip-clashes / --bypass-document-validation) and push again; verify fails until then',
      });
      if (this.jsonEnabled()) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        this.exit(error.exitCode);
      }
      throw error;
    }
    this.log(`\n${result.resumed ? 'Resumed and completed' : 'Pushed'} to ${result.target}; journal ${result.journal}`);
    this.log(`Next: gravity-restore verify ${this.args.set} --to ${flags.to}`);
    return result;
  }
}
