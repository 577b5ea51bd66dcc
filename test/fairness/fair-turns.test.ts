/**
 * Finding 2 of issue 10: one session's backlog must not hold a worker slot until it is empty.
 * Two workers with one slot each, a model of fixed speed, four sessions with a backlog each: an
 * ordinary user's message waits for about one answer per busy session, not for the backlogs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { globalKeys } from '../../src/contracts/keys.js';
import { echoAnswer, type FakeRespond } from '../support/fake-openai-server.js';
import { createSession, TestSocket, type Frame } from '../support/client.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const FLOODERS = 4;
const BACKLOG = 10;
const ANSWER_MS = 60;

let system: TestSystem;
before(async () => {
  system = await startSystem({ gateways: 2, workers: 2, env: { WORKER_CONCURRENCY: '1', MAX_PENDING_PER_SESSION: String(BACKLOG) } });
  system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: [echoAnswer(messages)], firstDelayMs: ANSWER_MS }));
});
after(async () => {
  await system.stop();
});

/** When each frame arrived, so answers of different sockets can be put in one order. */
function stamp(socket: TestSocket): Map<Frame, number> {
  const times = new Map<Frame, number>();
  socket.ws.on('message', () => {
    for (const frame of socket.frames) if (!times.has(frame)) times.set(frame, performance.now());
  });
  return times;
}

test('a backlogged session yields its slot: another user waits about one answer per busy session', async () => {
  const flooders = await Promise.all(
    Array.from({ length: FLOODERS }, async (_, index) => {
      const url = system.gatewayUrls[index % 2] ?? '';
      const socket = await TestSocket.open(url, (await createSession(url, `flood ${index}`)).token);
      return { socket, times: stamp(socket) };
    }),
  );
  for (const { socket } of flooders) for (let index = 0; index < BACKLOG; index += 1) socket.send({ type: 'message', text: `f${index}` });
  await Promise.all(flooders.map(({ socket }) => socket.waitForCount((frame) => frame.type === 'accepted', BACKLOG)));
  // Both slots are busy with the backlogs before the ordinary user writes.
  await Promise.all(flooders.slice(0, 2).map(({ socket }) => socket.waitFor((frame) => frame.type === 'start')));

  const url = system.gatewayUrls[1] ?? '';
  const user = await TestSocket.open(url, (await createSession(url, 'ordinary')).token);
  const userTimes = stamp(user);
  user.send({ type: 'message', text: 'hello' });
  const accepted = await user.waitFor((frame) => frame.type === 'accepted');
  const done = await user.waitFor((frame) => frame.type === 'done', 30_000);
  const from = userTimes.get(accepted) ?? 0;
  const to = userTimes.get(done) ?? 0;
  const answeredMeanwhile = flooders.reduce(
    (sum, { times }) => sum + [...times].filter(([frame, at]) => frame.type === 'done' && at > from && at < to).length,
    0,
  );
  // Fair: the answers in progress, then one per busy session (4), with a little slack for timing.
  assert.ok(answeredMeanwhile <= FLOODERS + 3, `${answeredMeanwhile} backlog answers were committed while the user waited`);
  await Promise.all(flooders.map(({ socket }) => socket.waitForCount((frame) => frame.type === 'done', BACKLOG, 30_000)));
  for (const { socket } of flooders) {
    assert.deepEqual(
      socket.frames.filter((frame) => frame.type === 'done').map((frame) => frame.seq),
      Array.from({ length: BACKLOG }, (_, index) => index + 1),
      'each backlog is still answered once, in order',
    );
    socket.close();
  }
  user.close();
});

/** Queue entries (read or not, nothing is trimmed this soon) that name each session. */
async function queueEntriesBySession(): Promise<Map<string, number>> {
  const redis = createClient({ url: TEST_REDIS_URL });
  await redis.connect();
  try {
    const entries = await redis.xRange(globalKeys(system.prefix).queue, '-', '+');
    const counts = new Map<string, number>();
    for (const { message } of entries ?? []) counts.set(message.t ?? '', (counts.get(message.t ?? '') ?? 0) + 1);
    return counts;
  } finally {
    redis.destroy();
  }
}

test('a session whose last message is answered while others wait is not queued again', async () => {
  // Both slots hold a session's only message until the third session's message waits in line.
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const gated: FakeRespond = async ({ messages }) => {
    await gate;
    return { kind: 'stream', chunks: [echoAnswer(messages)] };
  };
  system.model.setRespond(gated);
  try {
    const url = system.gatewayUrls[0] ?? '';
    const sockets = await Promise.all(['busy 1', 'busy 2', 'waiting'].map(async (name) => TestSocket.open(url, (await createSession(url, name)).token)));
    const [first, second, waiting] = sockets as [TestSocket, TestSocket, TestSocket];
    for (const socket of [first, second]) socket.send({ type: 'message', text: 'only one' });
    await Promise.all([first, second].map((socket) => socket.waitFor((frame) => frame.type === 'start')));
    waiting.send({ type: 'message', text: 'my turn?' });
    await waiting.waitFor((frame) => frame.type === 'accepted');
    open();
    await Promise.all(sockets.map((socket) => socket.waitFor((frame) => frame.type === 'done', 15_000)));
    const counts = await queueEntriesBySession();
    // The message's own wake-up only: with nothing left to answer, yielding the slot must not put
    // the session back in line (a worker would spend a turn finding nothing to do).
    for (const socket of sockets) assert.equal(counts.get(String(socket.frames[0]?.token)), 1);
    for (const socket of sockets) socket.close();
  } finally {
    system.model.setRespond(({ messages }) => ({ kind: 'stream', chunks: [echoAnswer(messages)], firstDelayMs: ANSWER_MS }));
  }
});
