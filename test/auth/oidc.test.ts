/**
 * OpenID Connect sign-in against a real provider (oidc-provider 8, in this process on a random
 * port): the whole flow over HTTP — the gateway's redirect, the provider's login and consent
 * forms, the code exchange with PKCE, state and nonce — until the gateway sets its cookie.
 * Accounts are linked by (issuer, sub); tampered, replayed and foreign callbacks are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runAdminCli } from '../support/admin-cli.js';
import { Browser, cookieAttributes, type Reply } from '../support/browser.js';
import { OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, startFrontDoor, startOidcProvider, type FrontDoor, type TestOidcProvider } from '../support/oidc-provider.js';
import { startSystem, type TestSystem } from '../support/system.js';

let provider: TestOidcProvider;
let door: FrontDoor;
let closedDoor: FrontDoor;
let system: TestSystem;

before(async () => {
  provider = await startOidcProvider();
  [door, closedDoor] = [await startFrontDoor(), await startFrontDoor()];
  const callback = (front: FrontDoor) => `${front.url}/api/v1/auth/oidc/callback`;
  system = await startSystem({
    gateways: 2,
    workers: 0,
    env: { OIDC_ISSUER: provider.issuer, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URL: callback(door), OIDC_LABEL: 'Test IdP' },
  });
  door.target = system.gatewayUrls[0] ?? '';
  closedDoor.target = await system.addGateway({ SIGNUP: 'closed', OIDC_REDIRECT_URL: callback(closedDoor) });
  provider.configure([callback(door), callback(closedDoor)]);
});
after(async () => {
  await system.stop();
  await Promise.all([provider.close(), door.close(), closedDoor.close()]);
});

interface FlowEnd {
  /** Where the gateway sent the browser at the end ("/" or "/?auth_error=…"). */
  readonly location: URL;
  /** The gateway's reply that ended the flow (its Set-Cookie lines). */
  readonly reply: Reply;
  /** The callback URL the provider sent the browser to. */
  readonly callbackUrl: string;
}

/** Fills the provider's login or consent form. */
function formOf(html: string, pageUrl: string, login: string): { action: string; body: string } {
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
  if (action === undefined) throw new Error(`no form in ${html.slice(0, 500)}`);
  const fields = new URLSearchParams();
  for (const input of html.match(/<input[^>]*>/g) ?? []) {
    const name = /name="([^"]+)"/.exec(input)?.[1];
    if (name === undefined) continue;
    const value = /value="([^"]*)"/.exec(input)?.[1] ?? '';
    fields.set(name, name === 'login' ? login : name === 'password' ? 'any password' : value);
  }
  return { action: new URL(action.replaceAll('&amp;', '&'), pageUrl).href, body: fields.toString() };
}

