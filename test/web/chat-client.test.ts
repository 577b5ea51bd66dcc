import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatClient, type ChatClientOptions, type OutboxEntry, type OutboxStore } from '../../web/src/protocol/chat-client.js';
import { visibleTurns, type Turn } from '../../web/src/protocol/chat-state.js';
import { FakeApi, FakeClock, session, sequentialIds, settle, socketFactory } from './fakes.js';

const BACKOFF = { baseMs: 1000, maxMs: 8000 };

function setup(options: Partial<ChatClientOptions> & { random?: () => number } = {}) {
  const clock = new FakeClock();
  const sockets = socketFactory();
  const api = new FakeApi(session());
  const client = new ChatClient({
    token: 'tok-1',
    api,
    openSocket: sockets.open,
    timers: clock,
    random: () => 0.5,
    newClientId: sequentialIds(),
    backoff: BACKOFF,
    heartbeatMs: 20_000,
    heartbeatTimeoutMs: 5_000,
    ...options,
  });
  const turns = (): readonly Turn[] => client.getSnapshot().chat.turns;
  const turn = (index: number): Turn => {
    const found = turns()[index];
    assert.ok(found, `turn ${index} exists`);
    return found;
  };
  return { clock, sockets, api, client, turns, turn };
}

/** Starts the client and brings it online on its first socket. */
async function online(env: ReturnType<typeof setup>) {
  env.client.start();
  await settle();
  env.sockets.last().ready();
  return env.sockets.last();
}

describe('ChatClient: loading and resume', () => {
  it('loads the history with refresh_token, then resumes after its last event id', async () => {
    const env = setup();
    env.api.session = session({
      messages: [
        { id: 'h1', msg: 'Hello', timestamp: 't1', source: 'human', seq: 1 },
        { id: 'b1', msg: 'Hi Ada', timestamp: 't2', source: 'bot', seq: 1, status: 'done' },
        { id: 'h2', msg: 'Story?', timestamp: 't3', source: 'human', seq: 2 },
      ],
      last_event_id: '100-0',
    });
    env.client.start();
    assert.equal(env.client.getSnapshot().phase, 'loading');
    await settle();
    assert.equal(env.api.calls, 1);
    assert.equal(env.client.getSnapshot().phase, 'ready');
    assert.deepEqual(env.turns().map((turn) => [turn.seq, turn.status, turn.answer]), [
      [1, 'done', 'Hi Ada'],
      [2, 'queued', ''],
    ]);
    const socket = env.sockets.last();
    assert.equal(socket.sent.length, 0, 'nothing is sent before ready');
    socket.ready('120-0');
    assert.equal(env.client.getSnapshot().connection, 'online');
    assert.deepEqual(socket.frames(), [{ type: 'resume', after: '100-0' }]);
    // The in-progress answer of turn 2 arrives as a replay and continues live.
    socket.receive({ type: 'start', seq: 2, attempt: 1, eventId: '101-0' });
    socket.receive({ type: 'delta', seq: 2, text: 'Once ', eventId: '102-0' });
    socket.receive({ type: 'delta', seq: 2, text: 'upon', eventId: '103-0' });
    assert.equal(env.turn(1).status, 'answering');
    assert.equal(env.turn(1).answer, 'Once upon');
  });

  it('uses a session it was given without calling refresh_token', async () => {
    const env = setup({ initialSession: session({ last_event_id: '0' }) });
    await online(env);
    assert.equal(env.api.calls, 0);
    assert.deepEqual(env.sockets.last().frames(), [{ type: 'resume', after: '0' }]);
  });

  it('ignores duplicate and older event ids', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('Hi');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '5-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'Hel', eventId: '5-1' });
    socket.receive({ type: 'delta', seq: 1, text: 'Hel', eventId: '5-1' });
    socket.receive({ type: 'delta', seq: 1, text: 'lo', eventId: '10-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'XX', eventId: '9-7' });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '5-0' });
    assert.equal(env.turn(0).answer, 'Hello');
    assert.equal(env.client.getSnapshot().chat.lastEventId, '10-0');
  });

  it('compares event ids as numbers, not strings', async () => {
    const env = setup();
    const socket = await online(env);
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '999-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'a', eventId: '1000-0' });
    assert.equal(env.turn(0).answer, 'a');
  });

  it('drops the partial text of a turn when its answer starts again (attempt > 1)', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('Hi');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'half an ans', eventId: '2-0' });
    socket.receive({ type: 'start', seq: 1, attempt: 2, eventId: '3-0' });
    assert.equal(env.turn(0).answer, '');
    socket.receive({ type: 'delta', seq: 1, text: 'A whole answer', eventId: '4-0' });
    socket.receive({ type: 'done', seq: 1, id: 'b1', timestamp: 't', eventId: '5-0' });
    assert.equal(env.turn(0).answer, 'A whole answer');
    assert.equal(env.turn(0).status, 'done');
  });
});

