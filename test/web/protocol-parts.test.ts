import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backoffDelay } from '../../src/contracts/backoff.js';
import { chatSocketProtocols, chatSocketUrl } from '../../web/src/protocol/browser.js';
import { DEFAULT_BACKOFF } from '../../web/src/protocol/chat-client.js';
import { applyQueued, stateFromSession } from '../../web/src/protocol/chat-state.js';
import { formatPlace, ordinal } from '../../web/src/ui/format.js';
import { compareEventIds } from '../../src/contracts/event-ids.js';
import { parseServerFrame } from '../../web/src/protocol/server-frames.js';
import { createSessionApi, TransientError, type FetchLike } from '../../web/src/protocol/session-api.js';
import { session } from './fakes.js';

describe('backoffDelay', () => {
  it('doubles the ceiling per attempt, up to the maximum, with half of it random', () => {
    const options = { baseMs: 500, maxMs: 15_000 };
    assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10].map((attempt) => backoffDelay(attempt, () => 1, options)), [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
    assert.deepEqual([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, () => 0, options)), [250, 500, 1000, 2000]);
    assert.equal(backoffDelay(2, () => 0.5, options), 1500);
  });

  it('spreads clients over the upper half of the window', () => {
    const delays = new Set(Array.from({ length: 50 }, (_, index) => backoffDelay(3, () => index / 50, DEFAULT_BACKOFF)));
    assert.equal(delays.size, 50);
    for (const delay of delays) assert.ok(delay >= 2000 && delay <= 4000);
  });
});

describe('compareEventIds', () => {
  it('orders Redis stream ids numerically', () => {
    assert.ok(compareEventIds('999-0', '1000-0') < 0);
    assert.ok(compareEventIds('1000-2', '1000-10') < 0);
    assert.ok(compareEventIds('0', '1-0') < 0);
    assert.equal(compareEventIds('1764147602000-3', '1764147602000-3'), 0);
    assert.ok(compareEventIds('18446744073709551615-1', '18446744073709551615-0') > 0);
  });
});

describe('stateFromSession', () => {
  it('groups the history by turn: answered, stopped, failed, and still waiting', () => {
    const state = stateFromSession(
      session({
        messages: [
          { id: 'h1', msg: 'Hello', timestamp: 't1', source: 'human', seq: 1 },
          { id: 'b1', msg: 'Hi!', timestamp: 't2', source: 'bot', seq: 1, status: 'done' },
          { id: 'h2', msg: 'Story', timestamp: 't3', source: 'human', seq: 2 },
          { id: 'b2', msg: 'Once upon a', timestamp: 't4', source: 'bot', seq: 2, status: 'stopped' },
          { id: 'h3', msg: 'Again?', timestamp: 't5', source: 'human', seq: 3, error: { code: 'model_unavailable', message: 'down' } },
          { id: 'h4', msg: 'And now?', timestamp: 't6', source: 'human', seq: 4 },
        ],
        last_event_id: '42-0',
      }),
    );
    assert.equal(state.lastEventId, '42-0');
    assert.deepEqual(
      state.turns.map((turn) => [turn.key, turn.seq, turn.text, turn.status, turn.answer, turn.error?.code]),
      [
        ['h1', 1, 'Hello', 'done', 'Hi!', undefined],
        ['h2', 2, 'Story', 'stopped', 'Once upon a', undefined],
        ['h3', 3, 'Again?', 'error', '', 'model_unavailable'],
        ['h4', 4, 'And now?', 'queued', '', undefined],
      ],
    );
  });
});

describe('parseServerFrame', () => {
  it('accepts the documented frames', () => {
    assert.deepEqual(parseServerFrame('{"type":"delta","seq":2,"text":"hi","eventId":"5-1"}'), { type: 'delta', seq: 2, text: 'hi', eventId: '5-1' });
    assert.deepEqual(parseServerFrame('{"type":"error","code":"too_many_pending","message":"wait"}'), { type: 'error', code: 'too_many_pending', message: 'wait' });
    assert.deepEqual(parseServerFrame('{"type":"accepted","id":"m","seq":1,"timestamp":"t","clientId":"c-1"}'), {
      type: 'accepted', id: 'm', seq: 1, timestamp: 't', clientId: 'c-1',
    });
  });

  it('drops what is malformed instead of corrupting the conversation', () => {
    for (const data of ['not json', '[]', 'null', '{"type":"delta","seq":1,"eventId":"5-1"}', '{"type":"delta","seq":"1","text":"x","eventId":"5-1"}', '{"type":"delta","seq":1,"text":"x","eventId":"abc"}', '{"type":"mystery"}']) {
      assert.equal(parseServerFrame(data), undefined, data);
    }
    assert.equal(parseServerFrame(new Uint8Array([1, 2])), undefined);
  });

  it('checks frames with the contracts\' schemas: codes, refs and event ids as the server defines them', () => {
    const refused = [
      '{"type":"error","code":"no_such_code","message":"x"}',
      '{"type":"error","seq":1,"eventId":"5-1","code":"model_failed","message":"x","ref":"not a ref!"}',
      '{"type":"resume","after":"5-1"}',
      '{"type":"ready","token":"t","lastEventId":"18446744073709551616-0","protocol":"parley.v1"}',
      '{"type":"start","seq":1,"eventId":"5-1"}',
    ];
    for (const data of refused) assert.equal(parseServerFrame(data), undefined, data);
    assert.deepEqual(parseServerFrame('{"type":"error","seq":1,"eventId":"5-1","code":"model_failed","message":"x","ref":"AbC123"}'), {
      type: 'error', seq: 1, eventId: '5-1', code: 'model_failed', message: 'x', ref: 'AbC123',
    });
  });
});

