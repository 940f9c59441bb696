import {GravityError} from '../errors.js';

/** Smallest valid BSON document: int32 length + terminating NUL. */
export const MIN_DOC = 5;
/** mongod accepts 16 MiB documents; dumps may carry slightly larger internal ones. */
export const MAX_DOC = 16 * 1024 * 1024 + 16 * 1024;

/**
 * Split a buffer that holds whole BSON documents back to back (a .bson file or a set's file)
 * into subarrays, one per document, without copying or decoding.
 */
export function splitDocuments(buffer: Buffer, where = 'BSON data'): Buffer[] {
  const docs: Buffer[] = [];
  let offset = 0;
  while (offset < buffer.length) {
    if (buffer.length - offset < 4) {
      throw new GravityError('DUMP_CORRUPT', `${where}: truncated document at byte ${offset} (${buffer.length - offset} trailing bytes)`, {
        hint: 'The file is incomplete; fetch the backup again',
      });
    }
    const size = buffer.readInt32LE(offset);
    if (size < MIN_DOC || size > MAX_DOC) {
      throw new GravityError('DUMP_CORRUPT', `${where}: document length ${size} out of range at byte ${offset}`, {
        hint: 'The file is not BSON or is corrupt; fetch the backup again',
      });
    }
    if (offset + size > buffer.length) {
      throw new GravityError('DUMP_CORRUPT', `${where}: truncated document at byte ${offset} (needs ${size} bytes, ${buffer.length - offset} left)`, {
        hint: 'The file is incomplete; fetch the backup again',
      });
    }
    if (buffer[offset + size - 1] !== 0) {
      throw new GravityError('DUMP_CORRUPT', `${where}: document at byte ${offset} does not end with a NUL byte`, {
        hint: 'The file is corrupt; fetch the backup again',
      });
    }
    docs.push(buffer.subarray(offset, offset + size));
    offset += size;
  }
  return docs;
}
