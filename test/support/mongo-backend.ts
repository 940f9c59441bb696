/**
 * Picks the MongoDB server tests, the sandbox and the demo run against, and says why.
 *
 * GRAVITY_RESTORE_TEST_MONGO chooses the mode:
 * - `auto` (default): MONGODB_TEST_URI → a mongod binary already on disk (MONGOMS_SYSTEM_BINARY or
 *   mongodb-memory-server's caches) → a mongod that mongodb-memory-server downloads, when its
 *   download host answers a quick probe → the in-repo wire-protocol test server. A machine that
 *   cannot reach the download host falls back at once instead of waiting on a download that
 *   cannot succeed.
 * - `test-server`: always the in-repo test server.
 * - `mongod`: MONGODB_TEST_URI or a real mongod (downloaded if needed); failing to get one is an error.
 * - `replset`: MONGODB_TEST_URI or a real replica set (mongodb-memory-server's MongoMemoryReplSet).
 */
import {spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {constants} from 'node:fs';
import {access, readFile, readdir, stat, writeFile} from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {maskUri} from '../../src/config/redact.js';
import {startTestMongoServer} from './mongo-server/index.js';

export type MongoBackendKind = 'external' | 'mongod' | 'replset' | 'test-server';
export type MongoBackendMode = 'auto' | 'test-server' | 'mongod' | 'replset';

export interface MongoBackend {
  uri: string;
  kind: MongoBackendKind;
  /** Why this backend was chosen, in one line, for logs (connection strings masked). */
  detail: string;
  /** For the test server: why no real MongoDB was used, without the label. */
  why?: string;
  stop(): Promise<void>;
}

export interface StartMongoOptions {
  /** Prefix for `detail`, e.g. the suite name. */
  label?: string;
  /** Environment to read the choice from; defaults to process.env (which also caches the probe). */
  env?: NodeJS.ProcessEnv;
  /** How long the download host may take to answer; default 3 s. */
  probeTimeoutMs?: number;
  /**
   * A server with an oplog: the test server in replica-set mode (this name as its set name), or a
   * real mongod started as a one-member replica set. MONGODB_TEST_URI is used as it is.
   */
  replSet?: string;
}

export const MODE_VAR = 'GRAVITY_RESTORE_TEST_MONGO';
/** Carries one probe result to child processes (sandbox, demo, CLI runs) so they do not probe again. */
export const PROBE_VAR = 'GRAVITY_RESTORE_MONGOD_PROBE';
const MODES: readonly MongoBackendMode[] = ['auto', 'test-server', 'mongod', 'replset'];
const DEFAULT_DOWNLOAD_HOST = 'https://fastdl.mongodb.org';
const DEFAULT_PROBE_TIMEOUT_MS = 3000;
/** Sibling processes (test files run in parallel) share a probe through a temp file this long. */
const PROBE_FILE_TTL_MS = 5 * 60 * 1000;
const REPLSET_MEMBERS = 3;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export function backendMode(env: NodeJS.ProcessEnv = process.env): MongoBackendMode {
  const raw = (env[MODE_VAR] ?? '').trim().toLowerCase();
  if (raw === '') return 'auto';
  if ((MODES as readonly string[]).includes(raw)) return raw as MongoBackendMode;
  throw new Error(`${MODE_VAR}=${env[MODE_VAR]} is not one of ${MODES.join(', ')}`);
}

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
function looksLikeMongod(name: string, version: string | undefined): boolean {
  if (name === 'mongod') return version === undefined;
  if (!name.startsWith('mongod-') || /\.(lock|md5|tgz|zip|sig)$/.test(name)) return false;
  // A cache may hold several versions; MONGOMS_VERSION asks for one of them.
  return version === undefined || name.endsWith(`-${version}`);
}

async function findIn(dir: string, depth: number, version: string | undefined): Promise<string | undefined> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, {withFileTypes: true});
  } catch {
    return undefined;
  }
  for (const e of entries) {
    const full = path.join(dir, e.name);
    if (!e.isDirectory() && looksLikeMongod(e.name, version) && (await isExecutableFile(full))) return full;
  }
  if (depth > 0) {
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      const found = await findIn(path.join(dir, e.name), depth - 1, version);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * A mongod binary mongodb-memory-server would use without downloading: MONGOMS_SYSTEM_BINARY,
 * else one already in its download caches (of MONGOMS_VERSION, when set). Only looks at the file
 * system (milliseconds).
 */
export async function findLocalMongod(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const system = env.MONGOMS_SYSTEM_BINARY;
  if (system && (await isExecutableFile(system))) return system;
  const home = env.HOME || os.homedir();
  const dirs = [
    env.MONGOMS_DOWNLOAD_DIR,
    path.join(REPO_ROOT, 'node_modules', '.cache', 'mongodb-memory-server'),
    path.join(home, '.cache', 'mongodb-binaries'),
    path.join(process.cwd(), 'mongodb-binaries'),
  ].filter((d): d is string => typeof d === 'string' && d.length > 0);
  const version = env.MONGOMS_VERSION?.trim() || undefined;
  for (const dir of dirs) {
    const found = await findIn(dir, 1, version);
    if (found) return found;
  }
  return undefined;
}

export interface ProbeResult {
  /** The URL probed (mongodb-memory-server's download mirror). */
  host: string;
  reachable: boolean;
  /** `answered HTTP 200`, `getaddrinfo ENOTFOUND …`, `no answer within 3 s`. */
  reason: string;
  ms: number;
  /** Where the result came from: this probe, the environment, or the shared temp file. */
  source: 'probe' | 'env' | 'file';
  /** When the probe ran (ms since the epoch). */
  at: number;
}

/** The host mongodb-memory-server would download from, as it resolves it. */
export function downloadHost(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.MONGOMS_DOWNLOAD_URL || env.MONGOMS_DOWNLOAD_MIRROR;
  if (explicit) {
    try {
      return new URL(explicit).origin;
    } catch {
      return explicit;
    }
  }
  return DEFAULT_DOWNLOAD_HOST;
}

/** The proxy mongodb-memory-server's downloader would tunnel through (it reads these, in this order, and ignores NO_PROXY). */
function downloadProxy(env: NodeJS.ProcessEnv): URL | undefined {
  const names = ['yarn_https-proxy', 'yarn_proxy', 'npm_config_https-proxy', 'npm_config_proxy', 'https_proxy', 'http_proxy', 'HTTPS_PROXY', 'HTTP_PROXY'];
  const raw = names.map((n) => env[n]).find((v) => v);
  if (!raw) return undefined;
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
}

/**
 * One HEAD request to the download host, or a CONNECT through the proxy mongodb-memory-server
 * would tunnel through. Any HTTP answer counts as reachable: what matters is that the download
 * would not hang. Certificates are not checked, as the downloader does not check them either
 * (unless npm_config_strict_ssl=true).
 */
export function probeDownloadHost(host: string, timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<ProbeResult> {
  const started = performance.now();
  const done = (reachable: boolean, reason: string): ProbeResult => ({host, reachable, reason, ms: Math.round(performance.now() - started), source: 'probe', at: Date.now()});
  return new Promise<ProbeResult>((resolve) => {
    let target: URL;
    try {
      target = new URL(host);
    } catch {
      resolve(done(false, `not a URL: ${host}`));
      return;
    }
    let settled = false;
    const requests: http.ClientRequest[] = [];
    const finish = (reachable: boolean, reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const r of requests) r.destroy();
      resolve(done(reachable, reason));
    };
    const timer = setTimeout(() => finish(false, `no answer within ${(timeoutMs / 1000).toFixed(1).replace(/\.0$/, '')} s`), timeoutMs);
    const failed = (e: NodeJS.ErrnoException) => finish(false, e.code && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : e.message || String(e.code));
    const proxy = downloadProxy(env);
    if (proxy) {
      // The downloader defaults the port to 443 whatever the scheme.
      const connect = http.request({host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT', path: `${target.hostname}:${target.port || '443'}`});
      requests.push(connect);
      connect.on('connect', (res) => finish(res.statusCode === 200, `proxy ${proxy.host} answered CONNECT with ${res.statusCode}`));
      connect.on('error', failed);
      connect.end();
      return;
    }
    const strict = env.npm_config_strict_ssl === 'true';
    const req = target.protocol === 'https:' ? https.request(target, {method: 'HEAD', rejectUnauthorized: strict}) : http.request(target, {method: 'HEAD'});
    requests.push(req);
    req.on('response', (res) => {
      res.resume();
      finish(true, `answered HTTP ${res.statusCode}`);
    });
    req.on('error', failed);
    req.end();
  });
}

/** The temp file that shares the probe of `host` between sibling processes. */
export function probeCacheFile(host: string): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  const key = createHash('sha256').update(host).digest('hex').slice(0, 12);
  return path.join(os.tmpdir(), `gravity-restore-mongod-probe-${uid}-${key}.json`);
}

function parseCached(raw: string | undefined, host: string, source: 'env' | 'file', maxAgeMs: number): ProbeResult | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<ProbeResult> & {at?: number};
    if (v.host !== host || typeof v.reachable !== 'boolean' || typeof v.at !== 'number') return undefined;
    if (Date.now() - v.at > maxAgeMs) return undefined;
    return {host, reachable: v.reachable, reason: String(v.reason ?? ''), ms: Number(v.ms ?? 0), source, at: v.at};
  } catch {
    return undefined;
  }
}