describe('ChatClient: reconnect', () => {
  it('reconnects with exponential backoff and jitter, and resets after a success', async () => {
    const randoms = [0, 1, 0.5, 0.25];
    let call = 0;
    const env = setup({ random: () => randoms[call++ % randoms.length] ?? 0 });
    const first = await online(env);
    first.serverClose(1006);
    assert.equal(env.client.getSnapshot().connection, 'reconnecting');
    // Ceilings 1000, 2000, 4000, 8000; delay = ceiling/2 + random*ceiling/2.
    const expected = [500, 2000, 3000, 5000, 4000];
    for (const [attempt, delay] of expected.entries()) {
      assert.deepEqual(env.clock.delays(), [delay], `attempt ${attempt}`);
      const before = env.sockets.sockets.length;
      env.clock.advance(delay - 1);
      assert.equal(env.sockets.sockets.length, before, 'no connection before the delay is over');
      env.clock.advance(1);
      assert.equal(env.sockets.sockets.length, before + 1);
      env.sockets.last().serverClose(1006);
    }
    // Capped at maxMs: the 6th ceiling is still 8000 (random 1 → 8000).
    assert.deepEqual(env.clock.delays(), [8000]);
    env.clock.advance(8000);
    env.sockets.last().ready();
    assert.equal(env.client.getSnapshot().connection, 'online');
    assert.equal(env.client.getSnapshot().failures, 0);
    env.sockets.last().serverClose(1006);
    assert.ok((env.clock.delays()[0] ?? 0) <= 1000, 'back to the first step after a good connection');
  });

  it('resumes after the last event id it saw once reconnected', async () => {
    const env = setup();
    const socket = await online(env);
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '7-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'abc', eventId: '7-1' });
    socket.serverClose(1006);
    env.clock.advance(1000);
    const second = env.sockets.last();
    assert.notEqual(second, socket);
    second.ready('9-0');
    assert.deepEqual(second.frames()[0], { type: 'resume', after: '7-1' });
    // The server replays what overlaps: no duplicated text.
    second.receive({ type: 'delta', seq: 1, text: 'abc', eventId: '7-1' });
    second.receive({ type: 'delta', seq: 1, text: 'def', eventId: '8-0' });
    assert.equal(env.turn(0).answer, 'abcdef');
  });

  it('drops events that arrive between its resume and the server\'s `resumed`: they come again after it', async () => {
    const env = setup();
    const socket = await online(env);
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '7-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'abc', eventId: '7-1' });
    socket.serverClose(1006);
    env.clock.advance(1000);
    const second = env.sockets.last();
    second.confirmResumes = false;
    second.ready('7-1');
    // Live from the ready position, before the resume took effect on the server.
    second.receive({ type: 'delta', seq: 1, text: 'ghi', eventId: '8-1' });
    second.receive({ type: 'resumed', after: '7-1' });
    second.receive({ type: 'delta', seq: 1, text: 'def', eventId: '8-0' });
    second.receive({ type: 'delta', seq: 1, text: 'ghi', eventId: '8-1' });
    assert.equal(env.turn(0).answer, 'abcdefghi');
  });

  it('shows a degraded service from the status frame, and recovery', async () => {
    const env = setup();
    const socket = await online(env);
    socket.receive({ type: 'status', state: 'degraded', message: 'Storage is not answering.' });
    assert.equal(env.client.getSnapshot().connection, 'degraded');
    socket.receive({ type: 'status', state: 'ok', message: 'Service restored.' });
    assert.equal(env.client.getSnapshot().connection, 'online');
  });

  it('reconnects after close 1012 (gateway restarting)', async () => {
    const env = setup();
    const socket = await online(env);
    socket.serverClose(1012, 'Gateway restarting, reconnect');
    assert.equal(env.client.getSnapshot().connection, 'reconnecting');
    env.clock.advance(1000);
    assert.equal(env.sockets.sockets.length, 2);
    env.sockets.last().ready();
    assert.equal(env.client.getSnapshot().connection, 'online');
  });

  it('treats close 1008 as an expired session and stops reconnecting', async () => {
    const outboxSaves: OutboxEntry[][] = [];
    const outbox: OutboxStore = { load: () => [], save: (_token, entries) => void outboxSaves.push([...entries]) };
    const env = setup({ outbox });
    const socket = await online(env);
    socket.serverClose(1008, 'Session not authenticated or expired token');
    assert.equal(env.client.getSnapshot().phase, 'expired');
    assert.deepEqual(env.clock.delays(), [], 'no timer left running');
    env.clock.advance(60_000);
    assert.equal(env.sockets.sockets.length, 1, 'no reconnect');
    assert.deepEqual(outboxSaves.at(-1), []);
    env.client.start();
    await settle();
    assert.equal(env.sockets.sockets.length, 1, 'an expired client cannot be restarted');
  });

  it('goes to the expired state when refresh_token answers 400', async () => {
    const env = setup();
    env.api.mode = 'expired';
    env.client.start();
    await settle();
    assert.equal(env.client.getSnapshot().phase, 'expired');
    assert.equal(env.sockets.sockets.length, 0);
  });

  it('retries loading with backoff while the server is unreachable', async () => {
    const env = setup();
    env.api.mode = 'down';
    env.client.start();
    await settle();
    assert.equal(env.client.getSnapshot().connection, 'reconnecting');
    assert.deepEqual(env.clock.delays(), [750]);
    env.api.mode = 'ok';
    env.clock.advance(750);
    await settle();
    assert.equal(env.api.calls, 2);
    assert.equal(env.client.getSnapshot().phase, 'ready');
    assert.equal(env.sockets.sockets.length, 1);
  });

  it('pings a silent connection and drops it when no answer comes', async () => {
    const env = setup();
    const socket = await online(env);
    env.clock.advance(20_000);
    assert.deepEqual(socket.frames().at(-1), { type: 'ping' });
    socket.receive({ type: 'pong' });
    env.clock.advance(20_000);
    assert.deepEqual(socket.framesOf('ping').length, 2);
    env.clock.advance(5_000);
    assert.ok(socket.closedWith, 'the dead socket is closed');
    assert.equal(env.client.getSnapshot().connection, 'reconnecting');
    env.clock.advance(1_000);
    assert.equal(env.sockets.sockets.length, 2);
  });

  it('gives up on a socket that never says ready', async () => {
    const env = setup();
    env.client.start();
    await settle();
    env.clock.advance(5_000);
    assert.ok(env.sockets.sockets[0]?.closedWith);
    assert.equal(env.client.getSnapshot().connection, 'reconnecting');
  });

  it('ignores frames and closes from a socket it already replaced', async () => {
    const env = setup();
    const old = await online(env);
    old.serverClose(1006);
    env.clock.advance(1000);
    env.sockets.last().ready();
    old.receive({ type: 'delta', seq: 1, text: 'ghost', eventId: '99-0' });
    old.serverClose(1006);
    assert.equal(env.client.getSnapshot().connection, 'online');
    assert.equal(env.turns().length, 0);
  });

  it('reconnectNow skips the wait', async () => {
    const env = setup();
    const socket = await online(env);
    socket.serverClose(1006);
    env.client.reconnectNow();
    assert.equal(env.sockets.sockets.length, 2);
    assert.deepEqual(env.clock.delays(), [5_000], 'only the ready deadline of the new socket');
  });
});

