/**
 * The gateway's pub/sub connection drops in the middle of an answer (as in a Redis failover):
 * after it reconnects, every socket is caught up from the event stream — the answer still
 * arrives complete, with nothing twice.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { wordChunks } from '../support/fake-openai-server.js';
import { createSession, TestSocket } from '../support/client.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const ANSWER = Array.from({ length: 30 }, (_, index) => `t${index}`).join(' ');

let system: TestSystem;
before(async () => {
  system = await startSystem({ workers: 1 });
  system.model.setRespond(() => ({ kind: 'stream', chunks: wordChunks(ANSWER), delayMs: 20 }));
});
after(async () => {
  await system.stop();
});

test('subscriber connections killed mid-answer: sockets catch up, complete and without duplicates', async () => {
  const admin = createClient({ url: TEST_REDIS_URL });
  await admin.connect();
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'go' });
  await socket.waitForCount((frame) => frame.type === 'delta', 2);
  // Kill every pub/sub connection on the server (ours included); node-redis reconnects them.
  await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
  await socket.waitFor((frame) => frame.type === 'done', 15_000);
  assert.equal(socket.answers().get(1), ANSWER);
  const ids = socket.frames.flatMap((frame) => (typeof frame.eventId === 'string' ? [frame.eventId] : []));
  assert.equal(new Set(ids).size, ids.length);
  socket.close();
  admin.destroy();
});
