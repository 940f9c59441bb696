import type {SingleBar} from 'cli-progress';
import type {Ora} from 'ora';

import {redact} from '../config/redact.js';

/**
 * Everything a command shows while it works goes through here, to stderr. Spinners and bars
 * appear only when stderr is a terminal and --json is off; otherwise progress is silent and
 * notes are plain lines (still on stderr, so stdout stays the command's result).
 */
export interface Reporter {
  readonly interactive: boolean;
  note(message: string): void;
  /** A decision the user did not spell out (a backup a time selected): on stderr even under --json. */
  notice(message: string): void;
  warn(message: string): void;
  spin(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  /** A byte or item progress bar; `update` is cheap enough to call often. */
  bar(label: string, total: number, unit?: 'bytes' | 'docs'): ProgressHandle;
  stop(): void;
}

export interface ProgressHandle {
  update(value: number, total?: number, extra?: string): void;
  done(): void;
}

export interface ReporterOptions {
  json: boolean;
  stream?: NodeJS.WriteStream;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${i === 0 ? value : value.toFixed(1)} ${units[i]}`;
}

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  const stream = options.stream ?? process.stderr;
  // A terminal that reports no width (some pseudo-terminals) cannot redraw a spinner line.
  const interactive = Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !options.json && !process.env.CI;
  // Spinners and bars draw only on a terminal: logs, pipes and --json never load them.
  const {default: ora} = interactive ? await import('ora') : {default: null};
  const {SingleBar: Bar} = interactive ? await import('cli-progress') : {SingleBar: null};
  let spinner: Ora | null = null;
  let activeBar: SingleBar | null = null;

  const line = (text: string) => {
    if (options.json && !process.env.GRAVITY_RESTORE_VERBOSE) return;
    if (spinner?.isSpinning) spinner.clear();
    stream.write(`${redact(text)}\n`);
    if (spinner?.isSpinning) spinner.render();
  };

  return {
    interactive,
    note: line,
    notice(message) {
      if (spinner?.isSpinning) spinner.clear();
      stream.write(`${redact(message)}\n`);
      if (spinner?.isSpinning) spinner.render();
    },
    warn(message) {
      // Warnings matter even under --json: they go to stderr, which --json leaves free.
      if (spinner?.isSpinning) spinner.clear();
      stream.write(`Warning: ${redact(message)}\n`);
    },
    spin(text) {
      if (!ora) return;
      if (spinner) spinner.text = redact(text);
      else spinner = ora({text: redact(text), stream}).start();
    },
    succeed(text) {
      // Without a spinner (not a terminal) the outcome is still worth a plain line in the log.
      if (spinner) spinner.succeed(text === undefined ? undefined : redact(text));
      else if (text !== undefined) line(text);
      spinner = null;
    },
    fail(text) {
      if (spinner) spinner.fail(text === undefined ? undefined : redact(text));
      spinner = null;
    },
    bar(label, total, unit = 'bytes') {
      if (!Bar) return {update() {}, done() {}};
      spinner?.stop();
      spinner = null;
      const started = Date.now();
      const bar = new Bar(
        {
          stream,
          format: `${label} [{bar}] {percentage}% | {amount} | {rate} | ETA {eta_formatted} {extra}`,
          hideCursor: true,
          clearOnComplete: false,
          etaBuffer: 50,
        },
      );
      activeBar = bar;
      const payload = (value: number, extra = '') => {
        const seconds = Math.max((Date.now() - started) / 1000, 0.001);
        return unit === 'bytes'
          ? {amount: `${formatBytes(value)}/${formatBytes(bar.getTotal())}`, rate: `${formatBytes(value / seconds)}/s`, extra}
          : {amount: `${value}/${bar.getTotal()} docs`, rate: `${Math.round(value / seconds)} docs/s`, extra};
      };
      bar.start(Math.max(total, 1), 0, payload(0));
      return {
        update(value, newTotal, extra) {
          if (newTotal !== undefined && newTotal !== bar.getTotal()) bar.setTotal(Math.max(newTotal, 1));
          bar.update(value, payload(value, extra));
        },
        done() {
          bar.stop();
          if (activeBar === bar) activeBar = null;
        },
      };
    },
    stop() {
      activeBar?.stop();
      activeBar = null;
      spinner?.stop();
      spinner = null;
    },
  };
}
