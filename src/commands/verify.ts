import {Args, Flags} from '@oclif/core';

import {BaseCommand, dbFlag, targetFlag} from '../base-command.js';
import {GravityError} from '../errors.js';
import type {VerifyResult} from '../target/types.js';
import {renderTable} from '../ui/table.js';
import {formatValue} from '../ui/values.js';

export default class Verify extends BaseCommand<typeof Verify> {
  static summary = 'Check that a target holds every document of a restore set, identical';
  static description = 'Exit code 0 only when everything is present and identical; documents the last push skipped as conflicts are listed, not failed.';
  static examples = [
    '<%= config.bin %> verify ./restore-artworks --to staging',
    '<%= config.bin %> verify ./restore-artworks --to production --json',
    '<%= config.bin %> verify ./restore-records --to staging --fields important_a --where-target \'{"important_a": null}\'',
  ];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    to: targetFlag,
    db: dbFlag,
    fields: Flags.string({
      description: 'check only these fields (comma-separated dotted paths) of documents that exist on the target, as a --fields push wrote them; absent documents still count as missing [default: the fields of the last push to this target, else whole documents]',
    }),
    'where-target': Flags.string({
      description: 'with --fields: a document whose fields differ but whose current target version no longer matches this filter (fixed by hand since) is counted excluded, not different, as push left it alone',
      dependsOn: ['fields'],
    }),
  };

  async run(): Promise<VerifyResult> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {openContext, repairOptions, withConnection} = await import('../promote/context.js');
    const {verifySet} = await import('../target/index.js');
    const {set, target} = await openContext(this.args.set, this.flags.to, this.settings);
    const {fields, whereTarget} = await repairOptions(this.flags.fields, this.flags['where-target']);
    const total = Object.values(set.manifest.collections).reduce((n, c) => n + c.documents, 0);
    const bar = this.reporter.bar(`Verifying ${target.label}`, Math.max(total, 1), 'docs');
    const done = new Map<string, number>();
    const onProgress = (p: {collection: string; done: number}) => {
      done.set(p.collection, p.done);
      bar.update([...done.values()].reduce((a, b) => a + b, 0));
    };
    const result = await withConnection(target, (conn) => verifySet(set, conn, {onProgress, ...(fields ? {fields} : {}), ...(whereTarget ? {whereTarget} : {})}));
    bar.done();
    this.log(renderTable(['collection', 'present', 'missing', 'different', 'skipped conflicts', 'excluded'], Object.entries(result.collections).map(([c, n]) => [c, n.present, n.missing, n.different, n.skippedConflicts, n.excluded])));
    for (const p of result.problems) this.log(`  ${p.problem}: ${p.collection} _id ${formatValue(p._id)}`);
    if (!result.ok) {
      if (this.jsonEnabled()) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        this.exit(8);
      }
      throw new GravityError('VERIFY_FAILED', `${result.target} does not hold everything the set promised`, {hint: `Push again: gravity-restore push ${this.args.set} --to ${this.flags.to}`});
    }
    this.log(`\nOK: ${result.target} holds the restore set`);
    return result;
  }
}
