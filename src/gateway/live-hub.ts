/**
 * One pub/sub connection per gateway, shared by all its sockets: subscribes to a session's live
 * channel while at least one of its sockets is here, and fans each event out to them. Also
 * notices sessions that expired while their sockets sat idle.
 */
import type { ServiceState } from '../contracts/protocol.js';
import { liveEventSchema, type LiveEvent } from '../contracts/records.js';
import { sessionKeys } from '../contracts/keys.js';
import { subscribe, unsubscribe, type ChannelListener, type Subscriber } from '../store/pubsub.js';
import type { Logger } from '../shared/logger.js';

export interface LiveListener {
  onLive(event: LiveEvent): void;
  onExpired(): void;
  /** Pub/sub messages may have been missed (the subscriber reconnected): re-read from the stream. */
  onResync(): void;
  /** Whether this gateway can reach Redis changed. */
  onServiceState(state: ServiceState): void;
}

/** The hub's subscriber connection: its commands, and the events that say it may have missed messages. */
export interface HubSubscriber extends Subscriber {
  readonly isReady: boolean;
  /** 'node-ready': a cluster client's node connection (a cluster client has no 'ready' of its own). */
  on(event: 'ready' | 'node-ready', listener: () => void): unknown;
}

interface SessionChannel {
  readonly listeners: Set<LiveListener>;
  /** One function per channel, so unsubscribing names it (see remove). */
  readonly onMessage: ChannelListener;
  /** Settles when Redis confirmed the subscription: a socket may only read its position after. */
  readonly subscribed: Promise<void>;
}

export class LiveHub {
  private readonly sessions = new Map<string, SessionChannel>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(
    private readonly redis: { exists(key: string): Promise<number> },
    private readonly subscriber: HubSubscriber,
    private readonly prefix: string,
    private readonly logger: Logger,
    sweepIntervalMs: number,
    /** Redis Cluster: the live channels are shard channels (SSUBSCRIBE). */
    private readonly sharded = false,
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
    // A cluster client has no 'ready' of its own: each node connection reports one. Shard
    // subscriptions move to a promoted replica after a failover over a new connection, so every
    // node connection that becomes ready may follow a gap (a spare read while the cluster starts).
    if (sharded) {
      subscriber.on('node-ready', () => {
        this.confirmSubscriptions()
          .then(() => this.resyncAll())
          .catch((error: unknown) => this.logger.warn({ err: error }, 'resubscribing after a node reconnect failed'));
      });
    }
  }

  /**
   * node-redis moves shard subscriptions to a new node by itself, but only starts once that node's
   * connection is ready: a gap read then could miss an event published before the subscription
   * lands. Subscribing again waits for Redis to confirm the moved channels (for channels still in
   * place it adds nothing: the listener is already there, and no command is sent).
   */
  private async confirmSubscriptions(): Promise<void> {
    await Promise.all(
      [...this.sessions].map(async ([token, channel]) => {
        const name = sessionKeys(this.prefix, token).live;
        await subscribe(this.subscriber, name, channel.onMessage, this.sharded);
        // Its last socket left meanwhile: the subscription just confirmed must not outlive it.
        if (this.sessions.get(token) !== channel) await unsubscribe(this.subscriber, name, channel.onMessage, this.sharded);
      }),
    );
  }

  /** Tells every socket on this gateway that the service state changed. */
  announce(state: ServiceState): void {
    for (const { listeners } of this.sessions.values()) for (const listener of listeners) listener.onServiceState(state);
  }

  /** Resolves once the session's channel is subscribed (also for a second socket of the session). */
  async add(token: string, listener: LiveListener): Promise<void> {
    let channel = this.sessions.get(token);
    if (channel === undefined) {
      const onMessage = (message: string | Buffer) => this.fanOut(token, message.toString());
      const subscribed = subscribe(this.subscriber, sessionKeys(this.prefix, token).live, onMessage, this.sharded);
      channel = { listeners: new Set(), onMessage, subscribed };
      this.sessions.set(token, channel);
      const created = channel;
      subscribed.catch(() => {
        if (this.sessions.get(token) === created) this.sessions.delete(token);
      });
    }
    channel.listeners.add(listener);
    await channel.subscribed;
  }

  async remove(token: string, listener: LiveListener): Promise<void> {
    const channel = this.sessions.get(token);
    if (channel === undefined || !channel.listeners.delete(listener) || channel.listeners.size > 0) return;
    this.sessions.delete(token);
    // Naming the listener marks the channel "unsubscribing" in node-redis, so a socket of the same
    // session that subscribes before the UNSUBSCRIBE is answered sends a SUBSCRIBE of its own;
    // without it the answer would drop the new socket's listener and its events with it.
    await unsubscribe(this.subscriber, sessionKeys(this.prefix, token).live, channel.onMessage, this.sharded);
  }

  close(): void {
    clearInterval(this.sweepTimer);
  }

  private resyncAll(): void {
    this.logger.info({ sessions: this.sessions.size }, 'pub/sub reconnected; catching sockets up from the event streams');
    for (const { listeners } of this.sessions.values()) for (const listener of listeners) listener.onResync();
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
    for (const listener of this.sessions.get(token)?.listeners ?? []) listener.onLive(parsed.data);
  }

  private async sweepExpired(): Promise<void> {
    const tokens = [...this.sessions.keys()];
    if (tokens.length === 0) return;
    // Separate commands (node-redis pipelines them), not MULTI: the keys live in different slots.
    const replies = await Promise.all(tokens.map((token) => this.redis.exists(sessionKeys(this.prefix, token).session)));
    tokens.forEach((token, index) => {
      if (replies[index] !== 0) return;
      for (const listener of this.sessions.get(token)?.listeners ?? []) listener.onExpired();
    });
  }
}
