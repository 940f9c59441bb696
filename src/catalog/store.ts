/**
 * A backup source behind one interface: an S3 bucket/prefix or a local folder. Keys are always
 * relative to the source and use '/' separators, so listing and selection do not care which it is.
 */

import {createReadStream, statSync} from 'node:fs';
import {readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {Readable} from 'node:stream';

import {GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client} from '@aws-sdk/client-s3';

import {GravityError} from '../errors.js';
import {createS3Client, mapS3Error, parseS3Url, type S3Settings} from '../s3/client.js';

export interface StoreObject {
  key: string;
  size: number;
  etag?: string;
  lastModified?: Date;
}

/** Byte range with HTTP semantics: `end` is inclusive; without it, to the end of the object. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface BackupStore {
  /** 's3://b/p/' or an absolute folder path, for messages. */
  readonly location: string;
  /** Stable identity for caches and indexes: endpoint + bucket + prefix, or the folder path. */
  readonly identity: string;
  readonly kind: 's3' | 'local';
  /** Every object under the prefix (all pages), keys relative to the prefix. */
  list(): Promise<StoreObject[]>;
  open(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;
  head(key: string): Promise<StoreObject | null>;
  /** For a local folder: the file itself, so it can be read in place instead of copied. */
  localPath?(key: string): string;
  /** Map a failure of this store to a GravityError naming the source. */
  mapError(error: unknown, key?: string): GravityError;
}

export interface OpenStoreOptions {
  /** Keys per ListObjectsV2 page (default: the server's, 1000 on S3). */
  pageSize?: number;
  /** A ready client (tests, or a caller that shares one). */
  client?: S3Client;
}

function stripEtag(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/"/g, '');
}

class S3Store implements BackupStore {
  readonly kind = 's3' as const;
  readonly location: string;
  readonly identity: string;
  private readonly client: S3Client;

  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly settings: S3Settings,
    private readonly options: OpenStoreOptions,
  ) {
    this.location = `s3://${bucket}/${prefix}`;
    this.identity = `${settings.endpoint ?? 'aws'}|${bucket}|${prefix}`;
    this.client = options.client ?? createS3Client(settings);
  }

  mapError(error: unknown, key?: string): GravityError {
    const context: {bucket: string; key?: string; endpoint?: string} = {bucket: this.bucket, key: key === undefined ? this.prefix : this.prefix + key};
    if (this.settings.endpoint) context.endpoint = this.settings.endpoint;
    return mapS3Error(error, context);
  }

  async list(): Promise<StoreObject[]> {
    const objects: StoreObject[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListObjectsV2Command({Bucket: this.bucket, Prefix: this.prefix, ContinuationToken: token, MaxKeys: this.options.pageSize}),
        );
        for (const item of page.Contents ?? []) {
          if (item.Key === undefined) continue;
          const object: StoreObject = {key: item.Key.slice(this.prefix.length), size: item.Size ?? 0};
          const etag = stripEtag(item.ETag);
          if (etag !== undefined) object.etag = etag;
          if (item.LastModified) object.lastModified = item.LastModified;
          objects.push(object);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw this.mapError(error);
    }
    return objects;
  }

  async open(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.prefix + key,
          // Always an explicit first byte: suffix ranges (bytes=-N) are answered wrongly by some servers.
          Range: range ? `bytes=${range.start}-${range.end ?? ''}` : undefined,
        }),
        signal ? {abortSignal: signal} : {},
      );
      const body = response.Body;
      if (body instanceof Readable) return body;
      if (body === undefined) return Readable.from([]);
      // Outside Node the SDK hands back a web stream; convert it so callers see one type.
      return Readable.fromWeb((body as unknown as {transformToWebStream(): import('node:stream/web').ReadableStream}).transformToWebStream());
    } catch (error) {
      throw this.mapError(error, key);
    }
  }

  async head(key: string): Promise<StoreObject | null> {
    try {
      const response = await this.client.send(new HeadObjectCommand({Bucket: this.bucket, Key: this.prefix + key}));
      const object: StoreObject = {key, size: response.ContentLength ?? 0};
      const etag = stripEtag(response.ETag);
      if (etag !== undefined) object.etag = etag;
      if (response.LastModified) object.lastModified = response.LastModified;
      return object;
    } catch (error) {
      const status = (error as {$metadata?: {httpStatusCode?: number}}).$metadata?.httpStatusCode;
      const name = (error as {name?: string}).name;
      if (status === 404 && name !== 'NoSuchBucket') return null;
      throw this.mapError(error, key);
    }
  }
}

