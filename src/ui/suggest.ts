/**
 * "Did you mean …?" for mistyped flags and commands, and one-line forms of the framework's parse
 * errors: a person who typed `--colection` needs the right spelling, not the whole usage again.
 */

import {GravityError} from '../errors.js';

/** Edit distance where swapping two neighbouring letters counts as one edit (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({length: rows}, (_, i) => Array.from({length: cols}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The known name closest to `typed`, when it is close enough to be a typo: one edit for short
 * names, two from five letters, three from ten. A unique known name that starts with `typed`
 * (at least three letters) counts too. Null when nothing is close or two are equally close.
 */
export function closestName(typed: string, known: readonly string[]): string | null {
  const word = typed.toLowerCase();
  const prefixed = known.filter((k) => word.length >= 3 && k.toLowerCase().startsWith(word));
  if (prefixed.length === 1) return prefixed[0]!;
  const limit = word.length >= 10 ? 3 : word.length >= 5 ? 2 : 1;
  let best: string | null = null;
  let bestDistance = Infinity;
  let tie = false;
  for (const k of known) {
    const distance = editDistance(word, k.toLowerCase());
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
      tie = false;
    } else if (distance === bestDistance) tie = true;
  }
  return best !== null && bestDistance <= limit && !tie ? best : null;
}

// oclif colours parts of its messages; a one-line error for logs and --json carries no escapes.
// eslint-disable-next-line no-control-regex
const ANSI = /\u001B\[[0-9;]*m/g;

/** The framework's error types for bad command lines, by class name (oclif's parser errors). */
const PARSE_ERRORS = new Set([
  'CLIParseError',
  'NonExistentFlagsError',
  'RequiredArgsError',
  'UnexpectedArgsError',
  'FlagInvalidOptionError',
  'ArgInvalidOptionError',
  'FailedFlagValidationError',
  'ViolatedFlagConstraintError',
  'InvalidArgsSpecError',
]);

export function isParseError(error: unknown): boolean {
  return error instanceof Error && 'oclif' in error && (PARSE_ERRORS.has(error.constructor.name) || 'parse' in error);
}

export interface CommandShape {
  /** The command's name as typed, e.g. `extract`. */
  id: string;
  /** Flag names without dashes. */
  flags: readonly string[];
  bin: string;
}

/** A parse error of the framework as one USAGE line: what was wrong and where to get help. */
export function usageErrorFromParse(error: Error & {flags?: string[]; args?: unknown[]}, command: CommandShape): GravityError {
  const help = `See \`${command.bin} ${command.id} --help\``;
  const name = error.constructor.name;
  if (name === 'NonExistentFlagsError' && Array.isArray(error.flags) && error.flags.length > 0) {
    const parts = error.flags.map((raw) => {
      const flag = raw.replace(/=.*$/s, '');
      const bare = flag.replace(/^-+/, '');
      const guess = flag.startsWith('--') ? closestName(bare, command.flags) : null;
      return guess ? `Unknown flag ${flag}; did you mean --${guess}?` : `Unknown flag ${flag}`;
    });
    return new GravityError('USAGE', parts.join('; '), {hint: help, details: {flags: error.flags}});
  }
  const lines = error.message
    .replace(ANSI, '')
    .replace(/\n+See more help with --help\s*$/, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^The following errors? occurred:?$/.test(line) && !/^Note:|^Alternatively,/.test(line));
  // "Parsing --limit" then the reason on the next line reads as one sentence with a colon.
  let message = lines.map((line) => line.replace(/\s{2,}/g, ' ')).join('; ').replace(/^(Parsing --[\w-]+);\s*/, '$1: ');
  if (name === 'RequiredArgsError' && Array.isArray(error.args)) {
    const missing = (error.args as Array<{name?: string; description?: string}>).map((a) => `${(a.name ?? '').toUpperCase()}${a.description ? ` (${a.description})` : ''}`);
    message = `Missing required argument${missing.length === 1 ? '' : 's'}: ${missing.join(', ')}`;
  }
  return new GravityError('USAGE', message || 'The command line could not be read', {hint: help});
}
