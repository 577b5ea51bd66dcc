/** The worker's private metrics listener: turn counts, first-token time, errors by code, readiness. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startWorker } from '../../src/worker/worker.js';
import { OpenAICompatibleProvider } from '../../src/providers/openai/openai-provider.js';
import { LocalLlamaProvider } from '../../src/providers/local/local-provider.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { createSession, TestSocket } from '../support/client.js';
import { startSystem, type TestSystem } from '../support/system.js';

let system: TestSystem;
before(async () => {
  system = await startSystem({ workers: 0 });
});
after(async () => {
  await system.stop();
});

test('a worker serves its metrics and /readyz on WORKER_METRICS_PORT only', async () => {
  const config = { ...system.config, workerMetricsPort: 0 };
  const logger = createLogger('test', 'silent');
  const worker = await startWorker(config, new OpenAICompatibleProvider(config.model, logger, { retryBaseMs: 20, probeModels: false }), logger);
  try {
    assert.ok(worker.metricsUrl?.startsWith('http://127.0.0.1:'), worker.metricsUrl);
    system.model.setRespond(({ messages }) =>
      messages.at(-1)?.content === 'fail' ? { kind: 'error', status: 503 } : { kind: 'stream', chunks: ['Hello ', 'there'] },
    );
    const session = await createSession(system.baseUrl);
    const socket = await TestSocket.open(system.baseUrl, session.token);
    socket.send({ type: 'message', text: 'hi' });
    await socket.waitFor((frame) => frame.type === 'done');
    socket.send({ type: 'message', text: 'fail' });
    await socket.waitFor((frame) => frame.type === 'error' && frame.seq === 2);
    socket.close();
    const text = await (await fetch(`${worker.metricsUrl}/metrics`)).text();
    assert.match(text, /^parley_worker_turns_total\{outcome="answer"\} [1-9]/m);
    assert.match(text, /^parley_worker_turns_total\{outcome="error"\} [1-9]/m);
    assert.match(text, /^parley_worker_model_errors_total\{code="model_unavailable"\} [1-9]/m);
    assert.match(text, /^parley_worker_time_to_first_token_seconds_count [1-9]/m);
    assert.match(text, /^parley_worker_queue_lag_seconds_count [1-9]/m);
    assert.match(text, /^parley_worker_takeovers_total 0/m);
    const ready = await fetch(`${worker.metricsUrl}/readyz`);
    assert.equal(ready.status, 200);
  } finally {
    await worker.stop();
  }
});

test('a worker whose model did not load is not ready', async () => {
  const config = { ...system.config, workerMetricsPort: 0, workerConcurrency: 1 };
  const model = loadConfig({ LLM_PROVIDER: 'local', LLM_MODEL_PATH: '/nonexistent/model.gguf' }).model;
  const logger = createLogger('test', 'silent');
  const worker = await startWorker(config, new LocalLlamaProvider(model, logger), logger);
  try {
    const ready = await fetch(`${worker.metricsUrl}/readyz`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'unavailable', problems: ['the language model did not start'] });
  } finally {
    await worker.stop();
  }
});
