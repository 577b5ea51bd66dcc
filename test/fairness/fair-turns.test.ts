/**
 * Finding 2 of issue 10: one session's backlog must not hold a worker slot until it is empty.
 * Two workers with one slot each, a model of fixed speed, four sessions with a backlog each: an
 * ordinary user's message waits for about one answer per busy session, not for the backlogs.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { echoAnswer } from '../support/fake-openai-server.js';
import { createSession, TestSocket, type Frame } from '../support/client.js';
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
