/**
 * Typed errors. Library code throws these; only the command layer turns them into
 * one line on stderr and an exit code. Every message names the problem and the next step.
 */

export type ErrorCode =
  | 'USAGE'
  | 'CONFIG_INVALID'
  | 'SOURCE_MISSING'
  | 'SOURCE_NOT_FOUND'
  | 'NO_BACKUPS'
  | 'BACKUP_NOT_FOUND'
  | 'S3_CREDENTIALS'
  | 'S3_ACCESS_DENIED'
  | 'S3_NO_BUCKET'
  | 'S3_NETWORK'
  | 'DOWNLOAD_CORRUPT'
  | 'DUMP_UNKNOWN_FORMAT'
  | 'DUMP_CORRUPT'
  | 'QUERY_SYNTAX'
  | 'QUERY_UNSUPPORTED'
  | 'UNKNOWN_COLLECTION'
  | 'SET_INVALID'
  | 'SET_EXISTS'
  | 'TARGET_INVALID'
  | 'TARGET_UNREACHABLE'
  | 'TARGET_AUTH'
  | 'GATE_REFUSED'
  | 'PLAN_CHANGED'
  | 'CONFLICT'
  | 'NOT_EXACT'
  | 'PUSH_INCOMPLETE'
  | 'VERIFY_FAILED'
  | 'JOURNAL_MISSING'
  | 'SCRATCH_UNAVAILABLE'
  | 'INTERRUPTED'
  | 'LOCKED'
  | 'RESOURCE_LIMIT'
  | 'OPLOG_CORRUPT'
  | 'OPLOG_GAP'
  | 'OPLOG_UNSUPPORTED'
  | 'INTERNAL';

/** Exit codes are grouped so scripts can tell bad input from a failed check. */
const EXIT_CODES: Record<ErrorCode, number> = {
  USAGE: 2,
  CONFIG_INVALID: 2,
  SOURCE_MISSING: 2,
  SOURCE_NOT_FOUND: 3,
  NO_BACKUPS: 3,
  BACKUP_NOT_FOUND: 3,
  S3_CREDENTIALS: 4,
  S3_ACCESS_DENIED: 4,
  S3_NO_BUCKET: 3,
  S3_NETWORK: 5,
  DOWNLOAD_CORRUPT: 6,
  DUMP_UNKNOWN_FORMAT: 6,
  DUMP_CORRUPT: 6,
  QUERY_SYNTAX: 2,
  QUERY_UNSUPPORTED: 2,
  UNKNOWN_COLLECTION: 3,
  SET_INVALID: 6,
  SET_EXISTS: 2,
  TARGET_INVALID: 2,
  TARGET_UNREACHABLE: 5,
  TARGET_AUTH: 4,
  GATE_REFUSED: 7,
  PLAN_CHANGED: 7,
  CONFLICT: 8,
  NOT_EXACT: 8,
  PUSH_INCOMPLETE: 9,
  VERIFY_FAILED: 8,
  JOURNAL_MISSING: 3,
  SCRATCH_UNAVAILABLE: 5,
  INTERRUPTED: 130,
  /** Another run holds the set and target (push, rollback, repair). */
  LOCKED: 7,
  /** A bound was reached: disk space, matching time budget, nesting depth. */
  RESOURCE_LIMIT: 10,
  /** An oplog file or entry that cannot be read (truncated, over 16 MiB + 16 KiB, not BSON). */
  OPLOG_CORRUPT: 6,
  /** The oplog does not cover the range asked for (starts too late, a gap inside it). */
  OPLOG_GAP: 3,
  /** An entry the replayer cannot apply exactly to a document that matters. */
  OPLOG_UNSUPPORTED: 8,
  INTERNAL: 1,
};

export class GravityError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;
  /** What the user should do next; printed after the message. */
  readonly hint: string | undefined;
  /** Extra structured facts for --json error output. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: {hint?: string; cause?: unknown; details?: Record<string, unknown>; exitCode?: number} = {},
  ) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause});
    this.name = 'GravityError';
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_CODES[code];
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The single line shown to the user. */
  get line(): string {
    return this.hint ? `${this.message}${/[.?!]$/.test(this.message) ? '' : '.'} ${this.hint}` : this.message;
  }
}

export function isGravityError(error: unknown): error is GravityError {
  return error instanceof GravityError;
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_CODES[code];
}
