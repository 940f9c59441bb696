/**
 * Connection strings and URLs are shown with the password masked, everywhere: output,
 * logs and error messages. Apply `redact` to any text that may contain one.
 */

const URI_WITH_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^:/?#@\s]+):([^@/?#\s]*)@/gi;
const SECRET_PARAMS = /([?&](?:password|secret|secretAccessKey|sessionToken|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|authMechanismProperties)=)[^&\s"']*/gi;

export function redact(text: string): string {
  return text.replace(URI_WITH_PASSWORD, '$1$2:****@').replace(SECRET_PARAMS, '$1****');
}

/** A connection string safe to print. */
export function maskUri(uri: string): string {
  return redact(uri);
}
