/**
 * Produces the screenshots (start screen and a chat with a code block, light and dark, phone and
 * desktop) from the real system, and checks each view fits its screen. They go to test-results/
 * on every run; `UPDATE_SCREENSHOTS=1 npm run test:e2e` refreshes the ones in docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { wordChunks } from '../test/support/fake-openai-server.js';
import { startSystem, type TestSystem } from '../test/support/system.js';
import { ensureWebBuild, launchChromium, openPage, send, startChat, waitOnline, waitStatus } from './browser.js';

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

const DEVICES = {
  phone: { width: 360, height: 740 },
  desktop: { width: 1280, height: 800 },
} as const;

let browser: Browser;
let system: TestSystem;
let token = '';

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
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

describe('screenshots', () => {
  for (const [device, viewport] of Object.entries(DEVICES)) {
    for (const colorScheme of ['light', 'dark'] as const) {
      it(`start screen, ${device}, ${colorScheme}`, async () => {
        const { page, context, errors } = await openPage(browser, system.baseUrl, { viewport, colorScheme });
        await page.getByRole('button', { name: 'Start chatting' }).waitFor();
        await assertNoHorizontalScroll(page);
        const path = `${OUT}start-${device}-${colorScheme}.png`;
        await page.screenshot({ path });
        assertSmall(path);
        assert.deepEqual(errors, []);
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
