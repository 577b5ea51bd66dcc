/**
 * Tests run against a real Redis (REDIS_URL, default redis://127.0.0.1:6379). Each test gets a
 * random key prefix, so tests never see each other's keys, and removes its keys afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';

export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A plain client for one Redis: the stores take any client that has the commands they use. */
export type TestRedis = ReturnType<typeof createClient>;

export function testRedisClient(): TestRedis {
  return createClient({ url: TEST_REDIS_URL });
}

export function randomPrefix(): string {
  return `ptest:${randomBytes(5).toString('hex')}:`;
}

/** Every key that matches the pattern, e.g. `${prefix}*` for every key under a prefix. */
export async function keysUnder(redis: TestRedis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) found.push(...keys);
  return found;
}

/** Deletes every key that starts with the prefix. */
export async function deleteKeys(prefix: string, url = TEST_REDIS_URL): Promise<void> {
  const client: TestRedis = createClient({ url });
  await client.connect();
  try {
    const keys = await keysUnder(client, `${prefix}*`);
    if (keys.length > 0) await client.unlink(keys);
  } finally {
    client.destroy();
  }
}
