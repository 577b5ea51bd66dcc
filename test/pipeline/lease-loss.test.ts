/**
 * A worker whose Redis stalls for longer than its lease (a Redis pause, a GC pause, a network
 * partition) loses the session's lease in the middle of an answer. The answer must still arrive,
 * with no reconnect and no new message: the worker hands the turn back, and a sweep re-queues
 * turns that nobody owns.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { globalKeys } from '../../src/contracts/keys.js';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { testRedisClient } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const LEASE_MS = 2000;
let system: TestSystem;
let proxy: TcpProxy;

before(async () => {
  proxy = await startTcpProxy();
  // CLAIM_IDLE_MS is far above the stall, so only the fix (not XAUTOCLAIM) can bring the answer back.
  system = await startSystem({ workers: 0, env: { LEASE_MS: String(LEASE_MS), CLAIM_IDLE_MS: '60000', CLAIM_INTERVAL_MS: '500' } });
  await system.addWorker({ REDIS_URL: proxy.url });
});
after(async () => {
  proxy.resume();
  await system.stop();
  await proxy.close();
});

test('a Redis stall longer than the lease in the middle of an answer: the answer still arrives, once', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(`${echoAnswer(messages)} and then some more words`), delayMs: 100 }));
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'hold on' });
  await socket.waitFor((frame) => frame.type === 'delta');

  proxy.pause();
  await sleep(LEASE_MS * 1.5);
  proxy.resume();

  const done = await socket.waitFor((frame) => frame.type === 'done', 20_000);
  const expected = 'Echo #1: hold on and then some more words';
  assert.equal(socket.answers().get(1), expected);
  const view = await refreshSession(system.baseUrl, session.token);
  const bots = view.body.messages.filter((message) => message.source === 'bot');
  assert.deepEqual(bots.map((message) => message.msg), [expected], 'committed exactly once');
  assert.equal(bots[0]?.id, done.id);
  socket.close();
});

test('a turn nobody owns (its wake-up lost) is found by the sweep and answered without a reconnect', async () => {
  const orphans = await startSystem({ workers: 0, env: { LEASE_MS: String(LEASE_MS), CLAIM_IDLE_MS: '3000', CLAIM_INTERVAL_MS: '500' } });
  try {
    orphans.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 1 }));
    const session = await createSession(orphans.baseUrl);
    const socket = await TestSocket.open(orphans.baseUrl, session.token);
    socket.send({ type: 'message', text: 'orphan' });
    await socket.waitFor((frame) => frame.type === 'accepted');
    // The wake-up is lost (as after a failover that dropped the last writes): only the message remains.
    const redis = testRedisClient();
    await redis.connect();
    await redis.xTrim(globalKeys(orphans.prefix).queue, 'MAXLEN', 0);
    redis.destroy();
    await orphans.addWorker();

    await socket.waitFor((frame) => frame.type === 'done', 20_000);
    assert.equal(socket.answers().get(1), 'Echo #1: orphan');
    socket.close();
  } finally {
    await orphans.stop();
  }
});

test('a worker that lives only moments still trims the acknowledged queue (crash loops do not grow it)', async () => {
  const short = await startSystem({ workers: 0 });
  try {
    const redis = testRedisClient();
    await redis.connect();
    const { queue, group } = globalKeys(short.prefix);
    await redis.xGroupCreate(queue, group, '0', { MKSTREAM: true });
    for (let index = 0; index < 500; index += 1) await redis.xAdd(queue, '*', { t: 'not-a-session' });
    // Another, earlier worker read and acknowledged all of them, then died.
    const read = await redis.xReadGroup(group, 'earlier-worker', { key: queue, id: '>' }, { COUNT: 1000 });
    const readIds = (read ?? []).flatMap((stream) => stream.messages.map((message: { id: string }) => message.id));
    await redis.xAck(queue, group, readIds);

    await short.addWorker();
    const left = await redis.xLen(queue);
    redis.destroy();
    assert.ok(left < 200, `the queue was trimmed by a worker that lived moments (${left} entries left of 500)`);
  } finally {
    await short.stop();
  }
});
