/**
 * Regenerate and edit with branches, through the whole pipeline: real gateways (two), a worker,
 * Redis and the fake model, whose requests show exactly what the model was given. The model sees
 * only the branch of the turn it answers; every socket of the session hears of branch changes;
 * order, exactly-once, stop and resume keep working on every branch, also after a reload.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FakeMessage } from '../support/fake-openai-server.js';
import { wordChunks } from '../support/fake-openai-server.js';
import { createSession, refreshSession, TestSocket, type Frame } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

const SYSTEM_PROMPT = 'You are a test assistant.';
let system: TestSystem;

/** Each answer names the request that produced it, so regenerated answers differ. */
const labelled = ({ messages, index }: { messages: readonly FakeMessage[]; index: number }) => ({
  kind: 'stream' as const,
  chunks: wordChunks(`answer ${index} to ${messages.at(-1)?.content ?? ''}`),
});

before(async () => {
  system = await startSystem({ gateways: 2, env: { LLM_SYSTEM_PROMPT: SYSTEM_PROMPT } });
  system.model.setRespond(labelled);
});
after(async () => {
  await system.stop();
});

const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });
const system_ = { role: 'system', content: SYSTEM_PROMPT };

/** What the model was given for the message whose text is `last` (the newest such request). */
function promptFor(last: string): readonly FakeMessage[] {
  const request = system.model.requests.findLast((candidate) => candidate.messages.at(-1)?.content === last);
  assert.ok(request !== undefined, `the model was asked about ${last}`);
  return request.messages;
}

function requestsAbout(last: string): number {
  return system.model.requests.filter((request) => request.messages.at(-1)?.content === last).length;
}

async function answered(socket: TestSocket, seq: number): Promise<string> {
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === seq);
  return socket.answers().get(seq) ?? '';
}

async function ask(socket: TestSocket, text: string): Promise<{ seq: number; answer: string; accepted: Frame }> {
  const clientId = `c-${Math.random().toString(36).slice(2)}`;
  socket.send({ type: 'message', text, clientId });
  const accepted = await socket.waitFor((frame) => frame.type === 'accepted' && frame.clientId === clientId);
  const seq = Number(accepted.seq);
  return { seq, answer: await answered(socket, seq), accepted };
}

type ViewMessage = { source: string; seq: number; parent?: number; msg: string; status?: string };

async function view(token: string): Promise<{ head: number; messages: ViewMessage[] }> {
  const reply = await refreshSession(system.baseUrl, token);
  assert.equal(reply.status, 200);
  return reply.body as unknown as { head: number; messages: ViewMessage[] };
}

test('regenerate: a sibling turn with the same question; the model does not see the answer it replaces', async () => {
  const { token } = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, token);
  const elsewhere = await TestSocket.open(system.gatewayUrls[1] ?? '', token);
  const q1 = `q1 ${token}`;
  const q2 = `q2 ${token}`;
  const first = await ask(socket, q1);
  const second = await ask(socket, q2);
  assert.equal(second.accepted.parent, 1, 'a new message follows the head');

  socket.send({ type: 'regenerate', seq: 2, clientId: 'regen-1' });
  const accepted = await socket.waitFor((frame) => frame.type === 'accepted' && frame.clientId === 'regen-1');
  assert.deepEqual([accepted.seq, accepted.parent], [3, 1], 'turn 3 beside turn 2');
  const regenerated = await answered(socket, 3);
  assert.notEqual(regenerated, second.answer);
  assert.deepEqual(promptFor(q2), [system_, user(q1), assistant(first.answer), user(q2)], 'the old answer to q2 is not in the prompt');

  // Every socket of the session, on either gateway, hears that the branch shown changed.
  for (const each of [socket, elsewhere]) {
    const branch = await each.waitFor((frame) => frame.type === 'branch');
    assert.equal(branch.head, 3);
    assert.equal(typeof branch.eventId, 'string');
  }
  const shown = await view(token);
  assert.equal(shown.head, 3);
  assert.deepEqual(
    shown.messages.filter((message) => message.source === 'human').map((message) => [message.seq, message.parent, message.msg]),
    [[1, 0, q1], [2, 1, q2], [3, 1, q2]],
    'both branches are kept',
  );
  // The original API knows no branches: it gets the branch shown, one line.
  const original = await refreshSession(system.baseUrl, token, { original: true });
  assert.deepEqual(
    original.body.messages.map((message) => message.msg),
    [`Human: ${q1}`, `Bot: ${first.answer}`, `Human: ${q2}`, `Bot: ${regenerated}`],
  );
  assert.equal(requestsAbout(q2), 2, 'q2 answered once per turn: exactly once each');
  socket.close();
  elsewhere.close();
});

