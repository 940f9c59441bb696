import {GravityError} from '../errors.js';
import {checkDocument} from './validate.js';

/** Smallest valid BSON document: int32 length + terminating NUL. */
export const MIN_DOC = 5;
/** mongod accepts 16 MiB documents; dumps may carry slightly larger internal ones. */
export const MAX_DOC = 16 * 1024 * 1024 + 16 * 1024;

/** Marks an --archive block terminator (0xffffffff) in a splitter's output; compare by identity. */
export const TERMINATOR: Buffer = Buffer.from([0xff, 0xff, 0xff, 0xff]);

function corrupt(where: string, what: string, hint: string, offset: number): GravityError {
  return new GravityError('DUMP_CORRUPT', `${where}: ${what}`, {hint, details: {where, offset}});
}

/**
 * Split a buffer that holds whole BSON documents back to back (a .bson file or a set's file)
 * into subarrays, one per document, without copying or decoding.
 */
export function splitDocuments(buffer: Buffer, where = 'BSON data'): Buffer[] {
  const splitter = new BsonSplitter(where);
  const docs = splitter.push(buffer);
  splitter.end();
  return docs;
}

/**
 * Splits a stream of chunks into BSON documents by their length prefix. A document inside one
 * chunk comes back as a subarray of it (no copy); only a document spanning chunks is copied once,
 * into a buffer of its exact size.
 */
/**
 * Which documents a splitter checks for structure (validate.ts): those it hands on ('kept': a
 * document a screen drops is never copied anywhere, and a screen that trips over a broken one is
 * answered by the check), every one ('all'), or none (the caller checks, as the archive reader does
 * for the documents among its headers).
 */
export type SplitCheck = 'kept' | 'all' | 'none';

/**
 * Whether to hand on the document at [start, end) of `buffer` (`keep` absent: yes), checked for
 * structure as `check` says; `where` and `offset` (its first byte in the stream) name it in a refusal.
 */
export function takeChecked(
  buffer: Buffer, start: number, end: number, keep: ((buffer: Buffer, start: number, end: number) => boolean) | undefined | null,
  check: SplitCheck, where: string, offset: number,
): boolean {
  if (check === 'all') checkDocument(buffer, start, end, where, offset);
  let kept = true;
  if (keep) {
    try {
      kept = keep(buffer, start, end);
    } catch (error) {
      // A screen reading a broken document may fail anywhere inside it: the document is what to report.
      checkDocument(buffer, start, end, where, offset);
      throw error;
    }
  }
  if (kept && check === 'kept') checkDocument(buffer, start, end, where, offset);
  return kept;
}

export class BsonSplitter {
  /** Bytes of the stream consumed so far (the offset of the next chunk's first byte). */
  offset = 0;
  /** Documents completed so far, and their bytes, kept by the screen or not. */
  documents = 0;
  bytes = 0;
  private partial: Buffer | null = null; // a document being assembled across chunks
  private partialFilled = 0;
  private header: Buffer | null = null; // fewer than 4 bytes of a length prefix
  private readonly where: string;
  private readonly allowTerminator: boolean;
  private readonly check: SplitCheck;

  /**
   * @param where names the file/namespace in error messages
   * @param allowTerminator an --archive stream: 0xffffffff is a terminator, returned as TERMINATOR
   * @param check which documents are checked for structure (default: those handed on)
   */
  constructor(where: string, options: {allowTerminator?: boolean; check?: SplitCheck} = {}) {
    this.where = where;
    this.allowTerminator = options.allowTerminator ?? false;
    this.check = options.check ?? 'kept';
  }

  private take(buffer: Buffer, start: number, end: number, offset: number, keep: ((buffer: Buffer, start: number, end: number) => boolean) | undefined): boolean {
    return takeChecked(buffer, start, end, keep, this.check, this.where, offset);
  }

