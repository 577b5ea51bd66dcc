/**
 * A signed-in person's conversations and branches in real Chromium against a real gateway,
 * worker and Redis: the list (newest first, across reloads), rename, delete, search, export,
 * the phone sidebar, and regenerate/edit making versions that can be switched and survive a reload.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { echoAnswer, wordChunks, type FakeRespond } from '../test/support/fake-openai-server.js';
import { startSystem, type TestSystem } from '../test/support/system.js';
import { answerText, ensureWebBuild, launchChromium, menuAction, openPage, send, signUp, startConversation, turns, uniqueName, waitOnline, waitStatus } from './browser.js';

/** The echo model (it counts the questions it was shown), with the request number so every answer differs. */
const numberedEcho: FakeRespond = ({ messages, index }) => ({ kind: 'stream', chunks: wordChunks(`${echoAnswer(messages)} (r${index})`), delayMs: 5 });

let browser: Browser;
let system: TestSystem;

before(async () => {
  ensureWebBuild();
  browser = await launchChromium();
  system = await startSystem();
  system.model.setRespond(numberedEcho);
});

after(async () => {
  await browser?.close();
  await system?.stop();
});

async function waitTitles(page: Page, expected: readonly string[]): Promise<void> {
  await page.waitForFunction(
    (wanted) => JSON.stringify([...document.querySelectorAll('.conversation-title')].map((element) => (element as HTMLElement).innerText)) === wanted,
    JSON.stringify(expected),
    { timeout: 10_000 },
  );
}

async function itemAction(page: Page, title: string, action: string): Promise<void> {
  await menuAction(page, `Actions for ${title}`, action);
}

/** "2/3" of turn `index`, or undefined when the turn has one version. */
async function versionOf(page: Page, index: number): Promise<string | undefined> {
  const counter = turns(page).nth(index).locator('.versions-count');
  return (await counter.count()) === 0 ? undefined : (await counter.innerText()).replace(/^Version\s*/, '');
}

