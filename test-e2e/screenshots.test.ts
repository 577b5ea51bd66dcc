/**
 * Produces the screenshots (the sign-in screen, an anonymous chat with a code block, a signed-in
 * person's sidebar, and a turn with versions; light and dark, phone and desktop) from the real
 * system, and checks each view fits its screen. They go to test-results/
 * on every run; `UPDATE_SCREENSHOTS=1 npm run test:e2e` refreshes the ones in docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { wordChunks } from '../test/support/fake-openai-server.js';
import { startSystem, type TestSystem } from '../test/support/system.js';
import { ensureWebBuild, launchChromium, openPage, send, signUp, startChat, startConversation, uniqueName, waitOnline, waitStatus } from './browser.js';

const OUT = fileURLToPath(new URL(process.env.UPDATE_SCREENSHOTS === '1' ? '../docs/screenshots/' : '../test-results/screenshots/', import.meta.url));

const ANSWERS = [
  "Hi Ada! I can answer questions, explain code and help you write. Ask away: you can send more while I'm answering.",
  [
    'Use `readFile` from `node:fs/promises`:',
    '',
    '```ts',
    "import { readFile } from 'node:fs/promises';",
    '',
    'export async function loadConfig(path: string): Promise<Config> {',
    "  const text = await readFile(path, 'utf8');",
    '  return JSON.parse(text) as Config;',
    '}',
    '```',
    '',
    'It returns a **promise**, so `await` it inside an `async` function.',
  ].join('\n'),
];

/** What the signed-in person's conversations say (the model's answer by question). */
const PERSON_ANSWERS: Readonly<Record<string, string>> = {
  'Plan a weekend in Lisbon': 'Day one: Alfama in the morning, a tram 28 ride, and sunset at the Miradouro da Senhora do Monte.',
  'Sourdough starter schedule': 'Feed it twice a day at room temperature; it is ready when it doubles within 6 hours.',
  'Suggest a name for a grey cat': 'How about **Pebble**? Short, friendly and it suits a grey coat.',
  'Suggest a name for a ginger cat': 'How about **Marmalade**? Or **Saffron**, if she has a regal air.',
};
const REGENERATED = 'Maybe **Smokey**, **Ash** or **Mist**: all three fit a grey cat.';

const DEVICES = {
  phone: { width: 360, height: 740 },
  desktop: { width: 1280, height: 800 },
} as const;

let browser: Browser;
let system: TestSystem;
let token = '';
/** The signed-in person's cookie and storage, and the conversations to show. */
let person: Awaited<ReturnType<BrowserContext['storageState']>>;
let chatConversation = '';
let branchConversation = '';

before(async () => {
  ensureWebBuild();
  mkdirSync(OUT, { recursive: true });
  browser = await launchChromium();
  system = await startSystem();
  system.model.setRespond(({ index }) => ({ kind: 'stream', chunks: wordChunks(ANSWERS[index % ANSWERS.length] ?? ''), delayMs: 5 }));
  const { page, context } = await openPage(browser, system.baseUrl);
  await startChat(page, 'Ada');
  await send(page, 'Hi! What can you do?');
  await waitStatus(page, 0, 'done');
  await send(page, 'How do I read a JSON file in TypeScript?');
  await waitStatus(page, 1, 'done');
  token = (await page.evaluate(() => localStorage.getItem('parley.token'))) ?? '';
  await context.close();
  await preparePerson();
});

/** A person with a few conversations, one of them with an edited question whose answer was regenerated. */
async function preparePerson(): Promise<void> {
  let regenerations = 0;
  system.model.setRespond(({ messages }) => {
    const question = messages.filter((message) => message.role === 'user').at(-1)?.content ?? '';
    const answer = question === 'Suggest a name for a grey cat' && regenerations++ > 0 ? REGENERATED : (PERSON_ANSWERS[question] ?? 'Of course.');
    return { kind: 'stream', chunks: wordChunks(answer), delayMs: 5 };
  });
  const { page, context } = await openPage(browser, system.baseUrl);
  await signUp(page, uniqueName('Ada'));
  const open = () => page.evaluate(() => localStorage.getItem('parley.conversation') ?? '');
  for (const question of ['Suggest a name for a ginger cat', 'Sourdough starter schedule', 'Plan a weekend in Lisbon']) await startConversation(page, question);
  chatConversation = await open();
  // The branch view: a question edited into a second version, its answer regenerated once.
  await page.locator('.conversation-open', { hasText: 'Suggest a name for a ginger cat' }).click();
  await waitOnline(page);
  await waitStatus(page, 0, 'done');
  await page.getByRole('button', { name: 'Edit message' }).click();
  await page.getByLabel('Edit your message').fill('Suggest a name for a grey cat');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.human-text', { hasText: 'grey cat' }).waitFor();
  await waitStatus(page, 0, 'done');
  await page.getByRole('button', { name: 'Regenerate answer' }).click();
  await page.waitForFunction((text) => document.querySelector('article.turn .bot .message-content')?.textContent?.includes(text) ?? false, 'Smokey');
  await waitStatus(page, 0, 'done');
  branchConversation = await open();
  person = await context.storageState();
  await context.close();
}

