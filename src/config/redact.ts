/**
 * Connection strings and URLs are shown with the password masked, everywhere: output, logs, error
 * messages, plans, journals and the ledger. Apply `redact` to any text that may contain one.
 *
 * Two nets, because a password may hold any character, escaped or not (`Zq9#Xw7`, `p@ss/w?rd`),
 * in a string that is not even a valid URI:
 * 1. the shape: everything between `scheme://user:` and the last `@` of the URI-like token is the
 *    password (masking too much when a query value holds an `@` is the safe mistake);
 * 2. the values: every secret the program was given (passwords of configured targets, S3 keys) is
 *    registered, with its percent-encoded and decoded spellings, and masked wherever it appears.
 */

const MASK = '****';

/** URI-like tokens: scheme, `//`, then anything up to whitespace or a quote or bracket that ends it in prose. */
const URI_TOKEN = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s"'`<>]*)/gi;
const SECRET_PARAMS =
  /([?&;](?:password|secret|secretAccessKey|sessionToken|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|authMechanismProperties|tlsCertificateKeyFilePassword|sslPEMKeyPassword|sslClientCertificateKeyPassword|proxyPassword)=)[^&;\s"']*/gi;

/** Shorter values would mask ordinary words; the shape-based net still covers them in URIs. */
const MIN_SECRET_LENGTH = 4;
const secrets = new Set<string>();

/** Remember a secret value so it is masked wherever it appears later. */
export function registerSecret(value: string | undefined | null): void {
  if (!value || value.length < MIN_SECRET_LENGTH) return;
  const spellings = new Set([value]);
  try {
    spellings.add(decodeURIComponent(value));
  } catch {
    // Not percent-encoded text: the raw spelling is enough.
  }
  spellings.add(encodeURIComponent(value));
  // A parser that gives up mid-way may print only the piece before a delimiter: mask the pieces too,
  // except short runs of digits, which would mask every port and line number that happens to match.
  for (const piece of value.split(/[^A-Za-z0-9]+/)) if (!/^\d{1,5}$/.test(piece)) spellings.add(piece);
  for (const s of spellings) if (s.length >= MIN_SECRET_LENGTH) secrets.add(s);
}

/** The password part of a connection string, however it is spelled; undefined when it has none. */
export function passwordOf(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(.*)$/is.exec(uri);
  if (!m) return undefined;
  const rest = m[1]!;
  const at = rest.lastIndexOf('@');
  if (at < 0) return portlessPassword(rest);
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  return colon < 0 ? undefined : userinfo.slice(colon + 1);
}

/** Register the password and secret parameters of a connection string. */
export function registerUriSecrets(uri: string | undefined): void {
  if (!uri) return;
  registerSecret(passwordOf(uri));
  for (const m of uri.matchAll(SECRET_PARAMS)) registerSecret(m[0].slice(m[1]!.length));
}

/**
 * `mongodb://user:secret` with the `@host` forgotten: what follows the colon is not a port, so it is
 * taken for a password. Not when it is a port (digits, or the `port` of a placeholder such as
 * `mongodb://host:port/db` in a hint), nor when what precedes the colon holds a `/`: that is a path
 * (`file:///app/dist/connect.js:123:45` in a stack frame), never a user name.
 */
function portlessPassword(rest: string): string | undefined {
  const colon = rest.indexOf(':');
  if (colon < 0 || rest.slice(0, colon).includes('/')) return undefined;
  const after = rest.slice(colon + 1);
  return /^(?:\d*|port)(?:[,/?:]|$)/i.test(after) ? undefined : after;
}

function maskToken(scheme: string, rest: string): string {
  const at = rest.lastIndexOf('@');
  if (at < 0) {
    const pw = portlessPassword(rest);
    return pw === undefined ? scheme + rest : `${scheme}${rest.slice(0, rest.indexOf(':'))}:${MASK}`;
  }
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return scheme + rest;
  return `${scheme}${userinfo.slice(0, colon)}:${MASK}${rest.slice(at)}`;
}

export function redact(text: string): string {
  let out = text;
  // Registered values first, whole and longest first, before the shape-based mask could cut one in two.
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join(MASK);
  return out.replace(URI_TOKEN, (_, scheme: string, rest: string) => maskToken(scheme, rest)).replace(SECRET_PARAMS, `$1${MASK}`);
}

const HOST = String.raw`(?:[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?`;
const HOST_LIST = new RegExp(`^${HOST}(?:,${HOST})*(?:[/?]|$)`);

/** Does the connection string name its hosts in a form a driver can use (no empty or malformed host)? */
export function hasValidHostList(uri: string): boolean {
  const rest = /^[a-z][a-z0-9+.-]*:\/\/(.*)$/is.exec(uri)?.[1];
  if (rest === undefined) return false;
  return HOST_LIST.test(rest.slice(rest.lastIndexOf('@') + 1));
}

/**
 * A connection string safe to print, e.g. as a target's label. Unlike free text, the whole string
 * is the URI, so when what follows the last `@` is no host list (the password itself held an `@`, a
 * space or a quote), nothing after the user name is shown.
 */
export function maskUri(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(uri);
  if (!m) return redact(uri);
  const rest = m[2]!;
  const at = rest.lastIndexOf('@');
  const userinfo = at < 0 ? '' : rest.slice(0, at);
  const after = at < 0 ? rest : rest.slice(at + 1);
  if (at >= 0 && !HOST_LIST.test(after)) {
    const colon = userinfo.indexOf(':');
    return `${m[1]}${colon < 0 ? redact(userinfo) : userinfo.slice(0, colon)}:${MASK}@…`;
  }
  return redact(uri);
}
