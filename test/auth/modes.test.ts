/**
 * What the operator configures, against real gateways sharing one Redis: sign-up open, by
 * invitation (codes from the admin CLI) or closed, local accounts off, anonymous chat off (HTTP
 * and WebSocket), the Secure cookie behind https, and the rate limits per address, per account and
 * per address+username.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLOSE_UNAUTHENTICATED } from '../../src/contracts/wire.js';
import { runAdminCli } from '../support/admin-cli.js';
import { Browser, cookieAttributes, uniqueUsername } from '../support/browser.js';
import { createSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
const PASSWORD = 'correct horse battery';

before(async () => {
  system = await startSystem({
    gateways: 1,
    workers: 1,
    env: {
      TRUST_PROXY: 'true',
      RATE_SIGNIN_PER_MINUTE: '2',
      RATE_SIGNIN_ACCOUNT_PER_MINUTE: '4',
      RATE_SIGNIN_ADDRESS_PER_MINUTE: '5',
      RATE_SIGNUPS_PER_MINUTE: '3',
      RATE_ACCOUNT_MESSAGES_PER_MINUTE: '3',
    },
  });
});
after(() => system.stop());

/** A browser whose requests come (through the trusted proxy) from `address`. */
function from(baseUrl: string, address: string, extra: Record<string, string> = {}) {
  const browser = new Browser(baseUrl);
  const headers = { 'x-forwarded-for': address, ...extra };
  return {
    browser,
    signUp: (username: string, body: Record<string, unknown> = {}) => browser.post('/api/v1/auth/signup', { username, password: PASSWORD, ...body }, { headers }),
    signIn: (username: string, password = PASSWORD) => browser.post('/api/v1/auth/signin', { username, password }, { headers }),
  };
}

let addressCounter = 0;
const freshAddress = () => `10.9.${Math.floor((addressCounter += 1) / 250)}.${addressCounter % 250}`;

async function signedUp(baseUrl = system.baseUrl): Promise<{ browser: Browser; username: string }> {
  const username = uniqueUsername('person');
  const client = from(baseUrl, freshAddress());
  const reply = await client.signUp(username);
  assert.equal(reply.status, 201, reply.text);
  return { browser: client.browser, username };
}

describe('sign-up modes', () => {
  test('SIGNUP=invite: refused without a code or with a wrong one; an admin CLI code works once', async () => {
    const url = await system.addGateway({ SIGNUP: 'invite' });
    const client = from(url, freshAddress());
    assert.equal((await client.browser.call('/api/v1/auth/config')).body?.signup, 'invite');
    const none = await client.signUp(uniqueUsername('invited'));
    assert.equal(none.status, 403);
    assert.equal(none.body?.code, 'invalid_invite');
    const made = await runAdminCli(system.env, ['invite']);
    assert.equal(made.code, 0, made.stderr);
    const code = made.stdout.trim();
    assert.match(code, /^[A-Za-z0-9_-]{22}$/);
    const wrong = await from(url, freshAddress()).signUp(uniqueUsername('invited'), { invite: `${code.slice(0, -1)}${code.endsWith('A') ? 'B' : 'A'}` });
    assert.equal(wrong.body?.code, 'invalid_invite');
    const username = uniqueUsername('invited');
    const first = await from(url, freshAddress()).signUp(username, { invite: code });
    assert.equal(first.status, 201, first.text);
    const again = await from(url, freshAddress()).signUp(uniqueUsername('invited'), { invite: code });
    assert.equal(again.body?.code, 'invalid_invite', 'a code is used once');
    // A taken name does not use up a code.
    const second = (await runAdminCli(system.env, ['invite'])).stdout.trim();
    const taken = await from(url, freshAddress()).signUp(username, { invite: second });
    assert.equal(taken.body?.code, 'username_taken');
    assert.equal((await from(url, freshAddress()).signUp(uniqueUsername('invited'), { invite: second })).status, 201);
  });

  test('SIGNUP=closed refuses sign-up, while existing accounts still sign in', async () => {
    const { username } = await signedUp();
    const url = await system.addGateway({ SIGNUP: 'closed' });
    const refused = await from(url, freshAddress()).signUp(uniqueUsername('late'));
    assert.equal(refused.status, 403);
    assert.equal(refused.body?.code, 'signup_closed');
    assert.equal((await from(url, freshAddress()).signIn(username)).status, 200);
  });

  test('LOCAL_ACCOUNTS=off refuses password sign-up and sign-in, and says so in /auth/config', async () => {
    const { username } = await signedUp();
    const url = await system.addGateway({ LOCAL_ACCOUNTS: 'off' });
    const client = from(url, freshAddress());
    assert.equal((await client.browser.call('/api/v1/auth/config')).body?.local, false);
    assert.equal((await client.signUp(uniqueUsername('x'))).body?.code, 'local_accounts_off');
    assert.equal((await client.signIn(username)).body?.code, 'local_accounts_off');
  });
});

