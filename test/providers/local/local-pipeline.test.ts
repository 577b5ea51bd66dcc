/**
 * The local model through the whole pipeline: browser-like WebSocket client → gateway → Redis →
 * worker → LocalLlamaProvider (real node-llama-cpp binding, real stories260K model) → Redis →
 * gateway → client. The provider test covers the provider alone; this one checks that what the
 * model produces reaches a user intact, in order, in parallel, stoppable, and that a broken model
 * file turns into clear error events while the gateway keeps serving.
 *
 * stories260K writes children's stories and ignores the chat format, and with temperature 0 it is
 * deterministic (greedy): the same conversation always gets the same answer. Tests lean on that.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { loadConfig, type ModelConfig } from '../../../src/config/config.js';
import { ErrorCodes, USER_ERROR_TEXTS } from '../../../src/contracts/errors.js';
import { LocalLlamaProvider } from '../../../src/providers/local/local-provider.js';
import type { ChatTurn, GenerateRequest, ModelProvider } from '../../../src/providers/provider.js';
import { createLogger } from '../../../src/shared/logger.js';
import { TURN_OVERHEAD_TOKENS } from '../../../src/worker/history-window.js';
import { createSession, refreshSession, TestSocket, type Frame } from '../../support/client.js';
import { startSystem, type TestSystem } from '../../support/system.js';

const MODEL_PATH = process.env.PARLEY_TEST_MODEL ?? fileURLToPath(new URL('../../../../shared/models/stories260K.gguf', import.meta.url));
const MODEL_SHA256 = '270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d';
const SKIP = existsSync(MODEL_PATH)
  ? false
  : `test model absent at ${MODEL_PATH} (stories260K.gguf; set PARLEY_TEST_MODEL to its path) — skipping the local-model pipeline tests`;

const providerLogger = createLogger('test-local-provider', process.env.TEST_LOG_LEVEL ?? 'silent');

/** Model settings shared by every system here; `extra` overrides (e.g. LLM_MAX_TOKENS). */
function modelEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    LLM_MODEL_PATH: MODEL_PATH,
    LLM_THREADS: '1',
    LLM_CONTEXT_SIZE: '1024',
    LLM_PARALLEL: '2',
    LLM_TEMPERATURE: '0',
    ...extra,
  };
}

/**
 * startSystem hands `env` to loadConfig for its gateways and workers but builds the provider with a
 * factory that takes no arguments; the provider's ModelConfig is parsed here from the same values.
 */
function modelConfigOf(env: Record<string, string>): ModelConfig {
  return loadConfig(env).model;
}

interface LocalSystem {
  readonly system: TestSystem;
  /** The provider the (single, in-process) worker uses. */
  readonly provider: LocalLlamaProvider;
  readonly config: ModelConfig;
}

async function startLocalSystem(extra: Record<string, string> = {}, wrap?: (provider: LocalLlamaProvider) => ModelProvider): Promise<LocalSystem> {
  const env = modelEnv(extra);
  const config = modelConfigOf(env);
  let provider: LocalLlamaProvider | undefined;
  const system = await startSystem({
    env,
    provider: () => {
      provider = new LocalLlamaProvider(config, providerLogger, { gpu: false });
      return wrap?.(provider) ?? provider;
    },
  });
  assert.ok(provider, 'the worker built its provider');
  return { system, provider, config };
}

/** Every frame a socket receives, with the time it arrived (TestSocket keeps frames, not times). */
function timeline(socket: TestSocket): Array<{ at: number; frame: Frame }> {
  const events: Array<{ at: number; frame: Frame }> = [];
  socket.ws.on('message', (data) => {
    const at = performance.now();
    try {
      events.push({ at, frame: JSON.parse(String(data)) as Frame });
    } catch {
      events.push({ at, frame: { type: '<not json>' } });
    }
  });
  return events;
}

async function botMessages(baseUrl: string, token: string): Promise<Array<Record<string, unknown>>> {
  const view = await refreshSession(baseUrl, token);
  assert.equal(view.status, 200);
  return view.body.messages.filter((message) => message.source === 'bot');
}

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += chunk;
  return text;
}