class LocalStore implements BackupStore {
  readonly kind = 'local' as const;
  readonly identity: string;

  constructor(readonly location: string) {
    this.identity = `local|${location}`;
  }

  mapError(error: unknown, key?: string): GravityError {
    if (error instanceof GravityError) return error;
    const code = (error as {code?: string}).code;
    const file = key === undefined ? this.location : path.join(this.location, key);
    if (code === 'ENOENT') {
      return new GravityError('SOURCE_NOT_FOUND', `${file} does not exist`, {
        cause: error,
        hint: 'Check --source (or GRAVITY_RESTORE_SOURCE); run `gravity-restore list` to see what it holds',
      });
    }
    return new GravityError('SOURCE_NOT_FOUND', `Could not read ${file}: ${(error as Error).message}`, {
      cause: error,
      hint: 'Check the permissions of the backup folder',
    });
  }

  localPath(key: string): string {
    const resolved = path.resolve(this.location, ...key.split('/'));
    if (resolved !== this.location && !resolved.startsWith(this.location + path.sep)) {
      throw new GravityError('USAGE', `Key ${key} points outside ${this.location}`, {hint: 'Use a key from `gravity-restore list`'});
    }
    return resolved;
  }

  async list(): Promise<StoreObject[]> {
    const objects: StoreObject[] = [];
    const walk = async (dir: string, relative: string): Promise<void> => {
      const entries = await readdir(dir, {withFileTypes: true});
      for (const entry of entries) {
        const key = relative === '' ? entry.name : `${relative}/${entry.name}`;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          await walk(full, key);
        } else if (entry.isFile() || entry.isSymbolicLink()) {
          const info = await stat(full).catch(() => null);
          if (info?.isFile()) objects.push({key, size: info.size, lastModified: info.mtime});
        }
      }
    };
    try {
      const info = await stat(this.location);
      if (!info.isDirectory()) {
        throw new GravityError('SOURCE_NOT_FOUND', `${this.location} is not a folder`, {
          hint: 'Point --source at the folder that holds the backups (or at s3://bucket/prefix/)',
        });
      }
      await walk(this.location, '');
    } catch (error) {
      throw this.mapError(error);
    }
    objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return objects;
  }

  async open(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    const file = this.localPath(key);
    try {
      await stat(file);
    } catch (error) {
      throw this.mapError(error, key);
    }
    const options: {start?: number; end?: number; signal?: AbortSignal} = {};
    if (range) {
      options.start = range.start;
      if (range.end !== undefined) options.end = range.end;
    }
    if (signal) options.signal = signal;
    return createReadStream(file, options);
  }

  async head(key: string): Promise<StoreObject | null> {
    try {
      const info = await stat(this.localPath(key));
      return info.isFile() ? {key, size: info.size, lastModified: info.mtime} : null;
    } catch (error) {
      if ((error as {code?: string}).code === 'ENOENT') return null;
      throw this.mapError(error, key);
    }
  }
}

/** `s3://bucket/prefix/` or a local folder. SOURCE_MISSING when empty; SOURCE_NOT_FOUND for a missing folder. */
export function openStore(source: string, s3: S3Settings, options: OpenStoreOptions = {}): BackupStore {
  const trimmed = source.trim();
  if (trimmed === '') {
    throw new GravityError('SOURCE_MISSING', 'No backup source given', {
      hint: 'Pass --source s3://bucket/prefix/ (or a local folder), or set GRAVITY_RESTORE_SOURCE',
    });
  }
  if (/^s3:\/\//i.test(trimmed)) {
    const parsed = parseS3Url(trimmed);
    if (!parsed) {
      throw new GravityError('USAGE', `${trimmed} is not an S3 URL`, {hint: 'Write it as s3://bucket/prefix/'});
    }
    return new S3Store(parsed.bucket, parsed.prefix, s3, options);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new GravityError('USAGE', `Unsupported source ${trimmed}`, {hint: 'Use s3://bucket/prefix/ or a local folder path'});
  }
  const folder = path.resolve(trimmed);
  // A synchronous check keeps openStore synchronous, as callers expect, and fails early.
  if (!statSync(folder, {throwIfNoEntry: false})?.isDirectory()) {
    throw new GravityError('SOURCE_NOT_FOUND', `Backup folder ${folder} does not exist`, {
      hint: 'Check --source (or GRAVITY_RESTORE_SOURCE); for S3 write s3://bucket/prefix/',
    });
  }
  return new LocalStore(folder);
}
