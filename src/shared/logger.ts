/**
 * Structured logs (pino). Never log a whole token or anything a user typed: a token's first
 * eight characters are enough to follow one session through the logs. Redaction by path catches
 * the fields we name; `redactSecrets` scrubs free text (error messages, stacks, upstream bodies)
 * that may quote a token, a key or a URL with credentials.
 */
import { randomBytes } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

const REDACTED_PATHS = [
  'token',
  'text',
  'apiKey',
  'password',
  '*.token',
  '*.text',
  '*.apiKey',
  '*.password',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'req.url',
  'req.query',
  // Node's ERR_INVALID_URL carries the rejected URL (with its ?token=) in `input`.
  'err.input',
  // Node's parse errors carry the raw request bytes (request line, token included).
  'err.rawPacket',
];

export function createLogger(name: string, level: string, format: LogFormat = 'json', destination?: DestinationStream): Logger {
  const options = {
    name,
    level,
    base: { pid: process.pid },
    redact: REDACTED_PATHS,
    ...(format === 'pretty' && destination === undefined
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
      : {}),
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

export function tokenTag(token: string): string {
  return `${token.slice(0, 8)}…`;
}

const UUID = /\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const URL_CREDENTIALS = /\b([a-z][\w+.-]*:\/\/)[^\s/@]+@/gi;
const BEARER = /\b(bearer)\s+[\w.~+/-]+=*/gi;
// API keys as providers print them: sk-…, hf_…, gsk_…, xai-…, AIza…, and key=/token= parameters.
const API_KEY = /\b(?:sk|pk|rk|hf|gsk|xai|api)[-_][\w-]{8,}|\bAIza[\w-]{20,}/g;
const SECRET_PARAMETER = /\b((?:api[-_]?key|key|token|access_token|password|secret)=)[^\s&"']+/gi;

/** Free text with tokens shortened to their tag and keys, bearer values and URL credentials removed. */
export function redactSecrets(text: string): string {
  return text
    .replace(UUID, '$1…')
    .replace(URL_CREDENTIALS, '$1[redacted]@')
    .replace(BEARER, '$1 [redacted]')
    .replace(API_KEY, '[redacted]')
    .replace(SECRET_PARAMETER, '$1[redacted]');
}

/** An error as a log field, its message and stack redacted (no `input`, no enumerable extras). */
export function safeError(error: unknown): { type: string; code?: string; message: string; stack?: string } {
  if (!(error instanceof Error)) return { type: typeof error, message: redactSecrets(String(error)) };
  const code = (error as { code?: unknown }).code;
  return {
    type: error.name,
    ...(typeof code === 'string' ? { code } : {}),
    message: redactSecrets(error.message),
    ...(error.stack === undefined ? {} : { stack: redactSecrets(error.stack) }),
  };
}

const REF_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A short reference id a user can quote and an operator can grep for (10 characters, ~50 bits). */
export function errorRef(): string {
  return [...randomBytes(10)].map((byte) => REF_ALPHABET[byte % REF_ALPHABET.length]).join('');
}
