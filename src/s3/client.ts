/**
 * S3 client construction and the translation of SDK failures into GravityErrors that say
 * which bucket or endpoint failed and what to do about it.
 */

import {S3Client, type S3ClientConfig} from '@aws-sdk/client-s3';

import {GravityError, isGravityError} from '../errors.js';
import {redact} from '../config/redact.js';

export interface S3Settings {
  /** Any S3-compatible endpoint; path-style addressing is used when set. */
  endpoint?: string;
  region?: string;
  /** Explicit credentials; without them the SDK default chain (env, profile, SSO, instance role) applies. */
  credentials?: {accessKeyId: string; secretAccessKey: string; sessionToken?: string};
  /** Attempts per request, including the first (default 3). */
  maxAttempts?: number;
  /** Milliseconds to wait for a TCP connection (default 3000). */
  connectTimeoutMs?: number;
}

/** Milliseconds a socket may stay silent mid-transfer before the request is abandoned and retried. */
const SOCKET_IDLE_MS = 60_000;

export function createS3Client(settings: S3Settings): S3Client {
  // The SDK writes a Node-version notice to stderr on the first client; Node 20 is a supported
  // target of this tool, and stray stderr text breaks the quiet-when-piped contract.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config: S3ClientConfig = {
    // Without a region the SDK refuses to start; us-east-1 plus region redirects reaches buckets anywhere.
    region: settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    followRegionRedirects: true,
    maxAttempts: settings.maxAttempts ?? 3,
    retryMode: 'standard',
    requestHandler: {connectionTimeout: settings.connectTimeoutMs ?? 3000, socketTimeout: SOCKET_IDLE_MS},
  };
  if (settings.credentials) config.credentials = settings.credentials;
  if (settings.endpoint) {
    config.endpoint = settings.endpoint;
    config.forcePathStyle = true;
    // The SDK's default flexible checksums wrap uploads in aws-chunked framing that many
    // S3-compatible servers (s3rver among them) store verbatim, corrupting the object.
    config.requestChecksumCalculation = 'WHEN_REQUIRED';
    config.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  return new S3Client(config);
}

/** `s3://bucket/prefix/` → bucket and prefix (prefix normalised to end in '/' unless empty). */
export function parseS3Url(url: string): {bucket: string; prefix: string} | null {
  const match = /^s3:\/\/([^/\s]+)(?:\/(.*))?$/i.exec(url.trim());
  if (!match) return null;
  const bucket = match[1] as string;
  let prefix = (match[2] ?? '').replace(/^\/+/, '');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  return {bucket, prefix};
}

interface SdkErrorShape {
  name?: string;
  code?: string;
  Code?: string;
  message?: string;
  $metadata?: {httpStatusCode?: number};
  $retryable?: unknown;
}

const CREDENTIAL_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'CredentialsProviderError',
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidClientTokenId',
  'AuthorizationHeaderMalformed',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'NetworkingError',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  // Node network failures hide their code in `cause` (or in AggregateError.errors for happy-eyeballs).
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const shape = current as SdkErrorShape & {errors?: unknown[]; cause?: unknown};
    for (const value of [shape.name, shape.code, shape.Code]) if (typeof value === 'string') codes.push(value);
    if (Array.isArray(shape.errors)) for (const inner of shape.errors) codes.push(...errorCodes(inner));
    current = shape.cause;
  }
  return codes;
}

function where(context: {bucket?: string; key?: string; endpoint?: string}): string {
  const object = context.bucket ? `s3://${context.bucket}/${context.key ?? ''}` : 'S3';
  return context.endpoint ? `${object} at ${redact(context.endpoint)}` : object;
}

/** Turn any failure of an S3 call into a GravityError naming the bucket/endpoint and the next step. */
export function mapS3Error(error: unknown, context: {bucket?: string; key?: string; endpoint?: string}): GravityError {
  if (isGravityError(error)) return error;
  const codes = errorCodes(error);
  const status = (error as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
  const detail = redact(error instanceof Error ? error.message : String(error));
  const place = where(context);
  const details = {bucket: context.bucket, key: context.key, endpoint: context.endpoint && redact(context.endpoint), sdkError: codes[0], status};
  const has = (set: Set<string>) => codes.some((code) => set.has(code));

  if (has(CREDENTIAL_CODES) || /could not load credentials/i.test(detail)) {
    return new GravityError('S3_CREDENTIALS', `S3 rejected or could not find credentials for ${place} (${codes[0] ?? 'no credentials'})`, {
      cause: error,
      details,
      hint: 'Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) to keys valid for this endpoint',
    });
  }
  if (codes.includes('NoSuchBucket')) {
    return new GravityError('S3_NO_BUCKET', `Bucket ${context.bucket ?? '(unknown)'} does not exist${context.endpoint ? ` at ${redact(context.endpoint)}` : ''}`, {
      cause: error,
      details,
      hint: 'Check the bucket name in --source (s3://BUCKET/prefix/) and, for a non-AWS server, --endpoint',
    });
  }
  if (codes.includes('AccessDenied') || codes.includes('AllAccessDisabled') || codes.includes('Forbidden') || status === 403) {
    return new GravityError('S3_ACCESS_DENIED', `Access denied to ${place}`, {
      cause: error,
      details,
      hint: 'Use credentials allowed s3:ListBucket and s3:GetObject on this bucket and prefix',
    });
  }
  if (codes.includes('NoSuchKey') || codes.includes('NotFound') || status === 404) {
    return new GravityError('BACKUP_NOT_FOUND', `${place} does not exist`, {
      cause: error,
      details,
      hint: 'Run `gravity-restore list` to see the backups that exist now',
    });
  }
  if (has(NETWORK_CODES) || (status !== undefined && status >= 500)) {
    return new GravityError('S3_NETWORK', `Could not reach ${place}: ${detail}`, {
      cause: error,
      details,
      hint: context.endpoint
        ? `Check that the S3 server at ${redact(context.endpoint)} is running and reachable (--endpoint / GRAVITY_RESTORE_S3_ENDPOINT)`
        : 'Check the network connection and AWS_REGION, then run the command again',
    });
  }
  return new GravityError('INTERNAL', `S3 request to ${place} failed: ${codes[0] ?? 'error'} ${detail}`.trim(), {
    cause: error,
    details,
    hint: 'Run again with --debug and report the error if it persists',
  });
}