describe('ChatClient: messages', () => {
  it('shows messages sent while one is answered as queued, and answers them in order', async () => {
    const env = setup();
    const socket = await online(env);
    for (const text of ['one', 'two', 'three']) env.client.send(text);
    assert.deepEqual(env.turns().map((turn) => turn.status), ['sending', 'sending', 'sending']);
    assert.deepEqual(socket.framesOf('message'), [
      { type: 'message', text: 'one', clientId: 'c-1' },
      { type: 'message', text: 'two', clientId: 'c-2' },
      { type: 'message', text: 'three', clientId: 'c-3' },
    ]);
    for (const seq of [1, 2, 3]) socket.receive({ type: 'accepted', id: `h${seq}`, seq, timestamp: 't', clientId: `c-${seq}` });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    assert.deepEqual(env.turns().map((turn) => turn.status), ['answering', 'queued', 'queued']);
    socket.receive({ type: 'done', seq: 1, id: 'b1', timestamp: 't', eventId: '2-0' });
    socket.receive({ type: 'start', seq: 2, attempt: 1, eventId: '3-0' });
    assert.deepEqual(env.turns().map((turn) => turn.status), ['done', 'answering', 'queued']);
    assert.deepEqual(env.turns().map((turn) => turn.seq), [1, 2, 3]);
  });

  it('keeps messages typed while offline and sends them once connected', async () => {
    const env = setup();
    const socket = await online(env);
    socket.serverClose(1006);
    env.client.send('while offline');
    assert.equal(env.turn(0).status, 'sending');
    env.clock.advance(1000);
    const second = env.sockets.last();
    assert.deepEqual(second.frames(), []);
    second.ready();
    assert.deepEqual(second.frames(), [
      { type: 'resume', after: '0' },
      { type: 'message', text: 'while offline', clientId: 'c-1' },
    ]);
  });

  it('resends a message not yet accepted with the same clientId after reconnect, and shows it once', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('first');
    env.client.send('second');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.serverClose(1006);
    env.clock.advance(1000);
    const second = env.sockets.last();
    second.ready();
    assert.deepEqual(second.framesOf('message'), [{ type: 'message', text: 'second', clientId: 'c-2' }], 'accepted messages are not resent');
    // The server had stored it before the connection dropped: it answers with the same turn.
    second.receive({ type: 'accepted', id: 'h2', seq: 2, timestamp: 't', clientId: 'c-2' });
    second.receive({ type: 'accepted', id: 'h2', seq: 2, timestamp: 't', clientId: 'c-2' });
    assert.deepEqual(env.turns().map((turn) => [turn.seq, turn.text, turn.status]), [
      [1, 'first', 'queued'],
      [2, 'second', 'queued'],
    ]);
  });

  it('merges a turn whose answer events overtook its accepted frame', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('quick');
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'Hi', eventId: '1-1' });
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    assert.equal(env.turns().length, 1);
    assert.deepEqual([env.turn(0).text, env.turn(0).answer, env.turn(0).status, env.turn(0).key], ['quick', 'Hi', 'answering', 'c-1']);
  });

  it('fills in the text of a turn sent from another tab from the history', async () => {
    const env = setup();
    const socket = await online(env);
    env.api.session = session({ messages: [{ id: 'h1', msg: 'from the other tab', timestamp: 't', source: 'human', seq: 1 }] });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    assert.equal(env.turn(0).textUnknown, true);
    env.clock.advance(1_000);
    await settle();
    assert.equal(env.turn(0).text, 'from the other tab');
    assert.equal(env.turn(0).textUnknown, undefined);
  });

  it('shows a rejected message as an error on it; retry replaces it', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('ok');
    env.client.send('too much');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.receive({ type: 'error', code: 'too_many_pending', message: 'Too many messages are waiting.' });
    assert.equal(env.turn(1).status, 'error');
    assert.equal(env.turn(1).rejected, true);
    assert.equal(env.turn(1).error?.code, 'too_many_pending');
    assert.equal(env.client.retry(env.turn(1).key), true);
    assert.deepEqual(env.turns().map((turn) => [turn.text, turn.status]), [
      ['ok', 'queued'],
      ['too much', 'sending'],
    ]);
    assert.deepEqual(socket.framesOf('message').at(-1), { type: 'message', text: 'too much', clientId: 'c-3' });
  });

  it('uses the clientId of a rejection when the server names it', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('fine');
    env.client.send('refused');
    socket.receive({ type: 'error', code: 'message_too_long', message: 'Too long.', clientId: 'c-2' });
    assert.deepEqual(env.turns().map((turn) => turn.status), ['sending', 'error']);
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    assert.deepEqual(env.turns().map((turn) => turn.status), ['queued', 'error']);
  });

  it('ignores an internal error frame (the server closes and we resend)', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('hello');
    socket.receive({ type: 'error', code: 'internal_error', message: 'Something went wrong' });
    assert.equal(env.turn(0).status, 'sending');
  });

  it('shows a model error on its turn; retry sends the same text as a new message', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('Tell me');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    socket.receive({ type: 'error', seq: 1, code: 'model_unavailable', message: 'The language model is unavailable.', eventId: '2-0' });
    assert.equal(env.turn(0).status, 'error');
    assert.equal(env.turn(0).rejected, undefined);
    assert.equal(env.turn(0).answer, '', 'an error is never shown as the answer');
    env.client.retry(env.turn(0).key);
    assert.equal(env.turns().length, 2, 'the failed turn stays in the history');
    assert.deepEqual(socket.framesOf('message').at(-1), { type: 'message', text: 'Tell me', clientId: 'c-2' });
  });

  it('stop sends a stop for the turn being answered; the partial answer is kept', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('long story');
    env.client.send('next');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    socket.receive({ type: 'accepted', id: 'h2', seq: 2, timestamp: 't', clientId: 'c-2' });
    socket.receive({ type: 'start', seq: 1, attempt: 1, eventId: '1-0' });
    socket.receive({ type: 'delta', seq: 1, text: 'Once upon', eventId: '1-1' });
    assert.equal(env.client.stop(), true);
    assert.deepEqual(socket.framesOf('stop'), [{ type: 'stop', seq: 1 }]);
    assert.equal(env.turn(0).stopRequested, true);
    socket.receive({ type: 'stopped', seq: 1, id: 'b1', timestamp: 't', eventId: '1-2' });
    assert.deepEqual([env.turn(0).status, env.turn(0).answer], ['stopped', 'Once upon']);
    assert.equal(env.turn(1).status, 'queued');
  });

  it('keeps unsent messages in the outbox across a reload', async () => {
    const store = new Map<string, readonly OutboxEntry[]>();
    const outbox: OutboxStore = { load: (token) => store.get(token) ?? [], save: (token, entries) => void store.set(token, entries) };
    const env = setup({ outbox });
    const socket = await online(env);
    env.client.send('kept');
    assert.deepEqual(store.get('tok-1'), [{ clientId: 'c-1', text: 'kept' }]);
    socket.serverClose(1006);
    env.client.dispose();

    const reloaded = setup({ outbox, newClientId: sequentialIds('r') });
    const again = await online(reloaded);
    assert.deepEqual(again.framesOf('message'), [{ type: 'message', text: 'kept', clientId: 'c-1' }]);
    again.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    assert.deepEqual(store.get('tok-1'), []);
  });
});

