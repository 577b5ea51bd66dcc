/**
 * Browser helpers for the end-to-end tests: Debian's Chromium driven by playwright-core, a fresh
 * build of the web bundle when its sources changed, and small page helpers for the chat UI.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (the e2e tests need a real browser)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((entry) => newestMtime(join(path, entry))));
}

/** The gateway serves web/dist: build it when it is missing or older than its sources. */
export function ensureWebBuild(): void {
  const built = join(ROOT, 'web/dist/index.html');
  const sources = Math.max(newestMtime(join(ROOT, 'web/src')), newestMtime(join(ROOT, 'web/index.html')), newestMtime(join(ROOT, 'web/vite.config.ts')));
  if (existsSync(built) && statSync(built).mtimeMs >= sources) return;
  const result = spawnSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (result.status !== 0) throw new Error('vite build failed');
}

export interface OpenedPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Uncaught exceptions and Content-Security-Policy violations: a test fails if any appear. */
  readonly errors: string[];
}

export async function openPage(browser: Browser, url: string, options: BrowserContextOptions = {}): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) errors.push(message.text());
  });
  await page.goto(url);
  return { context, page, errors };
}

export async function startChat(page: Page, name = 'Ada'): Promise<void> {
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Start chatting' }).click();
  await waitOnline(page);
}

export async function waitOnline(page: Page, timeout = 15_000): Promise<void> {
  await page.locator('[data-connection="online"]').waitFor({ timeout });
}

/** Types into the composer and presses Enter, as a user would. */
export async function send(page: Page, text: string): Promise<void> {
  const input = page.getByLabel('Message', { exact: true });
  await input.fill(text);
  await input.press('Enter');
}

export function turns(page: Page) {
  return page.locator('article.turn');
}

/** The rendered answer of turn `index` (0-based), '' while there is none. */
export async function answerText(page: Page, index: number): Promise<string> {
  return page.evaluate((position) => {
    const turn = document.querySelectorAll('article.turn')[position];
    return (turn?.querySelector('.bot .message-content') as HTMLElement | null)?.innerText.trim() ?? '';
  }, index);
}

export async function turnStatus(page: Page, index: number): Promise<string | undefined> {
  return page.evaluate((position) => (document.querySelectorAll('article.turn')[position] as HTMLElement | undefined)?.dataset.status, index);
}

export async function waitStatus(page: Page, index: number, status: string, timeout = 20_000): Promise<void> {
  await page.waitForFunction(
    ([position, wanted]) => (document.querySelectorAll('article.turn')[Number(position)] as HTMLElement | undefined)?.dataset.status === wanted,
    [String(index), status] as const,
    { timeout, polling: 25 },
  );
}

/** Polls the answer of a turn until it reaches `status`, returning every distinct text seen. */
export async function watchAnswer(page: Page, index: number, until: string, timeout = 20_000): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = await answerText(page, index);
    if (text !== '' && seen.at(-1) !== text) seen.push(text);
    if ((await turnStatus(page, index)) === until) {
      const final = await answerText(page, index);
      if (seen.at(-1) !== final) seen.push(final);
      return seen;
    }
    if (Date.now() > deadline) throw new Error(`turn ${index} did not reach ${until}; saw ${JSON.stringify(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const PASSWORD = 'correct horse battery';

/** Creates an account from the sign-in screen and waits for the signed-in workspace. */
export async function signUp(page: Page, username: string, password = PASSWORD): Promise<void> {
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  // Attached, not visible: on a phone the account menu sits in the closed sidebar.
  await page.getByRole('button', { name: `Account: ${username}`, includeHidden: true }).waitFor({ state: 'attached' });
}

export async function signIn(page: Page, username: string, password = PASSWORD): Promise<void> {
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/** Opens the menu behind the button `menuLabel` and chooses `item` (a button, or a link for downloads). */
export async function menuAction(page: Page, menuLabel: string, item: string): Promise<void> {
  await page.getByRole('button', { name: menuLabel }).click();
  await page.getByRole('button', { name: item, exact: true }).or(page.getByRole('link', { name: item, exact: true })).click();
}

/** Opens the account menu and chooses `item`. */
export async function accountAction(page: Page, username: string, item: string): Promise<void> {
  await menuAction(page, `Account: ${username}`, item);
}

/** Writes the first message of a new conversation and waits for its answer. */
export async function startConversation(page: Page, text: string): Promise<void> {
  await page.getByRole('button', { name: 'New conversation' }).click();
  await send(page, text);
  await waitOnline(page);
  await waitStatus(page, 0, 'done');
}

let names = 0;
/** A user name no other test of this run uses (the test systems share one Redis, with their own prefixes). */
export function uniqueName(base: string): string {
  names += 1;
  return `${base}${names}${process.pid}`;
}
