/**
 * Finding 2: model failures reach users as a fixed text per error code plus a reference id —
 * never a path, host, key or upstream body — and reach operators in full (redacted) at warn,
 * with that reference and the session tag. History keeps the code and the reference only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { loadConfig } from '../../src/config/config.js';
import { USER_ERROR_TEXTS } from '../../src/contracts/errors.js';
import { sessionKeys } from '../../src/contracts/keys.js';
import { LocalLlamaProvider } from '../../src/providers/local/local-provider.js';
import { OpenAICompatibleProvider } from '../../src/providers/openai/openai-provider.js';
import { tokenTag } from '../../src/shared/logger.js';
import { createSession, refreshSession, TestSocket, type Frame } from '../support/client.js';
import { type FakeResponse } from '../support/fake-openai-server.js';
import { LogCapture } from '../support/log-capture.js';
import { TEST_REDIS_URL } from '../support/redis.js';
import { startSystem, type TestSystem } from '../support/system.js';

const API_KEY = 'sk-parley-test-key-0123456789abcdef';
const OTHER_KEY = 'sk-someone-elses-key-9876543210';
const silent = { debug() {}, info() {}, warn() {}, error() {}, child() { return silent; } } as unknown as ConstructorParameters<typeof OpenAICompatibleProvider>[1];
const TRACEBACK = 'Traceback (most recent call last):\n  File "/srv/llm/app/server.py", line 42, in generate\nRuntimeError: CUDA out of memory at /srv/llm/weights';

/** Everything that must never reach a user: upstream text, paths, hosts, keys. */
function assertClean(text: string, label: string, forbidden: readonly string[]): void {
  for (const secret of ['Traceback', '/srv/llm', API_KEY, OTHER_KEY, '127.0.0.1', 'gguf', 'LLM_', ...forbidden]) {
    assert.ok(!text.includes(secret), `${label}: ${JSON.stringify(secret)} leaked in ${JSON.stringify(text)}`);
  }
}

async function failTurn(system: TestSystem, logs: LogCapture): Promise<{ error: Frame; plain: Frame; token: string; history: string }> {
  const session = await createSession(system.baseUrl);
  const socket = await TestSocket.open(system.baseUrl, session.token);
  const plain = await TestSocket.open(system.baseUrl, session.token, false);
  socket.send({ type: 'message', text: 'hello there' });
  const error = await socket.waitFor((frame) => frame.type === 'error', 15_000);
  const plainError = await plain.waitFor((frame) => frame.type === 'error', 5000);
  socket.close();
  plain.close();
  const redis = createClient({ url: TEST_REDIS_URL });
  await redis.connect();
  const stored = await redis.hGetAll(sessionKeys(system.prefix, session.token).errors);
  redis.destroy();
  void logs;
  return { error, plain: plainError, token: session.token, history: JSON.stringify(stored) };
}

