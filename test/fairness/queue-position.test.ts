/**
 * Queue position and admission control: streaming clients waiting for a worker get "queued" frames
 * with their place and an estimated wait, updated as they move; a message that would wait longer
 * than MAX_QUEUE_WAIT_MS is refused at once with "busy" and a retry time, and stores nothing.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { globalKeys } from '../../src/contracts/keys.js';
import { createSession, TestSocket } from '../support/client.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
/** Every answer waits until the test lets it go, so the one slot stays busy until then. */
const held: Array<() => void> = [];
let credit = 0;
function releaseOne(): void {
  const next = held.shift();
  if (next === undefined) credit += 1;
  else next();
}
before(async () => {
  system = await startSystem({ workers: 1, env: { WORKER_CONCURRENCY: '1', MAX_QUEUE_WAIT_MS: '1500' } });
  system.model.setRespond(async () => {
    if (credit > 0) credit -= 1;
    else await new Promise<void>((resolve) => held.push(resolve));
    return { kind: 'stream', chunks: ['ok'] };
  });
});
after(async () => {
  credit = Infinity;
  for (const resolve of held.splice(0)) resolve();
  await system.stop();
});

test('waiting sessions get their place and an estimate; a message that would wait too long gets busy', async () => {
  // A second worker's report with a known speed (the real one has answered nothing yet, so it only
  // adds its slot): two slots at 1000 ms an answer.
  const redis = createClient({ url: TEST_REDIS_URL });
  await redis.connect();
  await redis.hSet(globalKeys(system.prefix).capacity, 'test-worker', JSON.stringify({ slots: 1, answerMs: 1000, at: Date.now() + 60_000 }));
  redis.destroy();

  const open = async () => TestSocket.open(system.baseUrl, (await createSession(system.baseUrl)).token);
  const [busy, first, second, third, late] = await Promise.all([open(), open(), open(), open(), open()]);
  busy?.send({ type: 'message', text: 'takes the slot' });
  await busy?.waitFor((frame) => frame.type === 'start');
  for (const socket of [first, second, third]) {
    socket?.send({ type: 'message', text: 'waits' });
    await socket?.waitFor((frame) => frame.type === 'accepted');
  }
  const queued = await third?.waitFor((frame) => frame.type === 'queued' && frame.position === 3);
  assert.deepEqual(queued, { type: 'queued', seq: 1, position: 3, etaMs: 2000 });
  assert.ok(first?.frames.some((frame) => frame.type === 'queued' && frame.position === 1));

  // Three sessions ahead at two slots of 1000 ms: about 2000 ms, over the 1500 ms bound.
  late?.send({ type: 'message', text: 'too late', clientId: 'late-1' });
  const refusal = await late?.waitFor((frame) => frame.type === 'error');
  assert.equal(refusal?.code, 'busy');
  assert.equal(refusal?.retryAfterMs, 500);
  assert.equal(refusal?.clientId, 'late-1');
  assert.ok(!late?.frames.some((frame) => frame.type === 'accepted'));

  // The slot frees up and the first waiting session takes it: the others move up one place.
  releaseOne();
  await first?.waitFor((frame) => frame.type === 'start');
  await third?.waitFor((frame) => frame.type === 'queued' && frame.position === 2);
  credit = Infinity;
  for (const resolve of held.splice(0)) resolve();
  await Promise.all([first, second, third].map((socket) => socket?.waitFor((frame) => frame.type === 'done')));
  for (const socket of [busy, first, second, third, late]) socket?.close();
});
