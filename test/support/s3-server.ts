/**
 * A local S3 server (s3rver) on 127.0.0.1 for tests and the sandbox.
 *
 * It runs in a child process because s3rver encrypts ListObjectsV2 continuation tokens with DES,
 * which Node 20 only offers under `--openssl-legacy-provider` — a process-wide option we do not
 * want in the test process itself. The child exits when its stdin closes, so it dies with us.
 */

import {spawn, type ChildProcess} from 'node:child_process';
import {mkdtemp, rm} from 'node:fs/promises';
import {createRequire} from 'node:module';
import os from 'node:os';
import path from 'node:path';
import {createInterface} from 'node:readline';

import {CreateBucketCommand} from '@aws-sdk/client-s3';

import {createS3Client} from '../../src/s3/client.js';

export interface S3Server {
  endpoint: string;
  bucket?: string;
  region: 'us-east-1';
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** The folder s3rver stores objects in. */
  directory: string;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

const RUNNER = `
const S3rver = require(process.argv[1]);
const server = new S3rver({address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2]});
server.run().then((address) => {
  process.stdout.write(JSON.stringify({port: address.port}) + '\\n');
}, (error) => {
  process.stderr.write(String(error && error.stack || error) + '\\n');
  process.exit(1);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
`;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

export async function startS3Server(options: {dir?: string; bucket?: string} = {}): Promise<S3Server> {
  const ownDirectory = options.dir === undefined;
  const directory = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'gravity-s3rver-')));
  const s3rverMain = createRequire(import.meta.url).resolve('s3rver');
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', RUNNER, s3rverMain, directory], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {...process.env, NODE_OPTIONS: ''},
  });
  running.add(child);
  installExitHook();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-10_000);
  });

  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({input: child.stdout as NodeJS.ReadableStream});
    const timer = setTimeout(() => reject(new Error(`s3rver did not start within 15 s: ${stderr}`)), 15_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as {port: number}).port);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code}: ${stderr}`));
    });
  }).catch(async (error: unknown) => {
    running.delete(child);
    child.kill('SIGKILL');
    if (ownDirectory) await rm(directory, {recursive: true, force: true});
    throw error;
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const client = createS3Client({endpoint, region: 'us-east-1', credentials: {accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER'}});
  const server: S3Server = {
    endpoint,
    region: 'us-east-1',
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    directory,
    async createBucket(name: string) {
      await client.send(new CreateBucketCommand({Bucket: name}));
    },
    async stop() {
      client.destroy();
      if (running.has(child)) {
        running.delete(child);
        const exited = new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) resolve();
          else child.once('exit', () => resolve());
        });
        child.stdin?.end();
        child.kill('SIGTERM');
        await exited;
      }
      if (ownDirectory) await rm(directory, {recursive: true, force: true});
    },
  };
  if (options.bucket) {
    await server.createBucket(options.bucket);
    server.bucket = options.bucket;
  }
  return server;
}

/** Environment for a spawned CLI that should talk to this server. */
export function s3EnvFor(server: Pick<S3Server, 'endpoint' | 'region' | 'accessKeyId' | 'secretAccessKey'>): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
    AWS_REGION: server.region,
    GRAVITY_RESTORE_S3_ENDPOINT: server.endpoint,
  };
}
