/**
 * The exactly-once guarantees of the session scripts, against the real Redis: leases, the
 * compare-and-set commit, takeover after lease expiry, stop requests, TTLs, hash tags, the capped
 * event stream and history order. Every test works under a random key prefix of its own.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { USER_ERROR_TEXTS } from '../../src/contracts/errors.js';
import { globalKeys, sessionKeys } from '../../src/contracts/keys.js';
import type { MessageRecord } from '../../src/contracts/protocol.js';
import { AnswerStore, type TurnOutcome } from '../../src/store/answer-store.js';
import { orderByTurn, SessionStore, type WakeUp } from '../../src/store/session-store.js';
import { deleteKeys, randomPrefix, testRedisClient, type TestRedis } from '../support/redis.js';

let redis: TestRedis;
const prefixes: string[] = [];

before(async () => {
  redis = testRedisClient();
  await redis.connect();
});
afterEach(async () => {
  for (const prefix of prefixes.splice(0)) await deleteKeys(prefix);
});
after(() => {
  redis.destroy();
});

interface Setup {
  readonly prefix: string;
  readonly sessions: SessionStore;
  readonly answers: AnswerStore;
  readonly cancelChannel: string;
}

interface SetupOptions {
  readonly leaseMs?: number;
  readonly sessionTtlSeconds?: number;
  readonly eventsMaxLen?: number;
  readonly maxPendingPerSession?: number;
  readonly historyRecords?: number;
  readonly historyMaxRecords?: number;
  readonly refreshMaxMessages?: number;
}

function setup(options: SetupOptions = {}): Setup {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  const common = { prefix, sessionTtlSeconds: options.sessionTtlSeconds ?? 3600, eventsMaxLen: options.eventsMaxLen ?? 2000 };
  return {
    prefix,
    sessions: new SessionStore(redis, { ...common, maxPendingPerSession: options.maxPendingPerSession ?? 20, historyMaxRecords: options.historyMaxRecords ?? 1000, refreshMaxMessages: options.refreshMaxMessages ?? 200 }),
    answers: new AnswerStore(redis, { ...common, leaseMs: options.leaseMs ?? 10_000, historyRecords: options.historyRecords ?? 200 }),
    cancelChannel: `${prefix}cancel`,
  };
}

const answer = (text: string): TurnOutcome => ({ kind: 'answer', text, stopped: false });

/** A session with the given human messages accepted. */
/** Wake-ups go to this setup's queue, sent after the message is stored (as on a Cluster). */
function wake(s: Setup): WakeUp {
  return { queueKey: `${s.prefix}queue`, unansweredKey: `${s.prefix}unanswered`, inScript: false };
}

async function sessionWith(s: Setup, ...texts: string[]): Promise<string> {
  const { token } = await s.sessions.create('Ada');
  for (const text of texts) {
    const accepted = await s.sessions.accept(token, text, undefined, wake(s));
    assert.equal(accepted.status, 'accepted');
  }
  return token;
}

async function history(s: Setup, token: string): Promise<Array<[string, number, string]>> {
  const view = await s.sessions.read(token);
  assert.ok(view, 'the session exists');
  return view.messages.map((message) => [message.source, message.seq, message.msg]);
}

async function startOk(s: Setup, token: string, owner: string): Promise<{ turn: number; attempt: number; cancelled: boolean }> {
  const start = await s.answers.startTurn(token, owner);
  assert.equal(start.status, 'ok');
  if (start.status !== 'ok') throw new Error('unreachable');
  return { turn: start.turn, attempt: start.attempt, cancelled: start.cancelled };
}

test('two owners race for a lease: exactly one gets it, every time', async () => {
  const s = setup();
  for (let round = 0; round < 20; round += 1) {
    const token = await sessionWith(s, `message ${round}`);
    const results = await Promise.all([s.answers.acquireLease(token, 'worker-a'), s.answers.acquireLease(token, 'worker-b')]);
    assert.equal(results.filter(Boolean).length, 1, `round ${round}: ${JSON.stringify(results)}`);
    const holder = await redis.get(sessionKeys(s.prefix, token).lease);
    assert.equal(holder, results[0] === true ? 'worker-a' : 'worker-b');
  }
});

test('a worker without the lease can neither start, append nor commit', async () => {
  const s = setup();
  const token = await sessionWith(s, 'hello');
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  assert.equal(await s.answers.acquireLease(token, 'b'), false);
  const { turn } = await startOk(s, token, 'a');

  assert.deepEqual(await s.answers.startTurn(token, 'b'), { status: 'lost' });
  assert.deepEqual(await s.answers.appendDelta(token, 'b', turn, 'intruder'), { status: 'lost', cancelled: false });
  assert.equal(await s.answers.finishTurn(token, 'b', turn, answer('from b'), ''), 'lost');
  assert.deepEqual(await history(s, token), [['human', 1, 'hello']]);

  // Both race to commit at the same moment: only the owner wins.
  const [fromA, fromB] = await Promise.all([
    s.answers.finishTurn(token, 'a', turn, answer('from a'), ''),
    s.answers.finishTurn(token, 'b', turn, answer('from b'), ''),
  ]);
  assert.deepEqual([fromA, fromB], ['drained', 'lost']);
  assert.deepEqual(await history(s, token), [
    ['human', 1, 'hello'],
    ['bot', 1, 'from a'],
  ]);
  const events = await s.sessions.eventsAfter(token, '0');
  assert.equal(events.events.filter((event) => event.type === 'delta' && event.text === 'intruder').length, 0);
});

