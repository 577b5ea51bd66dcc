import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem();
});
after(async () => {
  await system.stop();
});

test('one message gets one streamed answer', async () => {
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'hello there' });
  const done = await socket.waitFor((frame) => frame.type === 'done');
  assert.equal(socket.answers().get(1), 'Echo #1: hello there');
  const view = await refreshSession(system.baseUrl, session.token);
  assert.equal(view.status, 200);
  assert.deepEqual(view.body.messages.map((message) => [message.source, message.msg]), [
    ['human', 'hello there'],
    ['bot', 'Echo #1: hello there'],
  ]);
  assert.equal(view.body.messages[1]?.id, done.id);
  socket.close();
});
