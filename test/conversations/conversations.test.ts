/**
 * A signed-in person's conversations, end to end: two real gateways, a worker, Redis and the fake
 * model. Created on one gateway and listed on the other; chat in them over the WebSocket; rename,
 * delete, export, search, pages; nobody but the owner reaches one, by any path; and a person's
 * conversation outlives the anonymous lifetime.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sessionKeys } from '../../src/contracts/keys.js';
import { Browser, uniqueUsername } from '../support/browser.js';
import { createSession, TestSocket } from '../support/client.js';
import { keysUnder, testRedisClient, type TestRedis } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
let redis: TestRedis;

before(async () => {
  system = await startSystem({ gateways: 2 });
  redis = testRedisClient();
  await redis.connect();
});
after(async () => {
  redis.destroy();
  await system.stop();
});

interface Summary {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

async function person(baseUrl = system.baseUrl): Promise<Browser> {
  const browser = new Browser(baseUrl);
  await browser.signUp(uniqueUsername('person'));
  return browser;
}

async function create(browser: Browser, title?: string): Promise<Summary> {
  const reply = await browser.post('/api/v1/conversations', title === undefined ? {} : { title }, { csrf: true });
  assert.equal(reply.status, 201, reply.text);
  return reply.body as unknown as Summary;
}

async function list(browser: Browser, query = ''): Promise<{ conversations: Summary[]; next?: string }> {
  const reply = await browser.call(`/api/v1/conversations${query}`);
  assert.equal(reply.status, 200, reply.text);
  return reply.body as unknown as { conversations: Summary[]; next?: string };
}

/** Sends a message over a socket carrying the person's cookie and waits for its answer. */
async function chat(baseUrl: string, browser: Browser, id: string, text: string): Promise<string> {
  const socket = await TestSocket.open(baseUrl, id, true, browser.authCookie());
  socket.send({ type: 'message', text });
  const accepted = await socket.waitFor((frame) => frame.type === 'accepted');
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === accepted.seq);
  const answer = socket.answers().get(Number(accepted.seq)) ?? '';
  socket.close();
  return answer;
}