test('lease expiry: B takes over and commits; A, revived late, cannot append or commit', async () => {
  const s = setup({ leaseMs: 300 });
  const token = await sessionWith(s, 'question');
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  const first = await startOk(s, token, 'a');
  assert.deepEqual(first, { turn: 1, attempt: 1, cancelled: false });
  assert.equal((await s.answers.appendDelta(token, 'a', 1, 'partial from a ')).status, 'ok');

  await sleep(450); // A stalls (GC pause, network partition) past its lease.
  assert.equal(await s.answers.acquireLease(token, 'b'), true);
  assert.deepEqual(await startOk(s, token, 'b'), { turn: 1, attempt: 2, cancelled: false });
  assert.equal((await s.answers.appendDelta(token, 'b', 1, 'answer ')).status, 'ok');
  assert.equal(await s.answers.finishTurn(token, 'b', 1, answer('answer from b'), 'from b'), 'drained');

  // A wakes up and carries on as if nothing happened.
  assert.deepEqual(await s.answers.appendDelta(token, 'a', 1, 'late text'), { status: 'lost', cancelled: false });
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('answer from a'), ''), 'lost');

  const view = await s.sessions.read(token);
  assert.ok(view);
  const bots = view.messages.filter((message) => message.source === 'bot');
  assert.equal(bots.length, 1);
  assert.equal(bots[0]?.msg, 'answer from b');
  assert.equal(bots[0]?.status, 'done');

  const { events } = await s.sessions.eventsAfter(token, '0');
  assert.deepEqual(
    events.map((event) => (event.type === 'delta' ? `delta:${event.text}` : event.type === 'start' ? `start:${event.attempt}` : event.type)),
    ['start:1', 'delta:partial from a ', 'start:2', 'delta:answer ', 'delta:from b', 'done'],
  );
  const done = events.at(-1);
  assert.ok(done?.type === 'done');
  assert.equal(done.id, bots[0]?.id);
  assert.equal(view.last_event_id, done.eventId);
});

test('a lease that expired with nobody taking over still stops the old owner', async () => {
  const s = setup({ leaseMs: 250 });
  const token = await sessionWith(s, 'question');
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  await startOk(s, token, 'a');
  await sleep(400);
  assert.equal(await s.answers.renewLease(token, 'a'), false);
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('late'), ''), 'lost');
  assert.deepEqual(await history(s, token), [['human', 1, 'question']]);
});

test('renewLease keeps the lease alive past its original lifetime; releaseLease gives it back', async () => {
  const s = setup({ leaseMs: 500 });
  const token = await sessionWith(s, 'question');
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  for (let i = 0; i < 6; i += 1) {
    await sleep(150); // 900 ms in all, well past the 500 ms lease
    assert.equal(await s.answers.renewLease(token, 'a'), true);
  }
  assert.equal(await s.answers.acquireLease(token, 'b'), false);
  assert.equal(await s.answers.renewLease(token, 'b'), false);
  await s.answers.releaseLease(token, 'b'); // not the owner: no effect
  assert.equal(await s.answers.acquireLease(token, 'b'), false);
  await s.answers.releaseLease(token, 'a');
  await sleep(20);
  assert.equal(await s.answers.acquireLease(token, 'b'), true);
});

test('the owner committing the same turn twice: the second commit is stale and changes nothing', async () => {
  const s = setup();
  const token = await sessionWith(s, 'one');
  // Later turns wait, so each commit keeps the lease ("ok", not "drained").
  await s.sessions.accept(token, 'two', undefined, wake(s));
  await s.sessions.accept(token, 'three', undefined, wake(s));
  await s.answers.acquireLease(token, 'a');
  const { turn } = await startOk(s, token, 'a');
  assert.equal(await s.answers.finishTurn(token, 'a', turn, answer('first'), ''), 'ok');
  const eventsBefore = (await s.sessions.eventsAfter(token, '0')).events.length;
  assert.equal(await s.answers.finishTurn(token, 'a', turn, answer('second'), 'extra'), 'stale');
  assert.deepEqual(await history(s, token), [
    ['human', 1, 'one'],
    ['bot', 1, 'first'],
    ['human', 2, 'two'],
    ['human', 3, 'three'],
  ]);
  assert.equal((await s.sessions.eventsAfter(token, '0')).events.length, eventsBefore);

  // Concurrent double commit of the next turn by the owner: one ok, one stale.
  const next = await startOk(s, token, 'a');
  const results = await Promise.all([
    s.answers.finishTurn(token, 'a', next.turn, answer('x'), ''),
    s.answers.finishTurn(token, 'a', next.turn, answer('y'), ''),
  ]);
  assert.deepEqual([...results].sort(), ['ok', 'stale']);
  assert.equal((await history(s, token)).filter(([source]) => source === 'bot').length, 2);
  // A commit for a turn that is not the next one (skipping ahead) is refused too.
  assert.equal(await s.answers.finishTurn(token, 'a', 5, answer('future'), ''), 'stale');
});