describe('ANONYMOUS_CHAT=off', () => {
  test('POST /token is refused with 403 anonymous_off; a socket without a person is closed, one with a cookie or token is served', async () => {
    const closedUrl = await system.addGateway({ ANONYMOUS_CHAT: 'off' });
    const config = await new Browser(closedUrl).call('/api/v1/auth/config');
    assert.equal(config.body?.anonymous, false);
    const token = await fetch(`${closedUrl}/token?name=Ada`, { method: 'POST' });
    assert.equal(token.status, 403);
    assert.deepEqual(await token.json(), { detail: 'Chatting without an account is turned off here: sign in to chat.', code: 'anonymous_off' });
    // A session from a gateway where anonymous chat is on (same Redis).
    const session = await createSession(system.baseUrl, 'Ada');
    const anonymous = await TestSocket.open(closedUrl, session.token);
    assert.equal((await anonymous.waitForClose()).code, CLOSE_UNAUTHENTICATED.code);
    const { browser } = await signedUp(closedUrl);
    const signedIn = await TestSocket.open(closedUrl, session.token, true, browser.authCookie());
    signedIn.send({ type: 'message', text: 'hello' });
    await signedIn.waitFor((frame) => frame.type === 'done', 20_000);
    assert.equal(signedIn.answers().get(1), 'Echo #1: hello');
    signedIn.close();
    const bearer = String((await browser.post('/api/v1/auth/tokens', {}, { csrf: true, headers: { 'x-forwarded-for': freshAddress() } })).body?.token);
    const program = await TestSocket.open(closedUrl, session.token, true, { authorization: `Bearer ${bearer}` });
    assert.ok(program.frames.some((frame) => frame.type === 'ready'));
    program.close();
  });
});

