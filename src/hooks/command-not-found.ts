import type {Hook} from '@oclif/core';

import {GravityError} from '../errors.js';
import {closestName} from '../ui/suggest.js';

/**
 * A mistyped command: one line with the closest command and where help is, exit 2 (a usage error),
 * and under --json the same one-line error document every command prints.
 */
const hook: Hook<'command_not_found'> = async function (options) {
  // With spaces between topics oclif joins the first words into the id ("pussh ./lost" → "pussh:./lost"): the command is the first.
  const typed = options.id.split(':')[0] ?? options.id;
  const bin = options.config.bin;
  const flag = typed.startsWith('-');
  // Before a command only --help and --version exist.
  const known = flag ? ['help', 'version'] : options.config.commandIDs.filter((id) => !id.includes(':'));
  const guess = closestName(typed.replace(/^-+/, ''), known);
  const message = flag
    ? `Unknown flag ${typed}${guess ? `; did you mean --${guess}?` : ''}`
    : `Unknown command \`${typed}\`${guess ? `; did you mean \`${guess}\`?` : ''}`;
  const error = new GravityError('USAGE', message, {
    hint: `See \`${bin} --help\` for the commands`,
    details: {command: typed, ...(guess ? {suggestion: guess} : {})},
  });
  if ((options.argv ?? []).includes('--json')) {
    const {errorJsonLine} = await import('../base-command.js');
    process.stdout.write(`${errorJsonLine(error)}\n`);
  }
  process.stderr.write(`Error: ${error.line}\n`);
  this.exit(error.exitCode);
};

export default hook;
