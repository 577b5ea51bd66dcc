import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ANONYMOUS_ONLY, authErrorNotice, createAccountApi, toAuthConfig, toConversationPage } from '../../web/src/protocol/account-api.js';
import type { FetchLike } from '../../web/src/protocol/session-api.js';
import { session } from './fakes.js';

interface Seen {
  readonly url: string;
  readonly method: string;
  readonly csrf: string | null;
  readonly body: unknown;
}

/** A scripted server: answers by "METHOD path" and records what the client sent. */
function server(routes: Record<string, (seen: Seen) => [number, unknown?]>): { fetch: FetchLike; seen: Seen[] } {
  const seen: Seen[] = [];
  const fetch: FetchLike = async (url, init) => {
    const headers = new Headers(init?.headers);
    const request: Seen = {
      url,
      method: init?.method ?? 'GET',
      csrf: headers.get('x-csrf-token'),
      body: typeof init?.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined,
    };
    seen.push(request);
    const route = routes[`${request.method} ${url.split('?')[0] ?? ''}`];
    if (route === undefined) return new Response('{"detail":"Not Found"}', { status: 404 });
    const [status, body] = route(request);
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  };
  return { fetch, seen };
}

const ADA = { id: 'a_1', username: 'ada', displayName: 'Ada Lovelace' };

describe('account API', () => {
  it('signs in, keeps the CSRF token and sends it on unsafe requests only', async () => {
    const { fetch, seen } = server({
      'POST /api/v1/auth/signin': () => [200, { person: ADA, csrf: 'csrf-1' }],
      'GET /api/v1/conversations': () => [200, { conversations: [] }],
      'PATCH /api/v1/conversations/c%2F1': () => [200, {}],
      'POST /api/v1/auth/signout': () => [204],
    });
    const api = createAccountApi(fetch);
    assert.deepEqual(await api.signIn('ada', 'correct horse'), { ok: true, value: ADA });
    assert.deepEqual(seen[0]?.body, { username: 'ada', password: 'correct horse' });
    assert.equal(seen[0]?.csrf, null, 'no token before signing in');
    await api.listConversations();
    assert.equal(seen[1]?.csrf, null, 'a GET carries no token');
    assert.deepEqual(await api.renameConversation('c/1', 'New title'), { ok: true, value: null });
    assert.deepEqual([seen[2]?.url, seen[2]?.csrf, seen[2]?.body], ['/api/v1/conversations/c%2F1', 'csrf-1', { title: 'New title' }]);
    assert.deepEqual(await api.signOut(), { ok: true, value: null });
    assert.equal(seen[3]?.csrf, 'csrf-1');
  });

  it("shows the server's detail when sign-in or sign-up fails, and a text of its own when there is none", async () => {
    const { fetch, seen } = server({
      'POST /api/v1/auth/signin': () => [401, { detail: 'Wrong user name or password.', code: 'bad_credentials' }],
      'POST /api/v1/auth/signup': () => [429, '<html>'],
    });
    const api = createAccountApi(fetch);
    assert.deepEqual(await api.signIn('ada', 'nope'), { ok: false, status: 401, code: 'bad_credentials', detail: 'Wrong user name or password.' });
    const signup = await api.signUp({ username: 'ada', password: 'x', displayName: '  ', invite: ' inv-1 ' });
    assert.equal(signup.ok === false && signup.detail, 'Too many attempts: wait a moment and try again.');
    assert.deepEqual(seen[1]?.body, { username: 'ada', password: 'x', invite: 'inv-1' }, 'blank display name left out, invite trimmed');
    const offline = await createAccountApi(async () => Promise.reject(new TypeError('Failed to fetch'))).signIn('a', 'b');
    assert.equal(offline.ok === false && offline.status, 0);
  });

  it('me: null when nobody is signed in; a sign-in body without a person is refused', async () => {
    assert.deepEqual(await createAccountApi(server({ 'GET /api/v1/auth/me': () => [401, { detail: 'Sign in', code: 'not_signed_in' }] }).fetch).me(), { ok: true, value: null });
    const odd = await createAccountApi(server({ 'GET /api/v1/auth/me': () => [200, { person: { id: 1 } }] }).fetch).me();
    assert.equal(odd.ok, false);
    const named = await createAccountApi(server({ 'GET /api/v1/auth/me': () => [200, { person: { id: 'a', username: 'bo' }, csrf: 'x' }] }).fetch).me();
    assert.deepEqual(named, { ok: true, value: { id: 'a', username: 'bo', displayName: 'bo' } }, 'no display name: the user name');
  });

  it('renews a stale CSRF token once and retries', async () => {
    let token = 'old';
    const { fetch, seen } = server({
      'POST /api/v1/auth/signin': () => [200, { person: ADA, csrf: 'old' }],
      'GET /api/v1/auth/me': () => {
        token = 'new';
        return [200, { person: ADA, csrf: 'new' }];
      },
      'DELETE /api/v1/conversations/c1': (request) => (request.csrf === token && token === 'new' ? [204] : [403, { detail: 'Bad CSRF token', code: 'csrf' }]),
    });
    const api = createAccountApi(fetch);
    await api.signIn('ada', 'pw');
    assert.deepEqual(await api.deleteConversation('c1'), { ok: true, value: null });
    assert.deepEqual(seen.map((request) => `${request.method} ${request.url} ${request.csrf ?? '-'}`), [
      'POST /api/v1/auth/signin -',
      'DELETE /api/v1/conversations/c1 old',
      'GET /api/v1/auth/me -',
      'DELETE /api/v1/conversations/c1 new',
    ]);
  });

  it('tells its listeners when a signed-in request finds nobody signed in', async () => {
    const api = createAccountApi(server({ 'GET /api/v1/conversations': () => [401, { detail: 'Sign in first', code: 'not_signed_in' }] }).fetch);
    let told = 0;
    const stop = api.onSignedOut(() => (told += 1));
    const result = await api.listConversations({ q: '  trip ' });
    assert.equal(result.ok === false && result.detail, 'Sign in first');
    assert.equal(told, 1);
    stop();
    await api.listConversations();
    assert.equal(told, 1);
  });

  it('lists with the search text and the page cursor in the query', async () => {
    const { fetch, seen } = server({ 'GET /api/v1/conversations': () => [200, { conversations: [{ id: 'c1', title: 'Trip', createdAt: 1_700_000_000_000, updatedAt: '2026-01-01T00:00:00.000Z' }], next: 17 }] });
    const result = await createAccountApi(fetch).listConversations({ q: ' trip & co ', before: '17' });
    assert.equal(seen[0]?.url, '/api/v1/conversations?q=trip+%26+co&before=17');
    assert.deepEqual(result, {
      ok: true,
      value: { conversations: [{ id: 'c1', title: 'Trip', createdAt: '2023-11-14T22:13:20.000Z', updatedAt: '2026-01-01T00:00:00.000Z' }], next: '17' },
    });
  });

  it('loads a conversation for the chat client: gone or not ours is expired, 5xx is transient', async () => {
    const api = (status: number, body: unknown) => createAccountApi(server({ 'GET /api/v1/conversations/c1': () => [status, body] }).fetch);
    const loaded = await api(200, { ...session({ token: 'c1' }), title: 'Trip', head: 0 }).loadConversation('c1');
    assert.equal(loaded.kind === 'ok' && loaded.session.title, 'Trip');
    for (const status of [400, 401, 403, 404]) assert.deepEqual(await api(status, {}).loadConversation('c1'), { kind: 'expired' });
    await assert.rejects(api(503, {}).loadConversation('c1'));
    await assert.rejects(api(200, { not: 'a session' }).loadConversation('c1'));
  });

  it('builds export links for a conversation', () => {
    const api = createAccountApi(server({}).fetch);
    assert.equal(api.exportUrl('c 1', 'markdown'), '/api/v1/conversations/c%201/export?format=markdown');
    assert.equal(api.exportUrl('c1', 'json'), '/api/v1/conversations/c1/export?format=json');
  });
});

