/**
 * Hostile input on every endpoint of the people API (as the fuzz suite does for the rest): empty,
 * huge, malformed, binary and hostile bodies, cookies, bearer tokens and CSRF headers, seeded.
 * Nothing may get a 5xx; every refusal of the JSON API is {"detail", "code"}; no hostile value
 * becomes a Redis key; and a well-behaved person keeps signing in and using the API throughout.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runAdminCli } from '../support/admin-cli.js';
import { Browser } from '../support/browser.js';
import { Picker, seededRandom } from '../support/fuzz.js';
import { rawRequest } from '../support/raw-http.js';
import { keysUnder, testRedisClient } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const SEED = Number(process.env.FUZZ_SEED ?? 13);
const ROUNDS = Number(process.env.FUZZ_SIZE ?? 40);

let system: TestSystem;
before(async () => {
  system = await startSystem({ workers: 0, env: { SIGNUP: 'invite' } });
});
after(() => system.stop());

const ENDPOINTS: ReadonlyArray<readonly [string, string]> = [
  ['GET', '/api/v1/auth/config'],
  ['POST', '/api/v1/auth/signup'],
  ['POST', '/api/v1/auth/signin'],
  ['GET', '/api/v1/auth/me'],
  ['POST', '/api/v1/auth/tokens'],
  ['POST', '/api/v1/auth/signout'],
  ['POST', '/api/v1/auth/signout-all'],
  ['GET', '/api/v1/auth/oidc/start'],
  ['GET', '/api/v1/auth/oidc/callback'],
  ['GET', '/api/v1/me/export'],
  ['DELETE', '/api/v1/me'],
];

function hostileBody(pick: Picker): string | Uint8Array<ArrayBuffer> {
  const value = () => pick.one<unknown>([pick.text(pick.int(40)), 'x'.repeat(5000), 12345678, null, [], {}, { __proto__: { admin: true } }, '\ud800'.repeat(8), 'a_AAAAAAAAAAAAAAAAAAAAAA']);
  switch (pick.int(8)) {
    case 0:
      return '';
    case 1:
      return new Uint8Array(pick.bytes(pick.int(300)));
    case 2:
      return `${'{"username":'.repeat(2000)}1${'}'.repeat(2000)}`;
    case 3:
      return JSON.stringify({ username: 'x'.repeat(70_000), password: 'y' });
    case 4:
      return pick.one(['{', 'null', '[]', '"string"', '{"username":"ada"', '{"__proto__":{"password":"x"}}', '{"constructor":{"prototype":{"csrf":"x"}}}']);
    default:
      return JSON.stringify({ username: value(), password: value(), displayName: value(), invite: value(), label: value() });
  }
}

function hostileHeaders(pick: Picker, real: Browser): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': pick.one(['application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) };
  const secret = real.cookies.get('parley_auth') ?? '';
  if (pick.chance(0.5)) {
    headers.cookie = pick.one([
      // UTF-8 bytes as a raw client sends them (fetch takes header values as Latin-1 only).
      `parley_auth=${Buffer.from(pick.text(pick.int(60))).toString('latin1')}`.replaceAll('\r', '').replaceAll('\n', '').replaceAll('\u0000', ''),
      'parley_auth=a_AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      `parley_auth=${secret}x`,
      `parley_auth=${secret.replace(/^a_./, 'a_Z')}`,
      'parley_auth=%zz',
      `parley_auth=${'a'.repeat(20_000)}`,
      'parley_oidc=x; parley_auth=',
    ]);
  }
  if (pick.chance(0.4)) headers.authorization = pick.one(['Bearer parley_', 'Bearer parley_*', `Bearer parley_${secret}`, 'Bearer parley_a_AAAAAAAAAAAAAAAAAAAAAA.AAAA', 'Basic YWRhOmFkYQ==', `Bearer ${'x'.repeat(9000)}`]);
  if (pick.chance(0.4)) headers['x-csrf-token'] = pick.one(['', real.csrf ?? '', `${real.csrf ?? ''}x`, 'x'.repeat(5000), 'null']);
  return headers;
}

test(`people API fuzz: seed ${SEED}, ${ROUNDS} rounds — no 5xx, coded refusals, no hostile keys, and a person keeps being served`, async () => {
  const pick = new Picker(seededRandom(SEED));
  const admin = testRedisClient();
  await admin.connect();
  const person = new Browser(system.baseUrl);
  const invite = (await runAdminCli(system.env, ['invite'])).stdout.trim();
  await person.signUp('steady-person', 'correct horse battery', { invite });
  const statuses: Record<string, number> = {};
  const violations: string[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [method, path] of ENDPOINTS) {
      const query = pick.chance(0.3) ? pick.one(['?invite=%', `?code=${pick.text(30)}&state=%00`, '?__proto__[x]=1', `?${'a'.repeat(9000)}=1`]) : '';
      const body = method === 'POST' ? hostileBody(pick) : undefined;
      const stranger = new Browser(system.baseUrl);
      let reply;
      try {
        reply = await stranger.call(`${path}${query}`, { method, headers: hostileHeaders(pick, person), ...(body === undefined ? {} : { body }) });
      } catch (error) {
        violations.push(`${method} ${path}: ${String(error)}`);
        continue;
      }
      statuses[reply.status] = (statuses[reply.status] ?? 0) + 1;
      if (reply.status >= 500) violations.push(`${method} ${path}${query.slice(0, 40)} → ${reply.status} ${reply.text.slice(0, 200)}`);
      const isJsonRefusal = reply.status >= 400 && path !== '/api/v1/auth/oidc/callback' && reply.status !== 431 && reply.status !== 414;
      if (isJsonRefusal && (typeof reply.body?.detail !== 'string' || typeof reply.body.code !== 'string')) violations.push(`${method} ${path} → ${reply.status} without {detail, code}: ${reply.text.slice(0, 200)}`);
    }
    // Raw: a request no HTTP client would send, at a random endpoint.
    const [method, path] = pick.one(ENDPOINTS);
    const raw = await rawRequest(Number(new URL(system.baseUrl).port), Buffer.concat([Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\nConnection: close\r\n\r\n`), pick.bytes(10)]), 300);
    if (raw.status !== undefined && raw.status >= 500) violations.push(`raw ${method} ${path} → ${raw.status}`);
    if (round % 10 === 0) {
      assert.equal((await person.call('/api/v1/auth/me')).status, 200, `round ${round}`);
      assert.equal((await person.post('/api/v1/auth/tokens', { label: `round ${round}` }, { csrf: true })).status, 201);
    }
  }
  const keys = await keysUnder(admin, `${system.prefix}*`);
  admin.destroy();
  console.log(`AUTH FUZZ ${JSON.stringify({ seed: SEED, rounds: ROUNDS, requests: ROUNDS * (ENDPOINTS.length + 1), statuses })}`);
  assert.deepEqual(violations, []);
  // Keys are made of validated parts only: ids, hex hashes, lowercase usernames, limiter keys.
  const odd = keys.filter((key) => !/^ptest:[0-9a-f]+:(\{a:a_[A-Za-z0-9_-]{22}\}:(account|auths|auth:[0-9a-f]{64})|user:[a-z0-9._@+-]{3,64}|accounts|invite:[0-9a-f]{64}|oidc-flow:[0-9a-f]{64}|rl:.*)$/.test(key));
  assert.deepEqual(odd, []);
  const signin = await new Browser(system.baseUrl).post('/api/v1/auth/signin', { username: 'steady-person', password: 'correct horse battery' });
  assert.equal(signin.status, 200);
});
