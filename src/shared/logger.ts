/**
 * Structured logs (pino). Never log a whole token or anything a user typed: a token's first
 * eight characters are enough to follow one session through the logs.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

export function createLogger(name: string, level: string, format: LogFormat = 'json'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: ['token', 'text', 'apiKey', 'password'],
    ...(format === 'pretty' ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } } : {}),
  });
}

export function tokenTag(token: string): string {
  return `${token.slice(0, 8)}…`;
}