test('startTurn with nothing unanswered reports idle and releases the lease in the same step', async () => {
  const s = setup();
  const token = await sessionWith(s);
  const leaseKey = sessionKeys(s.prefix, token).lease;
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  assert.deepEqual(await s.answers.startTurn(token, 'a'), { status: 'idle' });
  assert.equal(await redis.exists(leaseKey), 0);

  await s.sessions.accept(token, 'now there is work', undefined, wake(s));
  assert.equal(await s.answers.acquireLease(token, 'b'), true);
  assert.deepEqual(await startOk(s, token, 'b'), { turn: 1, attempt: 1, cancelled: false });
  // The former owner, without the lease, is told so.
  assert.deepEqual(await s.answers.startTurn(token, 'a'), { status: 'lost' });
});

test('a commit with turns still waiting keeps the lease; the last one releases it in the same step', async () => {
  const s = setup();
  const token = await sessionWith(s, 'one', 'two');
  const leaseKey = sessionKeys(s.prefix, token).lease;
  assert.equal(await s.answers.acquireLease(token, 'a'), true);
  await startOk(s, token, 'a');
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('first'), ''), 'ok');
  assert.equal(await redis.get(leaseKey), 'a');
  assert.deepEqual(await startOk(s, token, 'a'), { turn: 2, attempt: 1, cancelled: false });
  assert.equal(await s.answers.finishTurn(token, 'a', 2, answer('second'), ''), 'drained');
  // Nothing left: no second look (a startTurn that finds nothing) is needed to let go.
  assert.equal(await redis.exists(leaseKey), 0);
  await s.sessions.accept(token, 'three', undefined, wake(s));
  assert.equal(await s.answers.acquireLease(token, 'b'), true);
  assert.deepEqual(await startOk(s, token, 'b'), { turn: 3, attempt: 1, cancelled: false });
});

test('the attempt counter counts restarts of the same turn and starts over for the next turn', async () => {
  const s = setup({ leaseMs: 200 });
  const token = await sessionWith(s, 'one', 'two');
  const attempts: number[] = [];
  for (const owner of ['a', 'b', 'c']) {
    assert.equal(await s.answers.acquireLease(token, owner), true);
    const start = await startOk(s, token, owner);
    assert.equal(start.turn, 1);
    attempts.push(start.attempt);
    if (owner !== 'c') await sleep(300);
  }
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(await s.answers.finishTurn(token, 'c', 1, answer('finally'), ''), 'ok');
  assert.deepEqual(await startOk(s, token, 'c'), { turn: 2, attempt: 1, cancelled: false });
  const starts = (await s.sessions.eventsAfter(token, '0')).events.flatMap((event) => (event.type === 'start' ? [[event.seq, event.attempt]] : []));
  assert.deepEqual(starts, [
    [1, 1],
    [1, 2],
    [1, 3],
    [2, 1],
  ]);
});