describe('cookies behind https', () => {
  test('Secure when the trusted proxy says https, and always with AUTH_COOKIE_SECURE=true', async () => {
    const viaProxy = from(system.baseUrl, freshAddress(), { 'x-forwarded-proto': 'https' });
    const reply = await viaProxy.signUp(uniqueUsername('tls'));
    assert.ok(cookieAttributes(reply.headers, 'parley_auth')?.includes('secure'));
    const forced = await system.addGateway({ AUTH_COOKIE_SECURE: 'true' });
    const plain = await from(forced, freshAddress()).signUp(uniqueUsername('forced'));
    assert.ok(cookieAttributes(plain.headers, 'parley_auth')?.includes('secure'));
    // Without TRUST_PROXY the header is the client's word, not the proxy's: not Secure.
    const untrusted = await system.addGateway({ TRUST_PROXY: 'false' });
    const spoofed = await new Browser(untrusted).post('/api/v1/auth/signup', { username: uniqueUsername('spoof'), password: PASSWORD }, { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(spoofed.status, 201);
    assert.ok(!cookieAttributes(spoofed.headers, 'parley_auth')?.includes('secure'));
  });
});

describe('rate limits', () => {
  test('sign-ups per address (RATE_SIGNUPS_PER_MINUTE=3): the fourth gets 429 with Retry-After; another address is not affected', async () => {
    const address = freshAddress();
    for (let index = 0; index < 3; index += 1) assert.equal((await from(system.baseUrl, address).signUp(uniqueUsername('burst'))).status, 201);
    const refused = await from(system.baseUrl, address).signUp(uniqueUsername('burst'));
    assert.equal(refused.status, 429);
    assert.equal(refused.body?.code, 'rate_limited');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.ok(Number(refused.body?.retryAfterMs) > 0);
    assert.equal((await from(system.baseUrl, freshAddress()).signUp(uniqueUsername('burst'))).status, 201);
  });

  test('sign-in per address+username (2): the right password is refused after two wrong ones; from another address it works', async () => {
    const { username } = await signedUp();
    const attacker = from(system.baseUrl, freshAddress());
    assert.equal((await attacker.signIn(username, 'wrong password 1')).status, 401);
    assert.equal((await attacker.signIn(username, 'wrong password 2')).status, 401);
    const limited = await attacker.signIn(username);
    assert.equal(limited.status, 429);
    assert.equal(limited.body?.code, 'rate_limited');
    assert.equal(attacker.browser.cookies.size, 0);
    assert.equal((await from(system.baseUrl, freshAddress()).signIn(username)).status, 200);
  });

  test('sign-in per account (4, all addresses): attempts spread over addresses are counted together', async () => {
    const { username } = await signedUp();
    for (let index = 0; index < 4; index += 1) assert.equal((await from(system.baseUrl, freshAddress()).signIn(username, 'wrong password')).status, 401);
    const limited = await from(system.baseUrl, freshAddress()).signIn(username);
    assert.equal(limited.status, 429);
    assert.equal(limited.body?.code, 'rate_limited');
  });

  test('sign-in per address (5, all usernames): one address trying many names is stopped', async () => {
    const address = freshAddress();
    for (let index = 0; index < 5; index += 1) assert.equal((await from(system.baseUrl, address).signIn(uniqueUsername('guess'), 'wrong password')).status, 401);
    assert.equal((await from(system.baseUrl, address).signIn(uniqueUsername('guess'))).status, 429);
  });

  test('messages per account (RATE_ACCOUNT_MESSAGES_PER_MINUTE=3) over two sessions and sockets; other accounts unaffected', async () => {
    const { browser } = await signedUp();
    const cookie = browser.authCookie();
    const [first, second] = [await createSession(system.baseUrl, 'One'), await createSession(system.baseUrl, 'Two')];
    const a = await TestSocket.open(system.baseUrl, first.token, true, cookie);
    const b = await TestSocket.open(system.baseUrl, second.token, true, cookie);
    a.send({ type: 'message', text: 'one', clientId: 'a1' });
    a.send({ type: 'message', text: 'two', clientId: 'a2' });
    await a.waitFor((frame) => frame.type === 'accepted' && frame.clientId === 'a2', 10_000);
    b.send({ type: 'message', text: 'three', clientId: 'b1' });
    await b.waitFor((frame) => frame.type === 'accepted' && frame.clientId === 'b1', 10_000);
    b.send({ type: 'message', text: 'four', clientId: 'b2' });
    const refused = await b.waitFor((frame) => frame.type === 'error' && frame.clientId === 'b2', 10_000);
    assert.equal(refused.code, 'rate_limited');
    assert.match(String(refused.message), /account/);
    // Someone else, on the same address and session: served.
    const other = await signedUp();
    const c = await TestSocket.open(system.baseUrl, second.token, true, other.browser.authCookie());
    c.send({ type: 'message', text: 'five', clientId: 'c1' });
    await c.waitFor((frame) => frame.type === 'accepted' && frame.clientId === 'c1', 10_000);
    for (const socket of [a, b, c]) socket.close();
  });
});
