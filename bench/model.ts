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
 * Redis: REDIS_URL when set (keys under a random prefix, removed afterwards), else a redis-server of
 * our own on a free loopback port with persistence off. Every child process is stopped on exit,
 * on error and on Ctrl-C. Results: bench/results/model-<timestamp>.json and .md.
 *
 *   npm run bench:model                        # full run (about a minute)
 *   npm run bench:model -- --smoke             # a few seconds, for CI: checks it works, not speed
 *   npm run bench:model -- --rounds 20 --max-tokens 1500 --context 2048
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { getLlama, LlamaChatSession, LlamaLogLevel, resolveChatWrapper, type LlamaContextSequence } from 'node-llama-cpp';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { loadConfig, type ModelConfig } from '../src/config/config.js';
import { STREAMING_SUBPROTOCOL } from '../src/contracts/wire.js';
import { LocalLlamaProvider } from '../src/providers/local/local-provider.js';
import type { ChatTurn } from '../src/providers/provider.js';
import { deleteKeys } from '../test/support/redis.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DEFAULT_MODEL = resolve(ROOT, '../shared/models/stories260K.gguf');
const TARGET_RATIO = 0.98;
const SYSTEM_PROMPT = 'You are Parley, a helpful and concise assistant.';
const PROMPT = 'Once upon a time';

/** 'inprocess' (with --in-process): the pipeline with gateway and worker inside this process, a diagnostic. */
type Variant = 'raw' | 'provider' | 'pipeline' | 'inprocess';

interface Options {
  readonly smoke: boolean;
  readonly rounds: number;
  readonly warmup: number;
  readonly maxTokens: number;
  readonly contextSize: number;
  readonly threads: number;
  readonly parallel: number;
  readonly modelPath: string;
  readonly outDir: string;
  /** Write V8 CPU profiles of the gateway and worker processes into this folder. */
  readonly cpuProfDir: string | undefined;
  /** Also measure the pipeline with gateway and worker in this process (Redis still in between). */
  readonly inProcess: boolean;
}

interface Sample {
  readonly round: number;
  readonly variant: Variant;
  /** Position of this variant within its round (0, 1, 2). */
  readonly position: number;
  readonly tokens: number;
  readonly chars: number;
  /** Request → end of the answer. */
  readonly totalMs: number;
  /** Request → first text. */
  readonly ttftMs: number;
  /** Request → last text (for the pipeline, the last delta; `done` may come after it). */
  readonly lastTextMs: number;
  readonly tokensPerSecond: number;
  /** Tokens after the first ÷ time from first to last text: the streaming rate without the start-up. */
  readonly decodeTokensPerSecond: number;
  /** Text pieces received (callbacks, chunks or delta frames). */
  readonly pieces: number;
  /** CPU each process used during this answer, and time its threads were runnable but waited for a CPU. */
  readonly cpu: Partial<Record<ProcessName, CpuUse>>;
}

type ProcessName = 'bench' | 'worker' | 'gateway' | 'redis';

interface CpuUse {
  readonly runMs: number;
  readonly waitMs: number;
}

interface Timed {
  text: string;
  pieces: number;
  startedAt: number;
  firstAt: number;
  lastAt: number;
  endedAt: number;
}

function usage(): string {
  return [
    'Usage: npm run bench:model -- [--smoke] [--rounds N] [--warmup N] [--max-tokens N] [--context N] [--threads N] [--parallel N] [--model PATH] [--out-dir DIR] [--in-process] [--cpu-prof DIR]',
    `  --model       GGUF file (default: LLM_MODEL_PATH, else ${DEFAULT_MODEL})`,
    '  --cpu-prof D  write V8 CPU profiles of the gateway and worker into folder D (for the bench process: node --cpu-prof)',
    '  --in-process  also measure the pipeline with gateway and worker in this process: separates the process hops from the Redis path',
    '  --smoke       tiny run for CI (2 rounds of 24 tokens): checks the harness, says nothing about speed',
    '  REDIS_URL     use this Redis instead of starting a redis-server (keys under a random prefix, removed afterwards)',
  ].join('\n');
}

function parseOptions(argv: readonly string[]): Options {
  try {
    return parseOptionsOrThrow(argv);
  } catch (error) {
    console.error(`bench:model: ${error instanceof Error ? error.message : String(error)}\n${usage()}`);
    process.exit(2);
  }
}

