/**
 * The whole pipeline on a real three-node Redis Cluster: two gateways, two workers, sessions
 * spread over every node. Scripts and MULTI only ever touch one session's hash tag, so each runs
 * on one node; answers arrive once, complete, in order.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { startRedisCluster, type TestRedisCluster } from '../support/redis-cluster.js';
import { startSystem, type TestSystem } from '../support/system.js';

const run = promisify(execFile);
const SESSIONS = 12;

let cluster: TestRedisCluster;
let system: TestSystem;
before(async () => {
  cluster = await startRedisCluster();
  system = await startSystem({ gateways: 2, workers: 2, env: { REDIS_URL: cluster.url, REDIS_CLUSTER: 'true' } });
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 2 }));
});
after(async () => {
  await system.stop();
  await cluster.stop();
});

test('sessions on every cluster node get every answer once, in order', async () => {
  const clients = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, index) => {
      const url = system.gatewayUrls[index % 2] ?? '';
      const session = await createSession(url, `c${index}`);
      return { index, session, socket: await TestSocket.open(system.gatewayUrls[(index + 1) % 2] ?? '', session.token) };
    }),
  );
  for (const { index, socket } of clients) {
    socket.send({ type: 'message', text: `a${index}` });
    socket.send({ type: 'message', text: `b${index}` });
  }
  await Promise.all(clients.map(({ socket }) => socket.waitForCount((frame) => frame.type === 'done', 2, 30_000)));
  for (const { index, session, socket } of clients) {
    assert.equal(socket.answers().get(1), `Echo #1: a${index}`);
    assert.equal(socket.answers().get(2), `Echo #2: b${index}`);
    const view = await refreshSession(system.baseUrl, session.token);
    assert.equal(view.body.messages.length, 4);
    socket.close();
  }
  const perNode = await Promise.all(cluster.ports.map(async (port) => Number((await run('redis-cli', ['-p', String(port), 'dbsize'])).stdout.trim())));
  assert.ok(perNode.every((keys) => keys > 0), `every node holds session keys: ${perNode.join(', ')}`);
  assert.equal(system.model.requests.length, SESSIONS * 2);
});