describe('ChatClient: reset', () => {
  it('reloads with refresh_token and resumes after its last_event_id', async () => {
    const env = setup();
    const socket = await online(env);
    env.client.send('one');
    socket.receive({ type: 'accepted', id: 'h1', seq: 1, timestamp: 't', clientId: 'c-1' });
    env.client.send('not yet accepted');
    env.api.session = session({
      messages: [
        { id: 'h1', msg: 'one', timestamp: 't', source: 'human', seq: 1 },
        { id: 'b1', msg: 'The full answer', timestamp: 't', source: 'bot', seq: 1, status: 'done' },
      ],
      last_event_id: '50-0',
    });
    const callsBefore = env.api.calls;
    socket.receive({ type: 'reset', reason: 'Some events are no longer retained' });
    // Events that arrive while the reload runs are dropped: the resume after it sends them again.
    socket.receive({ type: 'start', seq: 2, attempt: 1, eventId: '60-0' });
    await settle();
    assert.equal(env.api.calls, callsBefore + 1);
    assert.deepEqual(env.turns().map((turn) => [turn.seq, turn.text, turn.status, turn.answer]), [
      [1, 'one', 'done', 'The full answer'],
      [undefined, 'not yet accepted', 'sending', ''],
    ]);
    assert.equal(env.client.getSnapshot().chat.lastEventId, '50-0');
    assert.deepEqual(socket.frames().at(-1), { type: 'resume', after: '50-0' });
  });

  it('a reset whose reload finds the session gone ends in the expired state', async () => {
    const env = setup();
    const socket = await online(env);
    env.api.mode = 'expired';
    socket.receive({ type: 'reset', reason: 'gone' });
    await settle();
    assert.equal(env.client.getSnapshot().phase, 'expired');
  });
});