describe('session API', () => {
  const respond = (status: number, body: unknown): FetchLike => async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

  it('creates a session with a JSON body', async () => {
    let seen: { url: string; init: RequestInit | undefined } | undefined;
    const api = createSessionApi(async (url, init) => {
      seen = { url, init };
      return new Response(JSON.stringify({ token: 't', name: 'Ada', session_start: 's', messages: [] }), { status: 200 });
    });
    const result = await api.create('Ada');
    assert.deepEqual(result, { ok: true, session: { token: 't', name: 'Ada', session_start: 's', messages: [], last_event_id: '0', head: 0 } });
    assert.equal(seen?.url, '/token');
    assert.equal(seen?.init?.method, 'POST');
    assert.equal(seen?.init?.body, '{"name":"Ada"}');
  });

  it('treats a body that is not a session (a message without its turn, an unknown error code) as a server failure', async () => {
    const bad = [
      { ...session(), messages: [{ id: 'm', msg: 'hi', timestamp: 't', source: 'human' }] },
      { ...session(), messages: [{ id: 'm', msg: 'hi', timestamp: 't', source: 'human', seq: 1, error: { code: 'nope', message: 'x' } }] },
      { ...session(), last_event_id: 'abc' },
    ];
    for (const body of bad) await assert.rejects(createSessionApi(respond(200, body)).refresh('t'), TransientError);
  });

  it('explains a 400 for the name', async () => {
    const result = await createSessionApi(respond(400, { detail: { loc: 'name', msg: 'Enter a valid name' } })).create(' ');
    assert.deepEqual(result, { ok: false, reason: 'invalid_name', message: 'Enter a valid name: it must not be blank or very long.' });
  });

  it('says when the server cannot be reached', async () => {
    const result = await createSessionApi(async () => Promise.reject(new TypeError('Failed to fetch'))).create('Ada');
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'network');
  });

  it('refresh: 400 means expired, 5xx and network failures are transient', async () => {
    assert.deepEqual(await createSessionApi(respond(400, { detail: 'Session expired or does not exist' })).refresh('t'), { kind: 'expired' });
    await assert.rejects(createSessionApi(respond(502, {})).refresh('t'), TransientError);
    await assert.rejects(createSessionApi(async () => Promise.reject(new TypeError('offline'))).refresh('t'), TransientError);
  });

  it('refresh: asks the versioned session API with the token in Authorization, not in the URL', async () => {
    let url = '';
    let authorization: string | null = null;
    await createSessionApi(async (input, init) => {
      url = input;
      authorization = new Headers(init?.headers).get('authorization');
      return new Response(JSON.stringify(session()), { status: 200 });
    }).refresh('tok-123');
    assert.equal(url, '/api/v1/session');
    assert.equal(authorization, 'Bearer tok-123');
  });
});

describe('chatSocketUrl', () => {
  it('builds a same-origin ws/wss URL without the token; the token rides in the subprotocols', () => {
    assert.equal(chatSocketUrl({ protocol: 'http:', host: '127.0.0.1:3500' }), 'ws://127.0.0.1:3500/chat');
    assert.equal(chatSocketUrl({ protocol: 'https:', host: 'chat.example' }), 'wss://chat.example/chat');
    assert.deepEqual(chatSocketProtocols('abc'), ['parley.v1', 'parley.token.abc']);
  });
});

describe('queue place', () => {
  it('parses queued frames and drops malformed ones', () => {
    assert.deepEqual(parseServerFrame('{"type":"queued","seq":2,"position":3,"etaMs":12000}'), { type: 'queued', seq: 2, position: 3, etaMs: 12000 });
    assert.deepEqual(parseServerFrame('{"type":"queued","seq":2,"position":1}'), { type: 'queued', seq: 2, position: 1 });
    assert.equal(parseServerFrame('{"type":"queued","seq":2,"position":0}'), undefined);
  });

  it('reads as "3rd in line, about 12 s"', () => {
    assert.equal(formatPlace(3, 12_000), '3rd in line, about 12 s');
    assert.equal(formatPlace(1), '1st in line');
    assert.deepEqual([2, 4, 11, 12, 13, 21, 22, 101].map(ordinal), ['2nd', '4th', '11th', '12th', '13th', '21st', '22nd', '101st']);
    assert.equal(formatPlace(40, 300_000), '40th in line, about 5 min');
  });

  it('puts the place on the queued turn only', () => {
    const state = stateFromSession(
      session({
        messages: [
          { id: 'a', msg: 'one', timestamp: '', source: 'human', seq: 1 },
          { id: 'b', msg: 'two', timestamp: '', source: 'human', seq: 2 },
        ],
      }),
    );
    const placed = applyQueued(state, 1, { position: 3, etaMs: 12_000 });
    assert.deepEqual(placed.turns.map((turn) => turn.place), [{ position: 3, etaMs: 12_000 }, undefined]);
  });
});
