import {createHash, randomBytes} from 'node:crypto';
import {link, mkdir, open, readFile, rename, stat, unlink} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {GravityError} from '../errors.js';
import type {RestoreSet} from './manifest.js';

export const LOCK_DIR = 'locks';

/** What a lock file holds: enough to name the run that holds it, and to tell whether it still runs. */
export interface LockInfo {
  pid: number;
  host: string;
  /** The command as the user would recognise it, e.g. `push --to staging`. */
  command: string;
  startedAt: string;
  /** Masked target label. */
  target: string;
  /** Random per run, so a run only ever removes its own lock. */
  token: string;
}

export interface SetLock {
  readonly path: string;
  readonly info: LockInfo;
  release(): Promise<void>;
}

export interface LockTarget {
  /** What identifies the target whatever it is called: normalised hosts and database, no credentials. */
  identity: string;
  /** Masked label, shown when another run is refused. */
  label: string;
}

/**
 * A lock file half-written by a run that crashed between creating and filling it: after this long
 * without content it is taken for stale (a live run fills it within milliseconds).
 */
const EMPTY_LOCK_GRACE_MS = 10_000;

export function lockPath(set: RestoreSet, target: Pick<LockTarget, 'identity'>): string {
  const key = createHash('sha256').update(target.identity).digest('hex').slice(0, 16);
  // Named by the target's identity only: `--to staging` and `--to <staging's URI>` must meet at one file.
  return path.join(set.dir, LOCK_DIR, `target-${key}.lock`);
}

/** Is this process alive? Signal 0 checks without sending anything; EPERM means it exists under another user. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(file: string): Promise<{info: LockInfo | null; mtimeMs: number} | null> {
  try {
    const [text, st] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    try {
      const info = JSON.parse(text) as LockInfo;
      return {info: typeof info.pid === 'number' && typeof info.host === 'string' ? info : null, mtimeMs: st.mtimeMs};
    } catch {
      return {info: null, mtimeMs: st.mtimeMs};
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Stale: its process is gone (on this host), or it never got its content and is old. A lock of another host is never judged. */
function isStale(found: {info: LockInfo | null; mtimeMs: number}, host: string): boolean {
  if (!found.info) return Date.now() - found.mtimeMs > EMPTY_LOCK_GRACE_MS;
  return found.info.host === host && found.info.pid !== process.pid && !processAlive(found.info.pid);
}

function lockedError(file: string, holder: LockInfo | null, set: RestoreSet): GravityError {
  const who = holder ? `${holder.command} (pid ${holder.pid} on ${holder.host}, started ${holder.startedAt})` : 'another run that is starting';
  return new GravityError('LOCKED', `${holder?.target ?? 'This target'} is locked for this restore set by ${who}`, {
    hint: `Wait for it to finish and run again; if it is not running any more, delete ${path.relative(process.cwd(), file) || file}`,
    details: {lock: file, holder, set: set.dir},
  });
}

/**
 * Take the exclusive lock of a set and target: one push, rollback or field repair at a time, as two
 * would share (and tear) one journal and both count their writes in the ledger. The file is created
 * with O_EXCL, so of two runs exactly one wins; a lock left by a run that died on this host is taken
 * over (renamed away first, so two runs taking over the same stale lock cannot both win).
 */
export async function acquireSetLock(set: RestoreSet, target: LockTarget, command: string): Promise<SetLock> {
  const file = lockPath(set, target);
  await mkdir(path.dirname(file), {recursive: true, mode: 0o700});
  const host = os.hostname();
  const info: LockInfo = {pid: process.pid, host, command, startedAt: new Date().toISOString(), target: target.label, token: randomBytes(8).toString('hex')};
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.write(`${JSON.stringify(info)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return {path: file, info, release: () => releaseLock(file, info.token)};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const found = await readLock(file);
    if (!found) continue;
    if (!isStale(found, host)) throw lockedError(file, found.info, set);
    // Take the stale lock over: move it aside under a name of our own, and check it is still the one
    // judged stale (another run may have taken it over and locked in between: then it is put back).
    const aside = `${file}.stale-${info.token}`;
    try {
      await rename(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const moved = await readLock(aside);
    if (moved?.info && found.info && moved.info.token !== found.info.token) {
      // link, not rename: it fails rather than replace a lock a third run took meanwhile.
      await link(aside, file).catch(() => undefined);
      await unlink(aside).catch(() => undefined);
      throw lockedError(file, moved.info, set);
    }
    await unlink(aside).catch(() => undefined);
  }
  throw lockedError(file, (await readLock(file))?.info ?? null, set);
}

/** Remove the lock only while it is still this run's. */
async function releaseLock(file: string, token: string): Promise<void> {
  const found = await readLock(file).catch(() => null);
  if (found?.info?.token !== token) return;
  await unlink(file).catch(() => undefined);
}
