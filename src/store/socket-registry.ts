/**
 * Open sockets per session, across all gateways: a sorted set in the session's hash tag, each
 * socket's score the last time its gateway vouched for it. A gateway that dies stops vouching, so
 * its sockets fall out after STALE_AFTER_MS instead of holding the session's places for ever.
 */
import { sessionKeys } from '../contracts/keys.js';
import type { PlacesRedis } from './address-slots.js';
import { loadScript, runScript } from './scripts.js';

/** How often a gateway renews its sockets, and after how long an unrenewed one no longer counts. */
export const SOCKET_REFRESH_MS = 30_000;
const STALE_AFTER_MS = 3 * SOCKET_REFRESH_MS;

const joinSocket = loadScript('join-socket');

export class SocketRegistry {
  constructor(
    private readonly redis: PlacesRedis,
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
    const args = [socketId, String(Date.now()), String(max), String(this.options.sessionTtlSeconds * 1000), String(STALE_AFTER_MS)];
    return (await runScript(this.redis, joinSocket, [key], args)).reply;
  }
}
