/**
 * The local provider against the real binding and a real (tiny) model: stories260K, a 260K-parameter
 * Llama that writes children's stories. It knows no chat format, but loading, streaming, limits,
 * stopping and concurrency run through exactly the code a real instruct model uses.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig, type ModelConfig } from '../../../src/config/config.js';
import { ErrorCodes, ModelError } from '../../../src/contracts/errors.js';
import { LocalLlamaProvider } from '../../../src/providers/local/local-provider.js';
import type { ProviderLogger } from '../../../src/providers/provider.js';
import type { ChatTurn } from '../../../src/providers/provider.js';

const MODEL_PATH = process.env.PARLEY_TEST_MODEL ?? fileURLToPath(new URL('../../../../shared/models/stories260K.gguf', import.meta.url));
const SKIP = existsSync(MODEL_PATH)
  ? false
  : `test model absent at ${MODEL_PATH} (stories260K.gguf; set PARLEY_TEST_MODEL to its path) — skipping the local model tests`;

// A pino logger is a ProviderLogger; this line fails to compile if that ever stops being true.
const _pinoFits: ProviderLogger = pino({ enabled: false });

interface LogLine {
  level: 'info' | 'warn' | 'error';
  message: string | undefined;
  details: object;
}

function recordingLogger(): ProviderLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const record = (level: LogLine['level']) => (details: object, message?: string) => lines.push({ level, message, details });
  return { lines, info: record('info'), warn: record('warn'), error: record('error') };
}

function modelConfig(env: Record<string, string>): ModelConfig {
  return loadConfig({
    LLM_MODEL_PATH: MODEL_PATH,
    LLM_CONTEXT_SIZE: '1024',
    LLM_THREADS: '1',
    LLM_TEMPERATURE: '0',
    ...env,
  }).model;
}

const story = (prompt: string): ChatTurn[] => [
  { role: 'system', content: 'You are a storyteller.' },
  { role: 'user', content: 'Tell me about a cat.' },
  { role: 'assistant', content: 'Once upon a time, there was a cat named Tom.' },
  { role: 'user', content: prompt },
];

interface Timed {
  text: string;
  chunks: number;
  times: number[];
  startedAt: number;
  endedAt: number;
}

async function collect(chunks: AsyncIterable<string>, onChunk?: (count: number) => void): Promise<Timed> {
  const startedAt = performance.now();
  const result: Timed = { text: '', chunks: 0, times: [], startedAt, endedAt: startedAt };
  for await (const chunk of chunks) {
    result.text += chunk;
    result.chunks += 1;
    result.times.push(performance.now());
    onChunk?.(result.chunks);
  }
  result.endedAt = performance.now();
  return result;
}

const never = (): AbortSignal => new AbortController().signal;

describe('LocalLlamaProvider with stories260K', { skip: SKIP }, () => {
  // Two sequences, long answers: streaming, parallelism, queueing, stop, overflow.
  let provider: LocalLlamaProvider;
  let logger: ReturnType<typeof recordingLogger>;
  let loadMs = 0;

  before(async () => {
    const sha = (await import('node:crypto')).createHash('sha256').update(readFileSync(MODEL_PATH)).digest('hex');
    assert.equal(sha, '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d', 'the test model is the one the tests were written for');
    logger = recordingLogger();
    provider = new LocalLlamaProvider(modelConfig({ LLM_PARALLEL: '2', LLM_MAX_TOKENS: '300' }), logger, { gpu: false });
    const started = performance.now();
    await provider.start();
    loadMs = performance.now() - started;
  });

  after(async () => {
    await provider?.close();
  });

  it('loads and reports model, context size, threads and load time', (t) => {
    t.diagnostic(`load time ${loadMs.toFixed(0)} ms`);
    assert.equal(provider.name, 'local:stories260K');
    const loaded = logger.lines.find((line) => line.message === 'local model loaded');
    assert.ok(loaded, 'a "local model loaded" log line');
    assert.deepEqual({ ...loaded.details, loadMs: 0 }, {
      model: 'llama',
      file: MODEL_PATH,
      contextSize: 1024,
      parallel: 2,
      threads: 1,
      gpu: false,
      chatWrapper: 'Llama2Chat',
      loadMs: 0,
    });
    assert.deepEqual(provider.stats, { sequences: 2, busy: 0, waiting: 0 });
    assert.ok(provider.countTokens('Once upon a time there was a cat.') > 4);
    assert.equal(provider.countTokens(''), 0);
  });

  it('streams an answer in several chunks', async (t) => {
    const result = await collect(provider.generate({ turns: story('Once upon a time'), signal: never() }));
    const tokens = provider.countTokens(result.text);
    const seconds = (result.endedAt - result.startedAt) / 1000;
    t.diagnostic(`${result.chunks} chunks, ${tokens} tokens in ${(seconds * 1000).toFixed(0)} ms = ${(tokens / seconds).toFixed(0)} tokens/s (threads=1)`);
    assert.ok(result.chunks >= 10, `${result.chunks} chunks`);
    assert.ok(result.text.trim().length > 20);
    assert.equal(provider.stats.busy, 0, 'the sequence went back to the pool');
  });

  it('stops mid-answer promptly and the sequences are reusable afterwards', async (t) => {
    const controller = new AbortController();
    let abortedAt = 0;
    const result = await collect(provider.generate({ turns: story('Once upon a time'), signal: controller.signal }), (count) => {
      if (count === 5) {
        abortedAt = performance.now();
        controller.abort();
      }
    });
    const streamEndMs = result.endedAt - abortedAt;
    while (provider.stats.busy > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    const freedMs = performance.now() - abortedAt;
    t.diagnostic(`stop: stream ended ${streamEndMs.toFixed(1)} ms after abort, sequence free after ${freedMs.toFixed(1)} ms`);
    assert.ok(result.chunks >= 5 && result.chunks <= 7, `stopped after ${result.chunks} chunks`);
    assert.ok(streamEndMs < 1000, `stream ended ${streamEndMs} ms after abort`);
    assert.ok(freedMs < 1000, `sequence freed ${freedMs} ms after abort`);

    const again = await Promise.all([1, 2].map(() => collect(provider.generate({ turns: story('Once upon a time'), signal: never() }))));
    assert.ok(again.every((answer) => answer.chunks > 10));
  });

  it('ends quietly when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const result = await collect(provider.generate({ turns: story('Hello'), signal: controller.signal }));
    assert.equal(result.chunks, 0);
  });

  it('stops generating when the consumer stops reading', async () => {
    for await (const chunk of provider.generate({ turns: story('Once upon a time'), signal: never() })) {
      assert.ok(chunk.length > 0);
      break;
    }
    while (provider.stats.busy > 0) await new Promise((resolve) => setTimeout(resolve, 1));
  });

  it('generates two answers in parallel, interleaved', async () => {
    let sawBothBusy = false;
    const watch = (): void => {
      if (provider.stats.busy === 2) sawBothBusy = true;
    };
    const [a, b] = await Promise.all([
      collect(provider.generate({ turns: story('Once upon a time'), signal: never() }), watch),
      collect(provider.generate({ turns: story('The dog'), signal: never() }), watch),
    ]);
    assert.ok(a && b);
    assert.ok(sawBothBusy, 'both sequences were busy at once');
    assert.ok(a.chunks > 10 && b.chunks > 10);
    // Interleaved: each stream delivered chunks before the other one finished.
    assert.ok((b.times[0] ?? Infinity) < (a.times.at(-1) ?? 0), 'b started before a finished');
    assert.ok((a.times[0] ?? Infinity) < (b.times.at(-1) ?? 0), 'a started before b finished');
  });

  it('makes a third request wait for a free sequence, without stopping the other two', async () => {
    let maxWaiting = 0;
    const watch = (): void => {
      maxWaiting = Math.max(maxWaiting, provider.stats.waiting);
    };
    const answers = await Promise.all(
      ['Once upon a time', 'The dog', 'A bird'].map((prompt) => collect(provider.generate({ turns: story(prompt), signal: never() }), watch)),
    );
    const [a, b, c] = answers;
    assert.ok(a && b && c);
    assert.equal(maxWaiting, 1, 'one request waited');
    assert.ok(answers.every((answer) => answer.chunks > 10), 'all three answered');
    const firstDone = Math.min(a.endedAt, b.endedAt);
    assert.ok((c.times[0] ?? 0) >= firstDone - 5, 'the third started after one of the first two finished');
    assert.ok((a.times[0] ?? Infinity) < (b.times.at(-1) ?? 0) && (b.times[0] ?? Infinity) < (a.times.at(-1) ?? 0), 'the first two ran together');
    assert.deepEqual(provider.stats, { sequences: 2, busy: 0, waiting: 0 });
  });

  it('a waiting request that is aborted leaves the queue', async () => {
    const running = [1, 2].map(() => collect(provider.generate({ turns: story('Once upon a time'), signal: never() })));
    const controller = new AbortController();
    const waiting = collect(provider.generate({ turns: story('A bird'), signal: controller.signal }));
    while (provider.stats.waiting === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    controller.abort();
    assert.equal((await waiting).chunks, 0);
    assert.equal(provider.stats.waiting, 0);
    await Promise.all(running);
  });

  it('rejects a conversation that does not fit the context, before any token', async () => {
    const huge = 'The cat sat on the mat and looked at the dog. '.repeat(300);
    let chunks = 0;
    await assert.rejects(
      (async () => {
        for await (const _chunk of provider.generate({ turns: story(huge), signal: never() })) chunks += 1;
      })(),
      (error: unknown) => {
        assert.ok(error instanceof ModelError);
        assert.equal(error.code, ErrorCodes.modelContextOverflow);
        assert.match(error.message, /context holds 1024/);
        return true;
      },
    );
    assert.equal(chunks, 0);
    assert.equal(provider.stats.busy, 0);
    const after = await collect(provider.generate({ turns: story('Once upon a time'), signal: never() }));
    assert.ok(after.chunks > 10, 'the provider still works');
  });

  it('caps an answer at the room the context has left instead of failing mid-answer', async () => {
    // About 800 prompt tokens in a 1024 context: less room than LLM_MAX_TOKENS=300.
    const long = 'The cat sat on the mat. '.repeat(80);
    const promptTokens = provider.countTokens(long);
    assert.ok(promptTokens > 700 && promptTokens < 900, `${promptTokens} prompt tokens`);
    const result = await collect(provider.generate({ turns: [{ role: 'user', content: long }], signal: never() }));
    assert.ok(result.chunks > 0);
    assert.ok(provider.countTokens(result.text) < 1024 - promptTokens, 'the answer fit the context');
  });
});

describe('LocalLlamaProvider limits and shutdown', { skip: SKIP }, () => {
  it('respects max tokens and stop sequences', async () => {
    const limited = new LocalLlamaProvider(modelConfig({ LLM_PARALLEL: '1', LLM_MAX_TOKENS: '24' }), recordingLogger(), { gpu: false });
    const stopping = new LocalLlamaProvider(modelConfig({ LLM_PARALLEL: '1', LLM_MAX_TOKENS: '200', LLM_STOP: '.' }), recordingLogger(), { gpu: false });
    try {
      await Promise.all([limited.start(), stopping.start()]);
      for (const prompt of ['Once upon a time', 'The dog', 'A bird']) {
        const result = await collect(limited.generate({ turns: story(prompt), signal: never() }));
        const tokens = limited.countTokens(result.text);
        assert.ok(tokens > 0 && tokens <= 24, `${tokens} tokens for max 24`);
      }
      const result = await collect(stopping.generate({ turns: story('Once upon a time'), signal: never() }));
      assert.ok(result.text.length > 0);
      assert.ok(!result.text.includes('.'), `no stop sequence in ${JSON.stringify(result.text)}`);
      assert.ok(stopping.countTokens(result.text) < 200, 'ended at the stop sequence');
    } finally {
      await Promise.all([limited.close(), stopping.close()]);
    }
  });

  it('close() aborts running and waiting generations with shutting_down', async () => {
    const provider = new LocalLlamaProvider(modelConfig({ LLM_PARALLEL: '1', LLM_MAX_TOKENS: '300' }), recordingLogger(), { gpu: false });
    await provider.start();
    let closing: Promise<void> | undefined;
    const outcome = (chunks: AsyncIterable<string>, onChunk?: (count: number) => void) =>
      collect(chunks, onChunk).then(
        () => 'ended',
        (error: unknown) => (error instanceof ModelError ? error.code : String(error)),
      );
    const running = outcome(provider.generate({ turns: story('Once upon a time'), signal: never() }), (count) => {
      if (count === 3) closing = provider.close();
    });
    const waiting = outcome(provider.generate({ turns: story('The dog'), signal: never() }));
    assert.equal(await running, ErrorCodes.shuttingDown);
    assert.equal(await waiting, ErrorCodes.shuttingDown);
    await closing;
    assert.equal(await outcome(provider.generate({ turns: story('x'), signal: never() })), ErrorCodes.shuttingDown);
    await provider.close();
  });

  it('a corrupt or truncated model file is a clear ModelError, not a crash', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'parley-corrupt-'));
    try {
      const garbage = join(dir, 'garbage.gguf');
      await writeFile(garbage, Buffer.alloc(64 * 1024, 7));
      const truncated = join(dir, 'truncated.gguf');
      const real = readFileSync(MODEL_PATH);
      await writeFile(truncated, real.subarray(0, Math.floor(real.length / 2)));
      for (const path of [garbage, truncated]) {
        const logger = recordingLogger();
        const provider = new LocalLlamaProvider(modelConfig({ LLM_MODEL_PATH: path }), logger, { gpu: false });
        await assert.rejects(provider.start(), (error: unknown) => {
          assert.ok(error instanceof ModelError);
          assert.equal(error.code, ErrorCodes.modelFailed);
          assert.ok(error.message.startsWith(`Could not load the model file ${path}`), error.message);
          assert.match(error.message, /corrupt, incomplete or not a GGUF model/);
          return true;
        });
        // The worker keeps running and answers every message with the same error.
        await assert.rejects(collect(provider.generate({ turns: story('hi'), signal: never() })), { code: ErrorCodes.modelFailed });
        assert.equal(provider.countTokens('abcdefgh'), 2, 'estimate before a model is loaded');
        await provider.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a missing LLM_MODEL_PATH says what to do', async () => {
    const provider = new LocalLlamaProvider(modelConfig({ LLM_MODEL_PATH: '/nonexistent/model.gguf' }), recordingLogger(), { gpu: false });
    await assert.rejects(provider.start(), { code: ErrorCodes.modelNotConfigured, message: /LLM_MODEL_PATH points to \/nonexistent\/model\.gguf/ });
    await provider.close();
  });
});