/**
 * The probe, done once per run: a result in the environment (inherited from the process that
 * started this one) or in a fresh temp file (left by a sibling test file) is reused.
 */
export async function downloadHostReachable(env: NodeJS.ProcessEnv = process.env, timeoutMs = DEFAULT_PROBE_TIMEOUT_MS): Promise<ProbeResult> {
  const host = downloadHost(env);
  const fromEnv = parseCached(env[PROBE_VAR], host, 'env', Number.POSITIVE_INFINITY);
  if (fromEnv) return fromEnv;
  const file = probeCacheFile(host);
  const fromFile = parseCached(await readFile(file, 'utf8').catch(() => undefined), host, 'file', PROBE_FILE_TTL_MS);
  const result = fromFile ?? (await probeDownloadHost(host, timeoutMs, env));
  const record = JSON.stringify({host, reachable: result.reachable, reason: result.reason, ms: result.ms, at: result.at});
  env[PROBE_VAR] = record;
  if (!fromFile) await writeFile(file, record).catch(() => undefined);
  return result;
}

/** A child's error output in one line: from the first line naming an error to its stack trace. */
function summarise(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim());
  const start = Math.max(0, lines.findIndex((l) => /^[A-Z]\w*Error\b/.test(l)));
  const end = lines.findIndex((l, i) => i > start && l.startsWith('at '));
  return lines.slice(start, end === -1 ? undefined : end).filter(Boolean).join(' ').slice(0, 400) || 'no error output';
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}

