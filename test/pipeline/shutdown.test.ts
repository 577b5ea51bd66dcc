/**
 * Graceful shutdown: a worker told to stop (SIGTERM) finishes its answer or hands it back, and
 * a gateway that stops closes sockets with a reconnectable code. Nothing is lost or doubled.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { once } from 'node:events';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem({ gateways: 2, workers: 0 });
});
after(async () => {
  await system.stop();
});

test('SIGTERM during a long answer: the worker hands it back and another one answers it, once', async () => {
  system.model.setRespond(({ messages, index }) => ({
    kind: 'stream',
    chunks: wordChunks(`${echoAnswer(messages)} ${'more '.repeat(30)}`.trim()),
    delayMs: index === 0 ? 200 : 1,
  }));
  const leaving = await system.spawnWorker({ SHUTDOWN_GRACE_MS: '300' });
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'handed over' });
  await socket.waitFor((frame) => frame.type === 'delta');
  const stoppedAt = Date.now();
  leaving.kill('SIGTERM');
  const [code] = (await once(leaving, 'exit')) as [number | null];
  assert.equal(code, 0, 'the worker exits cleanly');
  await system.addWorker();
  await socket.waitFor((frame) => frame.type === 'done', 10_000);
  console.log(`# hand-back: answer completed ${Date.now() - stoppedAt} ms after SIGTERM (no claim timeout needed)`);
  assert.equal(socket.answers().get(1), `Echo #1: handed over ${'more '.repeat(30)}`.trim());
  const view = await refreshSession(system.baseUrl, session.token);
  assert.equal(view.body.messages.filter((message) => message.source === 'bot').length, 1);
  socket.close();
});

test('a stopping gateway closes sockets with 1012; the client resumes on the other gateway', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)) }));
  const session = await createSession(system.gatewayUrls[1] ?? '');
  const socket = await TestSocket.open(system.gatewayUrls[1] ?? '', session.token);
  const closing = socket.waitForClose();
  await system.stopGateway(1);
  assert.deepEqual(await closing, { code: 1012, reason: 'Gateway restarting, reconnect' });
  const again = await TestSocket.open(system.gatewayUrls[0] ?? '', session.token);
  again.send({ type: 'message', text: 'still here' });
  await again.waitFor((frame) => frame.type === 'done', 10_000);
  assert.equal(again.answers().get(1), 'Echo #1: still here');
  again.close();
});
