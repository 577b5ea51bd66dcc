/**
 * Findings 3 and 4 of issue 10: nothing limited creation, growth or replays. Rate limits are kept
 * in Redis, so they hold across gateways; behind a trusted proxy the address is X-Forwarded-For.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WebSocket } from 'ws';
import { sessionKeys } from '../../src/contracts/keys.js';
import { testRedisClient } from '../support/redis.js';
import { createSession, TestSocket, type Frame } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { waitUntil } from '../support/wait.js';

let system: TestSystem;
before(async () => {
  // No worker: messages stay pending, so only the rate limits refuse them.
  system = await startSystem({
    gateways: 2,
    workers: 0,
    env: {
      TRUST_PROXY: 'true',
      RATE_SESSIONS_PER_MINUTE: '4',
      RATE_UPGRADES_PER_MINUTE: '4',
      RATE_MESSAGES_PER_MINUTE: '5',
      RATE_SESSION_MESSAGES_PER_MINUTE: '3',
      RATE_RESUMES_PER_MINUTE: '3',
      MAX_SOCKETS_PER_SESSION: '2',
    },
  });
});
after(async () => {
  await system.stop();
});

const gateway = (index: number) => system.gatewayUrls[index % 2] ?? '';
const from = (address: string) => ({ 'X-Forwarded-For': `${address}, 10.0.0.1` });

async function postToken(index: number, address: string): Promise<Response> {
  return fetch(`${gateway(index)}/token?name=Ada`, { method: 'POST', headers: from(address) });
}

async function sessionFor(address: string): Promise<string> {
  const response = await postToken(0, address);
  assert.equal(response.status, 200);
  return ((await response.json()) as { token: string }).token;
}

async function socketCount(token: string): Promise<number> {
  const redis = testRedisClient();
  await redis.connect();
  try {
    return await redis.zCard(sessionKeys(system.prefix, token).sockets);
  } finally {
    redis.destroy();
  }
}

const rateLimited = (frame: Frame) => frame.code === 'rate_limited';

test('session creation is limited per address across gateways, with 429 and Retry-After', async () => {
  for (let index = 0; index < 4; index += 1) assert.equal((await postToken(index, '203.0.113.1')).status, 200);
  const refused = await postToken(0, '203.0.113.1');
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  // Another address behind the same proxy has its own budget.
  assert.equal((await postToken(1, '203.0.113.2')).status, 200);
});

test('socket upgrades are limited per address across gateways', async () => {
  const token = (await createSession(gateway(0))).token;
  const statuses: number[] = [];
  for (let index = 0; index < 5; index += 1) {
    const ws = new WebSocket(`${gateway(index).replace(/^http/, 'ws')}/chat?token=${token}`, { headers: from('203.0.113.3') });
    statuses.push(
      await new Promise<number>((resolve) => {
        ws.once('open', () => {
          ws.close();
          resolve(101);
        });
        ws.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      }),
    );
  }
  assert.deepEqual(statuses, [101, 101, 101, 101, 429]);
});

test('messages are limited per session and per address; refusals carry retryAfterMs (plain mode: msg)', async () => {
  const single = await TestSocket.open(gateway(0), await sessionFor('203.0.113.4'), true, from('203.0.113.4'));
  for (let index = 0; index < 5; index += 1) single.send({ type: 'message', text: `m${index}` });
  await single.waitForCount((frame) => frame.type === 'accepted' || rateLimited(frame), 5);
  assert.equal(single.frames.filter((frame) => frame.type === 'accepted').length, 3, 'three per session and minute');
  const refusal = single.frames.find(rateLimited);
  assert.ok(typeof refusal?.retryAfterMs === 'number' && refusal.retryAfterMs > 0);

  // Two sessions from one address on two gateways share the address's five.
  const first = await TestSocket.open(gateway(0), await sessionFor('203.0.113.5'), true, from('203.0.113.5'));
  for (let index = 0; index < 3; index += 1) first.send({ type: 'message', text: `a${index}` });
  await first.waitForCount((frame) => frame.type === 'accepted', 3);
  const plain = await TestSocket.open(gateway(1), await sessionFor('203.0.113.5'), false, from('203.0.113.5'));
  for (let index = 0; index < 3; index += 1) plain.send(`b${index}`);
  const [refused] = await plain.waitForCount(rateLimited, 1);
  assert.equal(typeof refused?.msg, 'string', 'a plain-mode client renders msg');
  assert.ok(typeof refused?.retryAfterMs === 'number');
  for (const socket of [single, first, plain]) socket.close();
});

test('resume frames are limited per socket', async () => {
  const socket = await TestSocket.open(gateway(1), await sessionFor('203.0.113.6'), true, from('203.0.113.6'));
  for (let index = 0; index < 6; index += 1) socket.send({ type: 'resume', after: '0' });
  socket.send({ type: 'ping' });
  await socket.waitFor((frame) => frame.type === 'pong');
  assert.equal(socket.frames.filter(rateLimited).length, 3);
  socket.close();
});

test('a session takes at most MAX_SOCKETS_PER_SESSION sockets across gateways; the extra one is closed with 4008', async () => {
  const token = await sessionFor('203.0.113.7');
  const open = (index: number, address: string) => TestSocket.open(gateway(index), token, true, from(address));
  const first = await open(0, '203.0.113.7');
  const second = await open(1, '203.0.113.8');
  const third = await open(0, '203.0.113.9');
  const closed = await third.waitForClose();
  assert.equal(closed.code, 4008);
  assert.match(closed.reason, /Too many open connections/);
  assert.ok(first.frames.some((frame) => frame.type === 'ready') && second.frames.some((frame) => frame.type === 'ready'));
  // Once one closes, its place is free again (the gateway gives it back as the socket closes).
  first.close();
  await first.waitForClose();
  await waitUntil(async () => (await socketCount(token)) === 1, 5000, 'the closed socket to leave the count');
  const again = await open(1, '203.0.113.10');
  assert.ok(again.frames.some((frame) => frame.type === 'ready'));
  second.close();
  again.close();
});
