/**
 * A Parley worker process for the benchmark: the same startWorker as `npm run worker`, configured
 * from the environment by loadConfig, in a process of its own like production. With BENCH_MODEL=http
 * its model is what `npm run worker` would pick from the configuration (createProvider: the
 * OpenAI-compatible provider talking to bench/model-server.ts); otherwise it is the
 * BenchModelDouble, inside this process. The double starts from BENCH_TOKENS / BENCH_RATE /
 * BENCH_RECORD_YIELDS; when the
 * harness spawned it (an IPC channel exists) the harness can reconfigure the double between
 * phases and collect the recorded yield times, and the worker stops when the harness goes away.
 *
 *   BENCH_TOKENS=50 BENCH_RATE=instant REDIS_URL=redis://127.0.0.1:6390 node --import tsx bench/worker-main.ts
 */
import { loadConfig } from '../src/config/config.js';
import { runUntilSignalled } from '../src/shared/process.js';
import { createProvider } from '../src/providers/select.js';
import { startWorker } from '../src/worker/worker.js';
import { BenchModelDouble, DEFAULT_BENCH_MODEL, type BenchModelSettings, type TokenRate } from './bench-model.js';
import { workerRequestSchema, type WorkerReply } from './lib/ipc.js';

function parseRate(value: string | undefined): TokenRate {
  if (value === undefined || value === '' || value === 'instant') return 'instant';
  const rate = Number(value);
  if (!Number.isFinite(rate) || rate <= 0) throw new Error(`BENCH_RATE must be "instant" or tokens per second > 0 (got ${value})`);
  return rate;
}

function settingsFromEnv(env: NodeJS.ProcessEnv): BenchModelSettings {
  const tokens = env.BENCH_TOKENS === undefined ? DEFAULT_BENCH_MODEL.tokens : Number(env.BENCH_TOKENS);
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`BENCH_TOKENS must be a whole number >= 1 (got ${env.BENCH_TOKENS})`);
  return { tokens, rate: parseRate(env.BENCH_RATE), recordYields: env.BENCH_RECORD_YIELDS === '1' };
}

function reply(message: WorkerReply): void {
  process.send?.(message);
}

/** Serves the harness's requests; without an IPC channel (started by hand) there are none. */
function serveHarness(model: BenchModelDouble | null): void {
  if (process.send === undefined) return;
  process.on('message', (raw: unknown) => {
    const request = workerRequestSchema.safeParse(raw);
    // The HTTP path's model is the model server's to configure: the harness asks it, not us.
    if (!request.success || model === null) return;
    if (request.data.type === 'configure') {
      model.configure(request.data.model);
      reply({ type: 'configured' });
    } else {
      reply({ type: 'yields', log: model.takeYieldLog() });
    }
  });
  // The harness died (even by SIGKILL): stop the way a signal would, so nothing is left behind.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

const config = loadConfig(process.env);
const double = process.env.BENCH_MODEL === 'http' ? null : new BenchModelDouble(settingsFromEnv(process.env));
await runUntilSignalled('bench-worker', config, async (logger) => {
  const handle = await startWorker(config, double ?? (await createProvider(config.model, logger)), logger);
  serveHarness(double);
  reply({ type: 'ready', pid: process.pid });
  return handle;
});
