import {Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import type {InferredRelation} from '../extract/infer.js';
import type {Relation} from '../restore-set/manifest.js';
import {renderTable} from '../ui/table.js';

export default class Relations extends BaseCommand<typeof Relations> {
  static summary = 'Show the relation graph that --follow uses, or propose one from a backup\'s data';
  static description = 'Relations come from the config file ("relations"). --infer reads a backup and proposes fields whose ObjectIds are _ids of another collection, with how many matched, as config JSON ready to paste.';
  static examples = ['<%= config.bin %> relations', '<%= config.bin %> relations --infer ./backup.tar.gz --json > relations.json'];
  static flags = {
    ...sourceFlags,
    infer: Flags.string({description: 'backup id or local path to infer relations from'}),
    sample: Flags.integer({description: 'documents per collection to examine with --infer', default: 10_000, min: 1}),
  };

  async run(): Promise<{relations: Array<Relation | InferredRelation>; source: string}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {inferRelations} = await import('../extract/infer.js');
    const {resolveInput} = await import('../extract/source.js');
    if (!this.flags.infer) {
      const relations = this.settings.relations;
      if (relations.length === 0) this.log(`No relations configured${this.settings.configFile ? ` in ${this.settings.configFile}` : ''}. Propose some with --infer <backup>.`);
      else this.log(renderTable(['from', 'localField', 'to', 'foreignField'], relations.map((r) => [r.from, r.localField ?? '_id', r.to, r.foreignField])));
      return {relations, source: this.settings.configFile ?? '(no config file)'};
    }
    const source = await resolveInput(this.flags.infer, this.settings);
    if (source.choice) this.reporter.notice((await import('../catalog/list.js')).describeChoice(source.choice));
    this.reporter.spin(`Reading ${source.location}`);
    const relations = await inferRelations(source.input, {sample: this.flags.sample, signal: this.abort.signal});
    this.reporter.succeed(`${relations.length} relation(s) proposed`);
    this.log(renderTable(['from', 'to', 'foreignField', 'matched', 'examined'], relations.map((r) => [r.from, r.to, r.foreignField, r.matched, r.examined])));
    this.log(`\nPaste into gravity-restore.config.json:\n${JSON.stringify({relations: relations.map(({from, to, foreignField}) => ({from, to, foreignField}))}, null, 2)}`);
    return {relations, source: source.location};
  }
}
