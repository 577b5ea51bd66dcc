/** Titles from the first message: short, cut at a word, white space folded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { autoTitle, parseCursor } from '../../src/store/conversation-store.js';

test('a short first message is its own title, white space folded', () => {
  assert.equal(autoTitle('  Hello,\n\n  world\t!  '), 'Hello, world !');
  assert.equal(autoTitle('x'.repeat(60)), 'x'.repeat(60));
});

test('a long one is cut at the last word that fits in 60 characters', () => {
  const text = 'What is a good name for a cat that likes to sit on keyboards all day long?';
  assert.equal(autoTitle(text), 'What is a good name for a cat that likes to sit on keyboards…');
  assert.equal(autoTitle(`${'word '.repeat(11)}supercalifragilistic`), `${'word '.repeat(11).trimEnd()}…`);
});

test('a first word longer than the limit is cut inside it; characters are code points, not halves of an emoji', () => {
  assert.equal(autoTitle('a'.repeat(100)), `${'a'.repeat(60)}…`);
  const emoji = '😀'.repeat(70);
  assert.equal(autoTitle(emoji), `${'😀'.repeat(60)}…`);
});

test('cursors: only what the list wrote is read back', () => {
  const id = '0b5c7a39-1c1d-4e5f-8a9b-0c1d2e3f4a5b';
  assert.deepEqual(parseCursor(`1700000000000:${id}`), { score: 1_700_000_000_000, id });
  for (const bad of ['', ':', `x:${id}`, `1:${id.toUpperCase()}`, `-1:${id}`, `99999999999999999:${id}`, '1:../../etc', `1:${id}:x`, '1e3:x']) {
    assert.equal(parseCursor(bad), undefined, bad);
  }
});
