/** Stop mid-answer, and model failures that reach the user as errors, never as answers. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { sessionKeys } from '../../src/contracts/keys.js';
import { echoAnswer, echoRespond, wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket } from '../support/client.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem({ env: { LLM_MAX_RETRIES: '1' } });
});
after(async () => {
  await system.stop();
});

test('stop keeps the partial answer, marked stopped; the next message is answered normally', async () => {
  system.model.setRespond(({ messages, index }) =>
    messages.at(-1)?.content === 'go on forever'
      ? { kind: 'stream', chunks: Array.from({ length: 500 }, (_, n) => `w${n} `), delayMs: 10 }
      : echoRespond({ messages, index, body: {} }),
  );
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'go on forever' });
  await socket.waitForCount((frame) => frame.type === 'delta', 2);
  socket.send({ type: 'stop', seq: 1 });
  const stopped = await socket.waitFor((frame) => frame.type === 'stopped', 5000);
  const partial = socket.answers().get(1) ?? '';
  assert.ok(partial.startsWith('w0 w1 '), partial);
  assert.ok(!partial.includes('w499'), 'stopped before the end');

  socket.send({ type: 'message', text: 'and now?' });
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 2, 5000);
  assert.equal(socket.answers().get(2), 'Echo #2: and now?', 'the stopped answer is part of the history');

  const view = await refreshSession(system.baseUrl, session.token);
  const bots = view.body.messages.filter((message) => message.source === 'bot');
  assert.deepEqual(bots.map((message) => [message.status, message.msg]), [
    ['stopped', partial],
    ['done', 'Echo #2: and now?'],
  ]);
  assert.equal(bots[0]?.id, stopped.id);
  socket.close();
});

test('a model failure is an error event with a clear message, never an answer; the next turn works', async () => {
  system.model.setRespond(({ messages }) =>
    messages.at(-1)?.content === 'break'
      ? { kind: 'error', status: 500, body: { error: { message: 'GPU on fire' } } }
      : { kind: 'stream', chunks: wordChunks(echoAnswer(messages)) },
  );
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  const plain = await TestSocket.open(system.baseUrl, session.token, false);
  socket.send({ type: 'message', text: 'break' });
  const error = await socket.waitFor((frame) => frame.type === 'error', 10_000);
  assert.equal(error.seq, 1);
  assert.equal(error.code, 'model_unavailable');
  assert.match(String(error.message), /\w+/);
  const plainError = await plain.waitFor((frame) => frame.type === 'error', 5000);
  assert.equal(plainError.code, 'model_unavailable');
  assert.equal(plainError.source, undefined, 'plain clients never see an error as a bot message');
  assert.equal(plainError.msg, plainError.message, "a plain frame always has a msg: the original's client renders it");

  socket.send({ type: 'message', text: 'fine now' });
  await socket.waitFor((frame) => frame.type === 'done', 10_000);
  // The failed turn has no answer, so the model sees only this user message after it.
  assert.equal(socket.answers().get(2), 'Echo #1: fine now');

  const view = await refreshSession(system.baseUrl, session.token);
  assert.deepEqual(view.body.messages.map((message) => message.source), ['human', 'human', 'bot']);
  assert.deepEqual(view.body.messages[0]?.error, { code: 'model_unavailable', message: error.message, ref: error.ref });
  socket.close();
  plain.close();
});

test('stop of a queued turn: it is answered as stopped with nothing generated', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 30 }));
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  const before = system.model.requests.length;
  socket.send({ type: 'message', text: 'first' });
  socket.send({ type: 'message', text: 'second' });
  await socket.waitFor((frame) => frame.type === 'accepted' && frame.seq === 2);
  socket.send({ type: 'stop', seq: 2 });
  await socket.waitFor((frame) => frame.type === 'stopped' && frame.seq === 2, 10_000);
  assert.equal(socket.answers().get(1), 'Echo #1: first');
  assert.equal(system.model.requests.length - before, 1, 'the stopped turn never reached the model');
  socket.close();
});

test('a malformed record in a session history is left out of the prompt; the session keeps working', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)) }));
  const session = await createSession(system.baseUrl);
  const admin = createClient({ url: TEST_REDIS_URL });
  await admin.connect();
  await admin.rPush(sessionKeys(system.prefix, session.token).messages, '{"not": "a message"');
  admin.destroy();
  const socket = await TestSocket.open(system.baseUrl, session.token);
  socket.send({ type: 'message', text: 'still fine?' });
  await socket.waitFor((frame) => frame.type === 'done', 10_000);
  assert.equal(socket.answers().get(1), 'Echo #1: still fine?');
  socket.close();
});
