import {closeSync, openSync, readSync} from 'node:fs';

import {MAX_DOC, MIN_DOC} from './split.js';

export type DumpFormat = 'gzip' | 'tar' | 'archive' | 'bson' | 'json' | 'unknown';

/** Bytes a caller should have in `head` for a sure answer (a tar header is 512 bytes). */
export const DETECT_HEAD_BYTES = 512;

/** Valid BSON element type bytes (including the deprecated ones a backup may still hold). */
function isElementType(byte: number): boolean {
  return (byte >= 0x01 && byte <= 0x13) || byte === 0x7f || byte === 0xff;
}

function looksLikeTarHeader(head: Buffer): boolean {
  if (head.length < 512) return false;
  if (head.toString('latin1', 257, 262) === 'ustar') return true;
  // Old (v7) tars have no magic: trust the header checksum instead.
  const stored = parseInt(head.toString('latin1', 148, 156).replace(/[\0 ]/g, ''), 8);
  if (!Number.isFinite(stored) || head[0] === 0) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : head[i]!;
  return sum === stored;
}

function looksLikeBson(head: Buffer): boolean {
  if (head.length < MIN_DOC) return false;
  const size = head.readInt32LE(0);
  if (size < MIN_DOC || size > MAX_DOC) return false;
  if (size === MIN_DOC) return head[4] === 0;
  if (!isElementType(head[4]!)) return false;
  if (size <= head.length && head[size - 1] !== 0) return false;
  return true;
}

function looksLikeJson(head: Buffer): boolean {
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09)) i++;
  return head[i] === 0x7b; // '{'
}

/** What a file's name says it is. */
export function formatFromName(name: string): DumpFormat {
  const lower = name.toLowerCase();
  if (lower.endsWith('.gz') || lower.endsWith('.tgz') || lower.endsWith('.agz')) return 'gzip';
  if (lower.endsWith('.tar')) return 'tar';
  if (lower.endsWith('.archive')) return 'archive';
  if (lower.endsWith('.bson')) return 'bson';
  if (lower.endsWith('.json')) return 'json';
  return 'unknown';
}

/** A gzip stream's first two bytes (RFC 1952 §2.3.1: ID1 0x1f, ID2 0x8b). */
export function isGzipHead(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

/** Whether a local file starts with gzip's magic bytes (false when it cannot be read: its reader reports that). */
export function isGzipFile(file: string): boolean {
  const head = Buffer.alloc(2);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    return readSync(fd, head, 0, 2, 0) === 2 && isGzipHead(head);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * What a file is, by its first bytes (magic numbers, a tar header checksum, a sane BSON length
 * prefix, a JSON brace), and only when those say nothing, by its name.
 */
export function detectFormatSync(head: Buffer, name: string): DumpFormat {
  if (isGzipHead(head)) return 'gzip';
  if (head.length >= 4 && head[0] === 0x6d && head[1] === 0xe2 && head[2] === 0x99 && head[3] === 0x81) return 'archive';
  if (looksLikeTarHeader(head)) return 'tar';
  if (looksLikeBson(head)) return 'bson';
  if (looksLikeJson(head)) return 'json';
  // Content is inconclusive (empty, or damaged): a name that says what it is gets the specific
  // reader, which then reports exactly what is wrong.
  return formatFromName(name);
}

/** Async form of {@link detectFormatSync}, the shape callers were promised. */
export async function detectFormat(head: Buffer, name: string): Promise<DumpFormat> {
  return detectFormatSync(head, name);
}
