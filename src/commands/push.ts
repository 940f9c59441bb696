import {Args, Flags} from '@oclif/core';

import {BaseCommand, targetFlag} from '../base-command.js';
import type {Plan, PushResult} from '../target/types.js';
import {renderTable} from '../ui/table.js';

export default class Push extends BaseCommand<typeof Push> {
  static summary = 'Write a restore set to a target, parents first, journaled, behind confirmation gates';
  static description =
    'Plans again first. staging: asks on a terminal, needs --yes without one. production: needs the same set pushed to and verified on staging, ' +
    'and --confirm <db> (or the database name typed at the prompt); --yes alone never reaches production. Documents changed since the backup ' +
    'are skipped unless --on-conflict overwrite. An interrupted push resumes from its journal when run again.';
  static examples = [
    '<%= config.bin %> push ./restore-artworks --to staging --yes',
    '<%= config.bin %> push ./restore-artworks --to production --confirm gravity',
    '<%= config.bin %> push ./restore-artworks --to production --confirm gravity --skip-staging --reason "staging is down, incident #123"',
  ];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    to: targetFlag,
    yes: Flags.boolean({char: 'y', description: 'do not ask (staging and ad-hoc targets only)'}),
    confirm: Flags.string({description: 'production: the target database name, to confirm'}),
    'on-conflict': Flags.option({options: ['skip', 'overwrite', 'fail'] as const, default: 'skip', description: 'documents changed since the backup: leave them (skip), replace them (overwrite, pre-images journaled) or stop (fail)'})(),
    'match-on': Flags.string({description: 'natural key fields (comma-separated) for keyMatch detection'}),
    'skip-staging': Flags.boolean({description: 'production without a verified staging push (recorded in the ledger; needs --reason)'}),
    reason: Flags.string({description: 'why staging is skipped (recorded)'}),
  };

  async run(): Promise<PushResult & {plan: Plan}> {
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
        matchOn: flags['match-on']?.split(',').map((s) => s.trim()).filter(Boolean),
        skipStaging: flags['skip-staging'],
        reason: flags.reason,
      },
      this.settings,
      this.reporter,
      this.abort.signal,
      (line) => this.log(line),
    );
    this.log('');
    this.log(renderTable(['collection', 'inserted', 'overwritten', 'skipped', 'conflicts'], Object.entries(result.collections).map(([c, n]) => [c, n.inserted, n.overwritten, n.skipped, n.conflicts])));
    this.log(`\n${result.resumed ? 'Resumed and completed' : 'Pushed'} to ${result.target}; journal ${result.journal}`);
    this.log(`Next: gravity-restore verify ${this.args.set} --to ${flags.to}`);
    return result;
  }
}
