/**
 * AGAINST, as `diff` and `extract --missing-in/--changed-in` name it: `staging`, `production` or a
 * `mongodb://` URI is a live target (connected read-only: only finds and listCollections are sent);
 * anything else is a backup (id, `latest`, or a local path), read once and indexed by `_id`.
 */
import {randomBytes} from 'node:crypto';
import os from 'node:os';
import path from 'node:path';

import type {Document} from 'bson';

import type {BackupChoice} from '../catalog/list.js';
import {resolveTarget, type Settings} from '../config/settings.js';
import {BackupAgainst, TargetAgainst, type Against} from '../extract/compare.js';
import {resolveInput} from '../extract/source.js';

export function isTargetName(spec: string): boolean {
  return spec === 'staging' || spec === 'production' || /^mongodb(\+srv)?:\/\//.test(spec);
}

export interface OpenAgainstOptions {
  /** Namespaces of a backup to index. */
  want: (db: string, collection: string) => boolean;
  filter?: Document;
  /** Scratch space for spilled `_id` tables and spools (default: the system temp folder). */
  workDir?: string;
  signal?: AbortSignal;
  onProgress?: (p: {documents: number; bytes: number}) => void;
  onNote?: (message: string) => void;
  /** A time given in place of a backup id: the backup it selected. */
  onChoice?: (choice: BackupChoice) => void;
}

export async function openAgainst(spec: string, settings: Settings, options: OpenAgainstOptions): Promise<Against> {
  const dir = path.join(options.workDir ?? os.tmpdir(), `gravity-restore-compare-${randomBytes(4).toString('hex')}`);
  if (isTargetName(spec)) {
    const resolved = resolveTarget(spec, settings, true);
    options.onNote?.(`Connecting to ${resolved.label} (read-only)`);
    // The driver loads only for a live target: comparing two backups does without it.
    const {connectTarget} = await import('../target/connect.js');
    const conn = await connectTarget({name: resolved.name, uri: resolved.uri, db: resolved.db, label: resolved.label});
    const info = {kind: 'target' as const, label: conn.spec.label, target: resolved.name, ...(resolved.db ? {db: resolved.db} : {})};
    const against = new TargetAgainst(info, conn, dir, resolved.db);
    return {
      info,
      comparer: (db, collection, compare) => against.comparer(db, collection, compare),
      close: async () => {
        await against.close();
        await conn.close();
      },
    };
  }
  const source = await resolveInput(spec, settings);
  if (source.choice) options.onChoice?.(source.choice);
  options.onNote?.(`Reading ${source.location} (AGAINST)`);
  return BackupAgainst.open(
    source.input,
    {kind: 'backup', label: source.backup ?? source.location, backup: source.backup, location: source.location, takenAt: source.takenAt},
    {dir, want: options.want, ...(options.filter ? {filter: options.filter} : {}), ...(options.signal ? {signal: options.signal} : {}), ...(options.onProgress ? {onProgress: options.onProgress} : {})},
  );
}
