/**
 * Per-address concurrency cap: one client address gets at most MAX_ACTIVE_PER_ADDRESS answers at
 * once, over all workers, however many sessions it opens; other addresses are not held up.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { echoAnswer } from '../support/fake-openai-server.js';
import { TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem({ gateways: 2, workers: 2, env: { TRUST_PROXY: 'true', WORKER_CONCURRENCY: '3', MAX_ACTIVE_PER_ADDRESS: '1' } });
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: [echoAnswer(messages)], firstDelayMs: 150 }));
});
after(async () => {
  await system.stop();
});

async function client(index: number, address: string): Promise<{ socket: TestSocket }> {
  const url = system.gatewayUrls[index % 2] ?? '';
  const headers = { 'X-Forwarded-For': address };
  const response = await fetch(`${url}/token?name=Ada`, { method: 'POST', headers });
  const { token } = (await response.json()) as { token: string };
  return { socket: await TestSocket.open(url, token, true, headers) };
}

test('one address with three sessions is answered one session at a time; another address is not held up', async () => {
  const crowd = await Promise.all([0, 1, 2].map((index) => client(index, '198.51.100.1')));
  for (const { socket } of crowd) socket.send({ type: 'message', text: 'hi' });
  await Promise.all(crowd.map(({ socket }) => socket.waitFor((frame) => frame.type === 'accepted')));
  const other = await client(1, '198.51.100.2');
  other.socket.send({ type: 'message', text: 'hello' });
  await Promise.all([...crowd, other].map(({ socket }) => socket.waitFor((frame) => frame.type === 'done', 20_000)));

  // Ordered by event id: Redis stamps every event with its own clock, whichever gateway relays it.
  const at = (socket: TestSocket, type: string) => Number(String(socket.frames.find((frame) => frame.type === type)?.eventId).split('-')[0]);
  const spans = crowd.map(({ socket }) => ({ start: at(socket, 'start'), done: at(socket, 'done') })).sort((a, b) => a.start - b.start);
  for (let index = 1; index < spans.length; index += 1) {
    assert.ok((spans[index]?.start ?? 0) >= (spans[index - 1]?.done ?? Infinity), `answers of one address overlap: ${JSON.stringify(spans)}`);
  }
  assert.ok(at(other.socket, 'done') < (spans[2]?.done ?? 0), 'the other address did not wait for the crowd');
  for (const { socket } of [...crowd, other]) socket.close();
});