/** Drives a browser from the gateway's start URL through the provider until the gateway answers with its final redirect. */
async function signInWithProvider(browser: Browser, login: string, start = '/api/v1/auth/oidc/start'): Promise<FlowEnd> {
  let url = new URL(start, browser.baseUrl).href;
  let reply = await browser.call(url);
  let callbackUrl = '';
  for (let hop = 0; hop < 20; hop += 1) {
    if (reply.status === 302 || reply.status === 303) {
      const next = new URL(reply.headers.get('location') ?? '', url);
      if (next.origin === new URL(browser.baseUrl).origin && next.pathname === '/') return { location: next, reply, callbackUrl };
      if (next.pathname.endsWith('/oidc/callback')) callbackUrl = next.href;
      url = next.href;
      reply = await browser.call(url);
    } else if (reply.status === 200 && reply.text.includes('<form')) {
      const form = formOf(reply.text, url, login);
      url = form.action;
      reply = await browser.call(url, { method: 'POST', body: form.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    } else throw new Error(`unexpected ${reply.status} at ${url}: ${reply.text.slice(0, 500)}`);
  }
  throw new Error('too many redirects');
}

describe('OpenID Connect', () => {
  test('/auth/config names the provider; start redirects with state, nonce and an S256 PKCE challenge', async () => {
    const browser = new Browser(door.url);
    assert.deepEqual((await browser.call('/api/v1/auth/config')).body?.oidc, { label: 'Test IdP' });
    const start = await browser.call('/api/v1/auth/oidc/start');
    assert.equal(start.status, 302);
    const target = new URL(start.headers.get('location') ?? '');
    assert.equal(target.origin, provider.issuer);
    for (const name of ['state', 'nonce', 'code_challenge']) assert.match(target.searchParams.get(name) ?? '', /^[A-Za-z0-9_-]{43}$/, name);
    assert.equal(target.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(target.searchParams.get('redirect_uri'), `${door.url}/api/v1/auth/oidc/callback`);
    assert.equal(target.searchParams.get('scope'), 'openid email profile');
    const flowCookie = cookieAttributes(start.headers, 'parley_oidc') ?? [];
    assert.ok(flowCookie.includes('httponly') && flowCookie.includes('samesite=lax') && flowCookie.includes('path=/api/v1/auth/oidc'), flowCookie.join('; '));
  });

  test('the whole flow signs a new person in: account from the claims, cookie set, recognised on the other gateway; the next sign-in finds the same account', async () => {
    const browser = new Browser(door.url);
    const end = await signInWithProvider(browser, 'oidc-ada');
    assert.equal(end.location.search, '', `no error: ${end.location.href}`);
    const attributes = cookieAttributes(end.reply.headers, 'parley_auth') ?? [];
    assert.ok(attributes.includes('httponly') && attributes.includes('samesite=lax') && attributes.includes('path=/'), attributes.join('; '));
    const me = await browser.call('/api/v1/auth/me');
    assert.equal(me.status, 200);
    const person = me.body?.person as Record<string, string>;
    assert.deepEqual({ username: person.username, displayName: person.displayName }, { username: 'oidc-ada', displayName: 'oidc-ada Example' });
    assert.equal((await browser.on(system.gatewayUrls[1] ?? '').call('/api/v1/auth/me')).status, 200);
    // Another browser, same provider identity: the same account, not a new one.
    const again = new Browser(door.url);
    await signInWithProvider(again, 'oidc-ada');
    assert.equal(((await again.call('/api/v1/auth/me')).body?.person as Record<string, string>).id, person.id);
  });

  test('accounts are linked by (issuer, sub), not by name: a local account of the same name stays someone else', async () => {
    const local = new Browser(door.url);
    const mine = await local.signUp('oidc-grace');
    // The provider's login "oidc-grace" is someone else; the claims even repeat the name.
    const browser = new Browser(door.url);
    const end = await signInWithProvider(browser, 'oidc-grace');
    assert.equal(end.location.search, '');
    const person = (await browser.call('/api/v1/auth/me')).body?.person as Record<string, string>;
    assert.notEqual(person.id, (mine.body?.person as Record<string, string>).id);
    assert.notEqual(String(person.username).toLowerCase(), 'oidc-grace');
    // Claims that make no username still make an account.
    provider.claimsFor = () => ({ name: '😀', preferred_username: '!!', email: '@@' });
    try {
      const odd = new Browser(door.url);
      assert.equal((await signInWithProvider(odd, 'oidc-odd')).location.search, '');
      const oddPerson = (await odd.call('/api/v1/auth/me')).body?.person as Record<string, string>;
      assert.match(String(oddPerson.username), /^user/);
      assert.equal(oddPerson.displayName, '😀');
    } finally {
      provider.claimsFor = (login) => ({ name: `${login} Example`, preferred_username: login, email: `${login}@example.test` });
    }
  });

  test('a replayed callback, one without the flow cookie, another browser\'s flow, or a changed state are refused', async () => {
    const browser = new Browser(door.url);
    const end = await signInWithProvider(browser, 'oidc-replay');
    assert.equal(end.location.search, '');
    // The same callback URL again (with or without the old flow cookie): the flow was used once.
    const replay = await new Browser(door.url).call(end.callbackUrl);
    assert.equal(replay.headers.get('location'), '/?auth_error=oidc_failed');
    assert.equal(replay.headers.getSetCookie().some((line) => line.startsWith('parley_auth=') && !line.startsWith('parley_auth=;')), false);
    // A victim's browser given the attacker's callback (login CSRF): its own flow cookie does not match.
    const victim = new Browser(door.url);
    await victim.call('/api/v1/auth/oidc/start');
    const attacker = new Browser(door.url);
    const stolen = await signInUntilCallback(attacker, 'oidc-attacker');
    const forced = await victim.call(stolen);
    assert.equal(forced.headers.get('location'), '/?auth_error=oidc_failed');
    assert.equal(victim.cookies.has('parley_auth'), false);
    // A state changed in transit.
    const tampered = new Browser(door.url);
    const callbackUrl = new URL(await signInUntilCallback(tampered, 'oidc-tamper'));
    callbackUrl.searchParams.set('state', 'x'.repeat(43));
    assert.equal((await tampered.call(callbackUrl.href)).headers.get('location'), '/?auth_error=oidc_failed');
    assert.equal(tampered.cookies.has('parley_auth'), false);
  });

  test('SIGNUP=closed: a new provider identity gets no account, a linked one still signs in', async () => {
    await signInWithProvider(new Browser(door.url), 'oidc-early');
    const refused = await signInWithProvider(new Browser(closedDoor.url), 'oidc-late');
    assert.equal(refused.location.search, '?auth_error=signup_closed');
    const known = new Browser(closedDoor.url);
    assert.equal((await signInWithProvider(known, 'oidc-early')).location.search, '');
    assert.equal((await known.call('/api/v1/auth/me')).status, 200);
  });

  test('a disabled account is refused through the provider too, and signs in again once enabled', async () => {
    const first = new Browser(door.url);
    await signInWithProvider(first, 'oidc-disabled');
    const me = await first.call('/api/v1/auth/me');
    const username = String((me.body?.person as Record<string, unknown>).username);
    assert.equal((await runAdminCli(system.env, ['disable', username])).code, 0);
    assert.equal((await first.call('/api/v1/auth/me')).status, 401, 'its session ended');
    const refused = new Browser(door.url);
    assert.equal((await signInWithProvider(refused, 'oidc-disabled')).location.search, '?auth_error=account_disabled');
    assert.equal(refused.cookies.has('parley_auth'), false);
    assert.equal((await runAdminCli(system.env, ['enable', username])).code, 0);
    const again = new Browser(door.url);
    assert.equal((await signInWithProvider(again, 'oidc-disabled')).location.search, '');
    assert.equal(String(((await again.call('/api/v1/auth/me')).body?.person as Record<string, unknown>).username), username, 'the same account');
  });

  test('hostile callbacks: every one ends in a redirect with an error code, never a 5xx', async () => {
    const browser = new Browser(door.url);
    browser.cookies.set('parley_oidc', 'x'.repeat(5000));
    const queries = ['', '?code=', '?state=%', '?code=x&state=y', '?error=access_denied', `?code=${'a'.repeat(10_000)}`, '?code[]=1&state[]=2', '?__proto__[x]=1', '?iss=http://evil.example'];
    for (const query of queries) {
      const reply = await browser.call(`/api/v1/auth/oidc/callback${query}`);
      assert.equal(reply.status, 302, query);
      assert.equal(reply.headers.get('location'), '/?auth_error=oidc_failed', query);
    }
    for (const query of ['?invite=%', `?invite=${'x'.repeat(300)}`, '?invite[]=1']) {
      const reply = await new Browser(door.url).call(`/api/v1/auth/oidc/start${query}`);
      assert.ok(reply.status === 302 || reply.status === 400, `${query}: ${reply.status}`);
    }
  });
});

/** Like signInWithProvider, but stops at the provider's redirect to the callback and returns its URL. */
async function signInUntilCallback(browser: Browser, login: string): Promise<string> {
  let url = new URL('/api/v1/auth/oidc/start', browser.baseUrl).href;
  let reply = await browser.call(url);
  for (let hop = 0; hop < 20; hop += 1) {
    if (reply.status === 302 || reply.status === 303) {
      const next = new URL(reply.headers.get('location') ?? '', url);
      if (next.pathname.endsWith('/oidc/callback')) return next.href;
      url = next.href;
      reply = await browser.call(url);
    } else {
      const form = formOf(reply.text, url, login);
      url = form.action;
      reply = await browser.call(url, { method: 'POST', body: form.body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    }
  }
  throw new Error('too many redirects');
}
