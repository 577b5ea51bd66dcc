/**
 * LiveHub against a real Redis: the last socket of a session leaving and a new one arriving at
 * the same moment must not lose the new one's subscription (node-redis drops every listener of a
 * channel when an UNSUBSCRIBE that names no listener is answered).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { sessionKeys } from '../../src/contracts/keys.js';
import type { LiveEvent } from '../../src/contracts/records.js';
import { LiveHub, type LiveListener } from '../../src/gateway/live-hub.js';
import { createLogger } from '../../src/shared/logger.js';
import { createRedisClient, duplicateClient } from '../../src/store/redis.js';
import { randomPrefix, TEST_REDIS_URL } from '../support/redis.js';

const prefix = randomPrefix();
const redis = createRedisClient({ url: TEST_REDIS_URL, username: undefined, password: undefined, tls: false, cluster: false, isDefault: false });
const subscriber = duplicateClient(redis);
let hub: LiveHub;

before(async () => {
  await redis.connect();
  await subscriber.connect();
  hub = new LiveHub(redis, subscriber, prefix, createLogger('test', 'silent'), 60_000);
});
after(async () => {
  hub.close();
  subscriber.destroy();
  redis.destroy();
});

function recorder(): LiveListener & { events: LiveEvent[] } {
  const events: LiveEvent[] = [];
  return { events, onLive: (event) => events.push(event), onExpired: () => undefined, onResync: () => undefined, onServiceState: () => undefined };
}

const event = (id: string): string => JSON.stringify({ eventId: id, prev: '0', event: { type: 'start', seq: 1, attempt: 1 } });

test('a listener added while the last one is being removed still receives events', async () => {
  for (let round = 0; round < 20; round += 1) {
    const token = randomUUID();
    const leaving = recorder();
    const arriving = recorder();
    await hub.add(token, leaving);
    const removing = hub.remove(token, leaving);
    await hub.add(token, arriving);
    await removing;
    await redis.publish(sessionKeys(prefix, token).live, event(`${round + 1}-0`));
    const deadline = Date.now() + 2000;
    while (arriving.events.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(arriving.events.length, 1, `round ${round}: the new listener got the event`);
    assert.equal(leaving.events.length, 0);
    await hub.remove(token, arriving);
  }
});

test('a second listener of a session is added only once the subscription is confirmed', async () => {
  const token = randomUUID();
  const first = recorder();
  const second = recorder();
  const adding = hub.add(token, first);
  await hub.add(token, second);
  // Both adds resolved: a publish now must reach both, with no window in between.
  await redis.publish(sessionKeys(prefix, token).live, event('7-0'));
  await adding;
  const deadline = Date.now() + 2000;
  while ((first.events.length === 0 || second.events.length === 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(first.events.length, 1);
  assert.equal(second.events.length, 1);
});