describe('ChatClient: branches', () => {
  const history = () =>
    session({
      messages: [
        { id: 'h1', msg: 'Hello', timestamp: 't1', source: 'human', seq: 1, parent: 0 },
        { id: 'b1', msg: 'Hi', timestamp: 't1', source: 'bot', seq: 1, status: 'done' },
        { id: 'h2', msg: 'A poem', timestamp: 't2', source: 'human', seq: 2, parent: 1 },
        { id: 'b2', msg: 'Roses…', timestamp: 't2', source: 'bot', seq: 2, status: 'done' },
      ],
      head: 2,
      last_event_id: '20-0',
    });
  const shown = (env: ReturnType<typeof setup>) => visibleTurns(env.client.getSnapshot().chat).map((turn) => [turn.seq, turn.text]);

  it('edit sends an edit frame with a clientId; accepted with its parent and the branch frame show the new version', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    assert.equal(env.client.edit(2, 'A haiku'), true);
    assert.deepEqual(socket.framesOf('edit'), [{ type: 'edit', seq: 2, text: 'A haiku', clientId: 'c-1' }]);
    assert.deepEqual(shown(env), [[1, 'Hello'], [undefined, 'A haiku']]);
    socket.receive({ type: 'accepted', id: 'h3', seq: 3, timestamp: 't3', clientId: 'c-1', parent: 1 });
    socket.receive({ type: 'branch', head: 3, eventId: '21-0' });
    assert.deepEqual(shown(env), [[1, 'Hello'], [3, 'A haiku']]);
    assert.equal(env.api.calls, 0, 'a branch this client made needs no reload');
    assert.equal(env.client.edit(2, '   '), false, 'a blank edit is not sent');
  });

  it('regenerate sends the same text as a new version; switch shows an older one and follows the server', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    assert.equal(env.client.regenerate(2), true);
    assert.deepEqual(socket.framesOf('regenerate'), [{ type: 'regenerate', seq: 2, clientId: 'c-1' }]);
    socket.receive({ type: 'accepted', id: 'h3', seq: 3, timestamp: 't3', clientId: 'c-1', parent: 1 });
    socket.receive({ type: 'branch', head: 3, eventId: '21-0' });
    assert.deepEqual(shown(env), [[1, 'Hello'], [3, 'A poem']]);
    assert.equal(env.client.switchTo(2), true);
    assert.deepEqual(socket.framesOf('switch'), [{ type: 'switch', seq: 2 }]);
    assert.deepEqual(shown(env), [[1, 'Hello'], [2, 'A poem']], 'shown at once, before the server confirms');
    socket.receive({ type: 'branch', head: 3, eventId: '22-0' });
    assert.equal(env.client.getSnapshot().chat.head, 3, 'the server has the last word');
    assert.equal(env.client.regenerate(42), false, 'no such turn');
    assert.equal(env.client.switchTo(42), false);
  });

  it('branch events in the stream are applied once, in order with the answer events', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    env.client.regenerate(2);
    socket.receive({ type: 'accepted', id: 'h3', seq: 3, timestamp: 't3', clientId: 'c-1', parent: 1 });
    socket.receive({ type: 'branch', head: 3, eventId: '21-0' });
    socket.receive({ type: 'start', seq: 3, attempt: 1, eventId: '22-0' });
    assert.equal(env.client.getSnapshot().chat.lastEventId, '22-0');
    env.client.switchTo(2);
    socket.receive({ type: 'branch', head: 2, eventId: '23-0' });
    socket.receive({ type: 'branch', head: 3, eventId: '21-0' });
    assert.equal(env.client.getSnapshot().chat.head, 2, 'a replayed older branch event changes nothing');
    assert.equal(env.client.getSnapshot().chat.lastEventId, '23-0');
    assert.equal(env.api.calls, 0);
  });

  it('a branch made in another window brings a fresh history', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    env.api.session = session({
      messages: [...history().messages, { id: 'h3', msg: 'A limerick', timestamp: 't3', source: 'human', seq: 3, parent: 1 }],
      head: 3,
      last_event_id: '30-0',
    });
    socket.receive({ type: 'branch', head: 3, eventId: '25-0' });
    await settle();
    assert.equal(env.api.calls, 1);
    assert.deepEqual(shown(env), [[1, 'Hello'], [3, 'A limerick']]);
    assert.deepEqual(socket.frames().at(-1), { type: 'resume', after: '30-0' });
  });

  it('switch waits for a connection; an edit typed offline goes out as an edit after the reconnect', async () => {
    const store = new Map<string, readonly OutboxEntry[]>();
    const outbox: OutboxStore = { load: (token) => store.get(token) ?? [], save: (token, entries) => void store.set(token, entries) };
    const env = setup({ initialSession: history(), outbox });
    env.client.start();
    assert.equal(env.client.switchTo(1), false);
    assert.equal(env.client.edit(2, 'offline edit'), true);
    assert.deepEqual(store.get('tok-1'), [{ clientId: 'c-1', text: 'offline edit', intent: { kind: 'edit', of: 2 } }]);
    env.sockets.last().ready();
    assert.deepEqual(env.sockets.last().framesOf('edit'), [{ type: 'edit', seq: 2, text: 'offline edit', clientId: 'c-1' }]);
  });

  it('an edit of a turn the server does not have is refused by clientId; a refused switch touches no message', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    env.client.send('waiting');
    env.client.edit(2, 'edited');
    socket.receive({ type: 'error', code: 'unknown_turn', message: 'This conversation has no message 9 to switch to.' });
    assert.deepEqual(env.turns().filter((turn) => turn.seq === undefined).map((turn) => turn.status), ['sending', 'sending']);
    socket.receive({ type: 'error', code: 'unknown_turn', message: 'No message 2 to edit.', clientId: 'c-2' });
    const edit = env.turns().find((turn) => turn.clientId === 'c-2');
    assert.deepEqual([edit?.status, edit?.rejected], ['error', true]);
    assert.equal(env.turns().find((turn) => turn.clientId === 'c-1')?.status, 'sending');
  });

  it('a rejected edit is retried as an edit', async () => {
    const env = setup({ initialSession: history() });
    const socket = await online(env);
    env.client.edit(2, 'x'.repeat(10));
    socket.receive({ type: 'error', code: 'message_too_long', message: 'Too long.', clientId: 'c-1' });
    const rejected = visibleTurns(env.client.getSnapshot().chat).at(-1);
    assert.equal(rejected?.status, 'error');
    assert.equal(env.client.retry(rejected?.key ?? ''), true);
    assert.deepEqual(socket.framesOf('edit').at(-1), { type: 'edit', seq: 2, text: 'x'.repeat(10), clientId: 'c-2' });
  });
});
