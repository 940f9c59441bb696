import {readFile} from 'node:fs/promises';

import {GravityError} from '../errors.js';
import type {Relation} from '../restore-set/manifest.js';

/** The optional JSON config file (`--config`, default ./gravity-restore.config.json). */
export interface ConfigFile {
  source?: string;
  sourceTz?: string;
  endpoint?: string;
  region?: string;
  cache?: string;
  tz?: string;
  relations?: Relation[];
  /** Field paths whose distinct values among restored documents `report` lists as who to notify. */
  notify?: string[];
  /**
   * Connection strings, or {uri, db}; the environment takes precedence. Prefer env vars for secrets.
   * `db` names the target database (a URI path is the authentication database in MongoDB).
   */
  targets?: {staging?: string; production?: string};
  targetDbs?: {staging?: string; production?: string};
  /** Oplog sources: one, or a list (files, folders, s3:// prefixes of local.oplog.rs dumps, staging, production, URIs). */
  oplog?: string[];
}

export const DEFAULT_CONFIG_FILE = 'gravity-restore.config.json';

const STRING_KEYS = ['source', 'sourceTz', 'endpoint', 'region', 'cache', 'tz'] as const;
const RELATION_KEYS = new Set(['from', 'to', 'foreignField', 'localField']);

function bad(file: string, key: string, problem: string): GravityError {
  return new GravityError('CONFIG_INVALID', `Config file ${file}: "${key}" ${problem}`, {
    hint: 'Fix the key or remove it; see README "Configuration"',
    details: {file, key},
  });
}

/** Validate parsed JSON as a config file; every error names the bad key. */
export function validateConfig(value: unknown, file: string): ConfigFile {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new GravityError('CONFIG_INVALID', `Config file ${file} must hold a JSON object`, {hint: 'See README "Configuration" for an example'});
  }
  const input = value as Record<string, unknown>;
  const config: ConfigFile = {};
  for (const [key, v] of Object.entries(input)) {
    if ((STRING_KEYS as readonly string[]).includes(key)) {
      if (typeof v !== 'string' || v.length === 0) throw bad(file, key, 'must be a non-empty string');
      config[key as (typeof STRING_KEYS)[number]] = v;
    } else if (key === 'relations') {
      if (!Array.isArray(v)) throw bad(file, key, 'must be an array of {from, to, foreignField, localField?}');
      config.relations = v.map((r: unknown, i) => {
        const where = `relations[${i}]`;
        if (!r || typeof r !== 'object' || Array.isArray(r)) throw bad(file, where, 'must be an object {from, to, foreignField, localField?}');
        const rel = r as Record<string, unknown>;
        for (const k of Object.keys(rel)) if (!RELATION_KEYS.has(k)) throw bad(file, `${where}.${k}`, 'is not a known key (from, to, foreignField, localField)');
        for (const k of ['from', 'to', 'foreignField'] as const) {
          if (typeof rel[k] !== 'string' || (rel[k] as string).length === 0) throw bad(file, `${where}.${k}`, 'must be a non-empty string');
        }
        if (rel.localField !== undefined && (typeof rel.localField !== 'string' || rel.localField.length === 0)) {
          throw bad(file, `${where}.localField`, 'must be a non-empty string');
        }
        const relation: Relation = {from: rel.from as string, to: rel.to as string, foreignField: rel.foreignField as string};
        if (typeof rel.localField === 'string') relation.localField = rel.localField;
        return relation;
      });
    } else if (key === 'targets') {
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(file, key, 'must be an object {staging?, production?}');
      const targets: NonNullable<ConfigFile['targets']> = {};
      const dbs: NonNullable<ConfigFile['targetDbs']> = {};
      for (const [name, entry] of Object.entries(v as Record<string, unknown>)) {
        if (name !== 'staging' && name !== 'production') throw bad(file, `targets.${name}`, 'is not a known target (staging, production)');
        const spec = typeof entry === 'string' ? {uri: entry} : entry;
        if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw bad(file, `targets.${name}`, 'must be a mongodb:// connection string or {"uri", "db"}');
        for (const [k, value] of Object.entries(spec as Record<string, unknown>)) {
          if (k === 'uri') {
            if (typeof value !== 'string' || !/^mongodb(\+srv)?:\/\//.test(value)) throw bad(file, `targets.${name}.uri`, 'must be a mongodb:// connection string');
            targets[name] = value;
          } else if (k === 'db') {
            if (typeof value !== 'string' || value.length === 0 || /[/\\. "$]/.test(value)) throw bad(file, `targets.${name}.db`, 'must be a database name');
            dbs[name] = value;
          } else {
            throw bad(file, `targets.${name}.${k}`, 'is not a known key (uri, db)');
          }
        }
      }
      config.targets = targets;
      config.targetDbs = dbs;
    } else if (key === 'notify') {
      if (!Array.isArray(v) || v.some((f) => typeof f !== 'string' || f.length === 0 || f.split('.').some((p: string) => p === '' || p.startsWith('$')))) {
        throw bad(file, key, 'must be a list of field paths, e.g. ["partner_id", "user_id"]');
      }
      config.notify = v as string[];
    } else if (key === 'oplog') {
      const list = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(list) || list.length === 0 || list.some((s) => typeof s !== 'string' || s.trim() === '')) {
        throw bad(file, key, 'must be a source or a list of sources (a folder or file of oplog dumps, s3://bucket/prefix/, staging, production, mongodb://…)');
      }
      config.oplog = list as string[];
    } else if (key === '$schema' || key === '//') {
      continue;
    } else {
      throw bad(file, key, `is not a known key (${[...STRING_KEYS, 'relations', 'targets', 'notify', 'oplog'].join(', ')})`);
    }
  }
  return config;
}

/** Read the config file; a missing default file is fine, a missing explicit one is an error. */
export async function loadConfigFile(file: string | undefined): Promise<{file: string | null; config: ConfigFile}> {
  const path = file ?? DEFAULT_CONFIG_FILE;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && file === undefined) return {file: null, config: {}};
    throw new GravityError('CONFIG_INVALID', `Cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      hint: 'Check the --config path',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GravityError('CONFIG_INVALID', `Config file ${path} is not valid JSON (${(error as Error).message})`, {hint: 'Fix the JSON syntax'});
  }
  return {file: path, config: validateConfig(parsed, path)};
}
