/**
 * Redis connections. One command connection per process (node-redis pipelines everything over
 * it); blocking reads and pub/sub get their own duplicates, because a blocking command stalls
 * every other command queued on the same connection.
 */
import { createClient } from 'redis';
import type { RedisConfig } from '../config/config.js';

export interface RedisLogger {
  warn(object: object, message: string): void;
}

/** Reconnect with capped exponential backoff plus jitter, so a failover is not met by a storm. */
function reconnectDelay(retries: number): number {
  const capped = Math.min(5000, 100 * 2 ** Math.min(retries, 6));
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

export function createRedisClient(config: RedisConfig, logger?: RedisLogger) {
  const client = createClient({
    url: config.url,
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    socket: {
      reconnectStrategy: reconnectDelay,
      connectTimeout: 10_000,
      ...(config.tls && !config.url.startsWith('rediss://') ? { tls: true as const } : {}),
    },
  });
  reportErrors(client, logger);
  return client;
}

/**
 * Without an 'error' listener a dropped connection is an unhandled error event and the client
 * stops reconnecting. node-redis reports every failed attempt; one line per few seconds is enough.
 */
function reportErrors(client: { on(event: 'error', listener: (error: unknown) => void): unknown }, logger?: RedisLogger): void {
  let lastReport = 0;
  client.on('error', (error: unknown) => {
    const now = Date.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      logger?.warn({ err: error instanceof Error ? error.message : String(error) }, 'redis connection problem');
    }
  });
}

/** A second connection with the same settings (for blocking reads or pub/sub), errors reported. */
export function duplicateClient(client: RedisClient, logger?: RedisLogger): RedisClient {
  const copy = client.duplicate();
  reportErrors(copy, logger);
  return copy;
}

/** Connects and fails with a message that names where we tried to connect (without secrets). */
export async function connectRedis(client: RedisClient, config: RedisConfig): Promise<RedisClient> {
  try {
    await client.connect();
    return client;
  } catch (error) {
    const where = new URL(config.url);
    where.password = '';
    where.username = '';
    throw new Error(`Cannot connect to Redis at ${where.toString()}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

export type RedisClient = ReturnType<typeof createRedisClient>;