function parseOptionsOrThrow(argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      smoke: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      'max-tokens': { type: 'string' },
      context: { type: 'string' },
      threads: { type: 'string' },
      parallel: { type: 'string' },
      model: { type: 'string' },
      'out-dir': { type: 'string' },
      'cpu-prof': { type: 'string' },
      'in-process': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  const whole = (name: string, value: string | undefined, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min) throw new Error(`--${name} must be a whole number >= ${min} (got ${value})`);
    return parsed;
  };
  const smoke = values.smoke;
  return {
    smoke,
    rounds: whole('rounds', values.rounds, smoke ? 2 : 10, 1),
    warmup: whole('warmup', values.warmup, smoke ? 1 : 2, 0),
    maxTokens: whole('max-tokens', values['max-tokens'], smoke ? 24 : 768, 1),
    contextSize: whole('context', values.context, 1024, 256),
    threads: whole('threads', values.threads, 1, 1),
    parallel: whole('parallel', values.parallel, 2, 1),
    modelPath: resolve(values.model ?? process.env.LLM_MODEL_PATH ?? DEFAULT_MODEL),
    outDir: resolve(values['out-dir'] ?? join(ROOT, 'bench/results')),
    cpuProfDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    inProcess: values['in-process'],
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is stopped on the way out, whatever the way out is.

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** Everything it wrote (stdout and stderr), for its log lines and for error messages. */
  output: string;
}

const children: Child[] = [];
/** Set on SIGINT/SIGTERM: the cleanup then owns the exit, and errors it causes are not failures. */
let interrupted = false;

function startChild(name: string, command: string, args: readonly string[], env: Record<string, string>): Child {
  const child = spawn(command, [...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Without a listener a failed spawn (ENOENT) would be an uncaught 'error' event.
  child.on('error', () => undefined);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const managed: Child = { name, process: child, pid: child.pid, output: '' };
  const append = (data: Buffer): void => {
    managed.output += data.toString();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  children.push(managed);
  return managed;
}

function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** Resolves with the first JSON log line that matches; fails when the child exits or time runs out. */
function waitForLog(child: Child, match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolvePromise, reject) => {
    const find = (): Record<string, unknown> | undefined => {
      for (const text of child.output.split('\n')) {
        if (!text.startsWith('{')) continue;
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (match(line)) return line;
        } catch {
          // a partial line; it is complete on the next read
        }
      }
      return undefined;
    };
    const finish = (error?: Error, line?: Record<string, unknown>): void => {
      clearTimeout(timer);
      child.process.stdout?.off('data', check);
      child.process.off('exit', onExit);
      if (error !== undefined) reject(error);
      else if (line !== undefined) resolvePromise(line);
    };
    const check = (): void => {
      const line = find();
      if (line !== undefined) finish(undefined, line);
    };
    const onExit = (code: number | null): void => finish(new Error(`${child.name} exited (${code}) before it was ready:\n${child.output.slice(-3000)}`));
    const timer = setTimeout(() => finish(new Error(`${child.name} was not ready within ${timeoutMs} ms:\n${child.output.slice(-3000)}`)), timeoutMs);
    child.process.stdout?.on('data', check);
    child.process.once('exit', onExit);
    check();
  });
}

async function stopChild(child: Child, graceMs = 8000): Promise<void> {
  if (!isRunning(child)) return;
  const exited = new Promise<void>((resolvePromise) => child.process.once('exit', () => resolvePromise()));
  child.process.kill('SIGTERM');
  const timer = setTimeout(() => child.process.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// The synchronous last resort: 'exit' handlers cannot wait for a graceful stop.
process.on('exit', () => {
  for (const child of children) if (isRunning(child)) child.process.kill('SIGKILL');
});

/** The environment of a child: ours minus every Parley setting, plus exactly the ones given. */
function childEnv(settings: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(REDIS_|LLM_|KEY_PREFIX$|PORT$|HOST$|WORKER_|FLUSH_|LOG_|MODELS_DIR$|NODE_OPTIONS$)/.test(key)) env[key] = value;
  }
  return { ...env, ...settings };
}

function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}

/**
 * Run time and run-queue wait of all threads of a process, in ms (Linux: /proc/PID/task/TID/schedstat
 * holds nanoseconds on a CPU, nanoseconds runnable but waiting, timeslices). Undefined elsewhere.
 */