const never = (): AbortSignal => new AbortController().signal;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('local model through the whole pipeline (stories260K)', { skip: SKIP }, () => {
  // Long answers (capped by the 1024-token context): streaming, stop, parallel sessions.
  let long: LocalSystem;

  before(async () => {
    assert.equal(createHash('sha256').update(readFileSync(MODEL_PATH)).digest('hex'), MODEL_SHA256, 'the test model is the one these tests were written for');
    long = await startLocalSystem({ LLM_MAX_TOKENS: '900' });
  });

  after(async () => {
    await long?.system.stop();
  });

  it('streams the answer to a WebSocket client as several deltas that add up to the stored message', async (t) => {
    const { system, provider } = long;
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    socket.send({ type: 'message', text: 'Once upon a time' });
    const done = await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 1, 60_000);
    const deltas = socket.frames.filter((frame) => frame.type === 'delta' && frame.seq === 1);
    const streamed = socket.answers().get(1) ?? '';
    t.diagnostic(`${deltas.length} delta frames, ${provider.countTokens(streamed)} tokens, ${streamed.length} characters`);
    assert.ok(deltas.length >= 3, `${deltas.length} delta frames`);
    assert.ok(deltas.every((frame) => typeof frame.text === 'string' && frame.text !== ''), 'no empty deltas');
    assert.ok(provider.countTokens(streamed) > 100, 'a long answer');
    // start comes before the first delta, done after the last one.
    const types = socket.frames.filter((frame) => frame.seq === 1).map((frame) => frame.type);
    assert.equal(types.indexOf('start') < types.indexOf('delta'), true, types.join(','));
    assert.equal(types.at(-1), 'done');

    const bots = await botMessages(system.baseUrl, session.token);
    assert.equal(bots.length, 1);
    assert.equal(bots[0]?.msg, streamed, 'the stored message is exactly the concatenated deltas');
    assert.equal(bots[0]?.status, 'done');
    assert.equal(bots[0]?.id, done.id);
    // The same conversation straight to the provider gives the same text: nothing lost or reordered.
    const direct = await collect(provider.generate({ turns: [{ role: 'system', content: long.config.systemPrompt }, { role: 'user', content: 'Once upon a time' }], signal: never() }));
    assert.equal(streamed, direct);
    socket.close();
  });

  it('stop mid-answer: stopped arrives quickly, the partial answer is stored as stopped, the next message is answered', async (t) => {
    const { system, provider } = long;
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    const events = timeline(socket);
    socket.send({ type: 'message', text: 'The dog ran' });
    await socket.waitForCount((frame) => frame.type === 'delta' && frame.seq === 1, 2, 30_000);
    const stopSentAt = performance.now();
    socket.send({ type: 'stop', seq: 1 });
    const stopped = await socket.waitFor((frame) => frame.type === 'stopped' && frame.seq === 1, 10_000);
    const stoppedAt = events.find((event) => event.frame.type === 'stopped')?.at ?? Number.NaN;
    const latencyMs = stoppedAt - stopSentAt;
    const partial = socket.answers().get(1) ?? '';
    t.diagnostic(`stop → stopped: ${latencyMs.toFixed(1)} ms; partial answer ${provider.countTokens(partial)} tokens`);
    assert.ok(latencyMs < 2000, `stopped ${latencyMs} ms after stop`);
    assert.ok(partial.length > 0, 'some of the answer was streamed');
    assert.ok(provider.countTokens(partial) < 700, `stopped mid-answer (${provider.countTokens(partial)} tokens of up to ~900)`);
    assert.equal(socket.frames.some((frame) => frame.type === 'done' && frame.seq === 1), false, 'no done for a stopped turn');

    // The sequence went back to the pool (llama.cpp finishes its current step in the background).
    for (let waited = 0; provider.stats.busy > 0 && waited < 2000; waited += 5) await sleep(5);
    assert.equal(provider.stats.busy, 0);

    socket.send({ type: 'message', text: 'A bird' });
    await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 2, 60_000);
    const second = socket.answers().get(2) ?? '';
    assert.ok(provider.countTokens(second) > 100, 'the next message got a whole answer');

    const bots = await botMessages(system.baseUrl, session.token);
    assert.deepEqual(
      bots.map((message) => [message.status, message.msg]),
      [
        ['stopped', partial],
        ['done', second],
      ],
    );
    assert.equal(bots[0]?.id, stopped.id);
    socket.close();
  });

  it('generates for two sessions in parallel: both start before either is done, their deltas interleave', async (t) => {
    const { system, provider } = long;
    const sessions = await Promise.all([createSession(system.baseUrl, 'A'), createSession(system.baseUrl, 'B')]);
    const sockets = await Promise.all(sessions.map((session) => TestSocket.open(system.baseUrl, session.token)));
    const [a, b] = sockets;
    assert.ok(a && b);
    const timelines = [timeline(a), timeline(b)];
    let maxBusy = 0;
    const watching = setInterval(() => (maxBusy = Math.max(maxBusy, provider.stats.busy)), 2);
    try {
      a.send({ type: 'message', text: 'Once upon a time' });
      b.send({ type: 'message', text: 'The cat' });
      await Promise.all(sockets.map((socket) => socket.waitFor((frame) => frame.type === 'done', 60_000)));
    } finally {
      clearInterval(watching);
    }
    const [ta, tb] = timelines;
    assert.ok(ta && tb);
    const at = (events: typeof ta, type: string, which: 'first' | 'last'): number => {
      const matching = events.filter((event) => event.frame.type === type);
      const event = which === 'first' ? matching[0] : matching.at(-1);
      assert.ok(event, `a ${type} frame`);
      return event.at;
    };
    const firstDone = Math.min(at(ta, 'done', 'first'), at(tb, 'done', 'first'));
    t.diagnostic(
      `A: start ${at(ta, 'start', 'first').toFixed(0)}, deltas ${at(ta, 'delta', 'first').toFixed(0)}–${at(ta, 'delta', 'last').toFixed(0)}; ` +
        `B: start ${at(tb, 'start', 'first').toFixed(0)}, deltas ${at(tb, 'delta', 'first').toFixed(0)}–${at(tb, 'delta', 'last').toFixed(0)} (ms); max busy sequences ${maxBusy}`,
    );
    assert.ok(at(ta, 'start', 'first') < firstDone && at(tb, 'start', 'first') < firstDone, 'both started before either finished');
    assert.ok(at(tb, 'delta', 'first') < at(ta, 'delta', 'last'), "B's first delta came before A's last");
    assert.ok(at(ta, 'delta', 'first') < at(tb, 'delta', 'last'), "A's first delta came before B's last");
    assert.equal(maxBusy, 2, 'both sequences of the context were generating at once');
    for (const [index, socket] of sockets.entries()) {
      const answer = socket.answers().get(1) ?? '';
      assert.ok(provider.countTokens(answer) > 100, `session ${index} got a long answer`);
      const token = sessions[index]?.token ?? '';
      assert.equal((await botMessages(system.baseUrl, token))[0]?.msg, answer);
    }
    // Different prompts, different stories: no answer went to the wrong session.
    assert.notEqual(a.answers().get(1), b.answers().get(1));
    for (const socket of sockets) socket.close();
  });
});

