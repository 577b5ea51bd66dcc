/**
 * The OpenAI-compatible provider against the fake server (test/support/fake-openai-server.ts):
 * streaming, request shape, retries, timeouts, cuts, abort and SSE parsing at awkward boundaries.
 * Timeouts and backoffs are tiny so every test takes well under two seconds.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { ModelConfig } from '../../src/config/config.js';
import { ErrorCodes, ModelError } from '../../src/contracts/errors.js';
import { MODEL_NOT_CONFIGURED_MESSAGE, UnavailableProvider } from '../../src/providers/unavailable.js';
import { parseRetryAfter } from '../../src/providers/openai/http.js';
import { OpenAICompatibleProvider, type OpenAIProviderOptions } from '../../src/providers/openai/openai-provider.js';
import { estimateTokens } from '../../src/providers/token-estimate.js';
import type { ChatTurn, ModelProvider } from '../../src/providers/provider.js';
import { echoAnswer, sseChunk, SSE_DONE, startFakeOpenAI, wordChunks, type FakeOpenAI } from '../support/fake-openai-server.js';

const API_KEY = 'sk-test-0123456789abcdef';

function modelConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    provider: 'openai',
    baseUrl: 'http://127.0.0.1:9/v1',
    apiKey: API_KEY,
    model: 'fake-echo',
    systemPrompt: 'You are a test.',
    maxTokens: 64,
    temperature: 0.5,
    topP: 0.9,
    stop: [],
    historyTokens: 1000,
    firstTokenTimeoutMs: 1000,
    idleTimeoutMs: 1000,
    totalTimeoutMs: 5000,
    maxRetries: 2,
    modelPath: undefined,
    modelUri: 'unused',
    modelSha256: undefined,
    modelsDir: 'models',
    contextSize: 1024,
    parallel: 1,
    threads: undefined,
    gpu: 'cpu',
    hfEndpoint: 'https://huggingface.co',
    ...overrides,
  };
}

const FAST: OpenAIProviderOptions = { retryBaseMs: 5, retryMaxMs: 20, probeModels: false };

const TURNS: ChatTurn[] = [
  { role: 'system', content: 'You are a test.' },
  { role: 'user', content: 'Hi' },
  { role: 'assistant', content: 'Hello! Bot: not a prefix' },
  { role: 'user', content: 'héllo wörld 👋' },
];

interface Outcome {
  chunks: string[];
  text: string;
  error: unknown;
  ms: number;
}

async function run(provider: ModelProvider, options: { turns?: ChatTurn[]; signal?: AbortSignal; onChunk?: (chunk: string, index: number) => void } = {}): Promise<Outcome> {
  const chunks: string[] = [];
  const started = Date.now();
  let error: unknown;
  try {
    for await (const chunk of provider.generate({ turns: options.turns ?? TURNS, signal: options.signal ?? new AbortController().signal })) {
      chunks.push(chunk);
      options.onChunk?.(chunk, chunks.length - 1);
    }
  } catch (caught) {
    error = caught;
  }
  return { chunks, text: chunks.join(''), error, ms: Date.now() - started };
}

function assertModelError(error: unknown, code: string, message?: RegExp): asserts error is ModelError {
  assert.ok(error instanceof ModelError, `expected a ModelError, got ${String(error)}`);
  assert.equal(error.code, code, error.message);
  if (message !== undefined) assert.match(error.message, message);
  assert.ok(!error.message.includes(API_KEY), 'the API key must never appear in a message');
}

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

describe('OpenAICompatibleProvider', () => {
  let fake: FakeOpenAI;
  const provider = (overrides: Partial<ModelConfig> = {}, options: OpenAIProviderOptions = FAST) =>
    new OpenAICompatibleProvider(modelConfig({ baseUrl: fake.url, ...overrides }), pino({ level: 'silent' }), options);

  before(async () => {
    fake = await startFakeOpenAI();
  });
  after(async () => {
    await fake.close();
  });
  const reset = (respond?: Parameters<FakeOpenAI['setRespond']>[0]) => {
    fake.requests.length = 0;
    fake.setRespond(respond ?? (({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)) })));
  };

  test('streams the answer in chunks that join to the exact text', async () => {
    reset();
    const outcome = await run(provider());
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, 'Echo #2: héllo wörld 👋');
    assert.ok(outcome.chunks.length > 1, 'more than one chunk');
    assert.ok(outcome.chunks.every((chunk) => chunk !== ''), 'role-only and empty deltas are not yielded');
  });

  test('sends role-tagged messages, the bearer key and the sampling settings', async () => {
    reset();
    await run(provider({ stop: ['\nUser:'] }));
    const [request] = fake.requests;
    assert.ok(request !== undefined);
    assert.deepEqual(request.messages, TURNS);
    assert.equal(request.headers.authorization, `Bearer ${API_KEY}`);
    assert.deepEqual(request.body, {
      model: 'fake-echo',
      messages: TURNS,
      stream: true,
      max_tokens: 64,
      temperature: 0.5,
      top_p: 0.9,
      stop: ['\nUser:'],
    });

    reset();
    await run(provider({ stop: [], apiKey: undefined, model: undefined }));
    const [plain] = fake.requests;
    assert.ok(plain !== undefined);
    assert.equal(plain.headers.authorization, undefined, 'no Authorization without a key');
    assert.ok(!('stop' in (plain.body as object)), 'no stop when the list is empty');
    assert.ok(!('model' in (plain.body as object)), 'no model when none is configured');
  });

  test('401 → model_auth, not retried, key not echoed', async () => {
    reset(() => ({ kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${API_KEY}`, type: 'invalid_request_error' } } }));
    const outcome = await run(provider());
    assertModelError(outcome.error, ErrorCodes.modelAuth, /HTTP 401.*Incorrect API key provided: \[redacted\]/);
    assert.equal(outcome.error.retryable, false);
    assert.equal(fake.requests.length, 1);
  });

  test('429 with Retry-After → waits about that long, then succeeds', async () => {
    reset(({ index, messages }) =>
      index === 0
        ? { kind: 'error', status: 429, headers: { 'retry-after': '1' }, body: { error: { message: 'Rate limit reached' } } }
        : { kind: 'stream', chunks: wordChunks(echoAnswer(messages)) },
    );
    const outcome = await run(provider());
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, 'Echo #2: héllo wörld 👋');
    const [first, second] = fake.requests;
    assert.ok(first !== undefined && second !== undefined);
    const waited = second.receivedAt - first.receivedAt;
    assert.ok(waited >= 950 && waited < 1600, `waited ${waited} ms for Retry-After: 1`);
  });

  test('429 whose Retry-After exceeds the total budget → model_rate_limited at once, with retryAfterMs', async () => {
    reset(() => ({ kind: 'error', status: 429, headers: { 'retry-after': '120' } }));
    const outcome = await run(provider());
    assertModelError(outcome.error, ErrorCodes.modelRateLimited);
    assert.equal(outcome.error.retryAfterMs, 120_000);
    assert.equal(fake.requests.length, 1);
    assert.ok(outcome.ms < 500);
  });

  test('500 twice, then success', async () => {
    reset(({ index, messages }) => (index < 2 ? { kind: 'error', status: 500 } : { kind: 'stream', chunks: wordChunks(echoAnswer(messages)) }));
    const outcome = await run(provider());
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, 'Echo #2: héllo wörld 👋');
    assert.equal(fake.requests.length, 3);
  });

  test('HF 503 "model is loading" is retried', async () => {
    reset(({ index }) =>
      index === 0 ? { kind: 'error', status: 503, body: { error: 'Model x is currently loading', estimated_time: 0.05 } } : { kind: 'stream', chunks: ['ok'] },
    );
    const outcome = await run(provider());
    assert.equal(outcome.text, 'ok');
    assert.equal(fake.requests.length, 2);
  });

  test('500 forever → model_unavailable after maxRetries + 1 attempts', async () => {
    reset(() => ({ kind: 'error', status: 500, body: { error: { message: 'upstream exploded' } } }));
    const outcome = await run(provider({ maxRetries: 2 }));
    assertModelError(outcome.error, ErrorCodes.modelUnavailable, /HTTP 500\): upstream exploded \(gave up after 3 attempts\)/);
    assert.equal(fake.requests.length, 3);
  });

  test('400 context length → model_context_overflow; other 4xx → model_failed with the server message', async () => {
    reset(() => ({
      kind: 'error',
      status: 400,
      body: { error: { message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.", code: 'context_length_exceeded' } },
    }));
    assertModelError((await run(provider())).error, ErrorCodes.modelContextOverflow, /maximum context length/);
    assert.equal(fake.requests.length, 1);

    reset(() => ({ kind: 'error', status: 404, body: { error: { message: `The model 'nope' does not exist ${'x'.repeat(2000)}` } } }));
    const outcome = await run(provider());
    assertModelError(outcome.error, ErrorCodes.modelFailed, /HTTP 404\): The model 'nope' does not exist/);
    assert.ok(outcome.error.message.length < 500, 'server text is truncated');
    assert.equal(fake.requests.length, 1);
  });

  test('stream cut mid-answer → model_failed, chunks so far delivered, no retry', async () => {
    reset(() => ({ kind: 'stream', chunks: ['one ', 'two ', 'three ', 'four'], cutAfter: 2 }));
    const outcome = await run(provider());
    assertModelError(outcome.error, ErrorCodes.modelFailed, /the model stream ended before the answer was complete/i);
    assert.equal(outcome.text, 'one two ');
    assert.equal(outcome.error.retryable, false, 'text already went out');
    assert.equal(fake.requests.length, 1);
  });

  test('stream ended without [DONE] and without finish_reason → model_failed; with finish_reason it is complete', async () => {
    reset(() => ({ kind: 'stream', chunks: ['half ', 'an answer'], finishReason: null, done: false }));
    const cut = await run(provider());
    assertModelError(cut.error, ErrorCodes.modelFailed, /ended before the answer was complete/);
    assert.equal(fake.requests.length, 1);

    reset(() => ({ kind: 'stream', chunks: ['whole ', 'answer'], done: false }));
    const whole = await run(provider());
    assert.equal(whole.error, undefined);
    assert.equal(whole.text, 'whole answer');
  });

  test('no first token within firstTokenTimeoutMs → model_timeout, not retried', async () => {
    reset(() => ({ kind: 'stream', chunks: ['late'], firstDelayMs: 1500 }));
    const outcome = await run(provider({ firstTokenTimeoutMs: 150 }));
    assertModelError(outcome.error, ErrorCodes.modelTimeout, /no answer within 150 ms/);
    assert.ok(outcome.ms >= 140 && outcome.ms < 600, `took ${outcome.ms} ms`);
    assert.equal(fake.requests.length, 1);
  });

  test('first-token timeout also covers a server that never sends headers', async () => {
    reset(() => ({ kind: 'hang' }));
    const outcome = await run(provider({ firstTokenTimeoutMs: 150 }));
    assertModelError(outcome.error, ErrorCodes.modelTimeout);
    assert.ok(outcome.ms < 600, `took ${outcome.ms} ms`);
  });

  test('a pause between chunks beyond idleTimeoutMs → model_timeout', async () => {
    reset(() => ({ kind: 'stream', chunks: ['a ', 'b ', 'c'], delayMs: 600 }));
    const outcome = await run(provider({ idleTimeoutMs: 150 }));
    assertModelError(outcome.error, ErrorCodes.modelTimeout, /more than 150 ms/);
    assert.equal(outcome.text, 'a ');
    assert.ok(outcome.ms < 600, `took ${outcome.ms} ms`);
    assert.equal(fake.requests.length, 1);
  });

  test('a slow consumer does not trip the idle timeout', async () => {
    reset(() => ({ kind: 'stream', chunks: ['a ', 'b ', 'c'] }));
    const p = provider({ idleTimeoutMs: 100 });
    const chunks: string[] = [];
    for await (const chunk of p.generate({ turns: TURNS, signal: new AbortController().signal })) {
      chunks.push(chunk);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(chunks.join(''), 'a b c');
  });

  test('the whole answer beyond totalTimeoutMs → model_timeout', async () => {
    reset(() => ({ kind: 'stream', chunks: Array.from({ length: 50 }, () => 'x'), delayMs: 40 }));
    const outcome = await run(provider({ totalTimeoutMs: 300 }));
    assertModelError(outcome.error, ErrorCodes.modelTimeout, /LLM_TOTAL_TIMEOUT_MS/);
    assert.ok(outcome.ms >= 290 && outcome.ms < 700, `took ${outcome.ms} ms`);
  });

  test('abort mid-stream → the iterator ends quietly and the server sees the connection closed', async () => {
    reset(() => ({ kind: 'stream', chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), delayMs: 30 }));
    const controller = new AbortController();
    const outcome = await run(provider(), { signal: controller.signal, onChunk: (_chunk, index) => index === 1 && controller.abort() });
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, 'w0 w1 ');
    assert.ok(outcome.ms < 300, `took ${outcome.ms} ms`);
    const closed = await Promise.race([fake.waitForClose(0), new Promise((resolve) => setTimeout(() => resolve('still open'), 500))]);
    assert.equal(closed, 'client_closed');
    assert.equal(fake.requests.length, 1);
  });

  test('abort while waiting for headers or during backoff ends promptly and quietly', async () => {
    reset(() => ({ kind: 'hang' }));
    const hanging = new AbortController();
    setTimeout(() => hanging.abort(), 50);
    const waiting = await run(provider(), { signal: hanging.signal });
    assert.equal(waiting.error, undefined);
    assert.ok(waiting.ms < 300, `took ${waiting.ms} ms`);
    assert.equal(await fake.waitForClose(0), 'client_closed');

    reset(() => ({ kind: 'error', status: 503, headers: { 'retry-after': '3' } }));
    const backoff = new AbortController();
    setTimeout(() => backoff.abort(), 100);
    const backingOff = await run(provider(), { signal: backoff.signal });
    assert.equal(backingOff.error, undefined);
    assert.ok(backingOff.ms < 400, `took ${backingOff.ms} ms`);
    assert.equal(fake.requests.length, 1);

    const already = new AbortController();
    already.abort();
    reset();
    assert.equal((await run(provider(), { signal: already.signal })).error, undefined);
    assert.equal(fake.requests.length, 0, 'an aborted request is never sent');
  });

  test('breaking out of the loop closes the connection', async () => {
    reset(() => ({ kind: 'stream', chunks: Array.from({ length: 40 }, (_, i) => `w${i} `), delayMs: 30 }));
    for await (const chunk of provider().generate({ turns: TURNS, signal: new AbortController().signal })) {
      assert.equal(chunk, 'w0 ');
      break;
    }
    assert.equal(await fake.waitForClose(0), 'client_closed');
  });

  test('connection refused → model_unavailable after the retries', async () => {
    const port = await closedPort();
    const p = new OpenAICompatibleProvider(modelConfig({ baseUrl: `http://127.0.0.1:${port}/v1`, maxRetries: 2 }), undefined, FAST);
    const outcome = await run(p);
    assertModelError(outcome.error, ErrorCodes.modelUnavailable, /Could not reach the language model API.*ECONNREFUSED.*after 3 attempts/);
    assert.equal(outcome.error.retryable, true);
    assert.ok(outcome.ms < 1000, `took ${outcome.ms} ms`);
  });

  test('a connection reset before any response (a stale kept-alive socket) is retried at once, not after a backoff', async () => {
    // The first connection is closed as soon as the request arrives; the second one answers.
    let connections = 0;
    const server = createServer((socket) => {
      connections += 1;
      const first = connections === 1;
      socket.once('data', () => {
        if (first) socket.destroy();
        else socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n${sseChunk({ content: 'fresh' }, 'stop')}${SSE_DONE}`);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    try {
      const slow: OpenAIProviderOptions = { retryBaseMs: 2000, retryMaxMs: 2000, probeModels: false };
      const p = new OpenAICompatibleProvider(modelConfig({ baseUrl: `http://127.0.0.1:${address.port}/v1` }), undefined, slow);
      const outcome = await run(p);
      assert.equal(outcome.error, undefined);
      assert.equal(outcome.text, 'fresh');
      assert.equal(connections, 2);
      assert.ok(outcome.ms < 1000, `took ${outcome.ms} ms: the retry waited for the backoff`);
      await p.close();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test('SSE one byte per write, with a multi-byte emoji split across writes → exact text', async () => {
    const answer = ['Ça ', 'va ', '👋🏽 ', '日本語 ', 'ok'];
    reset(() => ({ kind: 'stream', chunks: answer, splitBytes: 1 }));
    const outcome = await run(provider());
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, answer.join(''));
  });

  test('SSE with \\r\\n, comments, keep-alives, several events per write and events split across writes', async () => {
    const crlf = (event: string) => event.replace(/\n/g, '\r\n');
    const stream =
      ': keep-alive\r\n\r\n' +
      crlf(sseChunk({ role: 'assistant' })) +
      crlf(sseChunk({ content: 'Hel' })) +
      ': OPENROUTER PROCESSING\n\n' +
      sseChunk({ content: 'lo' }) +
      sseChunk({ content: null }) +
      sseChunk({ content: ', ' }).replace('\n\n', '\r\r') +
      'data:{"choices":[{"delta":{"content":"wor"}}]}\n\n' +
      sseChunk({ content: 'ld' }, 'stop') +
      crlf(SSE_DONE);
    // Writes that cut a "\r\n" in half, a "data:" line in half and put several events in one.
    const cuts = [3, 17, stream.indexOf('\r\n', 40) + 1, stream.indexOf('Hel') + 1, stream.length - 3];
    const writes: string[] = [];
    let from = 0;
    for (const cut of [...cuts, stream.length]) {
      writes.push(stream.slice(from, cut));
      from = cut;
    }
    reset(() => ({ kind: 'raw', writes, delayMs: 5 }));
    const outcome = await run(provider());
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.text, 'Hello, world');
  });

  test('an {"error": ...} event inside the stream → ModelError', async () => {
    reset(() => ({
      kind: 'raw',
      writes: [sseChunk({ content: 'partial ' }), `data: ${JSON.stringify({ error: { message: 'Internal inference failure', type: 'server_error' } })}\n\n`],
    }));
    const outcome = await run(provider());
    assertModelError(outcome.error, ErrorCodes.modelFailed, /reported an error: Internal inference failure/);
    assert.equal(outcome.text, 'partial ');
    assert.equal(fake.requests.length, 1);

    // TGI style: a plain string error before any text.
    reset(() => ({ kind: 'raw', writes: [`data: ${JSON.stringify({ error: 'Input validation error: too many tokens', error_type: 'validation' })}\n\n`] }));
    assertModelError((await run(provider())).error, ErrorCodes.modelContextOverflow);
  });

  test('an event that is not JSON → model_failed', async () => {
    reset(() => ({ kind: 'raw', writes: ['data: <html>oops</html>\n\n'] }));
    assertModelError((await run(provider())).error, ErrorCodes.modelFailed, /unusable/);
  });

  test('a server that ignores stream:true and answers JSON still works', async () => {
    const completion = { choices: [{ index: 0, message: { role: 'assistant', content: 'whole at once' }, finish_reason: 'stop' }] };
    reset(() => ({ kind: 'raw', contentType: 'application/json', writes: [JSON.stringify(completion)] }));
    const outcome = await run(provider());
    assert.equal(outcome.text, 'whole at once');
  });

  test('close() aborts a generation in flight with shutting_down', async () => {
    reset(() => ({ kind: 'stream', chunks: ['a ', 'b ', 'c'], delayMs: 200 }));
    const p = provider();
    const outcome = await run(p, { onChunk: () => void p.close() });
    assertModelError(outcome.error, ErrorCodes.shuttingDown);
    assert.equal(outcome.text, 'a ');
  });

  test('start() needs no network, name and countTokens follow the documented rules', async () => {
    const port = await closedPort();
    const warnings: string[] = [];
    const logger = { info() {}, error() {}, warn: (_details: object, message: string) => void warnings.push(message) };
    const p = new OpenAICompatibleProvider(modelConfig({ baseUrl: `http://127.0.0.1:${port}/v1` }), logger, { probeModels: true });
    await p.start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.ok(warnings.some((message) => message.includes('not reachable')), 'the probe only warns');
    await p.close();

    await assert.rejects(new OpenAICompatibleProvider(modelConfig({ baseUrl: undefined })).start(), (error) => {
      assertModelError(error, ErrorCodes.modelNotConfigured, /LLM_BASE_URL/);
      return true;
    });
    assert.equal(provider().name, 'openai:fake-echo');
    assert.equal(provider({ model: undefined }).name, 'openai:default');
    assert.equal(estimateTokens(''), 0);
    assert.equal(estimateTokens('abcd'), 1);
    assert.equal(estimateTokens('abcde'), 2);
    assert.equal(estimateTokens('日本語'), 3);
    // A code point outside the BMP (a surrogate pair) is one token; lone surrogates count one each.
    assert.equal(estimateTokens('hi 👋'), 2);
    assert.equal(estimateTokens('\ud800'), 1);
    assert.equal(estimateTokens('\udc00\ud800x'), 3);
    assert.equal(provider().countTokens('hello world!'), 3);
  });

  test('parseRetryAfter reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('2', now), 2000);
    assert.equal(parseRetryAfter('0.5', now), 500);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now), 3000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });
});

describe('UnavailableProvider', () => {
  test('generate fails with model_not_configured; start resolves; tokens are estimated', async () => {
    const provider = UnavailableProvider.notConfigured();
    await provider.start();
    const outcome = await run(provider);
    assertModelError(outcome.error, ErrorCodes.modelNotConfigured);
    assert.equal(outcome.error.message, MODEL_NOT_CONFIGURED_MESSAGE);
    assert.equal(outcome.chunks.length, 0);
    assert.equal(provider.countTokens('abcdefgh'), 2);
    await provider.close();
  });
});