function schedstat(pid: number): CpuUse | undefined {
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return undefined;
  let run = 0;
  let wait = 0;
  for (const tid of readdirSync(dir)) {
    try {
      const [onCpu = '0', waiting = '0'] = readFileSync(`${dir}/${tid}/schedstat`, 'utf8').trim().split(/\s+/);
      run += Number(onCpu);
      wait += Number(waiting);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return { runMs: run / 1e6, waitMs: wait / 1e6 };
}

type CpuSnapshot = Partial<Record<ProcessName, CpuUse>>;

function cpuSnapshot(pids: Partial<Record<ProcessName, number>>): CpuSnapshot {
  const snapshot: CpuSnapshot = {};
  for (const [name, pid] of Object.entries(pids) as Array<[ProcessName, number | undefined]>) {
    const use = pid === undefined ? undefined : schedstat(pid);
    if (use !== undefined) snapshot[name] = use;
  }
  return snapshot;
}

function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  const delta: CpuSnapshot = {};
  for (const [name, end] of Object.entries(after) as Array<[ProcessName, CpuUse]>) {
    const start = before[name];
    if (start !== undefined) delta[name] = { runMs: round2(end.runMs - start.runMs), waitMs: round2(end.waitMs - start.waitMs) };
  }
  return delta;
}

// ---------------------------------------------------------------------------------------------
// Redis

interface RedisHandle {
  readonly url: string;
  readonly own: boolean;
  readonly version: string;
  readonly child: Child | undefined;
}

async function pingRedis(url: string): Promise<string> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1000 } });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const info = await client.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } finally {
    client.destroy();
  }
}

async function startRedis(scratch: string): Promise<RedisHandle> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && external.trim() !== '') return { url: external, own: false, version: await pingRedis(external), child: undefined };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const port = await freePort();
    const dir = join(scratch, `redis-${port}`);
    mkdirSync(dir, { recursive: true });
    let child: Child;
    try {
      child = startChild('redis-server', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], childEnv({}));
    } catch (error) {
      throw new Error('could not run redis-server (is it installed?): install Redis, or set REDIS_URL to a Redis to use', { cause: error });
    }
    const url = `redis://127.0.0.1:${port}`;
    // Another process may take the port between freePort() and redis-server binding it: try another.
    for (let tries = 0; tries < 50 && isRunning(child); tries += 1) {
      try {
        return { url, own: true, version: await pingRedis(url), child };
      } catch (error) {
        lastError = error;
        await new Promise((wake) => setTimeout(wake, 100));
      }
    }
    lastError = new Error(`redis-server on port ${port} did not answer: ${child.output.slice(-1000) || String(lastError)}`, { cause: lastError });
    await stopChild(child, 1000);
  }
  throw new Error(`could not start redis-server: ${String(lastError)}`, { cause: lastError });
}

// ---------------------------------------------------------------------------------------------
// The three ways to the same answer

const never = new AbortController().signal;

function measure(run: (onText: (text: string) => void) => Promise<void>): Promise<Timed> {
  const timed: Timed = { text: '', pieces: 0, startedAt: performance.now(), firstAt: 0, lastAt: 0, endedAt: 0 };
  return run((text) => {
    if (text === '') return;
    const now = performance.now();
    if (timed.pieces === 0) timed.firstAt = now;
    timed.lastAt = now;
    timed.text += text;
    timed.pieces += 1;
  }).then(() => {
    timed.endedAt = performance.now();
    return timed;
  });
}

interface RawModel {
  run(onText: (text: string) => void): Promise<void>;
  close(): Promise<void>;
}

