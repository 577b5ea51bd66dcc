/**
 * The per-address cap on answers in progress, over all workers: a sorted set per client address
 * whose members are the drains answering that address's sessions, scored by when they expire. A
 * drain takes a place before it asks the model and gives it back when it ends; a worker that died
 * holding one loses it when it expires (after the longest an answer may take).
 */
import { globalKeys } from '../contracts/keys.js';
import type { RedisClient } from './redis.js';
import { luaScript, runScript } from './scripts.js';

/**
 * KEYS[1] the address's set  ARGV[1] drain  ARGV[2] now (ms)  ARGV[3] expires at (ms)  ARGV[4] cap
 * Returns 1 (taken) or 0 (the address has `cap` answers in progress).
 */
const TAKE_SOURCE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
`;
const takeSlot = luaScript('takeAddressSlot', TAKE_SOURCE);

export class AddressSlots {
  constructor(
    private readonly redis: RedisClient,
    private readonly options: { prefix: string; cap: number; holdMs: number },
  ) {}

  /** Takes a place for `drain`; true when there is no cap or no address to cap. */
  async take(address: string | undefined, drain: string): Promise<boolean> {
    if (this.options.cap === 0 || address === undefined) return true;
    const now = Date.now();
    const key = globalKeys(this.options.prefix).addressSlots(address);
    const reply = await runScript(this.redis, takeSlot, [key], [drain, String(now), String(now + this.options.holdMs), String(this.options.cap)]);
    return reply.reply === 1;
  }

  async release(address: string | undefined, drain: string): Promise<void> {
    if (this.options.cap === 0 || address === undefined) return;
    await this.redis.zRem(globalKeys(this.options.prefix).addressSlots(address), drain);
  }
}