  /**
   * The documents completed by this chunk, in order. With `keep`, only those it keeps: it is asked
   * about each document where it lies (in the chunk, or in the buffer of one that spanned chunks),
   * and only a kept one becomes a subarray.
   */
  push(chunk: Buffer, out: Buffer[] = [], keep?: (buffer: Buffer, start: number, end: number) => boolean): Buffer[] {
    let pos = 0;
    const len = chunk.length;
    const base = this.offset;
    this.offset += len;

    if (this.header !== null) {
      const need = 4 - this.header.length;
      const take = Math.min(need, len);
      this.header = Buffer.concat([this.header, chunk.subarray(0, take)]);
      pos = take;
      if (this.header.length < 4) return out;
      const head = this.header;
      this.header = null;
      const docStart = base - (4 - take);
      if (!this.startPartial(head, docStart, out)) {
        // a terminator: already emitted
      } else {
        this.partial!.set(head, 0);
        this.partialFilled = 4;
      }
    }

    if (this.partial !== null) {
      const need = this.partial.length - this.partialFilled;
      const take = Math.min(need, len - pos);
      chunk.copy(this.partial, this.partialFilled, pos, pos + take);
      this.partialFilled += take;
      pos += take;
      if (this.partialFilled < this.partial.length) return out;
      const doc = this.partial;
      this.partial = null;
      if (doc[doc.length - 1] !== 0) {
        throw corrupt(this.where, `document at byte ${base + pos - doc.length} does not end with a NUL byte`,
          'The file is corrupt; fetch the backup again', base + pos - doc.length);
      }
      this.documents++;
      this.bytes += doc.length;
      if (this.take(doc, 0, doc.length, base + pos - doc.length, keep)) out.push(doc);
    }

    while (pos < len) {
      if (len - pos < 4) {
        this.header = Buffer.from(chunk.subarray(pos));
        return out;
      }
      const size = chunk.readInt32LE(pos);
      if (size === -1 && this.allowTerminator) {
        out.push(TERMINATOR);
        pos += 4;
        continue;
      }
      if (size < MIN_DOC || size > MAX_DOC) {
        throw corrupt(this.where, `document length ${size} out of range at byte ${base + pos}`,
          'The file is not BSON or is corrupt; fetch the backup again', base + pos);
      }
      const end = pos + size;
      if (end > len) {
        this.partial = Buffer.allocUnsafe(size);
        chunk.copy(this.partial, 0, pos, len);
        this.partialFilled = len - pos;
        return out;
      }
      if (chunk[end - 1] !== 0) {
        throw corrupt(this.where, `document at byte ${base + pos} does not end with a NUL byte`,
          'The file is corrupt; fetch the backup again', base + pos);
      }
      this.documents++;
      this.bytes += size;
      if (this.take(chunk, pos, end, base + pos, keep)) out.push(chunk.subarray(pos, end));
      pos = end;
    }
    return out;
  }

  /** True when no document is half read. */
  get atBoundary(): boolean {
    return this.partial === null && this.header === null;
  }

  /** Call at the end of the stream: a half-read document means the data was truncated. */
  end(): void {
    if (this.header !== null) {
      const at = this.offset - this.header.length;
      throw corrupt(this.where, `truncated document at byte ${at} (${this.header.length} trailing bytes)`,
        'The file is incomplete; fetch the backup again', at);
    }
    if (this.partial !== null) {
      const at = this.offset - this.partialFilled;
      throw corrupt(this.where, `truncated document at byte ${at} (needs ${this.partial.length} bytes, ${this.partialFilled} left)`,
        'The file is incomplete; fetch the backup again', at);
    }
  }

  /** Validates a 4-byte prefix read across chunks; returns false for a terminator. */
  private startPartial(head: Buffer, at: number, out: Buffer[]): boolean {
    const size = head.readInt32LE(0);
    if (size === -1 && this.allowTerminator) {
      out.push(TERMINATOR);
      return false;
    }
    if (size < MIN_DOC || size > MAX_DOC) {
      throw corrupt(this.where, `document length ${size} out of range at byte ${at}`,
        'The file is not BSON or is corrupt; fetch the backup again', at);
    }
    this.partial = Buffer.allocUnsafe(size);
    this.partialFilled = 0;
    return true;
  }
}