/**
 * Lets mongodb-memory-server fetch mongod into its cache, in a child process: it prints download
 * progress on stdout, which belongs to the sandbox's JSON line and to test output, so the child's
 * stdout goes to our stderr and the binary's path comes back on fd 3.
 */
export async function downloadMongod(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const version = env.MONGOMS_VERSION?.trim() || "mongodb-memory-server's default version";
  process.stderr.write(`mongod: fetching MongoDB ${version} from ${downloadHost(env)} into mongodb-memory-server's cache (once; later runs reuse it)\n`);
  const script = [
    "import {writeSync} from 'node:fs';",
    "import {MongoBinary} from 'mongodb-memory-server';",
    'writeSync(3, await MongoBinary.getPath());',
  ].join('\n');
  return await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: {...env, MONGOMS_RUNTIME_DOWNLOAD: 'true'},
      stdio: ['ignore', 2, 'pipe', 'pipe'],
    });
    let found = '';
    let errors = '';
    child.stdio[3]!.on('data', (c: Buffer) => (found += c.toString()));
    // Kept back: on failure it is a stack trace; the error below carries its first lines.
    child.stderr!.on('data', (c: Buffer) => (errors += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 && found) resolve(found.trim());
      else reject(new Error(`mongodb-memory-server could not fetch mongod (exit ${code}): ${summarise(errors)}`));
    });
  });
}

async function startTestServer(detail: string, why: string, replSet: string | undefined): Promise<MongoBackend> {
  const server = await startTestMongoServer(replSet ? {replSet} : {});
  const mode = replSet ? ` (replica set ${replSet}, with an oplog)` : '';
  return {uri: server.uri, kind: 'test-server', detail: `${detail}${mode}`, why, stop: () => server.close()};
}

