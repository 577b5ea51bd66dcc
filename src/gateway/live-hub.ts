/**
 * One pub/sub connection per gateway, shared by all its sockets: subscribes to a session's live
 * channel while at least one of its sockets is here, and fans each event out to them. Also
 * notices sessions that expired while their sockets sat idle.
 */
import { liveEventSchema, type LiveEvent } from '../contracts/protocol.js';
import { sessionKeys } from '../contracts/keys.js';
import type { RedisClient } from '../store/redis.js';
import type { Logger } from '../shared/logger.js';

export interface LiveListener {
  onLive(event: LiveEvent): void;
  onExpired(): void;
  /** Pub/sub messages may have been missed (the subscriber reconnected): re-read from the stream. */
  onResync(): void;
}

export class LiveHub {
  private readonly listeners = new Map<string, Set<LiveListener>>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    private readonly subscriber: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
    sweepIntervalMs: number,
  ) {
    this.sweepTimer = setInterval(() => {
      this.sweepExpired().catch((error: unknown) => this.logger.warn({ err: error }, 'session sweep failed'));
    }, sweepIntervalMs);
    this.sweepTimer.unref();
    // node-redis re-subscribes by itself after a reconnect, but what was published meanwhile is gone.
    let connectedBefore = subscriber.isReady;
    subscriber.on('ready', () => {
      if (connectedBefore) this.resyncAll();
      connectedBefore = true;
    });
  }

  get sessionCount(): number {
    return this.listeners.size;
  }

  async add(token: string, listener: LiveListener): Promise<void> {
    const existing = this.listeners.get(token);
    if (existing !== undefined) {
      existing.add(listener);
      return;
    }
    this.listeners.set(token, new Set([listener]));
    await this.subscriber.subscribe(sessionKeys(this.prefix, token).live, (message) => this.fanOut(token, message));
  }

  async remove(token: string, listener: LiveListener): Promise<void> {
    const set = this.listeners.get(token);
    if (set === undefined || !set.delete(listener) || set.size > 0) return;
    this.listeners.delete(token);
    await this.subscriber.unsubscribe(sessionKeys(this.prefix, token).live);
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  private resyncAll(): void {
    this.logger.info({ sessions: this.listeners.size }, 'pub/sub reconnected; catching sockets up from the event streams');
    for (const set of this.listeners.values()) for (const listener of set) listener.onResync();
  }

  private fanOut(token: string, message: string): void {
    let parsed: ReturnType<typeof liveEventSchema.safeParse>;
    try {
      parsed = liveEventSchema.safeParse(JSON.parse(message));
    } catch {
      parsed = liveEventSchema.safeParse(undefined);
    }
    if (!parsed.success) {
      this.logger.warn('ignored a malformed live event');
      return;
    }
    for (const listener of this.listeners.get(token) ?? []) listener.onLive(parsed.data);
  }

  private async sweepExpired(): Promise<void> {
    const tokens = [...this.listeners.keys()];
    if (tokens.length === 0) return;
    // Separate commands (node-redis pipelines them), not MULTI: the keys live in different slots.
    const replies = await Promise.all(tokens.map((token) => this.redis.exists(sessionKeys(this.prefix, token).session)));
    tokens.forEach((token, index) => {
      if (replies[index] !== 0) return;
      for (const listener of this.listeners.get(token) ?? []) listener.onExpired();
    });
  }
}
