/**
 * Signing in and out in real Chromium against a real gateway, worker and Redis: sign-up with the
 * server's refusals shown inline, sign-in, sign-out here and everywhere, invitation codes, the
 * anonymous chat beside accounts (or turned off), single sign-on through a real OpenID provider,
 * deleting the account.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { runAdminCli } from '../test/support/admin-cli.js';
import { OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, startFrontDoor, startOidcProvider, type FrontDoor, type TestOidcProvider } from '../test/support/oidc-provider.js';
import { startSystem, type TestSystem } from '../test/support/system.js';
import { accountAction, ensureWebBuild, launchChromium, openPage, PASSWORD, send, signIn, signUp, startChat, uniqueName, waitOnline, waitStatus } from './browser.js';

let browser: Browser;
let system: TestSystem;

before(async () => {
  ensureWebBuild();
  browser = await launchChromium();
  system = await startSystem();
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

describe('accounts in the browser', () => {
  it('sign-up shows the server’s refusal next to the form, then opens the workspace; a reload keeps the person signed in', async () => {
    const username = uniqueName('ada');
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Start chatting' }).count(), 1, 'the anonymous chat is still offered');
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    assert.equal(await page.getByRole('alert').innerText(), 'Choose a password of 8 to 256 characters.');
    assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('button', { name: `Account: ${username}` }).waitFor();
    await page.getByRole('button', { name: 'New conversation' }).waitFor();
    await page.reload();
    await page.getByRole('button', { name: `Account: ${username}` }).waitFor();
    // The same name again, from another browser: taken.
    const other = await openPage(browser, system.baseUrl);
    await other.page.getByRole('button', { name: 'Create an account' }).click();
    await other.page.getByLabel('User name').fill(username.toUpperCase());
    await other.page.getByLabel('Password').fill(PASSWORD);
    await other.page.getByRole('button', { name: 'Create account' }).click();
    assert.equal(await other.page.getByRole('alert').innerText(), 'That user name is taken: choose another.');
    assert.deepEqual([...errors, ...other.errors], []);
    await other.context.close();
    await context.close();
  });

  it('sign-in explains a wrong password; sign-out returns to the sign-in screen and stays there after a reload', async () => {
    const username = uniqueName('grace');
    const first = await openPage(browser, system.baseUrl);
    await signUp(first.page, username);
    await first.context.close();

    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signIn(page, username, 'not the password');
    assert.equal(await page.getByRole('alert').innerText(), 'The user name or password is wrong.');
    await signIn(page, username);
    await page.getByRole('button', { name: `Account: ${username}` }).waitFor();
    await accountAction(page, username, 'Sign out');
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.equal(await page.locator('.notice').innerText(), 'You are signed out.');
    assert.equal((await context.cookies()).some((cookie) => cookie.name === 'parley_auth'), false, 'the cookie is gone');
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('sign out everywhere ends the other browser’s session too', async () => {
    const username = uniqueName('linus');
    const laptop = await openPage(browser, system.baseUrl);
    await signUp(laptop.page, username);
    const phone = await openPage(browser, system.baseUrl, { viewport: { width: 360, height: 740 } });
    await signIn(phone.page, username);
    await phone.page.getByRole('button', { name: 'Conversations' }).waitFor();

    await accountAction(laptop.page, username, 'Sign out everywhere');
    assert.equal(await laptop.page.locator('.notice').innerText(), 'You are signed out on every device.');
    // The phone finds out at its next request (here: a search).
    await phone.page.getByRole('button', { name: 'Conversations' }).click();
    await phone.page.getByLabel('Search conversations').fill('anything');
    await phone.page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.match(await phone.page.locator('.notice').innerText(), /signed out/);
    await phone.page.reload();
    await phone.page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.deepEqual([...laptop.errors, ...phone.errors], []);
    await laptop.context.close();
    await phone.context.close();
  });

  it('the keyboard alone signs in: tab order, Enter submits, the account menu opens and Escape closes it', async () => {
    const username = uniqueName('kay');
    const setup = await openPage(browser, system.baseUrl);
    await signUp(setup.page, username);
    await setup.context.close();

    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await page.getByLabel('User name').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('name')), 'username', 'the first field has the focus');
    await page.keyboard.type(username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    const account = page.getByRole('button', { name: `Account: ${username}` });
    await account.waitFor();
    await account.focus();
    await page.keyboard.press('Enter');
    assert.equal(await account.getAttribute('aria-expanded'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Export all my data', 'the first item has the focus');
    await page.keyboard.press('ArrowDown');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Sign out');
    await page.keyboard.press('Escape');
    assert.equal(await account.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `Account: ${username}`, 'the focus is back on the button');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('the anonymous chat still starts beside the sign-in form', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await startChat(page, 'Visitor');
    assert.equal(await page.locator('.session-name').innerText(), 'Visitor');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('accounts in the browser: operator settings', () => {
  it('SIGNUP=invite asks for the invitation code; a wrong one is explained, one from the admin CLI works', async () => {
    const url = await system.addGateway({ SIGNUP: 'invite' });
    const { page, context, errors } = await openPage(browser, url);
    await page.getByRole('button', { name: 'Create an account' }).click();
    const username = uniqueName('invited');
    await page.getByLabel('User name').fill(username);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Invitation code').fill('not-a-code');
    await page.getByRole('button', { name: 'Create account' }).click();
    assert.equal(await page.getByRole('alert').innerText(), 'The invitation code is not valid (or was used already).');
    const made = await runAdminCli(system.env, ['invite']);
    assert.equal(made.code, 0, made.stderr);
    await page.getByLabel('Invitation code').fill(made.stdout.trim());
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('button', { name: `Account: ${username}` }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('SIGNUP=closed offers sign-in only; ANONYMOUS_CHAT=off removes "Start chatting"', async () => {
    const url = await system.addGateway({ SIGNUP: 'closed', ANONYMOUS_CHAT: 'off' });
    const { page, context, errors } = await openPage(browser, url);
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Create an account' }).count(), 0);
    assert.equal(await page.getByLabel('Your name').count(), 0);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('export all my data downloads the person’s conversations', async () => {
    const username = uniqueName('porter');
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, username);
    await send(page, 'Remember the milk');
    await waitOnline(page);
    await waitStatus(page, 0, 'done');
    const download = page.waitForEvent('download');
    await accountAction(page, username, 'Export all my data');
    const text = await readFile(await (await download).path(), 'utf8');
    assert.match(text, /Remember the milk/);
    assert.match(text, new RegExp(username));
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('deleting the account asks first, then signs out for good', async () => {
    const username = uniqueName('gone');
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, username);
    await accountAction(page, username, 'Delete my account…');
    const dialog = page.getByRole('dialog', { name: 'Delete your account?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await accountAction(page, username, 'Delete my account…');
    await dialog.getByRole('button', { name: 'Delete my account' }).click();
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.equal(await page.locator('.notice').innerText(), 'Your account and all its conversations were deleted.');
    await signIn(page, username);
    assert.equal(await page.getByRole('alert').innerText(), 'The user name or password is wrong.');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('single sign-on in the browser', () => {
  let provider: TestOidcProvider;
  let door: FrontDoor;
  let closedDoor: FrontDoor;
  let oidcSystem: TestSystem;

  before(async () => {
    provider = await startOidcProvider();
    [door, closedDoor] = [await startFrontDoor(), await startFrontDoor()];
    const callback = (front: FrontDoor) => `${front.url}/api/v1/auth/oidc/callback`;
    oidcSystem = await startSystem({
      env: { OIDC_ISSUER: provider.issuer, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URL: callback(door), OIDC_LABEL: 'Test IdP' },
    });
    door.target = oidcSystem.baseUrl;
    closedDoor.target = await oidcSystem.addGateway({ SIGNUP: 'closed', OIDC_REDIRECT_URL: callback(closedDoor) });
    provider.configure([callback(door), callback(closedDoor)]);
  });

  after(async () => {
    await oidcSystem?.stop();
    await Promise.all([provider?.close(), door?.close(), closedDoor?.close()]);
  });

  /** Clicks "Sign in with Test IdP" and fills the provider's login and consent pages. */
  async function viaProvider(page: Page, login: string): Promise<void> {
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    await page.locator('button[type="submit"]').click();
  }

  it('"Sign in with <OIDC_LABEL>" goes through the provider and back, signed in', async () => {
    const login = uniqueName('sso');
    const { page, context, errors } = await openPage(browser, door.url);
    await viaProvider(page, login);
    await page.getByRole('button', { name: `Account: ${login} Example` }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('a refused single sign-on comes back with its reason on the sign-in screen', async () => {
    const { page, context, errors } = await openPage(browser, closedDoor.url);
    await viaProvider(page, uniqueName('late'));
    await page.getByRole('heading', { name: 'Sign in to Parley' }).waitFor();
    assert.equal(await page.locator('.notice').innerText(), 'New accounts cannot be created here.');
    assert.equal(new URL(page.url()).search, '', 'the code leaves the address bar');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
