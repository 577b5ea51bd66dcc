/**
 * Two gateways and two workers, clients on both gateways, 50 sessions at once: every answer
 * arrives once, complete, in order, and each sees the answers before it.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

const SESSIONS = 50;
const MESSAGES_PER_SESSION = 3;

let system: TestSystem;
before(async () => {
  system = await startSystem({ gateways: 2, workers: 2, env: { WORKER_CONCURRENCY: '8' } });
  // A little latency per chunk so answers overlap and sessions really run in parallel.
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 2 }));
});
after(async () => {
  await system.stop();
});

test(`${SESSIONS} sessions on two gateways and two workers: every answer once, complete, in order`, async () => {
  const clients = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, index) => {
      const gatewayUrl = system.gatewayUrls[index % 2] ?? '';
      const session = await createSession(gatewayUrl, `user ${index}`);
      const socket = await TestSocket.open(gatewayUrl, session.token);
      return { index, session, socket };
    }),
  );
  for (const { index, socket } of clients) {
    for (let message = 1; message <= MESSAGES_PER_SESSION; message += 1) {
      socket.send({ type: 'message', text: `s${index} m${message}` });
    }
  }
  await Promise.all(clients.map(({ socket }) => socket.waitForCount((frame) => frame.type === 'done', MESSAGES_PER_SESSION, 60_000)));

  for (const { index, session, socket } of clients) {
    const terminal = socket.frames.filter((frame) => ['done', 'stopped', 'error'].includes(String(frame.type)));
    assert.deepEqual(terminal.map((frame) => [frame.type, frame.seq]), [
      ['done', 1],
      ['done', 2],
      ['done', 3],
    ]);
    const answers = socket.answers();
    for (let turn = 1; turn <= MESSAGES_PER_SESSION; turn += 1) {
      // "Echo #n" counts the user turns the model saw: turn n saw the n-1 answered turns before it.
      assert.equal(answers.get(turn), `Echo #${turn}: s${index} m${turn}`);
    }
    const eventIds = socket.frames.flatMap((frame) => (typeof frame.eventId === 'string' ? [frame.eventId] : []));
    assert.equal(new Set(eventIds).size, eventIds.length, 'no event delivered twice');
    const view = await refreshSession(system.gatewayUrls[(index + 1) % 2] ?? '', session.token);
    assert.deepEqual(
      view.body.messages.map((message) => `${String(message.source)}:${String(message.msg)}`),
      [1, 2, 3].flatMap((turn) => [`human:s${index} m${turn}`, `bot:Echo #${turn}: s${index} m${turn}`]),
    );
    socket.close();
  }
  // Exactly one model call per message: nothing was generated twice.
  assert.equal(system.model.requests.length, SESSIONS * MESSAGES_PER_SESSION);
});
