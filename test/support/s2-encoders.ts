/**
 * Independent encoders for the S2/Snappy decoder's tests:
 * - `s2-encode/main.go` built against Debian's golang-github-klauspost-compress-dev (the S2
 *   library PBM writes `.s2` with) — needs `go` and that package (`apt-get install golang-go
 *   golang-github-klauspost-compress-dev`);
 * - `lz4-encode/main.go` built against Debian's golang-github-pierrec-lz4-dev (PBM's `.lz4` writer);
 *   `s2-encode -zstd` writes zstd with klauspost/compress/zstd (PBM's `.zst` writer);
 * - `snappy-encode/main.go` built against Debian's golang-github-golang-snappy-dev (the framed
 *   writer PBM writes `.snappy` with);
 * - python3-snappy's framed `StreamCompressor` (Google's C++ snappy for the blocks) run by Debian's
 *   /usr/bin/python3, its CRC-32C taken from python3-crcmod because python3-snappy 0.5.3's own C
 *   checksum fails on Python 3.11 ("PY_SSIZE_T_CLEAN macro must be defined").
 * Each is undefined when the machine lacks it, with the reason.
 */
import {execFile, spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdtemp} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const GOPATH = '/usr/share/gocode';

export type Encode = (data: Buffer, args?: string[]) => Promise<Buffer>;

function pipeThrough(command: string, args: string[], data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {stdio: ['pipe', 'pipe', 'pipe']});
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`${command} exited ${code}: ${Buffer.concat(err).toString()}`));
    });
    child.stdin.end(data);
  });
}

async function goBuild(folder: string, library: string, packageName: string): Promise<{encode?: Encode; reason?: string}> {
  if (!existsSync(path.join(GOPATH, 'src', library))) return {reason: `${packageName} is not installed`};
  const binary = path.join(await mkdtemp(path.join(os.tmpdir(), `${folder}-`)), folder);
  try {
    await run('go', ['build', '-o', binary, '.'], {
      cwd: path.join(here, folder),
      env: {...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: ''},
    });
  } catch (error) {
    return {reason: `cannot build ${folder}: ${(error as Error).message.split('\n')[0]}`};
  }
  return {encode: (data, args = []) => pipeThrough(binary, args, data)};
}

/** The Go S2 stream encoder (klauspost/compress s2.NewWriter), built once into a temp folder; `args` are its flags (see main.go). */
export function goS2Encoder(): Promise<{encode?: Encode; reason?: string}> {
  return goBuild('s2-encode', 'github.com/klauspost/compress/s2', 'golang-github-klauspost-compress-dev');
}

/** pierrec/lz4's frame writer, as PBM writes `.lz4` files; `args` are its flags (see lz4-encode/main.go). */
export function goLz4Encoder(): Promise<{encode?: Encode; reason?: string}> {
  return goBuild('lz4-encode', 'github.com/pierrec/lz4', 'golang-github-pierrec-lz4-dev');
}

/** golang/snappy's framed writer, as PBM writes `.snappy` files (`snappy.NewBufferedWriter`). */
export function goSnappyEncoder(): Promise<{encode?: Encode; reason?: string}> {
  return goBuild('snappy-encode', 'github.com/golang/snappy', 'golang-github-golang-snappy-dev');
}

const PYTHON_SNAPPY = `
import sys, crcmod.predefined, snappy.snappy as s
s._crc32c = crcmod.predefined.mkPredefinedCrcFun('crc-32c')
data = sys.stdin.buffer.read()
c = s.StreamCompressor()
sys.stdout.buffer.write(c.add_chunk(data) if data else c.add_chunk(b''))
`;

/** python3-snappy's framed Snappy stream writer. */
export async function pythonSnappyEncoder(): Promise<{encode?: Encode; reason?: string}> {
  try {
    await run('/usr/bin/python3', ['-c', 'import snappy, crcmod']);
  } catch {
    return {reason: 'python3-snappy or python3-crcmod is not installed for /usr/bin/python3'};
  }
  return {encode: (data) => pipeThrough('/usr/bin/python3', ['-c', PYTHON_SNAPPY], data)};
}
