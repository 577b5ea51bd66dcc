/**
 * A partitioned queue on one Redis (QUEUE_PARTITIONS=3): each session's wake-ups go to its own
 * partition, a worker reads every partition, takes no more sessions at once than
 * WORKER_CONCURRENCY even when several partitions deliver together, and stop requests reach it
 * over the session's partition's cancel channel.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { partitionOf, queuePartitions } from '../../src/contracts/keys.js';
import { echoAnswer, wordChunks } from '../support/fake-openai-server.js';
import { createSession, TestSocket } from '../support/client.js';
import { testRedisClient } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const SESSIONS = 9;
const CONCURRENCY = 2;

let system: TestSystem;
before(async () => {
  system = await startSystem({ workers: 1, env: { QUEUE_PARTITIONS: '3', WORKER_CONCURRENCY: String(CONCURRENCY) } });
});
after(async () => {
  await system.stop();
});

/** Most answers in progress at once, from their start and done event ids (one Redis: one clock). */
function mostAtOnce(sockets: readonly TestSocket[]): number {
  const marks = sockets.flatMap((socket) =>
    socket.frames.flatMap((frame) => (frame.type === 'start' ? [{ id: String(frame.eventId), step: 1 }] : frame.type === 'done' ? [{ id: String(frame.eventId), step: -1 }] : [])),
  );
  // Ids of different sessions' streams order only by their millisecond part (the sequence part counts
  // per stream): within one millisecond the order is unknown, so a turn that ended then is taken
  // to have ended before one that started in that millisecond.
  const millisecond = (id: string) => Number(id.split('-')[0]);
  marks.sort((a, b) => millisecond(a.id) - millisecond(b.id) || a.step - b.step);
  let now = 0;
  let most = 0;
  for (const mark of marks) {
    now += mark.step;
    most = Math.max(most, now);
  }
  return most;
}

test('sessions on every partition are answered, in order, never more at once than the concurrency', async () => {
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)), delayMs: 5 }));
  const clients = await Promise.all(
    Array.from({ length: SESSIONS }, async (_, index) => {
      const session = await createSession(system.baseUrl, `p${index}`);
      return { index, session, socket: await TestSocket.open(system.baseUrl, session.token) };
    }),
  );
  for (const { index, socket } of clients) {
    socket.send({ type: 'message', text: `a${index}` });
    socket.send({ type: 'message', text: `b${index}` });
  }
  await Promise.all(clients.map(({ socket }) => socket.waitForCount((frame) => frame.type === 'done', 2, 30_000)));
  for (const { index, socket } of clients) {
    assert.equal(socket.answers().get(1), `Echo #1: a${index}`);
    assert.equal(socket.answers().get(2), `Echo #2: b${index}`);
    socket.close();
  }
  // Each session's wake-ups went to its own partition: exactly the partitions of these sessions
  // have handed entries out.
  const used = new Set(clients.map(({ session }) => partitionOf(session.token, 3)));
  const redis = testRedisClient();
  await redis.connect();
  const delivered = await Promise.all(
    queuePartitions(system.prefix, 3).map(async (partition) => String((await redis.xInfoGroups(partition.queue))[0]?.['last-delivered-id']) !== '0-0'),
  );
  redis.destroy();
  assert.deepEqual(
    delivered,
    [0, 1, 2].map((partition) => used.has(partition)),
  );
  const most = mostAtOnce(clients.map(({ socket }) => socket));
  assert.ok(most <= CONCURRENCY, `at most ${CONCURRENCY} answers at once (saw ${most})`);
});

test('stop reaches the worker over the partition cancel channel before the first token', async () => {
  system.model.setRespond(() => ({ kind: 'stream', chunks: ['never'], firstDelayMs: 20_000 }));
  for (let index = 0; index < 3; index += 1) {
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    socket.send({ type: 'message', text: 'wait' });
    await socket.waitFor((frame) => frame.type === 'start');
    const started = Date.now();
    socket.send({ type: 'stop', seq: 1 });
    await socket.waitFor((frame) => frame.type === 'stopped', 5000);
    assert.ok(Date.now() - started < 3000, 'stopped at once');
    socket.close();
  }
});