test('edit: a new first message starts a branch whose prompt holds nothing of the old one; a plain socket follows it', async () => {
  const { token } = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, token);
  const plain = await TestSocket.open(system.gatewayUrls[1] ?? '', token, false);
  const old = `old ${token}`;
  await ask(socket, old);
  await ask(socket, `follow-up ${token}`);
  const edited = `edited ${token}`;
  socket.send({ type: 'edit', seq: 1, text: edited });
  const accepted = await socket.waitFor((frame) => frame.type === 'accepted' && frame.seq === 3);
  assert.equal(accepted.parent, 0);
  const answer = await answered(socket, 3);
  assert.deepEqual(promptFor(edited), [system_, user(edited)]);

  // Plain mode speaks the original protocol: its next message simply continues the branch shown.
  await plain.waitFor((frame) => frame.msg === answer);
  const next = `after the edit ${token}`;
  plain.send(next);
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 4);
  assert.deepEqual(promptFor(next), [system_, user(edited), assistant(answer), user(next)]);
  assert.equal((await view(token)).head, 4);
  socket.close();
  plain.close();
});

test('switch: back to the old branch; the next message continues it, survives a reload and a resume on another gateway', async () => {
  const { token } = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, token);
  const q1 = `first ${token}`;
  const first = await ask(socket, q1);
  const a = `branch a ${token}`;
  const onA = await ask(socket, a); // turn 2, parent 1
  const a2 = await ask(socket, `deeper on a ${token}`); // turn 3, parent 2
  socket.send({ type: 'edit', seq: 2, text: `branch b ${token}` }); // turn 4, parent 1
  await answered(socket, 4);

  // Switching to turn 2 shows its newest leaf: turn 3.
  socket.send({ type: 'switch', seq: 2 });
  await socket.waitFor((frame) => frame.type === 'branch' && frame.head === 3);
  assert.equal((await view(token)).head, 3);
  const next = `continue a ${token}`;
  const continued = await ask(socket, next);
  assert.equal(continued.accepted.parent, 3);
  assert.deepEqual(promptFor(next), [system_, user(q1), assistant(first.answer), user(a), assistant(onA.answer), user(`deeper on a ${token}`), assistant(a2.answer), user(next)]);

  // Switching to where the head already is changes nothing and says nothing.
  const branchFrames = socket.frames.filter((frame) => frame.type === 'branch').length;
  socket.send({ type: 'switch', seq: continued.seq });
  socket.send({ type: 'ping' });
  await socket.waitForCount((frame) => frame.type === 'pong', 1);
  assert.equal(socket.frames.filter((frame) => frame.type === 'branch').length, branchFrames);

  // A reload: the history says which turn is shown; a resume from the start on the other gateway
  // replays every event once, branch changes in their place.
  const reloaded = await view(token);
  assert.equal(reloaded.head, continued.seq);
  const replay = await TestSocket.open(system.gatewayUrls[1] ?? '', token);
  replay.send({ type: 'resume', after: '0' });
  await replay.waitFor((frame) => frame.type === 'done' && frame.seq === continued.seq);
  const liveEvents = socket.frames.filter((frame) => frame.eventId !== undefined).map((frame) => frame.eventId);
  const replayed = replay.frames.filter((frame) => frame.eventId !== undefined).map((frame) => frame.eventId);
  assert.deepEqual(replayed, liveEvents, 'the same events, in the same order, once');
  assert.deepEqual(replay.frames.filter((frame) => frame.type === 'branch').map((frame) => frame.head), [4, 3]);
  socket.close();
  replay.close();
});

