/**
 * The whole pipeline on a real three-node Redis Cluster: two gateways, two workers, sessions
 * spread over every node. Scripts and MULTI only ever touch one session's hash tag, so each runs
 * on one node; answers arrive once, complete, in order. The queue is split into partitions
 * (QUEUE_PARTITIONS, 8 by default on a Cluster) that spread over the nodes, and live events and
 * stop requests travel over sharded pub/sub. Accounts, conversations and branches work there too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Browser } from '../support/browser.js';
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
  const queuesPerNode = await Promise.all(
    cluster.ports.map(async (port) => (await run('redis-cli', ['-p', String(port), '--scan', '--pattern', `${system.prefix}queue:*`])).stdout.trim().split('\n').filter(Boolean).length),
  );
  assert.equal(
    queuesPerNode.reduce((sum, count) => sum + count, 0),
    8,
    'eight queue partitions',
  );
  assert.ok(queuesPerNode.every((count) => count > 0), `queue partitions on every node: ${queuesPerNode.join(', ')}`);
});

test('stop reaches the worker over sharded pub/sub while it still waits for the first token', async () => {
  system.model.setRespond(() => ({ kind: 'stream', chunks: ['never ', 'shown'], firstDelayMs: 20_000 }));
  const sessions = await Promise.all(Array.from({ length: 4 }, (_, index) => createSession(system.gatewayUrls[index % 2] ?? '', `s${index}`)));
  for (const [index, session] of sessions.entries()) {
    const socket = await TestSocket.open(system.gatewayUrls[(index + 1) % 2] ?? '', session.token);
    socket.send({ type: 'message', text: 'wait for it' });
    await socket.waitFor((frame) => frame.type === 'start');
    const started = Date.now();
    socket.send({ type: 'stop', seq: 1 });
    await socket.waitFor((frame) => frame.type === 'stopped', 5000);
    assert.ok(Date.now() - started < 3000, 'stopped at once, not after the model answered');
    socket.close();
  }
});

test('people on the Cluster: sign-up, conversations on both gateways, a branch, export and deletion', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 2 }));
  const [first = '', second = ''] = system.gatewayUrls;
  for (let index = 0; index < 3; index += 1) {
    const person = new Browser(index % 2 === 0 ? first : second);
    const signup = await person.signUp(`cluster${index}x${Date.now()}`);
    const id = String((signup.body?.person as Record<string, unknown>).id);
    const elsewhere = person.on(index % 2 === 0 ? second : first);
    const conversations: string[] = [];
    for (const text of ['heron', 'stork']) {
      const created = await person.post('/api/v1/conversations', {}, { csrf: true });
      assert.equal(created.status, 201, created.text);
      const conversation = String(created.body?.id);
      conversations.push(conversation);
      const socket = await TestSocket.open(elsewhere.baseUrl, conversation, true, person.authCookie());
      socket.send({ type: 'message', text });
      await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 1, 30_000);
      socket.send({ type: 'regenerate', seq: 1 });
      await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 2, 30_000);
      assert.equal(socket.answers().get(2), `Echo #1: ${text}`, 'the regenerated answer saw only its own branch');
      socket.close();
    }
    const listed = await elsewhere.call('/api/v1/conversations');
    assert.deepEqual((listed.body?.conversations as Array<{ title: string }>).map((item) => item.title), ['stork', 'heron']);
    const exported = JSON.parse((await elsewhere.call('/api/v1/me/export')).text) as { conversations: Array<{ messages: Array<{ source: string }> }> };
    assert.deepEqual(exported.conversations.map((item) => item.messages.filter((message) => message.source === 'human').length), [2, 2]);
    assert.equal((await elsewhere.call('/api/v1/me', { method: 'DELETE', csrf: true })).status, 204);
    const left = await Promise.all(
      cluster.ports.map(async (port) => (await run('redis-cli', ['-p', String(port), '--scan', '--pattern', `${system.prefix}*`])).stdout.split('\n').filter((key) => [id, ...conversations].some((needle) => key.includes(needle)))),
    );
    assert.deepEqual(left.flat(), [], 'nothing of the person is left on any node');
  }
});
