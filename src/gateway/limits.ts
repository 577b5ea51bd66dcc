/**
 * Rate limits of the gateway, shared by all gateways: the counters live in Redis
 * (rate-limiter-flexible, one single-key script per check, so also legal on Redis Cluster), under
 * the configured key prefix. Resume and switch frames are counted per socket, which lives on one
 * gateway, so in memory. Each limit allows N events per rolling minute per key; 0 turns it off.
 */
import type { IncomingMessage } from 'node:http';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateLimits } from '../config/config.js';
import type { RedisConnection } from '../store/redis.js';

const WINDOW_SECONDS = 60;

/** One limit: `take` returns null when allowed, else the milliseconds until it allows again. */
export class Limit {
  constructor(private readonly limiter: RateLimiterAbstract | undefined) {}

  async take(key: string): Promise<number | null> {
    if (this.limiter === undefined) return null;
    try {
      await this.limiter.consume(key);
      return null;
    } catch (refusal) {
      // Anything but a refusal (Redis down) propagates: the request fails like any other Redis error.
      if (refusal instanceof RateLimiterRes) return Math.max(1, refusal.msBeforeNext);
      throw refusal;
    }
  }
}

export interface GatewayLimits {
  readonly sessions: Limit;
  readonly upgrades: Limit;
  readonly messages: Limit;
  readonly sessionMessages: Limit;
  /** Sign-in attempts per "address|username". */
  readonly signin: Limit;
  /** Sign-in attempts per username (all addresses). */
  readonly signinAccount: Limit;
  /** Sign-in attempts per address (all usernames). */
  readonly signinAddress: Limit;
  readonly signups: Limit;
  /** Messages per account. */
  readonly accountMessages: Limit;
  /** A fresh per-socket limit for resume frames. */
  resumes(): Limit;
  /** A fresh per-socket limit for switch frames (each one that moves the head writes an event). */
  switches(): Limit;
}

/** A socket lives on one gateway, so its own limits are counted in memory. */
function perSocket(perMinute: number): Limit {
  return new Limit(perMinute === 0 ? undefined : new RateLimiterMemory({ points: perMinute, duration: WINDOW_SECONDS }));
}

export function createLimits(redis: RedisConnection, keyPrefix: string, limits: RateLimits): GatewayLimits {
  const shared = (name: string, perMinute: number) =>
    new Limit(
      perMinute === 0
        ? undefined
        : new RateLimiterRedis({ storeClient: redis, useRedisPackage: true, keyPrefix: `${keyPrefix}rl:${name}`, points: perMinute, duration: WINDOW_SECONDS }),
    );
  return {
    sessions: shared('sessions', limits.sessionsPerMinute),
    upgrades: shared('upgrades', limits.upgradesPerMinute),
    messages: shared('messages', limits.messagesPerMinute),
    sessionMessages: shared('session-messages', limits.sessionMessagesPerMinute),
    signin: shared('signin', limits.signinPerMinute),
    signinAccount: shared('signin-account', limits.signinAccountPerMinute),
    signinAddress: shared('signin-address', limits.signinAddressPerMinute),
    signups: shared('signups', limits.signupsPerMinute),
    accountMessages: shared('account-messages', limits.accountMessagesPerMinute),
    resumes: () => perSocket(limits.resumesPerMinute),
    switches: () => perSocket(limits.switchesPerMinute),
  };
}

/**
 * The client's address for an upgrade request. Behind a trusted proxy (TRUST_PROXY) it is the
 * first address of X-Forwarded-For, as Fastify's request.ip has it for HTTP requests.
 */
export function upgradeAddress(request: IncomingMessage, trustProxy: boolean): string {
  const forwarded = request.headers['x-forwarded-for'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  if (trustProxy && first !== undefined && first !== '') return first;
  return request.socket.remoteAddress ?? 'unknown';
}

/** Seconds for a Retry-After header (rounded up: retrying earlier would be refused again). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.ceil(ms / 1000));
}