describe('account API: parsing', () => {
  it('reads the sign-in configuration, and falls back to the anonymous chat alone', async () => {
    assert.deepEqual(toAuthConfig({ anonymous: false, signup: 'invite', local: true, oidc: { label: 'Acme' } }), {
      anonymous: false,
      signup: 'invite',
      local: true,
      oidc: { label: 'Acme' },
    });
    assert.deepEqual(toAuthConfig({ anonymous: true, signup: 'whatever', local: 'yes', oidc: { label: '' } }), { anonymous: true, signup: 'closed', local: false, oidc: null });
    for (const body of [null, [], 'x', 7]) assert.deepEqual(toAuthConfig(body), ANONYMOUS_ONLY);
    assert.deepEqual(await createAccountApi(server({}).fetch).config(), ANONYMOUS_ONLY, 'a server without accounts (404)');
  });

  it('explains a failed single sign-on from the callback’s auth_error, and only with the fixed texts', () => {
    assert.equal(authErrorNotice('?auth_error=signup_closed'), 'New accounts cannot be created here.');
    assert.equal(authErrorNotice('?auth_error=account_disabled'), 'This account is disabled. Ask the operator of this server.');
    assert.equal(authErrorNotice('?auth_error=%3Cimg%20src%3Dx%3E'), 'Single sign-on did not complete. Try again.', 'an unknown code shows no text of its own');
    assert.equal(authErrorNotice('?auth_error='), 'Single sign-on did not complete. Try again.');
    assert.equal(authErrorNotice(''), undefined);
    assert.equal(authErrorNotice('?other=1'), undefined);
  });

  it('drops conversations without an id and bodies without a list', () => {
    assert.deepEqual(toConversationPage({ conversations: [{ id: '' }, { title: 'x' }, 'c1', { id: 'c2' }] }), { conversations: [{ id: 'c2', title: '', createdAt: '', updatedAt: '' }] });
    assert.equal(toConversationPage({ conversations: 'no' }), undefined);
    assert.equal(toConversationPage(undefined), undefined);
  });
});
