/**
 * A person owns their data: GET /api/v1/me/export gives the account and every conversation (every
 * branch), DELETE /api/v1/me removes all of it, and the operator's `admin delete` removes the
 * conversations along with the account. Real gateway, worker, Redis and the fake model.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLOSE_UNAUTHENTICATED } from '../../src/contracts/wire.js';
import { runAdminCli } from '../support/admin-cli.js';
import { Browser, uniqueUsername } from '../support/browser.js';
import { TestSocket } from '../support/client.js';
import { keysUnder, testRedisClient, type TestRedis } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
let redis: TestRedis;

before(async () => {
  system = await startSystem({ workers: 1 });
  redis = testRedisClient();
  await redis.connect();
});
after(async () => {
  redis.destroy();
  await system.stop();
});

interface Signed {
  readonly browser: Browser;
  readonly id: string;
  readonly username: string;
}

async function signUp(): Promise<Signed> {
  const browser = new Browser(system.baseUrl);
  const username = uniqueUsername('owner');
  const reply = await browser.signUp(username);
  return { browser, username, id: String((reply.body?.person as Record<string, unknown>).id) };
}

/** A conversation with one answered message, then a regenerated answer (a second branch). */
async function conversationWithBranches(person: Signed, text: string): Promise<string> {
  const created = await person.browser.post('/api/v1/conversations', {}, { csrf: true });
  assert.equal(created.status, 201, created.text);
  const id = String(created.body?.id);
  const socket = await TestSocket.open(system.baseUrl, id, true, person.browser.authCookie());
  socket.send({ type: 'message', text });
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 1);
  socket.send({ type: 'regenerate', seq: 1 });
  await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 2);
  socket.close();
  return id;
}

/** Every key under the test prefix that names the account or one of the conversations. */
async function keysOf(needles: readonly string[]): Promise<string[]> {
  return (await keysUnder(redis, `${system.prefix}*`)).filter((key) => needles.some((needle) => key.includes(needle)));
}

describe('a person owns their data', () => {
  test('export: the account and every conversation with every branch, as a JSON attachment never cached', async () => {
    const person = await signUp();
    const first = await conversationWithBranches(person, 'What is a heron?');
    const second = await conversationWithBranches(person, 'And a stork?');
    const reply = await person.browser.call('/api/v1/me/export');
    assert.equal(reply.status, 200, reply.text);
    assert.match(reply.headers.get('content-disposition') ?? '', new RegExp(`^attachment; filename="parley-${person.username}-\\d{4}-\\d{2}-\\d{2}\\.json"$`));
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    const body = JSON.parse(reply.text) as {
      account: { id: string; username: string; signIn: { password: boolean } };
      conversations: Array<{ id: string; title: string; head: number; messages: Array<{ source: string; seq: number; parent?: number; msg: string }> }>;
    };
    assert.equal(body.account.id, person.id);
    assert.equal(body.account.username, person.username);
    assert.equal(body.account.signIn.password, true);
    assert.deepEqual(body.conversations.map((conversation) => conversation.id), [second, first], 'newest first');
    const exported = body.conversations[1];
    assert.ok(exported !== undefined);
    assert.equal(exported.title, 'What is a heron?');
    assert.equal(exported.head, 2);
    const humans = exported.messages.filter((message) => message.source === 'human');
    assert.deepEqual(humans.map((message) => [message.seq, message.parent, message.msg]), [[1, 0, 'What is a heron?'], [2, 0, 'What is a heron?']], 'both branches');
    assert.equal(exported.messages.filter((message) => message.source === 'bot').length, 2);
    assert.ok(!reply.text.includes('parley_auth') && !reply.text.includes(person.browser.cookies.get('parley_auth') ?? '-'), 'no secret in the export');
  });

  test('export and delete need the person; delete needs the CSRF token with the cookie', async () => {
    const stranger = new Browser(system.baseUrl);
    assert.equal((await stranger.call('/api/v1/me/export')).status, 401);
    assert.equal((await stranger.call('/api/v1/me', { method: 'DELETE' })).status, 401);
    const person = await signUp();
    const refused = await person.browser.call('/api/v1/me', { method: 'DELETE' });
    assert.equal(refused.status, 403);
    assert.equal(refused.body?.code, 'csrf');
    assert.equal((await person.browser.call('/api/v1/me', { method: 'DELETE', csrf: 'not-the-token' })).status, 403);
    assert.equal((await person.browser.call('/api/v1/auth/me')).status, 200, 'a refused deletion deletes nothing');
  });

  test('delete: the account, its sign-ins, every conversation and its keys are gone; the name is free again', async () => {
    const person = await signUp();
    const conversations = [await conversationWithBranches(person, 'one'), await conversationWithBranches(person, 'two')];
    const token = (await person.browser.post('/api/v1/auth/tokens', {}, { csrf: true })).body?.token;
    assert.equal(typeof token, 'string');
    const other = await signUp();
    const kept = await conversationWithBranches(other, 'not mine');

    assert.ok((await keysOf([person.id, ...conversations])).length > 5, 'the person has keys to delete');
    const oldCookie = person.browser.authCookie();
    const deleted = await person.browser.call('/api/v1/me', { method: 'DELETE', csrf: true });
    assert.equal(deleted.status, 204, deleted.text);
    assert.equal(person.browser.cookies.has('parley_auth'), false, 'the cookie is cleared');
    assert.deepEqual(await keysOf([person.id, ...conversations]), []);
    assert.equal((await new Browser(system.baseUrl).call('/api/v1/auth/me', { headers: { authorization: `Bearer ${String(token)}` } })).status, 401);
    const refused = await TestSocket.open(system.baseUrl, conversations[0] ?? '', true, oldCookie);
    assert.equal((await refused.waitForClose()).code, CLOSE_UNAUTHENTICATED.code, 'the old cookie opens nothing');

    assert.equal((await other.browser.call(`/api/v1/conversations/${kept}`)).status, 200, "another person's conversation stays");
    await new Browser(system.baseUrl).signUp(person.username);
  });

  test('the operator deletes an account with its conversations', async () => {
    const person = await signUp();
    const conversation = await conversationWithBranches(person, 'operator test');
    const result = await runAdminCli(system.env, ['delete', person.username]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /and all its conversations/);
    assert.deepEqual(await keysOf([person.id, conversation]), []);
  });
});
