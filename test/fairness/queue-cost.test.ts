/**
 * Finding 1 of issue 10: refused work must cost nothing. A message refused for any reason (here:
 * too many waiting) writes nothing to the work queue; only accepted messages wake a worker.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { globalKeys } from '../../src/contracts/keys.js';
import { createSession, TestSocket, type Frame } from '../support/client.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const MAX_PENDING = 5;
const SENT = 60;

let system: TestSystem;
before(async () => {
  // No worker: nothing is answered, so every message past MAX_PENDING is refused.
  system = await startSystem({ gateways: 2, workers: 0, env: { MAX_PENDING_PER_SESSION: String(MAX_PENDING) } });
});
after(async () => {
  await system.stop();
});

async function queueLength(): Promise<number> {
  const redis = createClient({ url: TEST_REDIS_URL });
  await redis.connect();
  try {
    return await redis.xLen(globalKeys(system.prefix).queue);
  } finally {
    redis.destroy();
  }
}

test('a refused message leaves no queue entry (streaming and plain, two gateways)', async () => {
  const session = await createSession(system.gatewayUrls[0] ?? '');
  const streaming = await TestSocket.open(system.gatewayUrls[0] ?? '', session.token);
  const plain = await TestSocket.open(system.gatewayUrls[1] ?? '', session.token, false);
  // A plain socket has no "ready" frame: an empty message's refusal shows it is set up, so its
  // start-up check (which re-queues unanswered messages when no worker holds them) is behind it.
  plain.send(' ');
  await plain.waitFor((frame) => frame.code === 'empty_message');
  for (let index = 0; index < SENT / 2; index += 1) streaming.send({ type: 'message', text: `s${index}` });
  const answered = (frame: Frame) => frame.type === 'accepted' || frame.type === 'error';
  await streaming.waitForCount(answered, SENT / 2);
  assert.equal(streaming.frames.filter((frame) => frame.type === 'accepted').length, MAX_PENDING);
  // Plain mode, on the other gateway: all refused, the session already has MAX_PENDING waiting.
  for (let index = 0; index < SENT / 2; index += 1) plain.send(`p${index}`);
  await plain.waitForCount((frame) => frame.code === 'too_many_pending', SENT / 2);
  assert.equal(await queueLength(), MAX_PENDING, 'one queue entry per accepted message, none for refused ones');
  streaming.close();
  plain.close();
});
