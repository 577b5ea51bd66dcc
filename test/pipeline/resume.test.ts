/**
 * Delivery across gateways: a client that reconnects mid-answer, to the other gateway, gets what
 * it missed and then the rest live, with no gap and no duplicate. Answers also complete and are
 * stored when their client has gone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { compareEventIds } from '../../src/contracts/event-ids.js';
import { wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket, type Frame } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const LONG_ANSWER = Array.from({ length: 40 }, (_, index) => `word${index}`).join(' ');

let system: TestSystem;
/** Gateway 2 reaches Redis through this proxy, which adds latency: a slow Redis round trip. */
let slowRedis: TcpProxy;
let slowGateway: string;
before(async () => {
  system = await startSystem({ gateways: 2, workers: 1, env: { FLUSH_INTERVAL_MS: '20' } });
  system.model.setRespond(() => ({ kind: 'stream', chunks: wordChunks(LONG_ANSWER), delayMs: 15 }));
  slowRedis = await startTcpProxy();
  slowGateway = await system.addGateway({ REDIS_URL: slowRedis.url });
});
after(async () => {
  await system.stop();
  await slowRedis.close();
});

/** What a client counts after a resume: the frames after the gateway's `resumed` confirmation. */
function framesAfterResumed(socket: TestSocket): Frame[] {
  const marker = socket.frames.findIndex((frame) => frame.type === 'resumed');
  return marker < 0 ? [] : socket.frames.slice(marker + 1);
}

/**
 * Waits for the answer's `done` after the `resumed` frame: a socket delivers live events from the
 * moment it is set up, so the answer may end (live, superseded) before the resume is confirmed.
 */
async function doneAfterResumed(socket: TestSocket): Promise<void> {
  await socket.waitFor(() => framesAfterResumed(socket).some((frame) => frame.type === 'done'), 15_000);
}

const eventIdOf = (frame: Frame | undefined) => String(frame?.eventId ?? '0');

test('reconnecting mid-answer to the other gateway: no gap, no duplicate', async () => {
  const session = await createSession(system.gatewayUrls[0] ?? '');
  const first = await TestSocket.open(system.gatewayUrls[0] ?? '', session.token);
  first.send({ type: 'message', text: 'tell me something long' });
  await first.waitForCount((frame) => frame.type === 'delta', 3);
  first.ws.terminate();
  const lastSeen = eventIdOf(first.frames.filter((frame) => typeof frame.eventId === 'string').at(-1));
  await sleep(100); // more of the answer is produced while nobody listens

  const second = await TestSocket.open(system.gatewayUrls[1] ?? '', session.token);
  second.send({ type: 'resume', after: lastSeen });
  await doneAfterResumed(second);

  const seenBefore = first.frames.filter((frame) => typeof frame.eventId === 'string');
  const seenAfter = framesAfterResumed(second).filter((frame) => typeof frame.eventId === 'string');
  const ids = [...seenBefore, ...seenAfter].map(eventIdOf);
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  const text = [...seenBefore, ...seenAfter]
    .filter((frame) => frame.type === 'delta')
    .map((frame) => String(frame.text))
    .join('');
  assert.equal(text, LONG_ANSWER, 'no gap');
  second.close();
});

test('resume while the answer streams, through a slow Redis: exactly the events after the id, once, in order', async () => {
  system.model.setRespond(() => ({ kind: 'stream', chunks: wordChunks(LONG_ANSWER), delayMs: 3 }));
  slowRedis.setLatency(15);
  try {
    for (let round = 0; round < 5; round += 1) {
      const session = await createSession(system.gatewayUrls[0] ?? '');
      const first = await TestSocket.open(system.gatewayUrls[0] ?? '', session.token);
      first.send({ type: 'message', text: `round ${round}` });
      await first.waitForCount((frame) => frame.type === 'delta', 2);
      first.ws.terminate();
      const seenBefore = first.frames.filter((frame) => typeof frame.eventId === 'string');
      const lastSeen = eventIdOf(seenBefore.at(-1));

      // Events keep arriving live while the slow gateway checks the resume point.
      const second = await TestSocket.open(slowGateway, session.token);
      second.send({ type: 'resume', after: lastSeen });
      await doneAfterResumed(second);
      assert.equal(second.frames[0]?.type, 'ready', `round ${round}: ready comes first`);
      const seenAfter = framesAfterResumed(second).filter((frame) => typeof frame.eventId === 'string');
      const ids = [...seenBefore, ...seenAfter].map(eventIdOf);
      assert.deepEqual(ids, [...ids].sort(compareEventIds), `round ${round}: in order`);
      assert.equal(new Set(ids).size, ids.length, `round ${round}: no event twice`);
      const text = [...seenBefore, ...seenAfter]
        .filter((frame) => frame.type === 'delta')
        .map((frame) => String(frame.text))
        .join('');
      assert.equal(text, LONG_ANSWER, `round ${round}: no gap`);
      second.close();
    }
  } finally {
    slowRedis.setLatency(0);
    system.model.setRespond(() => ({ kind: 'stream', chunks: wordChunks(LONG_ANSWER), delayMs: 15 }));
  }
});

test('reload recipe: refresh_token, then resume after last_event_id replays the answer in progress', async () => {
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'first' });
  await socket.waitFor((frame) => frame.type === 'done', 15_000);
  socket.send({ type: 'message', text: 'second' });
  await socket.waitForCount((frame) => frame.type === 'delta' && frame.seq === 2, 2);
  socket.ws.terminate();

  const view = await refreshSession(system.gatewayUrls[1] ?? '', session.token);
  assert.deepEqual(view.body.messages.map((message) => message.source), ['human', 'bot', 'human']);
  const reloaded = await TestSocket.open(system.gatewayUrls[1] ?? '', session.token);
  reloaded.send({ type: 'resume', after: view.body.last_event_id });
  await reloaded.waitFor((frame) => frame.type === 'done' && frame.seq === 2, 15_000);
  assert.equal(reloaded.answers().get(2), LONG_ANSWER);
  assert.equal(reloaded.frames.filter((frame) => frame.seq === 1).length, 0, 'turn 1 is not replayed');
  reloaded.close();
});

test('an answer completes and is stored when its client has gone', async () => {
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'then I leave' });
  await socket.waitFor((frame) => frame.type === 'accepted');
  socket.ws.terminate();
  const deadline = Date.now() + 15_000;
  let bots: unknown[] = [];
  while (Date.now() < deadline && bots.length === 0) {
    await sleep(100);
    bots = (await refreshSession(system.baseUrl, session.token)).body.messages.filter((message) => message.source === 'bot');
  }
  assert.deepEqual(bots.map((message) => (message as { msg: string }).msg), [LONG_ANSWER]);
});

test('resume from "0" replays every retained event exactly once', async () => {
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'one' });
  await socket.waitFor((frame) => frame.type === 'done', 15_000);
  const live = socket.frames.filter((frame) => typeof frame.eventId === 'string').map(eventIdOf);
  const replay = await TestSocket.open(system.gatewayUrls[1] ?? '', session.token);
  replay.send({ type: 'resume', after: '0' });
  await replay.waitFor((frame) => frame.type === 'done', 5000);
  assert.deepEqual(replay.frames.filter((frame) => typeof frame.eventId === 'string').map(eventIdOf), live);
  socket.close();
  replay.close();
});