/** A browser of the signed-in person, with `conversation` open. */
async function personPage(viewport: { width: number; height: number }, colorScheme: 'light' | 'dark', conversation: string): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext({ viewport, colorScheme, storageState: person });
  await context.addInitScript((id) => localStorage.setItem('parley.conversation', id), conversation);
  const page = await context.newPage();
  await page.goto(system.baseUrl);
  await waitOnline(page);
  await waitStatus(page, 0, 'done');
  return { page, context };
}

async function shoot(page: Page, name: string): Promise<void> {
  await assertNoHorizontalScroll(page);
  const path = `${OUT}${name}.png`;
  await page.screenshot({ path });
  assertSmall(path);
}

after(async () => {
  await browser?.close();
  await system?.stop();
});

describe('screenshots', () => {
  for (const [device, viewport] of Object.entries(DEVICES)) {
    for (const colorScheme of ['light', 'dark'] as const) {
      it(`sign-in screen, ${device}, ${colorScheme}`, async () => {
        const { page, context, errors } = await openPage(browser, system.baseUrl, { viewport, colorScheme });
        await page.getByRole('button', { name: 'Start chatting' }).waitFor();
        await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
        await shoot(page, `signin-${device}-${colorScheme}`);
        assert.deepEqual(errors, []);
        await context.close();
      });

      it(`sidebar with the person's conversations, ${device}, ${colorScheme}`, async () => {
        const { page, context } = await personPage(viewport, colorScheme, chatConversation);
        if (device === 'phone') await page.getByRole('button', { name: 'Conversations' }).click();
        await page.locator('.conversation-title', { hasText: 'Plan a weekend in Lisbon' }).waitFor();
        await page.waitForFunction(() => document.querySelectorAll('.conversation-item').length === 3);
        // Wait for the slide-in to end: a screenshot mid-transition would catch it half way.
        await page.locator('#sidebar').evaluate((element) => Promise.all(element.getAnimations().map((animation) => animation.finished)));
        assert.equal(await page.locator('#sidebar').isVisible(), true);
        await shoot(page, `sidebar-${device}-${colorScheme}`);
        await context.close();
      });

      it(`a turn with versions (‹ 3/3 ›), ${device}, ${colorScheme}`, async () => {
        const { page, context } = await personPage(viewport, colorScheme, branchConversation);
        // The ginger cat, the grey cat (an edit), and the grey cat answered again (a regenerate).
        await page.locator('.versions-count', { hasText: '3/3' }).waitFor();
        await page.getByRole('button', { name: 'Regenerate answer' }).waitFor();
        await page.getByRole('button', { name: 'Edit message' }).focus();
        await shoot(page, `branches-${device}-${colorScheme}`);
        await context.close();
      });

      it(`chat with a code block, ${device}, ${colorScheme}`, async () => {
        const context = await browser.newContext({ viewport, colorScheme });
        await context.addInitScript((saved) => localStorage.setItem('parley.token', saved), token);
        const page = await context.newPage();
        await page.goto(system.baseUrl);
        await waitOnline(page);
        await waitStatus(page, 1, 'done');
        await page.locator('.code-block .hljs-keyword').first().waitFor();
        await page.getByLabel('Message', { exact: true }).fill('Thanks! And writing one?');
        await assertNoHorizontalScroll(page);
        const path = `${OUT}chat-${device}-${colorScheme}.png`;
        await page.screenshot({ path });
        assertSmall(path);
        await context.close();
      });
    }
  }
});

async function assertNoHorizontalScroll(page: Page): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px`);
}

function assertSmall(path: string): void {
  const size = statSync(path).size;
  assert.ok(size < 250_000, `${path} is ${size} bytes`);
}
