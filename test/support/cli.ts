/** Runs the built CLI (`bin/run.js`) as a user would, asynchronously (servers may live in this process). */
import {spawn} from 'node:child_process';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'run.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A clean environment: no GRAVITY_RESTORE_* or AWS_* from the caller leaks into a test. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(GRAVITY_RESTORE_|AWS_|MONGODB_TEST_URI)/.test(k)) env[k] = v;
  env.CI = 'true';
  return {...env, ...extra};
}

export function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; cwd?: string; input?: string} = {}): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: options.cwd ?? REPO_ROOT, env: options.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({code, stdout, stderr, ms: Date.now() - started}));
    child.stdin.end(options.input ?? '');
  });
}

/** Parses stdout as the single JSON document --json promises. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`stdout is not one JSON document (exit ${result.code}):\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

/**
 * A failure as the user sees it: a non-zero exit, exactly one `Error:` line that matches, naming
 * the problem and the next step, and no stack trace. Progress lines before it are fine.
 */
export function assertCleanError(result: CliResult, pattern: RegExp): void {
  if (result.code === 0) throw new Error(`expected a failure, got exit 0:\n${result.stdout}`);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('Error:'));
  if (errors.length !== 1) throw new Error(`expected one Error: line on stderr, got:\n${result.stderr}`);
  if (!pattern.test(errors[0]!)) throw new Error(`error line does not match ${pattern}:\n${errors[0]}`);
  if (/\n\s+at /.test(result.stderr)) throw new Error(`stack trace without --debug:\n${result.stderr}`);
}
