import {EJSON} from 'bson';
import {GravityError} from '../errors.js';
import type {CollectionMetadata} from './types.js';

/** Parses a metadata.json text (canonical or relaxed Extended JSON) as mongodump writes it. */
export function parseMetadata(raw: string, fallbackName: string, where: string): CollectionMetadata {
  let parsed: unknown;
  try {
    parsed = EJSON.parse(raw, {relaxed: false});
  } catch (error) {
    throw new GravityError('DUMP_CORRUPT', `${where}: metadata is not valid Extended JSON (${(error as Error).message})`, {
      hint: 'The metadata file is damaged; fetch the backup again',
      cause: error,
    });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new GravityError('DUMP_CORRUPT', `${where}: metadata is not a JSON object`, {
      hint: 'The metadata file is damaged; fetch the backup again',
    });
  }
  const doc = parsed as Record<string, unknown>;
  const options = doc.options !== null && typeof doc.options === 'object' && !Array.isArray(doc.options)
    ? (doc.options as Record<string, unknown>) : {};
  const indexes = Array.isArray(doc.indexes)
    ? doc.indexes.filter((i): i is Record<string, unknown> => i !== null && typeof i === 'object') : [];
  const metadata: CollectionMetadata = {
    collectionName: typeof doc.collectionName === 'string' && doc.collectionName !== '' ? doc.collectionName : fallbackName,
    type: typeof doc.type === 'string' ? doc.type : inferType(options),
    options,
    indexes,
  };
  if (typeof doc.uuid === 'string') metadata.uuid = doc.uuid;
  return metadata;
}

/** Older mongodumps write no `type`; the options tell views and time series apart. */
function inferType(options: Record<string, unknown>): string {
  if ('viewOn' in options) return 'view';
  if ('timeseries' in options) return 'timeseries';
  return 'collection';
}

/** Namespaces whose data is elsewhere or absent: a view has none, a time series' is in system.buckets.<name>. */
export function hasOwnData(metadata: CollectionMetadata): boolean {
  return metadata.type !== 'view' && metadata.type !== 'timeseries';
}
