/**
 * `_id` keys with a few numbers each (digest of the document, where it lies in a spool, …), in
 * memory up to a limit and in hash partitions on disk past it, so comparing collections of any
 * size takes bounded memory. Two tables spilled with the same partitioning are joined one
 * partition at a time.
 */
import {open, mkdir, readFile, type FileHandle} from 'node:fs/promises';
import path from 'node:path';

/** One entry: the key and its fixed-size payload. */
export interface IdRecord {
  key: string;
  /** sha256 of the document's bytes (zeros when not needed). */
  digest: Buffer;
  /** Byte offset of the document in its spool file, -1 when not spooled. */
  pos: number;
  len: number;
  /** Ordinal in backup order (FROM side) or a flag (AGAINST side). */
  num: number;
  flag: number;
}

const FIXED = 32 + 8 + 4 + 4 + 1;
export const PARTITIONS = 64;
/** Per partition write buffer: 64 of them per table, so this bounds what pending writes hold. */
const FLUSH_BYTES = 64 * 1024;

/** Keys per table kept in memory before spilling (GRAVITY_RESTORE_DIFF_MEMORY_IDS lowers it, for tests). */
export function memoryLimit(): number {
  const given = Number(process.env.GRAVITY_RESTORE_DIFF_MEMORY_IDS);
  return Number.isFinite(given) && given > 0 ? Math.floor(given) : 250_000;
}

export function partitionOf(key: string): number {
  // FNV-1a over UTF-16 code units: cheap and spreads ObjectId hex well.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % PARTITIONS;
}

/** Writes a record at `at` of `out` (which has room for it), returning the end. */
function encodeInto(r: IdRecord, out: Buffer, at: number): number {
  const klen = out.write(r.key, at + 2, 'utf8');
  out.writeUInt16LE(klen, at);
  let p = at + 2 + klen;
  r.digest.copy(out, p, 0, 32);
  p += 32;
  out.writeDoubleLE(r.pos, p);
  out.writeUInt32LE(r.len, p + 8);
  out.writeUInt32LE(r.num, p + 12);
  out.writeUInt8(r.flag, p + 16);
  return p + 17;
}

export function* decodeRecords(data: Buffer): Generator<IdRecord> {
  let at = 0;
  while (at < data.length) {
    const klen = data.readUInt16LE(at);
    const key = data.toString('utf8', at + 2, at + 2 + klen);
    const base = at + 2 + klen;
    yield {
      key,
      digest: data.subarray(base, base + 32),
      pos: data.readDoubleLE(base + 32),
      len: data.readUInt32LE(base + 40),
      num: data.readUInt32LE(base + 44),
      flag: data.readUInt8(base + 48),
    };
    at = base + FIXED;
  }
}

/** Append-only partition files with buffered writes. */
export class Partitions {
  private handles: Array<FileHandle | null> = new Array<FileHandle | null>(PARTITIONS).fill(null);
  /** Records are encoded straight into one buffer per partition (no allocation per record). */
  private pending: Array<Buffer | null> = new Array<Buffer | null>(PARTITIONS).fill(null);
  private pendingBytes = new Array<number>(PARTITIONS).fill(0);
  records = 0;

  constructor(readonly dir: string) {}

  file(p: number): string {
    return path.join(this.dir, `p${p}.bin`);
  }

  async write(r: IdRecord): Promise<void> {
    const p = partitionOf(r.key);
    // A key is at most 3 bytes per UTF-16 unit; an _id is far below the 64 KiB a u16 length allows.
    const room = 2 + r.key.length * 3 + FIXED;
    if (this.pendingBytes[p]! + room > FLUSH_BYTES) await this.flush(p);
    const buffer = (this.pending[p] ??= Buffer.allocUnsafe(Math.max(FLUSH_BYTES, room)));
    this.pendingBytes[p] = encodeInto(r, buffer, this.pendingBytes[p]!);
    this.records++;
  }

  private async flush(p: number): Promise<void> {
    const used = this.pendingBytes[p]!;
    if (used === 0) return;
    if (!this.handles[p]) {
      await mkdir(this.dir, {recursive: true});
      this.handles[p] = await open(this.file(p), 'a');
    }
    this.pendingBytes[p] = 0;
    await this.handles[p]!.write(this.pending[p]!, 0, used);
  }

  async close(): Promise<void> {
    for (let p = 0; p < PARTITIONS; p++) {
      await this.flush(p);
      await this.handles[p]?.close();
      this.handles[p] = null;
      this.pending[p] = null;
    }
  }

  async read(p: number): Promise<Buffer> {
    return readFile(this.file(p)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return Buffer.alloc(0);
      throw error;
    });
  }
}

/** Keys in memory (a Map to a slot of packed payloads) until `limit`, then every entry in partitions. */
export class IdTable {
  private map = new Map<string, number>();
  private payload = Buffer.alloc(0);
  private count = 0;
  partitions: Partitions | null = null;

  constructor(
    private readonly dir: string,
    private readonly limit = memoryLimit(),
  ) {}

  get spilled(): boolean {
    return this.partitions !== null;
  }

  get size(): number {
    return this.partitions ? this.partitions.records : this.count;
  }

  async add(r: IdRecord): Promise<void> {
    if (this.partitions) return this.partitions.write(r);
    if (this.count >= this.limit) {
      await this.spill();
      return this.partitions!.write(r);
    }
    const slot = this.map.get(r.key) ?? this.count++;
    this.map.set(r.key, slot);
    if ((slot + 1) * FIXED > this.payload.length) {
      const grown = Buffer.alloc(Math.max(FIXED * 1024, this.payload.length * 2));
      this.payload.copy(grown);
      this.payload = grown;
    }
    const at = slot * FIXED;
    r.digest.copy(this.payload, at, 0, 32);
    this.payload.writeDoubleLE(r.pos, at + 32);
    this.payload.writeUInt32LE(r.len, at + 40);
    this.payload.writeUInt32LE(r.num, at + 44);
    this.payload.writeUInt8(r.flag, at + 48);
  }

  /** In-memory lookup: the slot of a key, or undefined. Only before a spill. */
  slot(key: string): number | undefined {
    return this.map.get(key);
  }

  record(slot: number, key = ''): IdRecord {
    const at = slot * FIXED;
    return {
      key,
      digest: this.payload.subarray(at, at + 32),
      pos: this.payload.readDoubleLE(at + 32),
      len: this.payload.readUInt32LE(at + 40),
      num: this.payload.readUInt32LE(at + 44),
      flag: this.payload.readUInt8(at + 48),
    };
  }

  /** Every in-memory entry (before a spill). */
  *entries(): Generator<[string, number]> {
    yield* this.map.entries();
  }

  get slots(): number {
    return this.count;
  }

  private async spill(): Promise<void> {
    const partitions = new Partitions(path.join(this.dir, 'table'));
    for (const [key, slot] of this.map) await partitions.write(this.record(slot, key));
    this.map = new Map();
    this.payload = Buffer.alloc(0);
    this.partitions = partitions;
  }

  async close(): Promise<void> {
    await this.partitions?.close();
  }
}
