import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChatTurn } from '../../../src/providers/provider.js';
import { fitHistory, TURN_OVERHEAD_TOKENS } from '../../../src/worker/history-window.js';

// One token per word keeps the arithmetic readable.
const words = (text: string): number => text.split(/\s+/).filter((word) => word !== '').length;
const cost = (text: string): number => words(text) + TURN_OVERHEAD_TOKENS;

const system: ChatTurn = { role: 'system', content: 'be brief' };
const u = (content: string): ChatTurn => ({ role: 'user', content });
const a = (content: string): ChatTurn => ({ role: 'assistant', content });

const conversation: ChatTurn[] = [system, u('q1 q1'), a('a1 a1 a1'), u('q2'), a('a2 a2'), u('q3 q3 q3'), a('a3'), u('now')];

describe('fitHistory', () => {
  it('keeps everything when the budget is large', () => {
    assert.deepEqual(fitHistory(conversation, 10_000, words), conversation);
  });

  it('drops the oldest exchanges first, whole', () => {
    const fixed = cost('be brief') + cost('now');
    const newest = cost('q3 q3 q3') + cost('a3');
    const middle = cost('q2') + cost('a2 a2');
    // Room for the newest two exchanges and one token short of the third.
    const budget = fixed + newest + middle + cost('q1 q1') + cost('a1 a1 a1') - 1;
    assert.deepEqual(fitHistory(conversation, budget, words), [system, u('q2'), a('a2 a2'), u('q3 q3 q3'), a('a3'), u('now')]);
    // Room for the newest exchange and its question, not its answer: the whole exchange goes.
    assert.deepEqual(fitHistory(conversation, fixed + newest - 1, words), [system, u('now')]);
    assert.deepEqual(fitHistory(conversation, fixed + newest, words), [system, u('q3 q3 q3'), a('a3'), u('now')]);
  });

  it('never skips a large exchange to keep an older small one', () => {
    const turns = [system, u('small'), a('small'), u('x '.repeat(500)), a('big'), u('now')];
    const budget = cost('be brief') + cost('now') + cost('small') * 2 + 5;
    assert.deepEqual(fitHistory(turns, budget, words), [system, u('now')]);
  });

  it('keeps the system prompt and the last message even when they alone exceed the budget', () => {
    assert.deepEqual(fitHistory(conversation, 1, words), [system, u('now')]);
    assert.deepEqual(fitHistory([u('only')], 1, words), [u('only')]);
  });

  it('never starts the window with an assistant turn', () => {
    const turns = [system, a('hello, how can I help?'), u('q1'), a('a1'), u('now')];
    assert.deepEqual(fitHistory(turns, 10_000, words), [system, u('q1'), a('a1'), u('now')]);
    for (let budget = 0; budget < 200; budget++) {
      const window = fitHistory(turns, budget, words);
      assert.equal(window[0], system);
      assert.notEqual(window[1]?.role, 'assistant', `budget ${budget}`);
      assert.deepEqual(window.at(-1), u('now'));
    }
  });

  it('keeps a question whose answer failed together with the exchange after it', () => {
    const turns = [system, u('unanswered'), u('q2'), a('a2'), u('now')];
    const budget = cost('be brief') + cost('now') + cost('q2') + cost('a2');
    assert.deepEqual(fitHistory(turns, budget, words), [system, u('q2'), a('a2'), u('now')]);
    assert.deepEqual(fitHistory(turns, 10_000, words), turns);
  });

  it('works without a system prompt and with empty input', () => {
    assert.deepEqual(fitHistory([u('q1'), a('a1'), u('now')], cost('now'), words), [u('now')]);
    assert.deepEqual(fitHistory([], 100, words), []);
    assert.deepEqual(fitHistory([system], 100, words), [system]);
  });

  it('counts each turn once', () => {
    const seen: string[] = [];
    fitHistory(conversation, 10_000, (text) => {
      seen.push(text);
      return words(text);
    });
    assert.equal(seen.length, conversation.length);
  });
});
