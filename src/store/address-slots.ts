/**
 * The per-address cap on answers in progress, over all workers: a sorted set per client address
 * whose members are the drains answering that address's sessions, scored by when they expire. A
 * drain takes a place before it asks the model and gives it back when it ends; a worker that died
 * holding one loses it when it expires (after the longest an answer may take).
 */
import { globalKeys } from '../contracts/keys.js';
import { loadScript, runScript, type ScriptRedis } from './scripts.js';

const takeSlot = loadScript('take-address-slot');

/** A set of places: taken by a script, given back with ZREM (the socket registry's too). */
export interface PlacesRedis extends ScriptRedis {
  zRem(key: string, member: string): Promise<unknown>;
}

export class AddressSlots {
  constructor(
    private readonly redis: PlacesRedis,
    private readonly options: { prefix: string; cap: number; holdMs: number },
  ) {}

  /** Takes a place for the drain of `owner`; true when there is no cap or no address to cap. */
  async take(address: string | undefined, owner: string): Promise<boolean> {
    if (this.options.cap === 0 || address === undefined) return true;
    const now = Date.now();
    const key = globalKeys(this.options.prefix).addressSlots(address);
    const reply = await runScript(this.redis, takeSlot, [key], [owner, String(now), String(now + this.options.holdMs), String(this.options.cap)]);
    return reply.reply === 1;
  }

  async release(address: string | undefined, owner: string): Promise<void> {
    if (this.options.cap === 0 || address === undefined) return;
    await this.redis.zRem(globalKeys(this.options.prefix).addressSlots(address), owner);
  }
}
