import path from 'node:path';

import {Args, Flags} from '@oclif/core';
import {BaseCommand} from '../base-command.js';

import {readRestoreSet, verifySetFiles} from '../restore-set/manifest.js';

export default class Export extends BaseCommand<typeof Export> {
  static summary = 'Write a restore set as a mongodump archive that mongorestore accepts';
  static examples = ['<%= config.bin %> export ./restore-artworks --archive artworks.archive', '<%= config.bin %> export ./restore-artworks --archive artworks.archive.gz --gzip   # mongorestore --gzip --archive=artworks.archive.gz'];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    archive: Flags.string({description: 'archive file to write', required: true}),
    gzip: Flags.boolean({description: 'gzip the archive (mongorestore --gzip --archive=FILE)'}),
  };

  async run(): Promise<{archive: string; setHash: string; namespaces: number; documents: number; bytes: number}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {writeArchive} = await import('../dump/write.js');
    const set = await readRestoreSet(this.args.set);
    // The archive is built from the set's folder: refuse files changed since extract first.
    await verifySetFiles(set);
    const archive = path.resolve(this.flags.archive);
    const result = await writeArchive(path.join(set.dir, 'dump'), archive, {gzip: this.flags.gzip});
    this.log(`Wrote ${archive}: ${result.namespaces} namespace(s), ${result.documents} document(s)`);
    this.log(`Restore with: mongorestore ${this.flags.gzip ? '--gzip ' : ''}--archive=${archive}`);
    return {archive, setHash: set.hash, ...result};
  }
}
