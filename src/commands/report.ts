import {Args} from '@oclif/core';

import {BaseCommand} from '../base-command.js';
import {readRestoreSet} from '../restore-set/manifest.js';
import type {Report} from '../restore-set/report.js';

export default class ReportCommand extends BaseCommand<typeof ReportCommand> {
  static summary = 'The incident record of a restore set: backup used, query, relations, counts, timings, conflicts, ledger';
  static examples = ['<%= config.bin %> report ./restore-artworks > incident-2026-11-18.md', '<%= config.bin %> report ./restore-artworks --json'];
  static args = {set: Args.string({description: 'restore set folder', required: true})};

  async run(): Promise<Report> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {buildReport, renderReportMarkdown} = await import('../restore-set/report.js');
    const report = await buildReport(await readRestoreSet(this.args.set));
    this.log(renderReportMarkdown(report));
    return report;
  }
}