test('an edit while an answer streams stops that answer first; turns are still answered in order, each once', async () => {
  const slow = `slow ${Math.random()}`;
  system.model.setRespond(({ messages, index }) =>
    messages.at(-1)?.content === slow
      ? { kind: 'stream', chunks: Array.from({ length: 400 }, (_, n) => `w${n} `), delayMs: 10 }
      : labelled({ messages, index }),
  );
  const { token } = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, token);
  socket.send({ type: 'message', text: slow });
  await socket.waitForCount((frame) => frame.type === 'delta' && frame.seq === 1, 2);
  const instead = `instead ${token}`;
  socket.send({ type: 'edit', seq: 1, text: instead });
  const stopped = await socket.waitFor((frame) => frame.type === 'stopped' && frame.seq === 1);
  const answer = await answered(socket, 2);
  const order = socket.frames.filter((frame) => frame.eventId !== undefined).map((frame) => `${frame.type}:${String(frame.seq ?? frame.head)}`);
  assert.ok(order.indexOf('stopped:1') < order.indexOf('start:2'), order.join(' '));
  assert.ok(!(socket.answers().get(1) ?? '').includes('w399'), 'stopped before its end');
  assert.deepEqual(promptFor(instead), [system_, user(instead)], 'the stopped branch is not in the prompt');
  const stored = await view(token);
  assert.deepEqual(
    stored.messages.filter((message) => message.source === 'bot').map((message) => [message.seq, message.status]),
    [[1, 'stopped'], [2, 'done']],
  );
  assert.equal(stopped.seq, 1);
  assert.ok(answer.startsWith('answer '));
  system.model.setRespond(labelled);
  socket.close();
});

test('edit, regenerate and switch naming turns the session does not have, or malformed, are refused; the socket keeps working', async () => {
  const { token } = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, token);
  await ask(socket, `only ${token}`);
  const hostile: Array<[unknown, string]> = [
    [{ type: 'edit', seq: 2, text: 'no such turn' }, 'unknown_turn'],
    [{ type: 'regenerate', seq: 99 }, 'unknown_turn'],
    [{ type: 'switch', seq: 5 }, 'unknown_turn'],
    [{ type: 'switch', seq: Number.MAX_SAFE_INTEGER }, 'unknown_turn'],
    [{ type: 'edit', seq: 1, text: '   ' }, 'empty_message'],
    [{ type: 'edit', seq: 1, text: 'x'.repeat(system.config.messageMaxChars + 1) }, 'message_too_long'],
    [{ type: 'edit', seq: 1, text: '\ud800' }, 'invalid_frame'],
    [{ type: 'edit', seq: 0, text: 'zero' }, 'invalid_frame'],
    [{ type: 'edit', seq: -1, text: 'negative' }, 'invalid_frame'],
    [{ type: 'edit', seq: 1.5, text: 'fraction' }, 'invalid_frame'],
    [{ type: 'edit', seq: '1', text: 'a string' }, 'invalid_frame'],
    [{ type: 'edit', seq: 1e300, text: 'huge' }, 'invalid_frame'],
    [{ type: 'edit', text: 'no seq' }, 'invalid_frame'],
    [{ type: 'edit', seq: 1 }, 'invalid_frame'],
    [{ type: 'regenerate', seq: 1, text: 'regenerate takes no text' }, 'invalid_frame'],
    [{ type: 'regenerate', seq: 1, clientId: '<script>' }, 'invalid_frame'],
    [{ type: 'switch' }, 'invalid_frame'],
    [{ type: 'switch', seq: null }, 'invalid_frame'],
    [{ type: 'switch', seq: 1, __proto__: { x: 1 }, extra: true }, 'invalid_frame'],
    ['{"type":"switch","seq":1', 'invalid_frame'],
  ];
  for (const [frame, code] of hostile) {
    const before = socket.frames.filter((each) => each.type === 'error').length;
    socket.send(frame);
    const errors = await socket.waitForCount((each) => each.type === 'error', before + 1);
    assert.equal(errors.at(-1)?.code, code, JSON.stringify(frame).slice(0, 100));
  }
  socket.ws.send(Buffer.from([0x7b, 0xff, 0x00]), { binary: true });
  await socket.waitFor((frame) => frame.code === 'binary_frame');
  // Nothing was stored by the refusals, and the socket still serves the person.
  const next = await ask(socket, `still here ${token}`);
  assert.deepEqual([next.seq, next.accepted.parent], [2, 1]);
  assert.equal((await view(token)).messages.length, 4);
  socket.close();
});