test('stop: the turn in progress sees the request; answered and unknown turns cannot be stopped', async () => {
  const s = setup();
  const token = await sessionWith(s, 'one', 'two');
  const subscriber = redis.duplicate();
  await subscriber.connect();
  const published: string[] = [];
  try {
    await subscriber.subscribe(s.cancelChannel, (message) => published.push(message));
    assert.equal(await s.sessions.requestStop(token, s.cancelChannel, 5), null, 'beyond the last accepted turn');

    await s.answers.acquireLease(token, 'a');
    await startOk(s, token, 'a');
    assert.deepEqual(await s.answers.appendDelta(token, 'a', 1, 'some '), { status: 'ok', cancelled: false });
    assert.equal(await s.sessions.requestStop(token, s.cancelChannel), 1, 'default: the turn in progress');
    assert.deepEqual(await s.answers.appendDelta(token, 'a', 1, 'more'), { status: 'ok', cancelled: true });
    assert.equal(await s.answers.finishTurn(token, 'a', 1, { kind: 'answer', text: 'some more', stopped: true }, ''), 'ok');
    assert.equal(await redis.exists(sessionKeys(s.prefix, token).cancel), 0, 'the commit clears the stop request');

    assert.equal(await s.sessions.requestStop(token, s.cancelChannel, 1), null, 'already answered');
    assert.equal(await s.sessions.requestStop(token, s.cancelChannel, 3), null, 'never accepted');

    // A queued turn may be stopped before it starts: it then starts as cancelled.
    assert.equal(await s.sessions.requestStop(token, s.cancelChannel, 2), 2);
    assert.deepEqual(await startOk(s, token, 'a'), { turn: 2, attempt: 1, cancelled: true });
    assert.equal(await s.answers.finishTurn(token, 'a', 2, { kind: 'answer', text: '', stopped: true }, ''), 'drained');
    assert.equal(await s.sessions.requestStop(token, s.cancelChannel), null, 'nothing in progress');

    const view = await s.sessions.read(token);
    assert.deepEqual(
      view?.messages.map((message) => [message.source, message.seq, message.msg, message.status]),
      [
        ['human', 1, 'one', undefined],
        ['bot', 1, 'some more', 'stopped'],
        ['human', 2, 'two', undefined],
        ['bot', 2, '', 'stopped'],
      ],
    );
    const deadline = Date.now() + 2000;
    while (published.length < 2 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(published, [`${token} 1`, `${token} 2`]);
  } finally {
    subscriber.destroy();
  }
});

test('an errored turn is kept as an error on its message, and the next turn proceeds', async () => {
  const s = setup();
  const token = await sessionWith(s, 'one', 'two');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  assert.equal(await s.answers.finishTurn(token, 'a', 1, { kind: 'error', code: 'model_unavailable', ref: 'REF2345678' }, ''), 'ok');
  assert.deepEqual(await startOk(s, token, 'a'), { turn: 2, attempt: 1, cancelled: false });
  assert.equal(await s.answers.finishTurn(token, 'a', 2, answer('fine now'), ''), 'drained');
  const view = await s.sessions.read(token);
  assert.ok(view);
  // The history keeps the code and reference; the text is the fixed one of the code.
  assert.deepEqual(view.messages[0]?.error, { code: 'model_unavailable', message: USER_ERROR_TEXTS.model_unavailable, ref: 'REF2345678' });
  assert.deepEqual(
    view.messages.map((message) => [message.source, message.seq, message.msg]),
    [
      ['human', 1, 'one'],
      ['human', 2, 'two'],
      ['bot', 2, 'fine now'],
    ],
  );
  const terminal = (await s.sessions.eventsAfter(token, '0')).events.filter((event) => event.type === 'error');
  assert.deepEqual(
    terminal.map((event) => (event.type === 'error' ? [event.seq, event.code] : [])),
    [[1, 'model_unavailable']],
  );
});

test('a resent message (same clientId) is accepted once; a full session is busy', async () => {
  const s = setup({ maxPendingPerSession: 2 });
  const token = await sessionWith(s);
  const first = await s.sessions.accept(token, 'hi', 'client-1', wake(s));
  const again = await s.sessions.accept(token, 'hi', 'client-1', wake(s));
  if (first.status !== 'accepted' || again.status !== 'duplicate') throw new Error(`got ${first.status}, ${again.status}`);
  assert.deepEqual(again.record, first.record);
  assert.equal(first.record.seq, 1);
  assert.equal((await s.sessions.accept(token, 'second', undefined, wake(s))).status, 'accepted');
  assert.deepEqual(await s.sessions.accept(token, 'third', undefined, wake(s)), { status: 'busy' });
  assert.deepEqual(await history(s, token), [
    ['human', 1, 'hi'],
    ['human', 2, 'second'],
  ]);
  assert.deepEqual(await s.sessions.accept(randomUUID(), 'nobody', undefined, wake(s)), { status: 'expired' });
});

/** Every session key under the prefix, with its PTTL (the queue and the unanswered set are global: no TTL). */
async function keysWithTtl(prefix: string): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  const global = globalKeys(prefix);
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    for (const key of keys) if (key !== global.queue && key !== global.unanswered) result.set(key, await redis.pTTL(key));
  }
  return result;
}

async function assertAllKeysExpireWithin(prefix: string, token: string, ttlMs: number, when: string): Promise<void> {
  const keys = await keysWithTtl(prefix);
  assert.ok(keys.size > 0, `${when}: keys exist`);
  for (const [key, pttl] of keys) {
    assert.ok(key.includes(`{${token}}`), `${when}: ${key} carries the hash tag {${token}}`);
    assert.ok(pttl > 0 && pttl <= ttlMs, `${when}: ${key} has PTTL ${pttl}, expected within (0, ${ttlMs}]`);
  }
}

