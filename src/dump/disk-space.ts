/**
 * Free-space checks for what the tool writes (a restore set, its spools, unpacked collections,
 * downloads): a backup can inflate to far more than it weighs (a 20 MB tarball of repeated
 * documents holds 10 GB), so writers ask before they write and stop cleanly, leaving a reserve on
 * the disk, instead of filling it.
 */
import {statfs} from 'node:fs/promises';
import path from 'node:path';

import {GravityError} from '../errors.js';

export const MIN_FREE_ENV = 'GRAVITY_RESTORE_MIN_FREE_BYTES';

const GIB = 1024 ** 3;
/** At most this many bytes are written between two looks at the disk. */
const CHECK_EVERY = 16 * 1024 * 1024;

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: GIB, gb: 1000 ** 3, gib: GIB, t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
};

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(1)} ${units[i]}`;
}

/**
 * The free space to leave on a disk of `diskBytes`: GRAVITY_RESTORE_MIN_FREE_BYTES (bytes, with an
 * optional unit such as 512MiB or 2GB, or a percentage of the disk such as 10%), by default the
 * smaller of 1 GiB and 5 % of the disk, so a small disk is not refused outright.
 */
export function minFreeBytes(diskBytes: number, env: NodeJS.ProcessEnv = process.env): number {
  const text = env[MIN_FREE_ENV]?.trim();
  if (text === undefined || text === '') return Math.min(GIB, Math.floor(diskBytes * 0.05));
  const percent = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (percent) return Math.floor((diskBytes * Number(percent[1])) / 100);
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) {
    throw new GravityError('CONFIG_INVALID', `${MIN_FREE_ENV}=${text} is not a size`, {
      hint: `Give bytes (1073741824), a size with a unit (512MiB, 2GB) or a share of the disk (5%)`,
    });
  }
  return Math.floor(Number(match[1]) * unit);
}

/** The nearest existing folder at or above `dir` (what statfs can be asked about before `dir` exists). */
async function existingAncestor(dir: string): Promise<string> {
  let current = path.resolve(dir);
  for (;;) {
    try {
      await statfs(current);
      return current;
    } catch (error) {
      const parent = path.dirname(current);
      if (parent === current) throw error;
      current = parent;
    }
  }
}

/**
 * Counts what one writer puts on the disk holding `dir` and refuses, with RESOURCE_LIMIT, a write
 * that would leave less than the reserve free. The disk is looked at again after at most
 * CHECK_EVERY bytes, and sooner as the free space nears the reserve.
 */
export class SpaceGuard {
  /** Bytes this writer has been allowed to write so far. */
  written = 0;
  private budget = 0;
  private where: string | null = null;

  /**
   * @param dir the folder written into (it may not exist yet)
   * @param what what is being written, for the message ("the restore set", "the unpacked collections")
   * @param options.hint the next step when the space runs out; options.shown the folder to name (default: `dir`)
   */
  constructor(
    private readonly dir: string,
    private readonly what: string,
    private readonly options: {hint?: string; shown?: string} = {},
  ) {}

  /** The disk filled anyway (another writer took the space): the same refusal, not a raw ENOSPC. */
  full(error: unknown): unknown {
    if ((error as {code?: string}).code !== 'ENOSPC') return error;
    return new GravityError('RESOURCE_LIMIT', `The disk filled while writing ${this.what}: ${formatBytes(this.written)} written so far; nothing was kept`, {
      hint: this.options.hint ?? 'Free some space on that disk or write elsewhere',
      cause: error,
    });
  }

  /** Call before writing `bytes`. */
  async reserve(bytes: number): Promise<void> {
    if (bytes <= this.budget) {
      this.budget -= bytes;
      this.written += bytes;
      return;
    }
    this.where ??= await existingAncestor(this.dir);
    const disk = await statfs(this.where);
    const free = disk.bavail * disk.bsize;
    const reserve = minFreeBytes(disk.blocks * disk.bsize);
    const headroom = free - reserve;
    if (bytes > headroom) {
      throw new GravityError(
        'RESOURCE_LIMIT',
        `Stopped writing ${this.what} before the disk fills: ${formatBytes(this.written)} written so far, ${formatBytes(Math.max(0, free))} left on the disk of ${this.options.shown ?? this.where}, which keeps ${formatBytes(reserve)} free (${MIN_FREE_ENV}); nothing was kept`,
        {hint: this.options.hint ?? 'Free some space on that disk or write elsewhere', details: {written: this.written, free, reserve, needed: bytes, dir: this.options.shown ?? this.where}},
      );
    }
    // Other writers (another spool, another program) share the disk: look again well before the headroom is gone.
    this.budget = Math.min(CHECK_EVERY, Math.floor((headroom - bytes) / 4));
    this.written += bytes;
  }
}
