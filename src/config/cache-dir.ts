import os from 'node:os';
import path from 'node:path';

/** GRAVITY_RESTORE_CACHE, else $XDG_CACHE_HOME/gravity-restore, else ~/.cache/gravity-restore. */
export function defaultCacheDir(): string {
  if (process.env.GRAVITY_RESTORE_CACHE) return path.resolve(process.env.GRAVITY_RESTORE_CACHE);
  const base = process.env.XDG_CACHE_HOME ? path.resolve(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'gravity-restore');
}
