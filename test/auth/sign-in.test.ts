/**
 * Local accounts end to end, against two real gateways and Redis: sign-up and sign-in, the cookie's
 * attributes, CSRF on unsafe requests, bearer tokens for programs, sign-out here and everywhere,
 * and what Redis holds (never a secret).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Browser, cookieAttributes, uniqueUsername } from '../support/browser.js';
import { keysUnder, testRedisClient, type TestRedis } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
let redis: TestRedis;

before(async () => {
  system = await startSystem({ gateways: 2, workers: 0 });
  redis = testRedisClient();
  await redis.connect();
});
after(async () => {
  redis.destroy();
  await system.stop();
});

async function allRedisText(): Promise<string> {
  const parts: string[] = [];
  for (const key of await keysUnder(redis, `${system.prefix}*`)) {
    parts.push(key);
    const type = await redis.type(key);
    if (type === 'hash') parts.push(JSON.stringify(await redis.hGetAll(key)));
    else if (type === 'string') parts.push((await redis.get(key)) ?? '');
    else if (type === 'zset') parts.push(JSON.stringify(await redis.zRange(key, 0, -1)));
  }
  return parts.join('\n');
}

describe('local sign-up and sign-in', () => {
  test('GET /api/v1/auth/config tells the UI what is on', async () => {
    const reply = await new Browser(system.baseUrl).call('/api/v1/auth/config');
    assert.equal(reply.status, 200);
    assert.deepEqual(reply.body, { anonymous: true, signup: 'open', local: true, oidc: null });
  });

  test('sign-up answers 201 {person, csrf} with an HttpOnly, SameSite=Lax, Path=/ cookie (not Secure over plain http)', async () => {
    const browser = new Browser(system.baseUrl);
    const username = uniqueUsername('Ada');
    const reply = await browser.signUp(username, 'correct horse battery', { displayName: 'Ada L. 😀' });
    const person = reply.body?.person as Record<string, unknown>;
    assert.match(String(person.id), /^a_[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(person, { id: person.id, username, displayName: 'Ada L. 😀' });
    assert.match(String(reply.body?.csrf), /^[A-Za-z0-9_-]{43}$/);
    const attributes = cookieAttributes(reply.headers, 'parley_auth') ?? [];
    assert.ok(attributes.includes('httponly'), attributes.join('; '));
    assert.ok(attributes.includes('samesite=lax'), attributes.join('; '));
    assert.ok(attributes.includes('path=/'), attributes.join('; '));
    assert.ok(!attributes.includes('secure'), attributes.join('; '));
    assert.ok(attributes.some((item) => item.startsWith('expires=')), 'a lasting cookie (AUTH_SESSION_DAYS)');
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    const me = await browser.call('/api/v1/auth/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, { person, csrf: reply.body?.csrf });
  });

  test('sign-in with the right password starts a new session; a wrong password or an unknown name get the same 401', async () => {
    const username = uniqueUsername('grace');
    await new Browser(system.baseUrl).signUp(username, 'pässwörd-long-enough');
    const browser = new Browser(system.baseUrl);
    const wrong = await browser.post('/api/v1/auth/signin', { username, password: 'not the password' });
    const unknown = await browser.post('/api/v1/auth/signin', { username: uniqueUsername('nobody'), password: 'not the password' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.body, unknown.body);
    assert.equal(wrong.body?.code, 'invalid_credentials');
    assert.equal(browser.cookies.size, 0);
    // User names are case-insensitive; the password is any Unicode (NFC).
    const right = await browser.post('/api/v1/auth/signin', { username: username.toUpperCase(), password: 'pa\u0308sswo\u0308rd-long-enough' });
    assert.equal(right.status, 200, right.text);
    assert.equal((right.body?.person as Record<string, unknown>).username, username);
    assert.equal((await browser.call('/api/v1/auth/me')).status, 200);
  });

  test('a username is taken once, whatever its case; bad names, passwords and display names are refused with their codes', async () => {
    const username = uniqueUsername('Linus');
    await new Browser(system.baseUrl).signUp(username);
    const browser = new Browser(system.baseUrl);
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ username: username.toLowerCase(), password: 'another password' }, 409, 'username_taken'],
      [{ username: 'ab', password: 'long enough' }, 400, 'invalid_username'],
      [{ username: 'has space', password: 'long enough' }, 400, 'invalid_username'],
      [{ username: 'x'.repeat(65), password: 'long enough' }, 400, 'invalid_username'],
      [{ username: uniqueUsername('short'), password: 'seven77' }, 400, 'invalid_password'],
      [{ username: uniqueUsername('long'), password: 'p'.repeat(257) }, 400, 'invalid_password'],
      [{ username: uniqueUsername('ctrl'), password: 'long enough', displayName: 'a\u0000b' }, 400, 'invalid_display_name'],
      [{ username: uniqueUsername('num'), password: 12345678 }, 400, 'invalid_request'],
    ];
    for (const [body, status, code] of cases) {
      const reply = await browser.post('/api/v1/auth/signup', body);
      assert.equal(reply.status, status, JSON.stringify(body));
      assert.equal(reply.body?.code, code, JSON.stringify(body));
      assert.equal(typeof reply.body?.detail, 'string');
    }
    assert.equal(browser.cookies.size, 0);
  });

  test('a password of 8 emoji (8 code points) is accepted, and 256 characters is the most', async () => {
    const browser = new Browser(system.baseUrl);
    await browser.signUp(uniqueUsername('emoji'), '😀😀😀😀😀😀😀😀');
    await new Browser(system.baseUrl).signUp(uniqueUsername('max'), 'é'.repeat(256));
  });
});

describe('CSRF', () => {
  test('an unsafe request with the cookie is refused without the token or with a wrong one, and accepted with the right one', async () => {
    const browser = new Browser(system.baseUrl);
    await browser.signUp(uniqueUsername('csrf'));
    const csrf = browser.csrf ?? '';
    const missing = await browser.post('/api/v1/auth/tokens', {});
    assert.equal(missing.status, 403);
    assert.deepEqual(Object.keys(missing.body ?? {}).sort(), ['code', 'detail']);
    assert.equal(missing.body?.code, 'csrf');
    const wrong = await browser.post('/api/v1/auth/tokens', {}, { csrf: `${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}` });
    assert.equal(wrong.body?.code, 'csrf');
    const short = await browser.post('/api/v1/auth/signout', undefined, { csrf: 'x' });
    assert.equal(short.status, 403);
    // Another person's token is no good either: it belongs to their session.
    const other = new Browser(system.baseUrl);
    await other.signUp(uniqueUsername('other'));
    assert.equal((await browser.post('/api/v1/auth/tokens', {}, { csrf: other.csrf ?? '' })).status, 403);
    assert.equal((await browser.call('/api/v1/auth/me')).status, 200, 'refused requests changed nothing');
    const right = await browser.post('/api/v1/auth/tokens', { label: 'cli' }, { csrf: true });
    assert.equal(right.status, 201);
  });

  test('safe requests need no token, and without any sign-in the answer is 401 not_signed_in', async () => {
    const anonymous = new Browser(system.baseUrl);
    for (const [method, path] of [['GET', '/api/v1/auth/me'], ['POST', '/api/v1/auth/tokens'], ['POST', '/api/v1/auth/signout'], ['POST', '/api/v1/auth/signout-all']] as const) {
      const reply = await anonymous.call(path, { method, csrf: 'anything' });
      assert.equal(reply.status, 401, `${method} ${path}`);
      assert.deepEqual(reply.body, { detail: 'Sign in to continue.', code: 'not_signed_in' });
    }
  });
});

describe('bearer tokens', () => {
  test('a token works without cookie or CSRF token, is told apart from conversation tokens, and is not a cookie', async () => {
    const browser = new Browser(system.baseUrl);
    const signup = await browser.signUp(uniqueUsername('bot'));
    const created = await browser.post('/api/v1/auth/tokens', { label: 'my script' }, { csrf: true });
    const token = String(created.body?.token);
    assert.match(token, /^parley_a_[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    const program = new Browser(system.baseUrl);
    const me = await program.call('/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(me.status, 200);
    assert.deepEqual((me.body as Record<string, unknown>).person, signup.body?.person);
    const another = await program.post('/api/v1/auth/tokens', {}, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(another.status, 201, 'no CSRF token needed with a bearer token');
    // The token as a cookie, or the cookie as a token: neither is recognised.
    const cookieSecret = browser.cookies.get('parley_auth') ?? '';
    assert.equal((await program.call('/api/v1/auth/me', { headers: { cookie: `parley_auth=${token.slice('parley_'.length)}` } })).status, 401);
    assert.equal((await program.call('/api/v1/auth/me', { headers: { authorization: `Bearer parley_${cookieSecret}` } })).status, 401);
    // A conversation token (UUID) as Bearer is not an account token: the cookie still decides.
    const withUuid = await browser.call('/api/v1/auth/me', { headers: { authorization: 'Bearer 0b6f3b8e-8d5c-4d8e-9a51-5c1f4e2b7a10' } });
    assert.equal(withUuid.status, 200);
  });
});

describe('sign-out', () => {
  test('sign-out ends this session only and clears the cookie', async () => {
    const username = uniqueUsername('out');
    const laptop = new Browser(system.baseUrl);
    await laptop.signUp(username);
    const phone = new Browser(system.baseUrl);
    assert.equal((await phone.post('/api/v1/auth/signin', { username, password: 'correct horse battery' })).status, 200);
    const stolen = laptop.cookies.get('parley_auth') ?? '';
    const out = await laptop.post('/api/v1/auth/signout', undefined, { csrf: true });
    assert.equal(out.status, 204);
    assert.equal(laptop.cookies.size, 0, 'the cookie is cleared');
    assert.equal((await new Browser(system.baseUrl).call('/api/v1/auth/me', { headers: { cookie: `parley_auth=${stolen}` } })).status, 401, 'the old cookie value is dead');
    assert.equal((await phone.call('/api/v1/auth/me')).status, 200, 'the other device stays signed in');
  });

  test('sign-out everywhere ends every cookie session and every token of the account, on every gateway', async () => {
    const username = uniqueUsername('everywhere');
    const laptop = new Browser(system.gatewayUrls[0] ?? '');
    await laptop.signUp(username);
    const phone = new Browser(system.gatewayUrls[1] ?? '');
    await phone.post('/api/v1/auth/signin', { username, password: 'correct horse battery' });
    const token = String((await laptop.post('/api/v1/auth/tokens', {}, { csrf: true })).body?.token);
    const bystander = new Browser(system.baseUrl);
    await bystander.signUp(uniqueUsername('bystander'));
    assert.equal((await phone.post('/api/v1/auth/signout-all', undefined, { csrf: true })).status, 204);
    assert.equal((await laptop.call('/api/v1/auth/me')).status, 401);
    assert.equal((await phone.call('/api/v1/auth/me')).status, 401);
    assert.equal((await new Browser(system.baseUrl).call('/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` } })).status, 401);
    assert.equal((await bystander.call('/api/v1/auth/me')).status, 200, 'other accounts are untouched');
    // And the account still signs in.
    assert.equal((await laptop.post('/api/v1/auth/signin', { username, password: 'correct horse battery' })).status, 200);
  });
});

describe('two gateways', () => {
  test('signed in on one gateway, recognised on the other (cookie and token)', async () => {
    const browser = new Browser(system.gatewayUrls[0] ?? '');
    const signup = await browser.signUp(uniqueUsername('twin'));
    browser.baseUrl = system.gatewayUrls[1] ?? '';
    const me = await browser.call('/api/v1/auth/me');
    assert.equal(me.status, 200);
    assert.deepEqual(me.body, signup.body);
    const token = await browser.post('/api/v1/auth/tokens', {}, { csrf: true });
    assert.equal(token.status, 201);
    const program = new Browser(system.gatewayUrls[0] ?? '');
    assert.equal((await program.call('/api/v1/auth/me', { headers: { authorization: `Bearer ${String(token.body?.token)}` } })).status, 200);
  });
});

describe('what Redis holds', () => {
  test('no cookie secret, token or password is stored; passwords are scrypt records with their parameters', async () => {
    const browser = new Browser(system.baseUrl);
    const username = uniqueUsername('stored');
    const password = 'a very memorable secret';
    await browser.signUp(username, password);
    const token = String((await browser.post('/api/v1/auth/tokens', {}, { csrf: true })).body?.token);
    const everything = await allRedisText();
    const cookie = browser.cookies.get('parley_auth') ?? '';
    assert.ok(cookie.length > 40);
    assert.ok(!everything.includes(cookie), 'the cookie secret is not in Redis');
    assert.ok(!everything.includes(cookie.split('.')[1] ?? 'missing'), 'nor its random part');
    assert.ok(!everything.includes(token.slice('parley_'.length)), 'the token is not in Redis');
    assert.ok(!everything.includes(password), 'the password is not in Redis');
    assert.match(everything, /scrypt\$32768\$8\$3\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}/);
    const person = (await browser.call('/api/v1/auth/me')).body?.person as Record<string, string>;
    assert.equal(await redis.get(`${system.prefix}user:${username.toLowerCase()}`), person.id, 'the username index names the account');
  });
});
