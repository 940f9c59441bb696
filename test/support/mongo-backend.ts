/**
 * Picks the MongoDB server tests run against, fast and without downloads:
 * MONGODB_TEST_URI → a mongod that mongodb-memory-server can start from a binary already on disk
 * → the in-repo wire-protocol test server.
 */
import {constants} from 'node:fs';
import {access, readdir, stat} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {maskUri} from '../../src/config/redact.js';
import {startTestMongoServer} from './mongo-server/index.js';

export type MongoBackendKind = 'external' | 'mongod' | 'test-server';

export interface MongoBackend {
  uri: string;
  kind: MongoBackendKind;
  /** Why this backend was chosen, for test logs (connection strings masked). */
  detail: string;
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    const s = await stat(file);
    if (!s.isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** mongodb-memory-server names its binaries `mongod-<arch>-<dist>-<version>`. */
function looksLikeMongod(name: string): boolean {
  return name === 'mongod' || (name.startsWith('mongod-') && !/\.(lock|md5|tgz|zip|sig)$/.test(name));
}

async function findIn(dir: string, depth: number): Promise<string | undefined> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, {withFileTypes: true});
  } catch {
    return undefined;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (!e.isDirectory() && looksLikeMongod(e.name) && (await isExecutableFile(full))) return full;
  }
  if (depth > 0) {
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const found = await findIn(path.join(dir, e.name), depth - 1);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * A mongod binary mongodb-memory-server would use without downloading: MONGOMS_SYSTEM_BINARY,
 * else one already in its download caches. Only looks at the file system (milliseconds).
 */
export async function findLocalMongod(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const system = env.MONGOMS_SYSTEM_BINARY;
  if (system && (await isExecutableFile(system))) return system;
  const dirs = [
    env.MONGOMS_DOWNLOAD_DIR,
    path.join(REPO_ROOT, 'node_modules', '.cache', 'mongodb-memory-server'),
    path.join(os.homedir(), '.cache', 'mongodb-binaries'),
    path.join(process.cwd(), 'mongodb-binaries'),
  ].filter((d): d is string => typeof d === 'string' && d.length > 0);
  for (const dir of dirs) {
    const found = await findIn(dir, 1);
    if (found) return found;
  }
  return undefined;
}

async function startTestServer(reason: string): Promise<MongoBackend> {
  const server = await startTestMongoServer();
  return {uri: server.uri, kind: 'test-server', detail: reason, stop: () => server.close()};
}

export async function startMongo(opts: {label?: string} = {}): Promise<MongoBackend> {
  const label = opts.label ? `${opts.label}: ` : '';
  const external = process.env.MONGODB_TEST_URI;
  if (external) {
    return {uri: external, kind: 'external', detail: `${label}MONGODB_TEST_URI=${maskUri(external)}`, stop: async () => {}};
  }
  const binary = await findLocalMongod();
  if (!binary) return startTestServer(`${label}no local mongod binary (set MONGOMS_SYSTEM_BINARY or MONGODB_TEST_URI to use one)`);
  // Imported only now: the package reads config and may log at import time.
  const {MongoMemoryServer} = await import('mongodb-memory-server');
  try {
    const mms = await MongoMemoryServer.create({binary: {systemBinary: binary}});
    return {
      uri: mms.getUri(),
      kind: 'mongod',
      detail: `${label}mongodb-memory-server with ${binary}`,
      stop: async () => {
        await mms.stop({doCleanup: true, force: true});
      },
    };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return startTestServer(`${label}mongod at ${binary} failed to start (${why}); using the test server`);
  }
}

export function describeBackend(kind: MongoBackendKind): string {
  switch (kind) {
    case 'external':
      return 'external MongoDB server (MONGODB_TEST_URI)';
    case 'mongod':
      return 'real mongod via mongodb-memory-server';
    case 'test-server':
      return 'in-repo MongoDB wire-protocol test server (no mongod available)';
  }
}
