/**
 * Pub/sub in the form the deployment allows: sharded (SSUBSCRIBE/SPUBLISH) on a Redis Cluster,
 * where a shard channel lives on the node of its slot instead of being broadcast to every node;
 * classic (SUBSCRIBE/PUBLISH) on one Redis, which also serves Redis 6.2 (no sharded pub/sub).
 */
/**
 * A channel's listener. Messages arrive as strings (no buffer mode is asked for), but node-redis's
 * cluster client declares its listeners for both, so this does too.
 */
export type ChannelListener = (message: string | Buffer) => void;

/** The commands of a subscriber connection. */
export interface Subscriber {
  subscribe(channel: string, listener: ChannelListener): Promise<unknown>;
  unsubscribe(channel: string, listener: ChannelListener): Promise<unknown>;
  sSubscribe(channel: string, listener: ChannelListener): Promise<unknown>;
  sUnsubscribe(channel: string, listener: ChannelListener): Promise<unknown>;
}

export interface Publisher {
  publish(channel: string, message: string): Promise<unknown>;
  sPublish(channel: string, message: string): Promise<unknown>;
}

export async function subscribe(client: Subscriber, channel: string, listener: ChannelListener, sharded: boolean): Promise<void> {
  await (sharded ? client.sSubscribe(channel, listener) : client.subscribe(channel, listener));
}

/** Removes this listener only (see LiveHub.remove for why it is named). */
export async function unsubscribe(client: Subscriber, channel: string, listener: ChannelListener, sharded: boolean): Promise<void> {
  await (sharded ? client.sUnsubscribe(channel, listener) : client.unsubscribe(channel, listener));
}

export async function publish(client: Publisher, channel: string, message: string, sharded: boolean): Promise<void> {
  await (sharded ? client.sPublish(channel, message) : client.publish(channel, message));
}