describe('local model limits through the pipeline (stories260K)', { skip: SKIP }, () => {
  it('LLM_MAX_TOKENS=16 is respected end to end', async (t) => {
    const short = await startLocalSystem({ LLM_MAX_TOKENS: '16' });
    try {
      const { system, provider } = short;
      const session = await createSession(system.baseUrl);
      const socket = await TestSocket.open(system.baseUrl, session.token);
      socket.send({ type: 'message', text: 'Once upon a time' });
      await socket.waitFor((frame) => frame.type === 'done' && frame.seq === 1, 30_000);
      const stored = (await botMessages(system.baseUrl, session.token))[0]?.msg;
      assert.equal(typeof stored, 'string');
      const answer = String(stored);
      assert.equal(answer, socket.answers().get(1));
      // Re-tokenizing the decoded text with the model's tokenizer gives the number of tokens the
      // model produced (for this model and text they agree; a merge could only make it smaller).
      const tokens = provider.countTokens(answer);
      // Greedy decoding: the same conversation with room for 400 tokens starts with this answer and
      // goes on, so the answer ended because of the limit, not because the model stopped by itself.
      const unlimited = new LocalLlamaProvider({ ...short.config, maxTokens: 400 }, providerLogger, { gpu: false });
      let longer = '';
      try {
        await unlimited.start();
        longer = await collect(unlimited.generate({ turns: [{ role: 'system', content: short.config.systemPrompt }, { role: 'user', content: 'Once upon a time' }], signal: never() }));
      } finally {
        await unlimited.close();
      }
      t.diagnostic(`stored answer: ${tokens} tokens ${JSON.stringify(answer)}; with 400 allowed: ${provider.countTokens(longer)} tokens`);
      assert.ok(tokens >= 12 && tokens <= 16, `${tokens} tokens for LLM_MAX_TOKENS=16`);
      assert.ok(longer.startsWith(answer) && longer.length > answer.length, 'cut by the limit');
      socket.close();
    } finally {
      await short.system.stop();
    }
  });

  it('the history window drops the oldest turns when LLM_HISTORY_TOKENS is small', async (t) => {
    const BUDGET = 130;
    const spy = { calls: [] as Array<readonly ChatTurn[]> };
    const windowed = await startLocalSystem({ LLM_MAX_TOKENS: '16', LLM_HISTORY_TOKENS: String(BUDGET) }, (provider) => new TurnRecordingProviderSpy(provider, spy.calls));
    try {
      const { system, provider, config } = windowed;
      const session = await createSession(system.baseUrl);
      const socket = await TestSocket.open(system.baseUrl, session.token);
      const questions = ['Tell me about the red ball.', 'What did the cat see?', 'Where did the bird go?', 'Who found the little dog?', 'Why was the sun happy?'];
      for (const [index, question] of questions.entries()) {
        socket.send({ type: 'message', text: question });
        await socket.waitFor((frame) => frame.type === 'done' && frame.seq === index + 1, 30_000);
      }
      const answers = (await botMessages(system.baseUrl, session.token)).map((message) => String(message.msg));
      assert.equal(answers.length, questions.length);
      assert.equal(spy.calls.length, questions.length, 'one generate call per message');

      const cost = (turns: readonly ChatTurn[]): number => turns.reduce((sum, turn) => sum + provider.countTokens(turn.content) + TURN_OVERHEAD_TOKENS, 0);
      const systemTurn: ChatTurn = { role: 'system', content: config.systemPrompt };
      assert.deepEqual(spy.calls[0], [systemTurn, { role: 'user', content: questions[0] }], 'the first message had no history');
      const last = spy.calls.at(-1) ?? [];
      // The whole conversation the model could have seen for the last message.
      const history: ChatTurn[] = questions.slice(0, -1).flatMap((question, index): ChatTurn[] => [
        { role: 'user', content: question },
        { role: 'assistant', content: answers[index] ?? '' },
      ]);
      const lastQuestion: ChatTurn = { role: 'user', content: questions.at(-1) ?? '' };
      const kept = last.slice(1, -1);
      t.diagnostic(`last request: ${last.length} turns, ${cost(last)} tokens with overhead (budget ${BUDGET}); kept ${kept.length / 2} of ${history.length / 2} earlier exchanges`);
      assert.deepEqual(last[0], systemTurn, 'the system prompt is always there');
      assert.deepEqual(last.at(-1), lastQuestion, 'the new message is always there');
      assert.ok(kept.length >= 2 && kept.length < history.length, `some but not all history kept (${kept.length} of ${history.length} turns)`);
      assert.equal(kept.length % 2, 0, 'whole exchanges only');
      assert.deepEqual(kept, history.slice(-kept.length), 'the newest turns, unchanged and in order (no turn cut in half)');
      assert.ok(cost(last) <= BUDGET, `the window fits the budget: ${cost(last)} <= ${BUDGET}`);
      const oneMore = [systemTurn, ...history.slice(-kept.length - 2), lastQuestion];
      assert.ok(cost(oneMore) > BUDGET, 'the next older exchange would not have fit: the oldest were dropped, no more');
      socket.close();
    } finally {
      await windowed.system.stop();
    }
  });
});