test('every key of a session carries its hash tag and expires within the session lifetime, at every step', async () => {
  const ttlSeconds = 30;
  const ttlMs = ttlSeconds * 1000;
  const s = setup({ sessionTtlSeconds: ttlSeconds });
  const { token } = await s.sessions.create('Ada');
  const keys = sessionKeys(s.prefix, token);
  await assertAllKeysExpireWithin(s.prefix, token, ttlMs, 'after create');

  await s.sessions.accept(token, 'one', 'client-1', wake(s));
  await s.sessions.accept(token, 'two', 'client-2', wake(s));
  await assertAllKeysExpireWithin(s.prefix, token, ttlMs, 'after accept');

  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  await assertAllKeysExpireWithin(s.prefix, token, ttlMs, 'after start');

  await s.answers.appendDelta(token, 'a', 1, 'partial');
  await s.sessions.requestStop(token, s.cancelChannel);
  await assertAllKeysExpireWithin(s.prefix, token, ttlMs, 'after append and stop');

  await s.answers.finishTurn(token, 'a', 1, { kind: 'error', code: 'model_failed', ref: 'REF2345678' }, '');
  await startOk(s, token, 'a');
  await s.answers.finishTurn(token, 'a', 2, answer('an answer'), 'an answer');
  await assertAllKeysExpireWithin(s.prefix, token, ttlMs, 'after finish');

  for (const key of [keys.session, keys.messages, keys.events, keys.dedupe, keys.errors]) {
    assert.equal(await redis.exists(key), 1, `${key} exists`);
  }

  // Reading renews: TTLs go back up to the full lifetime.
  await redis.pExpire(keys.session, 5000);
  await s.sessions.read(token);
  assert.ok((await redis.pTTL(keys.session)) > 5000);
});

test('a session that expires while its answer is being written is not brought back to life', async () => {
  const s = setup({ sessionTtlSeconds: 0.3, leaseMs: 10_000 });
  const token = await sessionWith(s, 'question');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  await sleep(450); // the session's keys expire; the worker still holds its lease
  assert.equal(await s.sessions.read(token), null);

  const append = await s.answers.appendDelta(token, 'a', 1, 'late text');
  assert.equal(append.status, 'lost');
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('late text'), ''), 'expired');
  assert.equal(await s.sessions.read(token), null, 'the session stays gone');
  for (const [key, pttl] of await keysWithTtl(s.prefix)) {
    assert.ok(pttl > 0, `${key} must not be left without a TTL (PTTL ${pttl})`);
  }
});

test('a session whose answer keeps streaming stays alive past its lifetime', async () => {
  const s = setup({ sessionTtlSeconds: 0.4, leaseMs: 10_000 });
  const token = await sessionWith(s, 'tell me a long story');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  for (let i = 0; i < 8; i += 1) {
    await sleep(100);
    assert.equal((await s.answers.appendDelta(token, 'a', 1, `part ${i} `)).status, 'ok');
  }
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('the whole story'), ''), 'drained');
  assert.deepEqual(await history(s, token), [
    ['human', 1, 'tell me a long story'],
    ['bot', 1, 'the whole story'],
  ]);
});

test('the event stream is capped: 1000 deltas keep it near its maximum length, and old ids report incomplete', async () => {
  const s = setup({ eventsMaxLen: 100 });
  const token = await sessionWith(s, 'talk a lot');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  const earlyIds: string[] = [];
  for (let i = 0; i < 1000; i += 1) {
    await s.answers.appendDelta(token, 'a', 1, `${i} `);
    if (i === 4) earlyIds.push(...(await s.sessions.eventsAfter(token, '0')).events.map((event) => event.eventId));
  }
  assert.equal(await s.answers.finishTurn(token, 'a', 1, answer('long'), ''), 'drained');
  const length = await redis.xLen(sessionKeys(s.prefix, token).events);
  assert.ok(length >= 100 && length <= 250, `XLEN ${length} stays near the cap of 100`);

  const early = earlyIds[2];
  assert.ok(early !== undefined);
  const fromEarly = await s.sessions.eventsAfter(token, early);
  assert.equal(fromEarly.complete, false, 'events after an early id were trimmed');

  // From the very beginning ("0"), the start of the answer is gone too: not complete either.
  const fromStart = await s.sessions.eventsAfter(token, '0');
  assert.equal(fromStart.complete, false, 'events after "0" were trimmed');

  // A recent id is still covered: complete, and exactly the events after it.
  const all = fromStart.events;
  const recent = all[all.length - 10];
  assert.ok(recent !== undefined);
  const fromRecent = await s.sessions.eventsAfter(token, recent.eventId);
  assert.equal(fromRecent.complete, true);
  assert.deepEqual(
    fromRecent.events.map((event) => event.eventId),
    all.slice(-9).map((event) => event.eventId),
  );
  assert.equal(fromRecent.events.at(-1)?.type, 'done');
});

