import {Args} from '@oclif/core';

import {BaseCommand} from '../base-command.js';
import {readRestoreSet} from '../restore-set/manifest.js';
import {buildReport, renderReportMarkdown, type Report} from '../restore-set/report.js';

export default class ReportCommand extends BaseCommand<typeof ReportCommand> {
  static summary = 'The incident record of a restore set: backup used, query, relations, counts, timings, conflicts, ledger';
  static examples = ['<%= config.bin %> report ./restore-artworks > incident-2026-11-18.md', '<%= config.bin %> report ./restore-artworks --json'];
  static args = {set: Args.string({description: 'restore set folder', required: true})};

  async run(): Promise<Report> {
    const report = await buildReport(await readRestoreSet(this.args.set));
    this.log(renderReportMarkdown(report));
    return report;
  }
}