async function startMongod(binary: string): Promise<MongoBackend> {
  // Imported only now: the package reads config and may log at import time.
  const {MongoMemoryServer} = await import('mongodb-memory-server');
  const mms = await MongoMemoryServer.create({binary: {systemBinary: binary}});
  return {
    uri: mms.getUri(),
    kind: 'mongod',
    detail: `mongodb-memory-server with ${binary}`,
    stop: async () => {
      await mms.stop({doCleanup: true, force: true});
    },
  };
}

async function startReplSet(binary: string, members = REPLSET_MEMBERS, name?: string): Promise<MongoBackend> {
  const {MongoMemoryReplSet} = await import('mongodb-memory-server');
  const rs = await MongoMemoryReplSet.create({binary: {systemBinary: binary}, replSet: {count: members, storageEngine: 'wiredTiger', ...(name ? {name} : {})}});
  await rs.waitUntilRunning();
  return {
    uri: rs.getUri(),
    kind: 'replset',
    detail: `mongodb-memory-server replica set of ${members} with ${binary}`,
    stop: async () => {
      await rs.stop({doCleanup: true, force: true});
    },
  };
}

/** The same server's URI with `db` as its path (credentials and options kept). */
export function withDb(uri: string, db: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match) throw new Error(`not a MongoDB URI: ${uri}`);
  return `${match[1]}/${db}${match[3] ?? ''}`;
}

/** Starts the backend the environment asks for; see the file comment for the order. */
export async function startMongo(opts: StartMongoOptions = {}): Promise<MongoBackend> {
  const env = opts.env ?? process.env;
  const label = opts.label ? `${opts.label}: ` : '';
  const withLabel = (b: MongoBackend): MongoBackend => ({...b, detail: `${label}${b.detail}`});
  const mode = backendMode(env);
  const replSet = opts.replSet;
  if (mode === 'test-server') return startTestServer(`${label}${MODE_VAR}=test-server`, `${MODE_VAR}=test-server`, replSet);

  const external = env.MONGODB_TEST_URI;
  if (external) {
    return {uri: external, kind: 'external', detail: `${label}MONGODB_TEST_URI=${maskUri(external)}`, stop: async () => {}};
  }

  if (mode === 'mongod' || mode === 'replset') {
    // Asked for explicitly: a failure is the answer, not a reason to test something else.
    const binary = (await findLocalMongod(env)) ?? (await downloadMongod(env));
    const b = mode === 'replset' ? await startReplSet(binary) : replSet ? await startReplSet(binary, 1, replSet) : await startMongod(binary);
    return withLabel(b);
  }

  const fallBack = (why: string) => startTestServer(`${label}no real mongod: ${why}; using the in-repo test server (set MONGODB_TEST_URI, or ${MODE_VAR}=mongod to insist)`, why, replSet);
  let binary = await findLocalMongod(env);
  if (!binary) {
    const probe = await downloadHostReachable(env, opts.probeTimeoutMs);
    if (!probe.reachable) {
      const cached = probe.source === 'probe' ? '' : `, probed ${Math.round((Date.now() - probe.at) / 1000)} s ago`;
      return fallBack(`no local binary and ${probe.host} unreachable (${probe.reason}, ${probe.ms} ms${cached})`);
    }
    try {
      binary = await downloadMongod(env);
    } catch (e) {
      return fallBack(firstLine(e));
    }
  }
  try {
    return withLabel(replSet ? await startReplSet(binary, 1, replSet) : await startMongod(binary));
  } catch (e) {
    return fallBack(`mongod at ${binary} failed to start (${firstLine(e)})`);
  }
}

export function describeBackend(kind: MongoBackendKind): string {
  switch (kind) {
    case 'external':
      return 'external MongoDB server (MONGODB_TEST_URI)';
    case 'mongod':
      return 'real mongod via mongodb-memory-server';
    case 'replset':
      return 'real mongod replica set via mongodb-memory-server';
    case 'test-server':
      return 'in-repo MongoDB wire-protocol test server (no mongod available)';
  }
}