test('eventsAfter returns exactly the events after an id, oldest first', async () => {
  const s = setup();
  const token = await sessionWith(s, 'count');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  for (const word of ['one ', 'two ', 'three ', 'four ']) await s.answers.appendDelta(token, 'a', 1, word);
  await s.answers.finishTurn(token, 'a', 1, answer('one two three four five'), 'five');

  const all = await s.sessions.eventsAfter(token, '0');
  assert.equal(all.complete, true);
  assert.deepEqual(
    all.events.map((event) => (event.type === 'delta' ? event.text : event.type)),
    ['start', 'one ', 'two ', 'three ', 'four ', 'five', 'done'],
  );
  const ids = all.events.map((event) => event.eventId);
  assert.deepEqual([...new Set(ids)], ids, 'ids are unique');
  for (let i = 1; i < ids.length; i += 1) {
    const [prevMs = 0, prevSeq = 0] = (ids[i - 1] ?? '').split('-').map(Number);
    const [ms = 0, seq = 0] = (ids[i] ?? '').split('-').map(Number);
    assert.ok(ms > prevMs || (ms === prevMs && seq > prevSeq), `ids ascend: ${ids[i - 1]} < ${ids[i]}`);
  }
  for (let i = 0; i < ids.length; i += 1) {
    const after = await s.sessions.eventsAfter(token, ids[i] ?? '');
    assert.equal(after.complete, true);
    assert.deepEqual(
      after.events.map((event) => event.eventId),
      ids.slice(i + 1),
      `after event ${i}`,
    );
  }
  // The page size is honoured and the next page continues where the last one ended.
  const firstPage = await s.sessions.eventsAfter(token, '0', 3);
  assert.deepEqual(
    firstPage.events.map((event) => event.eventId),
    ids.slice(0, 3),
  );
  const secondPage = await s.sessions.eventsAfter(token, ids[2] ?? '', 3);
  assert.deepEqual(
    secondPage.events.map((event) => event.eventId),
    ids.slice(3, 6),
  );
});

test('history is ordered by turn even when commits interleave with new messages', async () => {
  const s = setup();
  const token = await sessionWith(s, 'q1', 'q2');
  await s.answers.acquireLease(token, 'a');
  await startOk(s, token, 'a');
  await s.answers.finishTurn(token, 'a', 1, answer('a1'), '');
  await s.sessions.accept(token, 'q3', undefined, wake(s));
  await startOk(s, token, 'a');
  await s.sessions.accept(token, 'q4', undefined, wake(s));
  await s.answers.finishTurn(token, 'a', 2, answer('a2'), '');
  await startOk(s, token, 'a');
  await s.answers.finishTurn(token, 'a', 3, answer('a3'), '');

  const raw = await redis.lRange(sessionKeys(s.prefix, token).messages, 0, -1);
  assert.deepEqual(
    raw.map((record) => (JSON.parse(record) as { msg: string }).msg),
    ['q1', 'q2', 'a1', 'q3', 'q4', 'a2', 'a3'],
    'stored in commit order',
  );
  assert.deepEqual(await history(s, token), [
    ['human', 1, 'q1'],
    ['bot', 1, 'a1'],
    ['human', 2, 'q2'],
    ['bot', 2, 'a2'],
    ['human', 3, 'q3'],
    ['bot', 3, 'a3'],
    ['human', 4, 'q4'],
  ]);
});

test('orderByTurn puts each answer right after its question', () => {
  const record = (source: 'human' | 'bot', seq: number): MessageRecord => ({
    id: `${source}-${seq}`,
    msg: `${source} ${seq}`,
    timestamp: '2024-01-01T00:00:00.000Z',
    source,
    seq,
  });
  const commitOrder = [record('human', 1), record('human', 2), record('human', 3), record('bot', 2), record('bot', 1), record('bot', 3), record('human', 4)];
  assert.deepEqual(
    orderByTurn(commitOrder).map((message) => message.id),
    ['human-1', 'bot-1', 'human-2', 'bot-2', 'human-3', 'bot-3', 'human-4'],
  );
});

test('a malformed record in the history makes read() fail with a clear error instead of returning garbage', async () => {
  const s = setup();
  for (const planted of ['not json at all', JSON.stringify({ id: 7, msg: 'x', source: 'alien', seq: 0 })]) {
    const token = await sessionWith(s, 'good message');
    await redis.rPush(sessionKeys(s.prefix, token).messages, planted);
    await assert.rejects(s.sessions.read(token), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /malformed/i);
      assert.doesNotMatch(error.message, /not json at all/, 'the stored text is not echoed into logs');
      return true;
    });
    // The worker leaves it out of the prompt (and says how many) instead of failing the turn on
    // every retry forever; the good record is still there.
    await s.answers.acquireLease(token, 'a');
    const start = await s.answers.startTurn(token, 'a');
    assert.equal(start.status, 'ok');
    if (start.status === 'ok') {
      assert.equal(start.malformedRecords, 1);
      assert.deepEqual(start.history.map((record) => record.msg), ['good message']);
    }
  }
});