describe('an OpenAI-compatible API that fails', () => {
  let system: TestSystem;
  const logs = new LogCapture();
  before(async () => {
    system = await startSystem({ env: { LLM_API_KEY: API_KEY, LLM_MAX_RETRIES: '0', LOG_LEVEL: 'info', LLM_FIRST_TOKEN_TIMEOUT_MS: '300' }, logDestination: logs });
  });
  after(async () => {
    await system.stop();
  });

  const cases: Array<[string, FakeResponse, string]> = [
    ['a 500 with a traceback', { kind: 'error', status: 500, body: { error: { message: TRACEBACK } } }, 'model_unavailable'],
    ['a 401 echoing another key', { kind: 'error', status: 401, body: { error: { message: `Incorrect API key provided: ${OTHER_KEY}` } } }, 'model_auth'],
    ['a 400 quoting the key and path', { kind: 'error', status: 400, body: { error: { message: `bad request with ${API_KEY} at /srv/llm/app` } } }, 'model_failed'],
    ['a 429 with a body', { kind: 'error', status: 429, body: { error: { message: `quota of ${OTHER_KEY} exceeded, see /srv/llm/billing` } } }, 'model_rate_limited'],
    ['no first token in time', { kind: 'hang' }, 'model_timeout'],
    ['an unusable stream', { kind: 'raw', writes: [`data: ${TRACEBACK}\n\n`] }, 'model_failed'],
    ['a context overflow', { kind: 'error', status: 400, body: { error: { message: `This model's maximum context length is 4096 tokens (/srv/llm/app)`, code: 'context_length_exceeded' } } }, 'model_context_overflow'],
  ];
  for (const [label, response, code] of cases) {
    test(`${label}: the user sees the fixed text and a reference; the operator sees the detail at warn`, async () => {
      system.model.setRespond(() => response);
      const { error, plain, token, history } = await failTurn(system, logs);
      assert.equal(error.code, code);
      assert.equal(error.message, USER_ERROR_TEXTS[code as keyof typeof USER_ERROR_TEXTS]);
      assert.match(String(error.ref), /^[A-Za-z0-9]{6,16}$/);
      assert.deepEqual([plain.code, plain.message, plain.ref], [error.code, error.message, error.ref]);
      assertClean(JSON.stringify([error, plain]), label, [system.model.url]);
      assertClean(history, `${label} (history)`, [system.model.url]);
      assert.match(history, new RegExp(String(error.ref)));

      const view = await refreshSession(system.baseUrl, token);
      const human = view.body.messages.find((message) => message.source === 'human');
      assert.deepEqual(human?.error, { code, message: error.message, ref: error.ref });

      const line = logs.entries().find((entry) => entry.ref === error.ref);
      assert.ok(line !== undefined, `a log line carries the reference ${String(error.ref)}`);
      assert.equal(line.level, 40, 'at warn');
      assert.equal(line.session, tokenTag(token));
      assert.equal(line.code, code);
      assert.ok(!logs.text().includes(API_KEY), 'the API key never reaches the log');
      assert.ok(!logs.text().includes(OTHER_KEY), 'nor does a key an upstream echoed');
      assert.ok(!logs.text().includes(token), 'nor the full token');
    });
  }
});

describe('an API that cannot be reached', () => {
  let system: TestSystem;
  const logs = new LogCapture();
  const unreachable = 'http://127.0.0.1:9/v1';
  before(async () => {
    system = await startSystem({
      env: { LOG_LEVEL: 'info', LLM_MAX_RETRIES: '0' },
      logDestination: logs,
      provider: () => new OpenAICompatibleProvider({ ...loadConfig({ LLM_BASE_URL: unreachable, LLM_MAX_RETRIES: '0' }).model }, silent, { probeModels: false }),
    });
  });
  after(async () => {
    await system.stop();
  });

  test('the user sees "unavailable", not the host and port; the operator sees them', async () => {
    const { error, history } = await failTurn(system, logs);
    assert.equal(error.code, 'model_unavailable');
    assert.equal(error.message, 'The language model is unavailable right now. Try again in a moment.');
    assertClean(JSON.stringify(error), 'unreachable', ['127.0.0.1:9', ':9/']);
    assertClean(history, 'unreachable (history)', ['127.0.0.1:9']);
    const line = logs.entries().find((entry) => entry.ref === error.ref);
    assert.ok(line !== undefined);
    assert.match(String(line.detail), /127\.0\.0\.1:9/);
  });
});

describe('a local model whose file is missing', () => {
  let system: TestSystem;
  const logs = new LogCapture();
  const missing = '/srv/llm/weights/missing-model.gguf';
  before(async () => {
    system = await startSystem({
      env: { LOG_LEVEL: 'info' },
      logDestination: logs,
      provider: () => new LocalLlamaProvider(loadConfig({ LLM_PROVIDER: 'local', LLM_MODEL_PATH: missing }).model, { info() {}, warn() {}, error() {} }),
    });
  });
  after(async () => {
    await system.stop();
  });

  test('the user sees that no model is configured, not the path; the operator sees the path', async () => {
    const { error, history } = await failTurn(system, logs);
    assert.equal(error.code, 'model_not_configured');
    assert.equal(error.message, 'No language model is set up on this server yet. Ask its operator to configure one.');
    assertClean(JSON.stringify(error), 'local', [missing]);
    assertClean(history, 'local (history)', [missing]);
    const line = logs.entries().find((entry) => entry.ref === error.ref);
    assert.ok(line !== undefined);
    assert.match(JSON.stringify(line), /missing-model\.gguf/);
  });
});
