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
  let lastReport = 0;
  client.on('error', (error: unknown) => {
    // node-redis reports every failed reconnect attempt; once per few seconds is enough to see it.
    const now = Date.now();
    if (now - lastReport > 5000) {
      lastReport = now;
      logger?.warn({ err: error instanceof Error ? error.message : String(error) }, 'redis connection problem');
    }
  });
  return client;
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