test('startTurn hands the worker only the newest history records, never the whole session', async () => {
  const s = setup({ historyRecords: 3 });
  const token = await sessionWith(s, 'one');
  for (const text of ['two', 'three', 'four', 'five']) {
    await answerAll(s, token);
    await s.sessions.accept(token, text, undefined, wake(s));
  }
  await s.answers.acquireLease(token, 'a');
  const start = await s.answers.startTurn(token, 'a');
  assert.equal(start.status, 'ok');
  if (start.status === 'ok') assert.deepEqual(start.history.map((record) => record.msg), ['four', 'answer to four', 'five']);
});

test('the accept script adds the wake-up itself, only for an accepted message, also when it had to be resent', async () => {
  const s = setup({ maxPendingPerSession: 2 });
  const queueKey = `${s.prefix}queue`;
  const { token } = await s.sessions.create('Ada');
  await s.sessions.accept(token, 'warm', undefined, { queueKey, unansweredKey: `${s.prefix}unanswered`, inScript: true });
  assert.equal(await redis.xLen(queueKey), 1);
  // After a Redis restart or failover the cache is empty: EVALSHA fails and the script is resent.
  await redis.scriptFlush();
  assert.equal((await s.sessions.accept(token, 'cold', undefined, { queueKey, unansweredKey: `${s.prefix}unanswered`, inScript: true })).status, 'accepted');
  assert.equal(await redis.xLen(queueKey), 2);
  const newest = (await redis.xRange(queueKey, '-', '+'))?.[1];
  assert.equal(await redis.hGet(sessionKeys(s.prefix, token).session, 'wake'), newest?.id, 'the session knows its newest wake-up');
  // Refused (busy, then expired, the latter with a cold cache): no entry.
  assert.deepEqual(await s.sessions.accept(token, 'third', undefined, { queueKey, unansweredKey: `${s.prefix}unanswered`, inScript: true }), { status: 'busy' });
  await redis.scriptFlush();
  await redis.del(sessionKeys(s.prefix, token).session);
  assert.equal((await s.sessions.accept(token, 'gone', undefined, { queueKey, unansweredKey: `${s.prefix}unanswered`, inScript: true })).status, 'expired');
  assert.equal(await redis.xLen(queueKey), 2);
});

test('refresh_token returns the newest REFRESH_MAX_MESSAGES messages, oldest first', async () => {
  const s = setup({ refreshMaxMessages: 2 });
  const token = await sessionWith(s, 'one', 'two', 'three');
  assert.deepEqual((await s.sessions.read(token))?.messages.map((message) => message.msg), ['two', 'three']);
});

test('stored history keeps the newest records up to its cap', async () => {
  const s = setup({ historyMaxRecords: 3 });
  const token = await sessionWith(s, 'one', 'two', 'three', 'four', 'five');
  const messages = await redis.lRange(sessionKeys(s.prefix, token).messages, 0, -1);
  assert.deepEqual(messages.map((raw) => (JSON.parse(raw) as { msg: string }).msg), ['three', 'four', 'five']);
});

// Branches (issue 13): turns form a tree through `parent`; the session's `head` is the turn shown.

/** Answers the session's unanswered turns in order, each with the text `answer to <question>`. */
async function answerAll(s: Setup, token: string): Promise<void> {
  await s.answers.acquireLease(token, 'w');
  for (;;) {
    const start = await s.answers.startTurn(token, 'w');
    if (start.status !== 'ok') return;
    const question = start.history.find((record) => record.source === 'human' && record.seq === start.turn)?.msg ?? '';
    const status = await s.answers.finishTurn(token, 'w', start.turn, answer(`answer to ${question}`), '');
    // The last commit finds nothing left and lets go of the lease in the same step.
    assert.ok(status === 'ok' || status === 'drained', status);
    if (status === 'drained') return;
  }
}

test('a turn on an old branch gets its whole branch, even when its ancestors are older than the records a turn reads', async () => {
  const s = setup({ historyRecords: 8 });
  const token = await sessionWith(s, 'root question');
  for (let n = 0; n < 12; n += 1) await s.sessions.accept(token, `elsewhere ${n}`, undefined, wake(s));
  await answerAll(s, token);
  // Back to turn 1 (its newest leaf is turn 13, so edit beside turn 2 instead): a branch off the root.
  const edited = await s.sessions.accept(token, 'back at the root', undefined, wake(s), '', { kind: 'edit', seq: 2 });
  assert.equal(edited.status, 'accepted');
  if (edited.status === 'accepted') assert.equal(edited.record.parent, 1);
  await s.answers.acquireLease(token, 'x');
  const start = await s.answers.startTurn(token, 'x');
  assert.equal(start.status, 'ok');
  if (start.status !== 'ok') return;
  assert.equal(start.turn, 14);
  assert.ok(start.history.some((record) => record.msg === 'root question'), 'the root, 26 records back, is read');
  assert.ok(start.history.some((record) => record.msg === 'answer to root question'));
});

