/**
 * Pub/sub in the form the deployment allows: sharded (SSUBSCRIBE/SPUBLISH) on a Redis Cluster,
 * where a shard channel lives on the node of its slot instead of being broadcast to every node;
 * classic (SUBSCRIBE/PUBLISH) on one Redis, which also serves Redis 6.2 (no sharded pub/sub).
 */
import type { RedisClient } from './redis.js';

export type ChannelListener = (message: string) => void;

export async function subscribe(client: RedisClient, channel: string, listener: ChannelListener, sharded: boolean): Promise<void> {
  await (sharded ? client.sSubscribe(channel, listener) : client.subscribe(channel, listener));
}

/** Removes this listener only (see LiveHub.remove for why it is named). */
export async function unsubscribe(client: RedisClient, channel: string, listener: ChannelListener, sharded: boolean): Promise<void> {
  await (sharded ? client.sUnsubscribe(channel, listener) : client.unsubscribe(channel, listener));
}

export async function publish(client: RedisClient, channel: string, message: string, sharded: boolean): Promise<void> {
  await (sharded ? client.sPublish(channel, message) : client.publish(channel, message));
}