describe('broken local model through the pipeline', { skip: SKIP }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'parley-pipeline-model-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const brokenCases = [
    {
      name: 'a corrupt model file',
      path: (): string => join(dir, 'garbage.gguf'),
      prepare: async (path: string): Promise<void> => writeFile(path, Buffer.alloc(64 * 1024, 7)),
      code: ErrorCodes.modelFailed,
    },
    {
      name: 'a missing model file',
      path: (): string => join(dir, 'missing', 'model.gguf'),
      prepare: async (): Promise<void> => undefined,
      code: ErrorCodes.modelNotConfigured,
    },
  ];

  for (const broken of brokenCases) {
    it(`${broken.name}: the worker starts, every message gets a clear error event, the gateway keeps working`, async (t) => {
      const path = broken.path();
      await broken.prepare(path);
      const { system } = await startLocalSystem({ LLM_MODEL_PATH: path });
      try {
        const session = await createSession(system.baseUrl);
        const socket = await TestSocket.open(system.baseUrl, session.token);
        const plain = await TestSocket.open(system.baseUrl, session.token, false);
        socket.send({ type: 'message', text: 'Hello?' });
        socket.send({ type: 'message', text: 'Anyone there?' });
        const errors = await socket.waitForCount((frame) => frame.type === 'error' && frame.seq !== undefined, 2, 30_000);
        t.diagnostic(`error event: ${String(errors[0]?.code)}: ${String(errors[0]?.message)}`);
        assert.deepEqual(errors.map((frame) => [frame.seq, frame.code]), [
          [1, broken.code],
          [2, broken.code],
        ]);
        // Users get the fixed text of the code: the path and loader detail are for the worker log.
        for (const frame of errors) {
          assert.equal(frame.message, USER_ERROR_TEXTS[broken.code]);
          assert.ok(!String(frame.message).includes(dir), 'no path reaches the user');
        }
        assert.equal(socket.frames.some((frame) => frame.type === 'delta' || frame.type === 'done'), false, 'no text pretending to be an answer');
        const plainErrors = await plain.waitForCount((frame) => frame.type === 'error', 2, 10_000);
        assert.ok(plainErrors.every((frame) => frame.source === undefined), 'plain clients never see the error as a bot message');

        // The gateway keeps working: sessions, history, health.
        const view = await refreshSession(system.baseUrl, session.token);
        assert.equal(view.status, 200);
        assert.deepEqual(view.body.messages.map((message) => message.source), ['human', 'human']);
        assert.deepEqual((view.body.messages[0]?.error as { code?: string } | undefined)?.code, broken.code);
        const other = await createSession(system.baseUrl, 'Grace');
        assert.equal(typeof other.token, 'string');
        const health = await fetch(`${system.baseUrl}/healthz`);
        assert.equal(health.status, 200);
        socket.close();
        plain.close();
      } finally {
        await system.stop();
      }
    });
  }
});

/**
 * Test-only spy: passes every call through to the real provider and records the turns each
 * generate() call received, i.e. exactly what the worker sent to the model.
 */
class TurnRecordingProviderSpy implements ModelProvider {
  constructor(
    private readonly inner: ModelProvider,
    private readonly calls: Array<readonly ChatTurn[]>,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  generate(request: GenerateRequest): AsyncIterable<string> {
    this.calls.push(request.turns.map((turn) => ({ ...turn })));
    return this.inner.generate(request);
  }

  countTokens(text: string): number {
    return this.inner.countTokens(text);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
