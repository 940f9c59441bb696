import {createHash} from 'node:crypto';
import {posix} from 'node:path';

/** Bytes Go's url.PathEscape keeps as they are; mongodump escapes file names with it. */
const KEEP = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~$&+:=@') KEEP[c.charCodeAt(0)] = 1;

/** mongodump's file-name form of a collection name (percent-escaped like Go's url.PathEscape). */
export function escapeCollectionName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    out += KEEP[byte] ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The file stem mongodump writes for a collection: the escaped name, or for escaped names over
 * 238 bytes the first 208 bytes, `%24`, and the base64url SHA-1 of the real name.
 */
export function collectionFileStem(name: string): string {
  const escaped = escapeCollectionName(name);
  if (escaped.length <= 238) return escaped;
  const hash = createHash('sha1').update(name, 'utf8').digest('base64url');
  return `${escaped.slice(0, 208)}%24${hash}`;
}

/** True for a stem in mongodump's hashed long-name form: the real name is only in the metadata. */
export function isHashedStem(stem: string): boolean {
  return stem.length === 238 && /%24[A-Za-z0-9_-]{27}$/.test(stem);
}

/** Reverses the percent-escaping; a malformed escape leaves the stem as it is. */
export function unescapeCollectionName(stem: string): string {
  if (!stem.includes('%')) return stem;
  const bytes: number[] = [];
  for (let i = 0; i < stem.length; i++) {
    const c = stem.charCodeAt(i);
    if (c === 0x25) {
      const hex = stem.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return stem;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(stem[i]!, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

export type MemberKind = 'data' | 'metadata' | 'oplog' | 'prelude' | 'other';

export interface ClassifiedName {
  kind: MemberKind;
  /** Folder part of the path, '' at the top. */
  dir: string;
  /** File name without the dump extensions (still escaped). */
  stem: string;
  gzip: boolean;
}

/** Sorts a path inside a dump by what mongodump would have written there. */
export function classifyName(path: string): ClassifiedName {
  const clean = path.replace(/\\/g, '/').replace(/^\.\//, '');
  const dir = posix.dirname(clean) === '.' ? '' : posix.dirname(clean);
  let base = posix.basename(clean);
  const gzip = base.endsWith('.gz');
  if (gzip) base = base.slice(0, -3);
  if (base === 'prelude.json') return {kind: 'prelude', dir, stem: 'prelude', gzip};
  if (base.endsWith('.metadata.json')) return {kind: 'metadata', dir, stem: base.slice(0, -'.metadata.json'.length), gzip};
  if (base === 'oplog.bson') return {kind: 'oplog', dir, stem: 'oplog', gzip};
  if (base.endsWith('.bson')) return {kind: 'data', dir, stem: base.slice(0, -'.bson'.length), gzip};
  return {kind: 'other', dir, stem: base, gzip};
}

/** The database of a dump file: the folder directly holding it. */
export function dbFromDir(dir: string): string {
  const name = posix.basename(dir.replace(/\\/g, '/'));
  return name === '' || name === '.' || name === '/' ? 'unknown' : name;
}
