/**
 * Driving bin/run.js the way a person does: on a terminal (a pseudo-terminal from util-linux
 * `script`) answering its prompts, or pressing Ctrl-C (SIGINT) while it works.
 */
import {spawn, spawnSync, type ChildProcess} from 'node:child_process';

import {BIN, REPO_ROOT, type CliResult} from './cli.js';

export const hasScript = spawnSync('script', ['--version'], {stdio: 'ignore'}).status === 0;

function shellQuote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export interface Answer {
  /** Sent once the terminal output (ANSI codes removed) matches this. */
  when: RegExp;
  send: string;
}

/** Terminal output without colours and cursor movement, so prompts read as text. */
export function plainTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
}

/**
 * Runs the CLI on a pseudo-terminal (stdin, stdout and stderr are all the terminal) and types each
 * answer when its prompt appears. `output` is everything the terminal showed, echoed input too.
 */
export function runCliOnTerminal(args: string[], options: {env: NodeJS.ProcessEnv; cwd?: string; answers?: Answer[]}): Promise<{code: number | null; output: string}> {
  const command = [process.execPath, BIN, ...args].map(shellQuote).join(' ');
  // A terminal session is a person, not CI: the CLI refuses to prompt when CI is set.
  const env = {...options.env};
  delete env.CI;
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', command, '/dev/null'], {cwd: options.cwd ?? REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe']});
    const pending = [...(options.answers ?? [])];
    let output = '';
    const onOutput = (chunk: Buffer) => {
      output += chunk.toString();
      while (pending.length > 0 && pending[0]!.when.test(plainTerminal(output))) child.stdin.write(pending.shift()!.send);
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('error', reject);
    // stdin stays open until the end: `script` would pass an early end-of-file on to the CLI.
    child.on('close', (code) => resolve({code, output: plainTerminal(output)}));
  });
}

export interface RunningCli {
  child: ChildProcess;
  /** Resolves when stderr matches (progress lines tell how far the command got). */
  stderrMatches(pattern: RegExp): Promise<void>;
  done: Promise<CliResult>;
}

/** Starts the CLI without waiting for it, so a test can interrupt it. */
export function startCli(args: string[], options: {env: NodeJS.ProcessEnv; cwd?: string}): RunningCli {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, ...args], {cwd: options.cwd ?? REPO_ROOT, env: options.env, stdio: ['pipe', 'pipe', 'pipe']});
  let stdout = '';
  let stderr = '';
  const watchers: Array<{pattern: RegExp; resolve: () => void}> = [];
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    for (const w of [...watchers]) {
      if (w.pattern.test(stderr)) {
        watchers.splice(watchers.indexOf(w), 1);
        w.resolve();
      }
    }
  });
  child.stdin!.end();
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({code, stdout, stderr, ms: Date.now() - started}));
  });
  return {
    child,
    done,
    stderrMatches(pattern: RegExp) {
      if (pattern.test(stderr)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        watchers.push({pattern, resolve});
        void done.then((r) => reject(new Error(`the CLI ended (exit ${r.code}) before stderr matched ${pattern}:\n${r.stderr}`)));
      });
    },
  };
}
