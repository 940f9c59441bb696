/**
 * What applying one operation needs besides the bytes: how to treat evidence that the document is
 * not the one the primary updated, and where the failure was, for the message.
 */

/**
 * `strict`: the base is consistent (replay from a point where the document is exactly what the
 * primary had before each entry). Then a diff that meets a field of another type, a sub-diff of a
 * field that is not there, an update of a missing field, or a `$v:1` path through a scalar can only
 * mean the document is not the primary's pre-image, and the result would not be what the primary
 * held: the operation is refused ("exact or refused").
 *
 * `idempotent`: the base may already reflect later entries (a document read during a dump's capture
 * window, OPLOG.md §5 rules 1–2). mongod then writes `null` for the mismatched value, ignores a
 * sub-diff or `$v:1` path it cannot follow and appends a missing updated field, because "some
 * future oplog entry will… re-write the value" (OPLOG.md §2.3 and §5, APPLY50 comments;
 * PATHNV for `$v:1`). Reproduced exactly, and each such place is reported in `provisional`.
 */
export type ApplyMode = 'strict' | 'idempotent';

/** A failure inside a document: the caller adds the namespace, `_id` and optime. */
export class ApplyFailure extends Error {
  constructor(
    readonly reason: string,
    /** `unsupported`: a format the replayer does not apply; `inconsistent`: the document is not the pre-image (strict mode). */
    readonly kind: 'unsupported' | 'inconsistent',
  ) {
    super(reason);
  }
}

export class ApplyContext {
  /** Dotted paths where mongod's re-application rules had to be used (idempotent mode only). */
  readonly provisional: string[] = [];

  constructor(readonly mode: ApplyMode) {}

  /** The document is not the pre-image at `path`: refuse (strict) or note and go on (idempotent). */
  inconsistent(path: string, what: string): void {
    if (this.mode === 'strict') throw new ApplyFailure(`${what} at "${path}": the document is not the one the entry was written against`, 'inconsistent');
    this.provisional.push(path);
  }
}

export function unsupported(reason: string): never {
  throw new ApplyFailure(reason, 'unsupported');
}

export function joinPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}.${name}`;
}