describe('conversations of a person', () => {
  test('created on one gateway, listed newest first on the other; a message moves one up and names it', async () => {
    const ada = await person();
    const elsewhere = ada.on(system.gatewayUrls[1] ?? '');
    const first = await create(ada, 'Plans for Tuesday');
    const second = await create(ada);
    assert.equal(second.title, '');
    assert.deepEqual((await list(elsewhere)).conversations.map((each) => each.id), [second.id, first.id]);

    const text = `  What is a good   name for a cat that likes to sit on keyboards all day long, please?`;
    await chat(system.gatewayUrls[1] ?? '', ada, first.id, text);
    const listed = (await list(ada)).conversations;
    assert.deepEqual(listed.map((each) => each.id), [first.id, second.id], 'a new message moves it to the top');
    assert.ok(Date.parse(listed[0]?.updatedAt ?? '') > Date.parse(first.updatedAt));
    assert.equal(listed[0]?.title, 'Plans for Tuesday', 'a title the person set stays');

    await chat(system.baseUrl, ada, second.id, text);
    const titled = (await list(ada)).conversations.find((each) => each.id === second.id);
    assert.equal(titled?.title, 'What is a good name for a cat that likes to sit on keyboards…');
    const view = await elsewhere.call(`/api/v1/conversations/${second.id}`);
    assert.equal(view.status, 200);
    assert.equal(view.body?.title, titled?.title);
    assert.equal(view.body?.head, 1);
    assert.deepEqual((view.body?.messages as Array<{ source: string; parent?: number }>).map((message) => [message.source, message.parent]), [['human', 0], ['bot', undefined]]);
  });

  test('rename, export as Markdown (the branch shown) and JSON (every branch), delete with every key of the session', async () => {
    const ada = await person();
    const { id } = await create(ada);
    const answer = await chat(system.baseUrl, ada, id, 'first version');
    const socket = await TestSocket.open(system.baseUrl, id, true, ada.authCookie());
    socket.send({ type: 'edit', seq: 1, text: 'second version' });
    await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 2);
    const edited = socket.answers().get(2) ?? '';

    const renamed = await ada.call(`/api/v1/conversations/${id}`, { method: 'PATCH', json: { title: '  Drafts  ' }, csrf: true });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body?.title, 'Drafts');

    const md = await ada.on(system.gatewayUrls[1] ?? '').call(`/api/v1/conversations/${id}/export?format=markdown`);
    assert.equal(md.status, 200);
    assert.match(md.headers.get('content-type') ?? '', /^text\/markdown/);
    assert.equal(md.headers.get('content-disposition'), `attachment; filename="conversation-${id}.md"`);
    assert.match(md.text, /^# Drafts\n/);
    assert.ok(md.text.includes('second version') && md.text.includes(edited), md.text);
    assert.ok(!md.text.includes('first version') && !md.text.includes(answer), 'only the branch shown');

    const json = await ada.call(`/api/v1/conversations/${id}/export?format=json`);
    assert.equal(json.status, 200);
    assert.equal(json.headers.get('content-disposition'), `attachment; filename="conversation-${id}.json"`);
    assert.equal(json.body?.title, 'Drafts');
    assert.equal(json.body?.head, 2);
    assert.deepEqual(
      (json.body?.messages as Array<{ source: string; seq: number; parent?: number; msg: string }>).map((message) => [message.source, message.seq, message.parent, message.msg]),
      [['human', 1, 0, 'first version'], ['bot', 1, undefined, answer], ['human', 2, 0, 'second version'], ['bot', 2, undefined, edited]],
    );

    const deleted = await ada.call(`/api/v1/conversations/${id}`, { method: 'DELETE', csrf: true });
    assert.equal(deleted.status, 204);
    assert.deepEqual(await keysUnder(redis, `${system.prefix}{${id}}:*`), [], 'no key of the session is left');
    assert.equal((await list(ada)).conversations.some((each) => each.id === id), false);
    assert.equal((await ada.call(`/api/v1/conversations/${id}`)).status, 404);
    assert.equal((await ada.call(`/api/v1/conversations/${id}`, { method: 'DELETE', csrf: true })).status, 404);
    // A socket still open on it is closed at its next message, like one on an expired session.
    socket.send({ type: 'message', text: 'anyone there?' });
    assert.equal((await socket.waitForClose()).code, 1008);
  });

  test('search: titles and the text of every message, case-insensitive, with pages', async () => {
    const ada = await person();
    const marker = `Zebra${Date.now()}`;
    const byTitle = await create(ada, `About ${marker.toUpperCase()}s`);
    const byQuestion = await create(ada);
    await chat(system.baseUrl, ada, byQuestion.id, `tell me about the ${marker.toLowerCase()}`);
    const byAnswerOnly = await create(ada);
    await chat(system.baseUrl, ada, byAnswerOnly.id, `Ünïcode ${marker}`);
    await create(ada, 'nothing to see');
    const found = await list(ada, `?q=${encodeURIComponent(marker)}`);
    assert.deepEqual(found.conversations.map((each) => each.id), [byAnswerOnly.id, byQuestion.id, byTitle.id]);
    assert.deepEqual((await list(ada, `?q=${encodeURIComponent('üNÏCODE')}`)).conversations.map((each) => each.id), [byAnswerOnly.id]);
    assert.deepEqual((await list(ada, '?q=no%20such%20text%20anywhere')).conversations, []);
    const page1 = await list(ada, `?q=${encodeURIComponent(marker)}&limit=2`);
    assert.deepEqual(page1.conversations.map((each) => each.id), [byAnswerOnly.id, byQuestion.id]);
    assert.equal(typeof page1.next, 'string');
    const page2 = await list(ada, `?q=${encodeURIComponent(marker)}&limit=2&before=${encodeURIComponent(page1.next ?? '')}`);
    assert.deepEqual(page2.conversations.map((each) => each.id), [byTitle.id]);
    assert.equal(page2.next, undefined);
  });

  test('pages walk the whole list once, newest first, also through conversations updated in the same millisecond', async () => {
    const ada = await person();
    const created: Summary[] = [];
    for (let n = 0; n < 7; n += 1) created.push(await create(ada, `number ${n}`));
    // Same score for three of them: ties are ordered by id, and a page boundary may fall among them.
    const me = (await ada.call('/api/v1/auth/me')).body?.person as { id: string };
    const index = `${system.prefix}{a:${me.id}}:conversations`;
    for (const each of created.slice(2, 5)) await redis.zAdd(index, { score: 1_700_000_000_000, value: each.id });
    const everything = (await list(ada, '?limit=200')).conversations.map((each) => each.id);
    assert.equal(everything.length, 7);
    const seen: string[] = [];
    let query = '?limit=2';
    for (;;) {
      const page = await list(ada, query);
      seen.push(...page.conversations.map((each) => each.id));
      if (page.next === undefined) break;
      query = `?limit=2&before=${encodeURIComponent(page.next)}`;
    }
    assert.deepEqual(seen, everything);
  });

  test('only the owner reaches a conversation: HTTP API, /api/v1/session, /refresh_token and the WebSocket', async () => {
    const ada = await person();
    const eve = await person(system.gatewayUrls[1]);
    const { id } = await create(ada, 'private');
    await chat(system.baseUrl, ada, id, 'a secret');
    for (const [method, path] of [['GET', ''], ['PATCH', ''], ['DELETE', ''], ['GET', '/export'], ['GET', '/export?format=json']] as const) {
      const reply = await eve.call(`/api/v1/conversations/${id}${path}`, { method, csrf: true, ...(method === 'PATCH' ? { json: { title: 'mine now' } } : {}) });
      assert.equal(reply.status, 404, `${method} ${path}: ${reply.text}`);
      assert.deepEqual(reply.body, { detail: 'That conversation does not exist.', code: 'conversation_not_found' });
    }
    assert.deepEqual((await list(eve)).conversations, []);
    // The bare token (the original API's credential) opens nothing: not alone, not with someone else's cookie.
    for (const headers of [{}, eve.authCookie()]) {
      const refresh = await fetch(`${system.baseUrl}/refresh_token?token=${id}`, { headers });
      assert.equal(refresh.status, 400);
      assert.deepEqual(await refresh.json(), { detail: 'Session expired or does not exist' });
      const session = await fetch(`${system.baseUrl}/api/v1/session`, { headers: { ...headers, authorization: `Bearer ${id}` } });
      assert.equal(session.status, 400);
      for (const streaming of [true, false]) {
        const socket = await TestSocket.open(system.gatewayUrls[1] ?? '', id, streaming, headers);
        assert.equal((await socket.waitForClose()).code, 1008);
      }
    }
    // The owner, by cookie or by an account token (a program), is let in everywhere.
    const token = (await ada.post('/api/v1/auth/tokens', {}, { csrf: true })).body?.token as string;
    const owner = await fetch(`${system.baseUrl}/refresh_token?token=${id}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(owner.status, 200);
    const byToken = await TestSocket.open(system.baseUrl, id, true, { authorization: `Bearer ${token}` });
    assert.equal(byToken.frames[0]?.type, 'ready');
    byToken.close();
    assert.equal((await ada.call(`/api/v1/conversations/${id}`)).body?.title, 'private', 'nothing was changed by the others');
    // Without signing in: 401; with the cookie but no CSRF token an unsafe request is refused.
    assert.equal((await fetch(`${system.baseUrl}/api/v1/conversations`)).status, 401);
    assert.equal((await ada.post('/api/v1/conversations', {})).status, 403);
    assert.equal((await ada.call(`/api/v1/conversations/${id}`, { method: 'DELETE' })).status, 403);
  });

  test('anonymous sessions work as before beside conversations, and stay open to their token', async () => {
    const session = await createSession(system.baseUrl);
    const ada = await person();
    const socket = await TestSocket.open(system.baseUrl, session.token, true, ada.authCookie());
    assert.equal(socket.frames[0]?.type, 'ready', 'a signed-in person may still use an anonymous session');
    socket.close();
    const refresh = await fetch(`${system.baseUrl}/refresh_token?token=${session.token}`);
    assert.equal(refresh.status, 200);
    // Not part of anyone's list.
    assert.deepEqual((await list(ada)).conversations, []);
    assert.equal((await ada.call(`/api/v1/conversations/${session.token}`)).status, 404);
  });
});

describe('a person\'s conversation outlives the anonymous lifetime (SESSION_TTL_SECONDS=2)', () => {
  let short: TestSystem;
  before(async () => {
    short = await startSystem({ sessionTtlSeconds: 2 });
  });
  after(async () => {
    await short.stop();
  });

  test('the anonymous session is gone, the conversation is listed, readable and goes on', async () => {
    const ada = await person(short.baseUrl);
    const { id } = await create(ada, 'kept');
    const answer = await chat(short.baseUrl, ada, id, 'remember this');
    const anonymous = await createSession(short.baseUrl);
    const anonymousSocket = await TestSocket.open(short.baseUrl, anonymous.token);
    anonymousSocket.send({ type: 'message', text: 'and this' });
    await anonymousSocket.waitFor((frame) => frame.type === 'done');
    anonymousSocket.close();
    // Its expiry is the event to wait for: Redis removes the anonymous session after 2 s idle.
    const anonymousKey = sessionKeys(short.prefix, anonymous.token).session;
    while ((await redis.exists(anonymousKey)) === 1) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await fetch(`${short.baseUrl}/refresh_token?token=${anonymous.token}`)).status, 400);

    const view = await ada.call(`/api/v1/conversations/${id}`);
    assert.equal(view.status, 200);
    assert.deepEqual((view.body?.messages as Array<{ msg: string }>).map((message) => message.msg), ['remember this', answer]);
    assert.equal((await list(ada)).conversations[0]?.id, id);
    assert.equal(await redis.pTTL(sessionKeys(short.prefix, id).messages), -1, 'the history has no lifetime');
    const next = await chat(short.baseUrl, ada, id, 'still there?');
    assert.ok(next.startsWith('Echo #2'), 'the model saw the kept history');
  });
});