/** node-llama-cpp alone: one context like the provider's, a LlamaChatSession per request. */
async function loadRaw(config: ModelConfig): Promise<RawModel> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: (level, message) => {
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) console.error(`llama.cpp: ${message.trim()}`);
  } });
  const model = await llama.loadModel({ modelPath: config.modelPath ?? '' });
  const context = await model.createContext({ contextSize: Math.min(config.contextSize, model.trainContextSize), sequences: config.parallel, threads: config.threads });
  const chatWrapper = resolveChatWrapper(model);
  const sequence: LlamaContextSequence = context.getSequence();
  return {
    async run(onText) {
      // As the provider does: a new session on a kept sequence, so the cached prompt prefix is reused.
      const session = new LlamaChatSession({ contextSequence: sequence, chatWrapper });
      session.setChatHistory([{ type: 'system', text: config.systemPrompt }]);
      await session.prompt(PROMPT, { onTextChunk: onText, maxTokens: config.maxTokens, temperature: config.temperature, topP: config.topP });
      session.dispose();
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

async function runProvider(provider: LocalLlamaProvider, onText: (text: string) => void): Promise<void> {
  const turns: ChatTurn[] = [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: PROMPT },
  ];
  for await (const chunk of provider.generate({ turns, signal: never })) onText(chunk);
}

/** One turn through the gateway: a new session (outside the timing), then message → done. */
async function runPipeline(gatewayUrl: string): Promise<Timed> {
  const response = await fetch(`${gatewayUrl}/token?name=bench`, { method: 'POST' });
  if (response.status !== 200) throw new Error(`POST /token answered ${response.status}`);
  const { token } = (await response.json()) as { token: string };
  const ws = new WebSocket(`${gatewayUrl.replace(/^http/, 'ws')}/chat?token=${encodeURIComponent(token)}`, [STREAMING_SUBPROTOCOL]);
  try {
    await new Promise<void>((resolvePromise, reject) => {
      ws.once('error', reject);
      ws.on('message', function onReady(data) {
        if ((JSON.parse(String(data)) as { type?: string }).type !== 'ready') return;
        ws.off('message', onReady);
        resolvePromise();
      });
    });
    let onText: (text: string) => void = () => undefined;
    const finished = new Promise<void>((resolvePromise, reject) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { type?: string; seq?: number; text?: string; code?: string; message?: string };
        if (frame.type === 'delta' && typeof frame.text === 'string') onText(frame.text);
        else if (frame.type === 'done') resolvePromise();
        else if (frame.type === 'error' || frame.type === 'stopped') reject(new Error(`the pipeline answered ${frame.type}: ${frame.code ?? ''} ${frame.message ?? ''}`));
      });
      ws.once('close', (code) => reject(new Error(`the socket closed (${code}) before done`)));
    });
    return await measure((receive) => {
      onText = receive;
      ws.send(JSON.stringify({ type: 'message', text: PROMPT }));
      return finished;
    });
  } finally {
    ws.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Statistics and reports

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

const round2 = (value: number): number => Math.round(value * 100) / 100;

function toSample(round: number, variant: Variant, position: number, timed: Timed, cpu: CpuSnapshot, countTokens: (text: string) => number): Sample {
  const tokens = countTokens(timed.text);
  const totalMs = timed.endedAt - timed.startedAt;
  const streamMs = timed.lastAt - timed.firstAt;
  return {
    round,
    variant,
    position,
    tokens,
    chars: timed.text.length,
    totalMs: round2(totalMs),
    ttftMs: round2(timed.firstAt - timed.startedAt),
    lastTextMs: round2(timed.lastAt - timed.startedAt),
    tokensPerSecond: round2(tokens / (totalMs / 1000)),
    decodeTokensPerSecond: round2(streamMs > 0 ? (tokens - 1) / (streamMs / 1000) : Number.NaN),
    pieces: timed.pieces,
    cpu,
  };
}

interface VariantSummary {
  readonly rounds: number;
  readonly tokens: number;
  readonly medianTokensPerSecond: number;
  readonly medianDecodeTokensPerSecond: number;
  readonly medianTotalMs: number;
  readonly medianTtftMs: number;
  /** Last text → end of the answer (the pipeline's `done` after its last delta). */
  readonly medianTailMs: number;
  readonly medianPieces: number;
  /** Median CPU per answer of each process (see Sample.cpu). */
  readonly cpu: Partial<Record<ProcessName, CpuUse>>;
}

function summarize(samples: readonly Sample[], variant: Variant): VariantSummary {
  const mine = samples.filter((sample) => sample.variant === variant);
  return {
    rounds: mine.length,
    tokens: median(mine.map((sample) => sample.tokens)),
    medianTokensPerSecond: round2(median(mine.map((sample) => sample.tokensPerSecond))),
    medianDecodeTokensPerSecond: round2(median(mine.map((sample) => sample.decodeTokensPerSecond))),
    medianTotalMs: round2(median(mine.map((sample) => sample.totalMs))),
    medianTtftMs: round2(median(mine.map((sample) => sample.ttftMs))),
    medianTailMs: round2(median(mine.map((sample) => sample.totalMs - sample.lastTextMs))),
    medianPieces: median(mine.map((sample) => sample.pieces)),
    cpu: Object.fromEntries(
      PROCESS_NAMES.filter((name) => mine.some((sample) => sample.cpu[name] !== undefined)).map((name) => [
        name,
        {
          runMs: round2(median(mine.map((sample) => sample.cpu[name]?.runMs ?? 0))),
          waitMs: round2(median(mine.map((sample) => sample.cpu[name]?.waitMs ?? 0))),
        },
      ]),
    ),
  };
}

const PROCESS_NAMES: readonly ProcessName[] = ['bench', 'worker', 'gateway', 'redis'];

/** Median over rounds of (a's rate ÷ b's rate in the same round): pairs cancel slow drifts. */
function pairedRatio(samples: readonly Sample[], a: Variant, b: Variant): number {
  const ratios: number[] = [];
  for (const sample of samples) {
    if (sample.variant !== a) continue;
    const other = samples.find((candidate) => candidate.variant === b && candidate.round === sample.round);
    if (other !== undefined) ratios.push(sample.tokensPerSecond / other.tokensPerSecond);
  }
  return median(ratios);
}

const pct = (value: number): string => `${(value * 100).toFixed(1)} %`;

function markdown(result: BenchResult): string {
  const { summary, ratios, settings } = result;
  const row = (variant: Variant, label: string): string => {
    const s = summary[variant];
    if (s === undefined) return '';
    return `| ${label} | ${s.medianTokensPerSecond.toFixed(1)} | ${s.medianDecodeTokensPerSecond.toFixed(1)} | ${s.medianTotalMs.toFixed(1)} | ${s.medianTtftMs.toFixed(2)} | ${s.medianTailMs.toFixed(2)} | ${s.tokens} | ${s.medianPieces} |`;
  };
  return [
    `# bench:model — ${result.timestamp}${result.smoke ? ' (smoke run: not a measurement)' : ''}`,
    '',
    `Model ${settings.modelFile} (${settings.contextSize}-token context, ${settings.parallel} sequences, ${settings.threads} thread(s), temperature ${settings.temperature}, top-p ${settings.topP}), ` +
      `max ${settings.maxTokens} new tokens, prompt ${JSON.stringify(settings.prompt)}; ${settings.rounds} rounds (+${settings.warmup} warm-up) interleaved with rotating order. ` +
      `Redis ${result.redis.version} (${result.redis.own ? 'own redis-server, no persistence' : 'REDIS_URL'}); worker flush interval ${settings.flushIntervalMs} ms. ` +
      `Machine: ${result.machine.cpus} × ${result.machine.cpuModel}, load ${result.machine.loadBefore.join('/')} → ${result.machine.loadAfter.join('/')}, Node ${result.machine.node}.`,
    '',
    '| variant | tokens/s (median) | streaming tokens/s | total ms | time to first text ms | tail ms | tokens | pieces |',
    '|---|---|---|---|---|---|---|---|',
    row('raw', 'direct: node-llama-cpp LlamaChatSession'),
    row('provider', 'direct: LocalLlamaProvider.generate'),
    row('pipeline', 'pipeline: WebSocket → gateway → Redis → worker → Redis → gateway → WebSocket'),
    ...(summary.inprocess === undefined ? [] : [row('inprocess', 'diagnostic: the same pipeline with gateway and worker in the bench process')]),
    '',
    `**pipeline ÷ direct (node-llama-cpp): ${pct(ratios.pipelineOverRaw)}** (median of per-round ratios ${pct(ratios.pairedPipelineOverRaw)}); target ≥ ${pct(TARGET_RATIO)}: ${result.targetMet ? 'met' : 'NOT met'}.`,
    `pipeline ÷ LocalLlamaProvider: ${pct(ratios.pipelineOverProvider)} (paired ${pct(ratios.pairedPipelineOverProvider)}); LocalLlamaProvider ÷ node-llama-cpp: ${pct(ratios.providerOverRaw)} (paired ${pct(ratios.pairedProviderOverRaw)}).`,
    ...(ratios.inprocessOverProvider === undefined ? [] : [`in-process pipeline ÷ LocalLlamaProvider: ${pct(ratios.inprocessOverProvider)} (paired ${pct(ratios.pairedInprocessOverProvider ?? Number.NaN)}).`]),
    `Every variant produced the same text: ${result.sameText ? 'yes' : 'NO'}.`,
    '',
    ...cpuTable(result),
    'tokens/s = tokens of the received text (model tokenizer) ÷ (request → end of answer). "streaming tokens/s" leaves out the time to the first text. ' +
      'tail = last text → end (for the pipeline: last delta → done frame).',
    '',
  ].join('\n');
}

function cpuTable(result: BenchResult): string[] {
  const names = PROCESS_NAMES.filter((name) => result.variants.some((variant) => result.summary[variant]?.cpu[name] !== undefined));
  if (names.length === 0) return [];
  const cell = (variant: Variant, name: ProcessName): string => {
    const use = result.summary[variant]?.cpu[name];
    return use === undefined ? '–' : `${use.runMs.toFixed(1)} / ${use.waitMs.toFixed(1)}`;
  };
  return [
    'CPU per answer, median ms on a CPU / ms runnable but waiting for one (all threads; /proc schedstat). The bench process is the client in the pipeline rounds.',
    '',
    `| variant | ${names.join(' | ')} |`,
    `|---|${names.map(() => '---').join('|')}|`,
    ...result.variants.map((variant) => `| ${variant} | ${names.map((name) => cell(variant, name)).join(' | ')} |`),
    '',
  ];
}

interface BenchResult {
  readonly benchmark: 'model';
  readonly timestamp: string;
  readonly smoke: boolean;
  readonly settings: {
    readonly modelFile: string;
    readonly maxTokens: number;
    readonly contextSize: number;
    readonly parallel: number;
    readonly threads: number;
    readonly temperature: number;
    readonly topP: number;
    readonly systemPrompt: string;
    readonly prompt: string;
    readonly rounds: number;
    readonly warmup: number;
    readonly flushIntervalMs: number;
    readonly workerConcurrency: number;
  };
  readonly machine: { readonly node: string; readonly cpus: number; readonly cpuModel: string; readonly loadBefore: number[]; readonly loadAfter: number[] };
  readonly redis: { readonly own: boolean; readonly version: string };
  /** The worker's own "local model loaded" log line: proof it ran the same model the same way. */
  readonly workerModel: Record<string, unknown>;
  readonly processes: { readonly redis: number | null; readonly gateway: number; readonly worker: number };
  readonly variants: readonly Variant[];
  readonly summary: Partial<Record<Variant, VariantSummary>>;
  readonly ratios: {
    readonly pipelineOverRaw: number;
    readonly pipelineOverProvider: number;
    readonly providerOverRaw: number;
    readonly pairedPipelineOverRaw: number;
    readonly pairedPipelineOverProvider: number;
    readonly pairedProviderOverRaw: number;
    readonly inprocessOverProvider?: number;
    readonly pairedInprocessOverProvider?: number;
  };
  readonly target: number;
  readonly targetMet: boolean;
  readonly sameText: boolean;
  readonly samples: readonly Sample[];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!existsSync(options.modelPath)) {
    console.error(`bench:model: model file not found at ${options.modelPath}. Pass --model PATH or set LLM_MODEL_PATH to a .gguf file.`);
    return 2;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'parley-bench-model-'));
  const prefix = `bench-model:${randomBytes(4).toString('hex')}:`;
  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
    rmSync(scratch, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: stopping everything…`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

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
    const log = (message: string): void => console.log(`[bench:model] ${message}`);
    const loadBefore = loadavg().map(round2);

    const redis = await startRedis(scratch);
    if (redis.child !== undefined) {
      const child = redis.child;
      cleanups.push(() => stopChild(child, 3000));
    } else {
      cleanups.push(() => deleteKeys(prefix, redis.url));
    }
    log(`Redis ${redis.version} at ${redis.url} (${redis.own ? 'own redis-server' : 'REDIS_URL'})`);

    const common = { ...settings, REDIS_URL: redis.url, KEY_PREFIX: prefix, LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
    const tsx = [...(options.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfDir]), '--import', 'tsx'];
    const gateway = startChild('gateway', process.execPath, [...tsx, 'src/gateway/main.ts'], childEnv({ ...common, HOST: '127.0.0.1', PORT: '0' }));
    cleanups.push(() => stopChild(gateway));
    const worker = startChild('worker', process.execPath, [...tsx, 'src/worker/main.ts'], childEnv(common));
    cleanups.push(() => stopChild(worker));

    const raw = await loadRaw(model);
    cleanups.push(() => raw.close());
    const provider = new LocalLlamaProvider(model, { info: () => undefined, warn: () => undefined, error: (details, message) => console.error(message, details) }, { gpu: false });
    cleanups.push(() => provider.close());
    await provider.start();

    const variants: Variant[] = ['raw', 'provider', 'pipeline'];
    let inProcessUrl = '';
    if (options.inProcess) {
      const { startGateway } = await import('../src/gateway/server.js');
      const { startWorker } = await import('../src/worker/worker.js');
      const { createLogger } = await import('../src/shared/logger.js');
      const inConfig = loadConfig({ ...settings, REDIS_URL: redis.url, KEY_PREFIX: `${prefix}in:`, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn' });
      const logger = createLogger('bench-in-process', 'warn');
      const inProvider = new LocalLlamaProvider(inConfig.model, logger, { gpu: false });
      const inWorker = await startWorker(inConfig, inProvider, logger);
      cleanups.push(() => inWorker.stop());
      const inGateway = await startGateway(inConfig, logger);
      cleanups.push(() => inGateway.stop());
      inProcessUrl = inGateway.url;
      variants.push('inprocess');
    }

    const listening = await waitForLog(gateway, (line) => line.msg === 'gateway listening', 60_000);
    const gatewayUrl = String(listening.url);
    const workerModel = await waitForLog(worker, (line) => line.msg === 'local model loaded', 60_000);
    await waitForLog(worker, (line) => line.msg === 'worker ready', 60_000);
    if (workerModel.gpu !== false) log(`warning: the worker runs on gpu=${String(workerModel.gpu)}, the direct variants on the CPU`);
    log(`gateway ${gatewayUrl}, worker ready (${String(workerModel.contextSize)}-token context, ${String(workerModel.threads)} thread(s), ${String(workerModel.parallel)} sequences)`);

    const pids: Partial<Record<ProcessName, number>> = { bench: process.pid, worker: worker.pid, gateway: gateway.pid, redis: redis.child?.pid };
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
        const timed =
          variant === 'raw'
            ? await measure((onText) => raw.run(onText))
            : variant === 'provider'
              ? await measure((onText) => runProvider(provider, onText))
              : await runPipeline(variant === 'pipeline' ? gatewayUrl : inProcessUrl);
        const cpu = cpuDelta(cpuBefore, cpuSnapshot(pids));
        const sample = toSample(round, variant, position, timed, cpu, (text) => provider.countTokens(text));
        texts.add(timed.text);
        line.push(`${variant} ${sample.tokensPerSecond.toFixed(0)} tok/s (${sample.tokens} tokens, ${sample.totalMs.toFixed(0)} ms)`);
        if (round >= 0) samples.push(sample);
      }
      log(`${round < 0 ? 'warm-up' : `round ${round + 1}/${options.rounds}`}: ${line.join(', ')}`);
    }

    const summary = { raw: summarize(samples, 'raw'), provider: summarize(samples, 'provider'), pipeline: summarize(samples, 'pipeline') };
    const inprocess = options.inProcess ? summarize(samples, 'inprocess') : undefined;
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
    const timestamp = new Date().toISOString();
    const cpuList = cpus();
    const result: BenchResult = {
      benchmark: 'model',
      timestamp,
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
      machine: { node: process.version, cpus: availableParallelism(), cpuModel: cpuList[0]?.model ?? 'unknown', loadBefore, loadAfter: loadavg().map(round2) },
      redis: { own: redis.own, version: redis.version },
      workerModel,
      processes: { redis: redis.child?.pid ?? null, gateway: gateway.pid, worker: worker.pid },
      variants,
      summary: { ...summary, ...(inprocess === undefined ? {} : { inprocess }) },
      ratios,
      target: TARGET_RATIO,
      targetMet: ratios.pipelineOverRaw >= TARGET_RATIO,
      sameText: texts.size === 1,
      samples,
    };
    mkdirSync(options.outDir, { recursive: true });
    const base = join(options.outDir, `model-${timestamp.replace(/[:.]/g, '-')}`);
    writeFileSync(`${base}.json`, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(`${base}.md`, markdown(result));
    console.log(`\n${markdown(result)}`);
    log(`results: ${base}.json and ${base}.md`);
    return 0;
  } finally {
    await cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (interrupted) return;
    console.error(`bench:model failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
