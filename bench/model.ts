/**
 * `npm run bench:model` — tokens per second of the local model (stories260K by default) called
 * directly versus through the whole Parley pipeline, in one run, on one machine:
 *
 *   raw       node-llama-cpp's LlamaChatSession on a context of our own: "the model, directly";
 *   provider  LocalLlamaProvider.generate, the code the worker calls (raw + its sequence pool,
 *             prompt measuring and chunk queue), in this process;
 *   pipeline  WebSocket client → gateway process → Redis → worker process (src/worker/main.ts with
 *             LLM_PROVIDER=local) → Redis → gateway → client, exactly as deployed.
 *
 * Same model file, system prompt, user message, max tokens, context size, sequences, threads and
 * sampling (temperature 0 = greedy, so every variant produces the same text and token count; the
 * run checks that). Rounds are interleaved, raw/provider/pipeline with the order rotated every
 * round, so drift in machine load hits all three alike; warm-up rounds are dropped.
 *
 * tokens/s = tokens of the received text (counted with the model's own tokenizer) ÷ time from the
 * request (generate() call; WebSocket `message` frame sent) to the end of the answer (generator
 * finished; `done` frame received). Session creation and socket opening are outside the timing,
 * as model loading is for the direct variants.
 *
 * Processes, Redis, gateway and worker come from bench/lib (as for `npm run bench`): REDIS_URL when
 * set (keys under a random prefix, removed afterwards), else a redis-server of our own on a free
 * loopback port with persistence off. Every child process is stopped on exit, on error and on
 * Ctrl-C. Results: bench/results/model-<timestamp>.json and .md.
 *
 *   npm run bench:model                        # full run (about a minute)
 *   npm run bench:model -- --smoke             # a few seconds, for CI: checks it works, not speed
 *   npm run bench:model -- --rounds 20 --max-tokens 1500 --context 2048
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { LocalLlamaProvider } from '../src/providers/local/local-provider.js';
import { parseOrExit } from './lib/options.js';
import { findLogLine, logTail, ProcessGroup, Shutdown } from './lib/processes.js';
import { snapshot } from './lib/redis-observe.js';
import { stamp, writeResults } from './lib/report.js';
import { RawRedis } from './lib/resp.js';
import { redisEndpoint, startStack } from './lib/stack.js';
import { round2 } from './lib/stats.js';
import { HELP, parseModelOptions } from './model/options.js';
import { modelMarkdown, TARGET_RATIO, type ModelResult } from './model/report.js';
import { cpuDelta, cpuSnapshot, pairedRatio, summarizeVariant, toSample, type ProcessName, type Sample } from './model/samples.js';
import { loadRaw, pipelineAnswer, PROMPT, providerAnswer, startInProcess, SYSTEM_PROMPT, type Variant } from './model/variants.js';

/** First port tried for our own redis-server: a range of its own, so it does not race `npm run bench` (6390+). */
const REDIS_PORT_FROM = 6480;

const log = (message: string): void => console.log(`[bench:model] ${message}`);

const options = parseOrExit(() => parseModelOptions(process.argv.slice(2)), HELP);
if (!existsSync(options.modelPath)) {
  console.error(`bench:model: model file not found at ${options.modelPath}. Pass --model PATH or set LLM_MODEL_PATH to a .gguf file.`);
  process.exit(2);
}
const scratch = mkdtempSync(join(tmpdir(), 'parley-bench-model-'));
const group = new ProcessGroup(join(scratch, 'logs'));
// Models, in-process servers and our keys in someone else's Redis; the group stops the children.
const cleanups: Array<() => Promise<void>> = [];
async function cleanup(): Promise<void> {
  for (const step of cleanups.splice(0).reverse()) await step().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
  await group.stopAll(3000);
  rmSync(scratch, { recursive: true, force: true });
}
const shutdown = new Shutdown(group, async (why) => {
  console.error(`\n${why}: stopping everything…`);
  await cleanup();
});

