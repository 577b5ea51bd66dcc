/**
 * DeltaBatcher: the first chunk goes out at once, later ones are gathered per interval or per
 * maxChars, writes never overlap, no text is lost or reordered, failures surface, and the number
 * of writes depends on the answer's duration, not its token count.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextMacrotask, setTimeout as sleep } from 'node:timers/promises';
import { DeltaBatcher } from '../../src/worker/batcher.js';

interface Recorded {
  readonly text: string;
  readonly at: number;
}

/** A flush function that records what it wrote and when, optionally taking `delayMs` per write. */
function recorder(delayMs = 0) {
  const flushes: Recorded[] = [];
  let active = 0;
  let maxActive = 0;
  const flush = async (text: string) => {
    active += 1;
    maxActive = Math.max(maxActive, active);
    flushes.push({ text, at: Date.now() });
    if (delayMs > 0) await sleep(delayMs);
    active -= 1;
  };
  return {
    flush,
    flushes,
    texts: () => flushes.map((entry) => entry.text),
    maxActive: () => maxActive,
  };
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

test('the first chunk is written at once', async () => {
  const out = recorder();
  const batcher = new DeltaBatcher(out.flush, 10_000, 1000);
  batcher.push('Hello');
  await nextMacrotask();
  assert.deepEqual(out.texts(), ['Hello']);
  assert.equal(await batcher.finish(), '');
});

test('empty chunks are ignored', async () => {
  const out = recorder();
  const batcher = new DeltaBatcher(out.flush, 10_000, 1000);
  batcher.push('');
  batcher.push('');
  await nextMacrotask();
  assert.deepEqual(out.texts(), []);
  batcher.push('a');
  await nextMacrotask();
  assert.deepEqual(out.texts(), ['a']);
  assert.equal(await batcher.finish(), '');
});

test('chunks within one interval are gathered into one write at the end of the interval', async () => {
  const out = recorder();
  const interval = 250;
  const batcher = new DeltaBatcher(out.flush, interval, 1000);
  batcher.push('a');
  await nextMacrotask();
  batcher.push('b');
  await sleep(20);
  batcher.push('c');
  batcher.push('d');
  await sleep(30);
  assert.deepEqual(out.texts(), ['a'], 'nothing more before the interval has passed');
  await waitFor(() => out.flushes.length === 2);
  assert.deepEqual(out.texts(), ['a', 'bcd']);
  const [first, second] = out.flushes;
  assert.ok(first && second);
  const gap = second.at - first.at;
  assert.ok(gap >= interval - 5 && gap < interval + 400, `second write ${gap} ms after the first`);
  assert.equal(await batcher.finish(), '');
});

test('maxChars forces a write before the interval is over', async () => {
  const out = recorder();
  const batcher = new DeltaBatcher(out.flush, 10_000, 10);
  batcher.push('a');
  await nextMacrotask();
  batcher.push('12345');
  await nextMacrotask();
  assert.deepEqual(out.texts(), ['a']);
  batcher.push('6789');
  await nextMacrotask();
  assert.deepEqual(out.texts(), ['a'], '9 characters: still below maxChars');
  batcher.push('0xyz');
  await nextMacrotask();
  assert.deepEqual(out.texts(), ['a', '1234567890xyz']);
  batcher.push('rest');
  assert.equal(await batcher.finish(), 'rest');
  assert.equal(out.texts().join('') + 'rest', 'a1234567890xyzrest');
});

test('writes never overlap, even when each is slower than the interval', async () => {
  const out = recorder(25);
  const batcher = new DeltaBatcher(out.flush, 1, 1);
  let sent = '';
  for (let i = 0; i < 60; i += 1) {
    const chunk = `<${i}>`;
    sent += chunk;
    batcher.push(chunk);
    if (i % 5 === 0) await sleep(3);
  }
  const rest = await batcher.finish();
  assert.equal(out.maxActive(), 1, 'at most one write in flight');
  assert.equal(out.texts().join('') + rest, sent, 'all text, in order');
  assert.ok(out.flushes.length < 60, `slow writes gather the chunks that wait (${out.flushes.length} writes)`);
  for (let i = 1; i < out.flushes.length; i += 1) {
    const previous = out.flushes[i - 1];
    const current = out.flushes[i];
    assert.ok(previous && current && current.at - previous.at >= 20, 'each write starts after the previous one ended');
  }
});

test('drain waits for the write in flight and returns exactly what was never written', async () => {
  const out = recorder(40);
  const batcher = new DeltaBatcher(out.flush, 50, 1000);
  batcher.push('first ');
  await nextMacrotask();
  batcher.push('second ');
  batcher.push('third');
  const rest = await batcher.finish();
  assert.deepEqual(out.texts(), ['first ']);
  assert.equal(rest, 'second third');
  assert.equal(out.maxActive(), 1);
  // The pending timer was cancelled: nothing is written after drain.
  await sleep(120);
  assert.deepEqual(out.texts(), ['first ']);
});

test('text is preserved exactly and in order across many writes and the final drain', async () => {
  const out = recorder(2);
  const batcher = new DeltaBatcher(out.flush, 5, 40);
  const chunks: string[] = [];
  for (let i = 0; i < 400; i += 1) chunks.push(i % 7 === 0 ? `é${i}\n` : i % 11 === 0 ? '👍🏽' : ` w${i}`);
  for (const [index, chunk] of chunks.entries()) {
    batcher.push(chunk);
    if (index % 20 === 0) await sleep(1);
  }
  const rest = await batcher.finish();
  assert.ok(out.flushes.length > 1);
  assert.ok(
    out.texts().every((text) => text !== ''),
    'no empty writes',
  );
  assert.equal(out.texts().join('') + rest, chunks.join(''));
});

test('a failing write surfaces on the next push and on drain, and nothing more is written', async () => {
  const failure = new Error('redis went away');
  const written: string[] = [];
  const batcher = new DeltaBatcher(
    async (text) => {
      written.push(text);
      throw failure;
    },
    10,
    1000,
  );
  batcher.push('a');
  await sleep(5);
  assert.throws(() => batcher.push('b'), failure);
  await assert.rejects(batcher.finish(), failure);
  await sleep(30);
  assert.deepEqual(written, ['a']);
});

test('a write failing while drain waits for it makes drain fail', async () => {
  const failure = new Error('timeout');
  const batcher = new DeltaBatcher(
    async () => {
      await sleep(20);
      throw failure;
    },
    10,
    1000,
  );
  batcher.push('a');
  batcher.push('b');
  // The first write starts at the end of this event-loop turn; drain then waits for it.
  await new Promise((resolve) => setImmediate(resolve));
  await assert.rejects(batcher.finish(), failure);
});

test('an answer complete within one event-loop turn is left whole to the final commit', async () => {
  const out = recorder();
  const batcher = new DeltaBatcher(out.flush, 50, 1000);
  for (const chunk of ['Once ', 'upon ', 'a ', 'time']) batcher.push(chunk);
  assert.equal(await batcher.finish(), 'Once upon a time');
  assert.deepEqual(out.texts(), []);
});

test('the number of writes depends on the duration, not on the number of chunks', async () => {
  const out = recorder(1);
  const interval = 50;
  const batcher = new DeltaBatcher(out.flush, interval, 1_000_000);
  let sent = '';
  const started = Date.now();
  for (let i = 0; i < 1000; i += 1) {
    const chunk = `${i % 10}`;
    sent += chunk;
    batcher.push(chunk);
    if (i % 5 === 4) await sleep(1); // 1000 tiny chunks spread over about 200 ms
  }
  const duration = Date.now() - started;
  const rest = await batcher.finish();
  assert.equal(out.texts().join('') + rest, sent);
  const expected = Math.ceil(duration / interval) + 1;
  assert.ok(out.flushes.length >= 2, `${out.flushes.length} writes`);
  assert.ok(
    out.flushes.length <= Math.max(10, expected + 2),
    `${out.flushes.length} writes for 1000 chunks over ${duration} ms (interval ${interval} ms)`,
  );
  for (let i = 2; i < out.flushes.length; i += 1) {
    const previous = out.flushes[i - 1];
    const current = out.flushes[i];
    assert.ok(previous && current && current.at - previous.at >= interval - 5, 'writes are at least an interval apart');
  }
});