describe('conversations in the browser', () => {
  it('a conversation starts with its first message, is titled from it, listed newest first, and reopened after a reload', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, uniqueName('ada'));
    assert.equal(await page.locator('.sidebar-empty').innerText(), 'Your conversations will be listed here.');
    await startConversation(page, 'Plan a trip to Lisbon in May');
    await waitTitles(page, ['Plan a trip to Lisbon in May']);
    await startConversation(page, 'How do I bake sourdough bread?');
    await waitTitles(page, ['How do I bake sourdough bread?', 'Plan a trip to Lisbon in May']);
    assert.equal(await page.locator('.session-name').innerText(), 'How do I bake sourdough bread?');
    await page.reload();
    await waitTitles(page, ['How do I bake sourdough bread?', 'Plan a trip to Lisbon in May']);
    await waitStatus(page, 0, 'done');
    assert.equal(await page.locator('.human-text').innerText(), 'How do I bake sourdough bread?', 'the open conversation is open again');
    // Opening the older one shows its history; a new message moves it to the top.
    await page.locator('.conversation-open', { hasText: 'Plan a trip to Lisbon' }).click();
    await page.locator('.human-text', { hasText: 'Plan a trip to Lisbon in May' }).waitFor();
    await waitOnline(page);
    await send(page, 'And in June?');
    await waitStatus(page, 1, 'done');
    await waitTitles(page, ['Plan a trip to Lisbon in May', 'How do I bake sourdough bread?']);
    assert.equal(await page.locator('[aria-current="page"] .conversation-title').innerText(), 'Plan a trip to Lisbon in May');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('rename in place (Escape keeps, Enter saves), search by title and text, delete after confirming', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, uniqueName('grace'));
    await startConversation(page, 'Lisbon trip ideas');
    await startConversation(page, 'Bread recipe');
    await waitTitles(page, ['Bread recipe', 'Lisbon trip ideas']);

    await itemAction(page, 'Lisbon trip ideas', 'Rename');
    const field = page.getByLabel('Conversation title');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Conversation title', 'the field has the focus');
    await field.fill('Something else');
    await field.press('Escape');
    await waitTitles(page, ['Bread recipe', 'Lisbon trip ideas']);
    await itemAction(page, 'Lisbon trip ideas', 'Rename');
    await field.fill('Holidays 2026');
    await field.press('Enter');
    await waitTitles(page, ['Bread recipe', 'Holidays 2026']);
    await page.reload();
    await waitTitles(page, ['Bread recipe', 'Holidays 2026']);

    const search = page.getByLabel('Search conversations');
    await search.fill('HOLIDAYS');
    await waitTitles(page, ['Holidays 2026']);
    await search.fill('lisbon');
    await waitTitles(page, ['Holidays 2026']);
    await search.fill('no such words');
    await page.getByText('No conversation matches “no such words”.').waitFor();
    await search.press('Escape');
    await waitTitles(page, ['Bread recipe', 'Holidays 2026']);

    await itemAction(page, 'Bread recipe', 'Delete…');
    const dialog = page.getByRole('dialog', { name: 'Delete this conversation?' });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'the safe choice has the focus');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await waitTitles(page, ['Bread recipe', 'Holidays 2026']);
    await itemAction(page, 'Bread recipe', 'Delete…');
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await waitTitles(page, ['Holidays 2026']);
    // It was the open one: a new conversation takes its place.
    await page.locator('.session-name', { hasText: 'New conversation' }).waitFor();
    await page.reload();
    await waitTitles(page, ['Holidays 2026']);
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('exports a conversation as Markdown and JSON', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, uniqueName('linus'));
    await startConversation(page, 'Export me please');
    await waitTitles(page, ['Export me please']);
    for (const [item, pattern] of [
      ['Export Markdown', /Export me please/],
      ['Export JSON', /"Export me please"/],
    ] as const) {
      const download = page.waitForEvent('download');
      await itemAction(page, 'Export me please', item);
      const file = await download;
      const path = await file.path();
      assert.match(await readFile(path, 'utf8'), pattern);
    }
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('a new conversation that cannot be created keeps its first message for another try', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, uniqueName('retry'));
    // The network between browser and gateway fails once (the gateway itself is real).
    let failures = 0;
    await page.route('**/api/v1/conversations', async (route) => {
      if (route.request().method() !== 'POST' || failures > 0) return route.fallback();
      failures += 1;
      return route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ detail: 'Service unavailable', code: 'unavailable' }) });
    });
    await page.getByRole('button', { name: 'New conversation' }).click();
    await send(page, 'Keep me if it fails');
    await page.getByText(/The conversation could not be started/).waitFor();
    assert.equal(await page.locator('#composer-input').inputValue(), 'Keep me if it fails');
    await page.getByRole('button', { name: 'Send message' }).click();
    await waitOnline(page);
    await waitStatus(page, 0, 'done');
    assert.match(await answerText(page, 0), /Keep me if it fails/);
    assert.equal(failures, 1);
    assert.deepEqual(errors.filter((error) => !error.includes('503')), []);
    await context.close();
  });

  it('on a phone the list is behind a button; choosing a conversation closes it, so does Escape', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl, { viewport: { width: 360, height: 740 } });
    await signUp(page, uniqueName('pip'));
    const toggle = page.getByRole('button', { name: 'Conversations' });
    await toggle.click();
    await startConversation(page, 'First on the phone');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false', 'closed after choosing');
    // The list slides away (a 180 ms transition): wait for it to end rather than race it.
    await page.locator('#sidebar').waitFor({ state: 'hidden' });
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await page.getByRole('button', { name: 'New conversation' }).waitFor();
    await page.keyboard.press('Escape');
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Conversations', 'the focus returns to the button');
    await toggle.click();
    await page.locator('.conversation-open', { hasText: 'First on the phone' }).click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
    assert.deepEqual(errors, []);
    await context.close();
  });
});