async function main(): Promise<void> {
  const prefix = `bench-model:${randomBytes(4).toString('hex')}:`;
  try {
    const settings: Record<string, string> = {
      LLM_PROVIDER: 'local',
      LLM_MODEL_PATH: options.modelPath,
      LLM_SYSTEM_PROMPT: SYSTEM_PROMPT,
      LLM_MAX_TOKENS: String(options.maxTokens),
      LLM_CONTEXT_SIZE: String(options.contextSize),
      LLM_PARALLEL: String(options.parallel),
      LLM_THREADS: String(options.threads),
      LLM_TEMPERATURE: '0',
      // The direct variants run on the CPU (gpu: false); so does the worker.
      LLM_GPU: 'cpu',
    };
    const config = loadConfig(settings);
    const model = config.model;
    const loadBefore = loadavg().map(round2);

    const external = process.env.REDIS_URL?.trim();
    const redis = await redisEndpoint(group, external === '' ? undefined : external, REDIS_PORT_FROM);
    const admin = await RawRedis.connect(redis.host, redis.port);
    cleanups.push(async () => {
      if (redis.pid === null) await admin.deleteKeys(prefix);
      admin.close();
    });
    const redisVersion = (await snapshot(admin)).version;
    log(`Redis ${redisVersion} at ${redis.url} (${redis.pid === null ? 'REDIS_URL' : 'own redis-server'})`);

    // Gateway and worker start while this process loads its own copies of the model.
    const starting = startStack(group, {
      label: 'model',
      redis,
      gateways: 1,
      workers: 1,
      keyPrefix: prefix,
      model: { tokens: 0, rate: 'instant', recordYields: false },
      modelPath: 'local',
      workerConcurrency: undefined,
      flushIntervalMs: config.flushIntervalMs,
      cpuProfDir: options.cpuProfDir,
      extraEnv: settings,
    });
    starting.catch(() => undefined);
    const raw = await loadRaw(model);
    cleanups.push(() => raw.close());
    const provider = new LocalLlamaProvider(model, { info: () => undefined, warn: () => undefined, error: (details, message) => console.error(message, details) }, { gpu: false });
    cleanups.push(() => provider.close());
    await provider.start();

    const variants: Variant[] = ['raw', 'provider', 'pipeline'];
    const inProcessUrl = options.inProcess ? await startInProcess(settings, redis.url, `${prefix}in:`, cleanups) : '';
    if (options.inProcess) variants.push('inprocess');

    const stack = await starting;
    cleanups.push(() => stack.stop());
    const [gateway] = stack.gateways;
    const [workerPid] = stack.workerPids;
    const workerLog = stack.workerLogs[0] ?? '';
    const workerModel = findLogLine(workerLog, (line) => line.msg === 'local model loaded');
    if (gateway?.pid === undefined || gateway.pid === null || workerPid === undefined || workerModel === undefined) throw new Error(`the worker did not load the local model:\n${logTail(workerLog)}`);
    if (workerModel.gpu !== false) log(`warning: the worker runs on gpu=${String(workerModel.gpu)}, the direct variants on the CPU`);
    log(`gateway ${gateway.url}, worker ready (${String(workerModel.contextSize)}-token context, ${String(workerModel.threads)} thread(s), ${String(workerModel.parallel)} sequences)`);

    const pids: Partial<Record<ProcessName, number>> = { bench: process.pid, worker: workerPid, gateway: gateway.pid, redis: redis.pid ?? undefined };
    const answer = (variant: Variant) =>
      variant === 'raw' ? raw.answer() : variant === 'provider' ? providerAnswer(provider) : pipelineAnswer(variant === 'pipeline' ? gateway.url : inProcessUrl);
    const samples: Sample[] = [];
    const texts = new Set<string>();
    const total = options.warmup + options.rounds;
    for (let index = 0; index < total; index += 1) {
      const round = index - options.warmup;
      // Rotate the order: raw/provider/pipeline, provider/pipeline/raw, pipeline/raw/provider, …
      const order = variants.map((_, position) => variants[(position + index) % variants.length] ?? 'raw');
      const line: string[] = [];
      for (const [position, variant] of order.entries()) {
        const cpuBefore = cpuSnapshot(pids);
        const timed = await answer(variant);
        const sample = toSample(round, variant, position, timed, cpuDelta(cpuBefore, cpuSnapshot(pids)), (text) => provider.countTokens(text));
        texts.add(timed.text);
        line.push(`${variant} ${sample.tokensPerSecond.toFixed(0)} tok/s (${sample.tokens} tokens, ${sample.totalMs.toFixed(0)} ms)`);
        if (round >= 0) samples.push(sample);
      }
      log(`${round < 0 ? 'warm-up' : `round ${round + 1}/${options.rounds}`}: ${line.join(', ')}`);
    }

    const summary = { raw: summarizeVariant(samples, 'raw'), provider: summarizeVariant(samples, 'provider'), pipeline: summarizeVariant(samples, 'pipeline') };
    const inprocess = options.inProcess ? summarizeVariant(samples, 'inprocess') : undefined;
    const ratios = {
      pipelineOverRaw: summary.pipeline.medianTokensPerSecond / summary.raw.medianTokensPerSecond,
      pipelineOverProvider: summary.pipeline.medianTokensPerSecond / summary.provider.medianTokensPerSecond,
      providerOverRaw: summary.provider.medianTokensPerSecond / summary.raw.medianTokensPerSecond,
      pairedPipelineOverRaw: pairedRatio(samples, 'pipeline', 'raw'),
      pairedPipelineOverProvider: pairedRatio(samples, 'pipeline', 'provider'),
      pairedProviderOverRaw: pairedRatio(samples, 'provider', 'raw'),
      ...(inprocess === undefined
        ? {}
        : {
            inprocessOverProvider: inprocess.medianTokensPerSecond / summary.provider.medianTokensPerSecond,
            pairedInprocessOverProvider: pairedRatio(samples, 'inprocess', 'provider'),
          }),
    };
    const now = new Date();
    const result: ModelResult = {
      benchmark: 'model',
      timestamp: now.toISOString(),
      smoke: options.smoke,
      settings: {
        modelFile: options.modelPath,
        maxTokens: model.maxTokens,
        contextSize: model.contextSize,
        parallel: model.parallel,
        threads: options.threads,
        temperature: model.temperature,
        topP: model.topP,
        systemPrompt: SYSTEM_PROMPT,
        prompt: PROMPT,
        rounds: options.rounds,
        warmup: options.warmup,
        flushIntervalMs: config.flushIntervalMs,
        workerConcurrency: config.workerConcurrency,
      },
      machine: { node: process.version, cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', loadBefore, loadAfter: loadavg().map(round2) },
      redis: { own: redis.pid !== null, version: redisVersion },
      workerModel,
      processes: { redis: redis.pid, gateway: gateway.pid, worker: workerPid },
      variants,
      summary: { ...summary, ...(inprocess === undefined ? {} : { inprocess }) },
      ratios,
      target: TARGET_RATIO,
      targetMet: ratios.pipelineOverRaw >= TARGET_RATIO,
      sameText: texts.size === 1,
      samples,
    };
    const name = `model-${stamp(now)}`;
    writeResults(options.outDir, name, result, modelMarkdown(result));
    log(`results: ${join(options.outDir, name)}.json and .md`);
  } finally {
    await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (shutdown.stopping) return;
    console.error(`bench:model failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
