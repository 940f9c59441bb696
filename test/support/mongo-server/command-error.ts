/** mongod's error codes and names, as the drivers read them from `{ok: 0, code, codeName}`. */
export const CODE_NAMES = {
  1: 'InternalError',
  2: 'BadValue',
  9: 'FailedToParse',
  14: 'TypeMismatch',
  18: 'AuthenticationFailed',
  20: 'IllegalOperation',
  26: 'NamespaceNotFound',
  27: 'IndexNotFound',
  40: 'ConflictingUpdateOperators',
  43: 'CursorNotFound',
  48: 'NamespaceExists',
  59: 'CommandNotFound',
  66: 'ImmutableField',
  67: 'CannotCreateIndex',
  72: 'InvalidOptions',
  73: 'InvalidNamespace',
  85: 'IndexOptionsConflict',
  86: 'IndexKeySpecsConflict',
  115: 'CommandNotSupported',
  11000: 'DuplicateKey',
} as const;

export type ErrorNumber = keyof typeof CODE_NAMES;

export class CommandError extends Error {
  readonly extra: Record<string, unknown>;

  constructor(
    readonly code: ErrorNumber,
    message: string,
    extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.extra = extra;
  }

  get codeName(): string {
    return CODE_NAMES[this.code];
  }
}
