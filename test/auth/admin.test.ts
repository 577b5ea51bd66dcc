/**
 * The operator's CLI (`npm run admin -- …`) against a real Redis and a running gateway: list,
 * disable (sign-in refused, cookie, token and an open socket stop at once), enable, delete (name,
 * sessions and index entries gone), and usage errors.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLOSE_UNAUTHENTICATED } from '../../src/contracts/wire.js';
import { runAdminCli } from '../support/admin-cli.js';
import { Browser } from '../support/browser.js';
import { createSession, TestSocket } from '../support/client.js';
import { keysUnder, testRedisClient, type TestRedis } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
let redis: TestRedis;
const PASSWORD = 'correct horse battery';

before(async () => {
  system = await startSystem({ workers: 1 });
  redis = testRedisClient();
  await redis.connect();
});
after(async () => {
  redis.destroy();
  await system.stop();
});

const admin = (...args: string[]) => runAdminCli(system.env, args);

describe('npm run admin', () => {
  test('list shows every account with its status and way of signing in (through npm, as an operator types it)', async () => {
    const browser = new Browser(system.baseUrl);
    await browser.signUp('listed-one', PASSWORD, { displayName: 'Ada \u202eLovelace 😀' });
    await new Browser(system.baseUrl).signUp('listed-two');
    const result = await runAdminCli(system.env, ['list'], true);
    assert.equal(result.code, 0, result.stderr);
    const rows = result.stdout.trim().split('\n').map((line) => line.split('\t'));
    assert.deepEqual(rows[0], ['username', 'display name', 'id', 'created', 'status', 'sign-in']);
    const one = rows.find((row) => row[0] === 'listed-one');
    assert.ok(one !== undefined, result.stdout);
    assert.equal(one.length, 6);
    assert.equal(one[1], 'Ada \u202eLovelace 😀');
    assert.match(one[2] ?? '', /^a_[A-Za-z0-9_-]{22}$/);
    assert.ok(!Number.isNaN(Date.parse(one[3] ?? '')));
    assert.deepEqual(one.slice(4), ['active', 'password']);
    assert.ok(rows.some((row) => row[0] === 'listed-two'));
  });

  test('disable stops sign-in, the cookie, tokens and an open socket at once; enable lets the person sign in again', async () => {
    const browser = new Browser(system.baseUrl);
    await browser.signUp('to-disable');
    const token = String((await browser.post('/api/v1/auth/tokens', {}, { csrf: true })).body?.token);
    const session = await createSession(system.baseUrl, 'Ada');
    const socket = await TestSocket.open(system.baseUrl, session.token, true, browser.authCookie());
    socket.send({ type: 'message', text: 'before' });
    await socket.waitFor((frame) => frame.type === 'done');

    const disabled = await admin('disable', 'TO-DISABLE');
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.match(disabled.stdout, /Disabled to-disable/);
    assert.equal((await browser.call('/api/v1/auth/me')).status, 401);
    assert.equal((await new Browser(system.baseUrl).call('/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` } })).status, 401);
    const signIn = await new Browser(system.baseUrl).post('/api/v1/auth/signin', { username: 'to-disable', password: PASSWORD });
    assert.equal(signIn.status, 403);
    assert.equal(signIn.body?.code, 'account_disabled');
    const wrong = await new Browser(system.baseUrl).post('/api/v1/auth/signin', { username: 'to-disable', password: 'not the password' });
    assert.equal(wrong.body?.code, 'invalid_credentials', 'a wrong password does not learn that the account is disabled');
    socket.send({ type: 'message', text: 'after' });
    assert.equal((await socket.waitForClose()).code, CLOSE_UNAUTHENTICATED.code);
    assert.ok(!socket.frames.some((frame) => frame.type === 'accepted' && frame.seq === 2), 'the message after disabling was not taken');
    assert.match((await admin('list')).stdout, /^to-disable\t.*\tdisabled\tpassword$/m);

    assert.equal((await admin('enable', 'to-disable')).code, 0);
    assert.equal((await new Browser(system.baseUrl).post('/api/v1/auth/signin', { username: 'to-disable', password: PASSWORD })).status, 200);
    assert.equal((await new Browser(system.baseUrl).call('/api/v1/auth/me', { headers: { authorization: `Bearer ${token}` } })).status, 401, 'tokens ended by disabling stay ended');
  });

  test('delete removes the account, its name, its sessions and tokens; the name can be taken again', async () => {
    const browser = new Browser(system.baseUrl);
    const signup = await browser.signUp('to-delete');
    const id = String((signup.body?.person as Record<string, unknown>).id);
    await browser.post('/api/v1/auth/tokens', {}, { csrf: true });
    const deleted = await admin('delete', 'to-delete');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await browser.call('/api/v1/auth/me')).status, 401);
    const left = (await keysUnder(redis, `${system.prefix}*`)).filter((key) => key.includes(id) || key.endsWith(':user:to-delete'));
    assert.deepEqual(left, []);
    assert.equal(await redis.zScore(`${system.prefix}accounts`, id), null);
    assert.ok(!(await admin('list')).stdout.includes('to-delete'));
    await new Browser(system.baseUrl).signUp('to-delete');
  });

  test('usage errors and unknown accounts: exit 2 with the usage, exit 1 naming the account; nothing changes', async () => {
    for (const args of [[], ['disable'], ['list', 'extra'], ['frobnicate'], ['enable', 'a', 'b']]) {
      const result = await admin(...args);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, /Usage: npm run admin/);
    }
    const missing = await admin('disable', 'nobody-here');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No account is named "nobody-here"/);
    const hostile = await admin('delete', '*');
    assert.equal(hostile.code, 1, 'a pattern is no username');
  });
});
