/**
 * Open sockets per session, across all gateways: a sorted set in the session's hash tag, each
 * socket's score the last time its gateway vouched for it. A gateway that dies stops vouching, so
 * its sockets fall out after STALE_AFTER_MS instead of holding the session's places for ever.
 */
import { sessionKeys } from '../contracts/keys.js';
import type { RedisClient } from './redis.js';
import { luaScript, runScript } from './scripts.js';

/** How often a gateway renews its sockets, and after how long an unrenewed one no longer counts. */
export const SOCKET_REFRESH_MS = 30_000;
const STALE_AFTER_MS = 3 * SOCKET_REFRESH_MS;

/**
 * KEYS[1] the session's socket set  ARGV[1] socket id  ARGV[2] now (ms)  ARGV[3] max sockets
 * (0 = renew only, never refuse)  ARGV[4] set TTL (ms, the session's).  Returns 1 (joined or
 * renewed) or 0 (full).
 */
const JOIN_SOURCE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - ${STALE_AFTER_MS})
local max = tonumber(ARGV[3])
if max > 0 and not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;
const joinSocket = luaScript('joinSocket', JOIN_SOURCE);

export class SocketRegistry {
  constructor(
    private readonly redis: RedisClient,
    private readonly options: { prefix: string; maxPerSession: number; sessionTtlSeconds: number },
  ) {}

  /** Takes one of the session's places for this socket; false when all are taken. */
  async join(token: string, socketId: string): Promise<boolean> {
    return (await this.run(token, socketId, this.options.maxPerSession)) === 1;
  }

  /** Keeps the socket counted (every SOCKET_REFRESH_MS while it is open). */
  async renew(token: string, socketId: string): Promise<void> {
    await this.run(token, socketId, 0);
  }

  async leave(token: string, socketId: string): Promise<void> {
    await this.redis.zRem(sessionKeys(this.options.prefix, token).sockets, socketId);
  }

  private async run(token: string, socketId: string, max: number): Promise<unknown> {
    const key = sessionKeys(this.options.prefix, token).sockets;
    const args = [socketId, String(Date.now()), String(max), String(this.options.sessionTtlSeconds * 1000)];
    return (await runScript(this.redis, joinSocket, [key], args)).reply;
  }
}
