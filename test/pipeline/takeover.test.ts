/**
 * A worker killed with SIGKILL in the middle of an answer: another worker takes the work over
 * within the configured bound and the user still gets exactly one complete answer.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  // No in-process worker: the first worker is a child process we can kill.
  system = await startSystem({ workers: 0, env: { LEASE_MS: '2000', CLAIM_IDLE_MS: '3000', CLAIM_INTERVAL_MS: '500' } });
});
after(async () => {
  await system.stop();
});

test('SIGKILL mid-answer: another worker takes over, one complete answer arrives', async () => {
  system.model.setRespond(({ messages, index }) => ({
    kind: 'stream',
    chunks: wordChunks(`${echoAnswer(messages)} and a long tail of words to stream slowly`),
    delayMs: index === 0 ? 200 : 5,
  }));
  const doomed = await system.spawnWorker();
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'survive this' });
  await socket.waitFor((frame) => frame.type === 'delta');
  doomed.kill('SIGKILL');
  const killedAt = Date.now();
  await system.addWorker();

  const done = await socket.waitFor((frame) => frame.type === 'done', 30_000);
  const takeoverMs = Date.now() - killedAt;
  console.log(`# takeover: answer completed ${takeoverMs} ms after SIGKILL (LEASE_MS 2000, CLAIM_IDLE_MS 3000)`);
  assert.ok(takeoverMs < 30_000);

  const expected = 'Echo #1: survive this and a long tail of words to stream slowly';
  const starts = socket.frames.filter((frame) => frame.type === 'start');
  assert.deepEqual(starts.map((frame) => frame.attempt), [1, 2], 'the second attempt announces itself');
  assert.equal(socket.answers().get(1), expected);
  assert.equal(socket.frames.filter((frame) => frame.type === 'done').length, 1);

  const view = await refreshSession(system.baseUrl, session.token);
  const bots = view.body.messages.filter((message) => message.source === 'bot');
  assert.equal(bots.length, 1, 'committed once');
  assert.equal(bots[0]?.msg, expected);
  assert.equal(bots[0]?.id, done.id);
  socket.close();
});