test('a conversation with an owner keeps its history for good; its events and dedupe still slide; an anonymous one slides whole', async () => {
  const s = setup({ sessionTtlSeconds: 60 });
  const owned = await s.sessions.create('Ada', 'a_AAAAAAAAAAAAAAAAAAAAAA');
  const anonymous = await s.sessions.create('Bob');
  for (const { token } of [owned, anonymous]) {
    await s.sessions.accept(token, 'hello', 'client-1', wake(s));
    await answerAll(s, token);
    await s.answers.acquireLease(token, 'w');
    await s.sessions.accept(token, 'this one fails', undefined, wake(s));
    const start = await s.answers.startTurn(token, 'w');
    assert.equal(start.status, 'ok');
    await s.answers.finishTurn(token, 'w', 2, { kind: 'error', code: 'model_failed', ref: 'REF2345678' }, '');
  }
  const ttl = async (token: string) => {
    const keys = sessionKeys(s.prefix, token);
    return Object.fromEntries(await Promise.all((['session', 'messages', 'errors', 'events', 'dedupe'] as const).map(async (name) => [name, (await redis.pTTL(keys[name])) > 0 ? 'slides' : (await redis.pTTL(keys[name]))])));
  };
  assert.deepEqual(await ttl(owned.token), { session: -1, messages: -1, errors: -1, events: 'slides', dedupe: 'slides' });
  assert.deepEqual(await ttl(anonymous.token), { session: 'slides', messages: 'slides', errors: 'slides', events: 'slides', dedupe: 'slides' });
  assert.equal(await s.sessions.read(owned.token), null, 'nobody but its owner reads it');
  assert.equal(await s.sessions.touch(owned.token, 'a_BBBBBBBBBBBBBBBBBBBBBB'), null);
  assert.equal((await s.sessions.read(owned.token, 'a_AAAAAAAAAAAAAAAAAAAAAA'))?.messages.length, 3);
  assert.equal((await s.sessions.touch(owned.token, 'a_AAAAAAAAAAAAAAAAAAAAAA'))?.owner, 'a_AAAAAAAAAAAAAAAAAAAAAA');
});

test('edit, regenerate and switch of a turn trimmed off the history are refused, and change nothing', async () => {
  const s = setup({ historyMaxRecords: 200 });
  const token = await sessionWith(s, 'first');
  for (let n = 0; n < 120; n += 1) {
    await s.sessions.accept(token, `turn ${n + 2}`, undefined, wake(s));
    await answerAll(s, token);
  }
  const before = await redis.hGetAll(sessionKeys(s.prefix, token).session);
  assert.deepEqual(await s.sessions.accept(token, 'x', undefined, wake(s), '', { kind: 'edit', seq: 1 }), { status: 'unknown_turn' });
  assert.deepEqual(await s.sessions.accept(token, '', undefined, wake(s), '', { kind: 'regenerate', seq: 1 }), { status: 'unknown_turn' });
  assert.deepEqual(await s.sessions.switchBranch(token, 1), { status: 'unknown_turn' });
  assert.deepEqual(await s.sessions.switchBranch(token, 122), { status: 'unknown_turn' });
  assert.deepEqual(await redis.hGetAll(sessionKeys(s.prefix, token).session), before);
  assert.deepEqual(await s.sessions.switchBranch(token, 121), { status: 'ok', head: 121 }, 'a stored turn is found');
});

test('a branch event before the first answer starts is the first event: a reader from the start is complete', async () => {
  const s = setup();
  const token = await sessionWith(s, 'typo');
  const regenerated = await s.sessions.accept(token, 'fixed', undefined, wake(s), '', { kind: 'edit', seq: 1 });
  assert.equal(regenerated.status, 'accepted');
  await answerAll(s, token);
  const { events, complete } = await s.sessions.eventsAfter(token, '0');
  assert.equal(complete, true);
  assert.deepEqual(events.map((event) => event.type), ['branch', 'start', 'done', 'start', 'done']);
});

test('a session from before branches (no head, records without parent) goes on as one line', async () => {
  const s = setup();
  const token = await sessionWith(s, 'one', 'two');
  const keys = sessionKeys(s.prefix, token);
  // As stored by the previous version: no head, no parent.
  await redis.hDel(keys.session, 'head');
  const old = (await redis.lRange(keys.messages, 0, -1)).map((raw) => JSON.stringify({ ...(JSON.parse(raw) as Record<string, unknown>), parent: undefined }));
  await redis.del(keys.messages);
  await redis.rPush(keys.messages, old);
  const next = await s.sessions.accept(token, 'three', undefined, wake(s));
  assert.equal(next.status === 'accepted' ? next.record.parent : undefined, 2);
  const regenerated = await s.sessions.accept(token, '', undefined, wake(s), '', { kind: 'regenerate', seq: 2 });
  assert.deepEqual(regenerated.status === 'accepted' ? [regenerated.record.msg, regenerated.record.parent] : [], ['two', 1]);
});