describe('branches in the browser', () => {
  it('regenerate and edit make versions; ‹ › switches; the model sees only the branch shown; a reload keeps it', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await signUp(page, uniqueName('hedy'));
    await startConversation(page, 'first');
    await send(page, 'second');
    await waitStatus(page, 1, 'done');
    const original = await answerText(page, 1);
    assert.match(original, /^Echo #2: second/);
    assert.equal(await versionOf(page, 1), undefined, 'one version: no switcher');

    // Regenerate the second answer: a second version of turn 2, answered anew.
    await turns(page).nth(1).getByRole('button', { name: 'Regenerate answer' }).click();
    await page.waitForFunction(() => document.querySelectorAll('article.turn')[1]?.querySelector('.versions-count')?.textContent?.includes('2/2') ?? false);
    await waitStatus(page, 1, 'done');
    const regenerated = await answerText(page, 1);
    assert.match(regenerated, /^Echo #2: second/, 'the same question on the same branch');
    assert.notEqual(regenerated, original);
    assert.equal(await page.locator('.human-text').nth(1).innerText(), 'second');

    // Back to the first version, and forward again.
    await turns(page).nth(1).getByRole('button', { name: 'Previous version' }).click();
    await page.waitForFunction((text) => (document.querySelectorAll('article.turn')[1]?.querySelector('.bot .message-content') as HTMLElement | null)?.innerText.trim() === text, original);
    assert.equal(await versionOf(page, 1), '1/2');
    assert.equal(await turns(page).nth(1).getByRole('button', { name: 'Previous version' }).isDisabled(), true);
    await turns(page).nth(1).getByRole('button', { name: 'Next version' }).click();
    await page.waitForFunction((text) => (document.querySelectorAll('article.turn')[1]?.querySelector('.bot .message-content') as HTMLElement | null)?.innerText.trim() === text, regenerated);

    // Edit the first message: Escape keeps it, Save makes a new branch from there.
    await turns(page).nth(0).getByRole('button', { name: 'Edit message' }).click();
    const editor = page.getByLabel('Edit your message');
    await editor.fill('changed my mind');
    await editor.press('Escape');
    assert.equal(await page.locator('.human-text').first().innerText(), 'first');
    await turns(page).nth(0).getByRole('button', { name: 'Edit message' }).click();
    await editor.fill('first, edited');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForFunction(() => document.querySelectorAll('article.turn').length === 1);
    await waitStatus(page, 0, 'done');
    assert.equal(await page.locator('.human-text').innerText(), 'first, edited');
    assert.equal(await versionOf(page, 0), '2/2');
    assert.match(await answerText(page, 0), /^Echo #1: first, edited/, 'the model saw only the edited branch (one question)');
    const lastPrompt = system.model.requests.at(-1)?.messages.filter((message) => message.role === 'user').map((message) => message.content);
    assert.deepEqual(lastPrompt, ['first, edited']);

    // A reload shows the same branch.
    await page.reload();
    await waitOnline(page);
    await waitStatus(page, 0, 'done');
    assert.equal(await turns(page).count(), 1);
    assert.equal(await page.locator('.human-text').innerText(), 'first, edited');
    assert.equal(await versionOf(page, 0), '2/2');

    // The first version of turn 1 brings back its newest branch: "second", regenerated.
    await turns(page).nth(0).getByRole('button', { name: 'Previous version' }).click();
    await page.waitForFunction(() => document.querySelectorAll('article.turn').length === 2);
    assert.deepEqual(await page.locator('.human-text').allInnerTexts(), ['first', 'second']);
    assert.equal(await answerText(page, 1), regenerated);
    await page.reload();
    await waitOnline(page);
    await page.waitForFunction(() => document.querySelectorAll('article.turn').length === 2);
    assert.deepEqual(await page.locator('.human-text').allInnerTexts(), ['first', 'second']);
    assert.equal(await versionOf(page, 1), '2/2');
    assert.deepEqual(errors, []);
    await context.close();
  });

  it('a switch in one window moves the other window of the same conversation too', async () => {
    const one = await openPage(browser, system.baseUrl);
    const username = uniqueName('ida');
    await signUp(one.page, username);
    await startConversation(one.page, 'shared question');
    await one.page.getByRole('button', { name: 'Regenerate answer' }).click();
    await one.page.waitForFunction(() => document.querySelector('.versions-count')?.textContent?.includes('2/2') ?? false);
    await waitStatus(one.page, 0, 'done');
    const two = await one.context.newPage();
    await two.goto(system.baseUrl);
    await waitOnline(two);
    await waitStatus(two, 0, 'done');
    assert.equal(await versionOf(two, 0), '2/2');
    await one.page.getByRole('button', { name: 'Previous version' }).click();
    await two.waitForFunction(() => document.querySelector('.versions-count')?.textContent?.includes('1/2') ?? false, undefined, { timeout: 10_000 });
    assert.equal(await answerText(two, 0), await answerText(one.page, 0));
    assert.deepEqual(one.errors, []);
    await one.context.close();
  });

  it('the anonymous chat has branches too', async () => {
    const { page, context, errors } = await openPage(browser, system.baseUrl);
    await page.getByLabel('Your name').fill('Visitor');
    await page.getByRole('button', { name: 'Start chatting' }).click();
    await waitOnline(page);
    await send(page, 'hello');
    await waitStatus(page, 0, 'done');
    await page.getByRole('button', { name: 'Edit message' }).click();
    await page.getByLabel('Edit your message').fill('hello again');
    await page.getByLabel('Edit your message').press('Enter');
    await page.locator('.human-text', { hasText: 'hello again' }).waitFor();
    await waitStatus(page, 0, 'done');
    assert.equal(await versionOf(page, 0), '2/2');
    await page.reload();
    await waitOnline(page);
    await page.locator('.human-text', { hasText: 'hello again' }).waitFor();
    assert.equal(await versionOf(page, 0), '2/2');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
