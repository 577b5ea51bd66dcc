/**
 * Redis connections. One command connection per process (node-redis pipelines everything over
 * it); blocking reads and pub/sub get their own duplicates, because a blocking command stalls
 * every other command queued on the same connection. The stores do not take a connection's type:
 * each names the few commands it uses in an interface of its own (as vercel's resumable-stream
 * does), which a client for one Redis and a cluster client both satisfy.
 */
import { createClient, createCluster } from 'redis';
import type { RedisConfig } from '../config/config.js';
import { backoffDelay, type BackoffOptions } from '../contracts/backoff.js';
import { ErrorCodes, ParleyError } from '../contracts/errors.js';

export interface RedisLogger {
  warn(object: object, message: string): void;
}

/** Reconnects from 0.1 s up to 5 s apart, with jitter, so a failover is not met by a storm. */
const RECONNECT_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 5000 };
const reconnectDelay = (retries: number) => backoffDelay(retries, Math.random, RECONNECT_BACKOFF);

function clientOptions(config: RedisConfig) {
  return {
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    // node-redis arms a timer and an AbortSignal for every command (5 s by default); on the hot
    // path that cost a quarter of the worker's CPU (docs/benchmarks.md). A dead peer is found by
    // TCP keep-alive instead, and a stuck worker loses its lease and its work is taken over.
    commandOptions: { timeout: 0 },
    socket: {
      reconnectStrategy: reconnectDelay,
      connectTimeout: 10_000,
      keepAlive: true,
      keepAliveInitialDelay: 10_000,
      ...(config.tls ? { tls: true as const } : {}),
    },
  };
}

function createSingleNode(config: RedisConfig) {
  return createClient({ url: config.url, ...clientOptions(config) });
}


/**
 * After a primary dies its connection keeps retrying the dead address; node-redis re-reads the
 * cluster's topology once a node has been reconnecting this long (its default: 5 s), which is
 * when commands for the failed primary's slots move to the promoted replica. One second keeps
 * the client's part of a failover short without polling topology while all is well.
 */
const CLUSTER_TOPOLOGY_REFRESH_MS = 1000;

function createClusterClient(config: RedisConfig) {
  return createCluster({
    rootNodes: [{ url: config.url }],
    defaults: clientOptions(config),
    commandOptions: { timeout: 0 },
    topologyRefreshOnReconnectionAttemptStrategy: CLUSTER_TOPOLOGY_REFRESH_MS,
    // Connect to a node on first use, not to every primary at once: a worker's queue readers
    // and pub/sub connections (duplicates of this client) each use one or a few nodes.
    minimizeConnections: true,
  });
}

/**
 * A connection to one Redis, or to a Redis Cluster (REDIS_CLUSTER=true, REDIS_URL = any node).
 * Parley uses the same commands on both — every multi-key command and script stays inside one
 * session's hash tag, and node-redis routes each by its first key; test/pipeline/cluster.test.ts
 * runs the pipeline on a real cluster.
 */
export type RedisConnection = ReturnType<typeof createSingleNode> | ReturnType<typeof createClusterClient>;

export function createRedisClient(config: RedisConfig, logger?: RedisLogger): RedisConnection {
  const client = config.cluster ? createClusterClient(config) : createSingleNode(config);
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
export function duplicateClient(client: RedisConnection, logger?: RedisLogger): RedisConnection {
  const copy = client.duplicate();
  reportErrors(copy, logger);
  return copy;
}

/** Connects and fails with a message that names where we tried to connect (without secrets). */
export async function connectRedis(client: RedisConnection, config: RedisConfig): Promise<RedisConnection> {
  try {
    await client.connect();
    return client;
  } catch (error) {
    const where = new URL(config.url);
    where.password = '';
    where.username = '';
    throw new ParleyError(ErrorCodes.unavailable, `Cannot connect to Redis at ${where.toString()}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
