/**
 * Command-line options of `npm run bench`, their defaults, and the size presets. Every figure
 * the harness writes names the options it ran with, so two result files can be compared.
 */
import { parseArgs } from 'node:util';
import type { TokenRate } from '../bench-model.js';
import type { Mode } from './client.js';
import { isLoopbackHost } from './processes.js';

export const PHASES = ['throughput', 'latency', 'sessions', 'streaming', 'redis', 'steady', 'connections', 'ceiling', 'fairness'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  readonly preset: 'default' | 'smoke';
  readonly phases: readonly Phase[];
  readonly modes: readonly Mode[];
  /** Closed-loop clients for throughput (and the WebSocket echo ceiling). */
  readonly clients: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly tokens: number;
  readonly rate: TokenRate;
  readonly turnsPerSession: number;
  /** Turns of each client's one session in the long-session phase. */
  readonly sessionTurns: number;
  /** Seconds of the steady-load memory phase. */
  readonly steadySeconds: number;
  /** SESSION_TTL_SECONDS of the benchmark's systems; undefined = the product's default. */
  readonly sessionTtlSeconds: number | undefined;
  readonly scaleOut: number;
  readonly latencyRates: readonly number[];
  readonly streamClients: number;
  readonly streamTokens: number;
  readonly streamRate: number;
  readonly costTurns: number;
  readonly costClients: number;
  readonly costTokens: readonly [number, number];
  readonly costRate: number;
  readonly memorySessions: number;
  readonly connections: number;
  readonly sharedSession: boolean;
  /** Pause before reading the gateway's RSS, so allocation after a burst has settled. */
  readonly settleMs: number;
  readonly ceilingRequests: number;
  readonly ceilingClients: number;
  /** WORKER_CONCURRENCY of the benchmark's workers; undefined = the product's default. */
  readonly workerConcurrency: number | undefined;
  /** Also measure throughput with the model double inside the worker (isolates the pipeline). */
  readonly pipelineRow: boolean;
  readonly flushIntervalMs: number;
  readonly turnTimeoutMs: number;
  readonly targets: readonly string[];
  readonly redisUrl: string | undefined;
  readonly gatewayPid: number | null;
  readonly keyPrefix: string;
  readonly redisPortFrom: number;
  readonly cpuProf: boolean;
  readonly outDir: string;
  /** Hard stop for the whole run: everything is torn down after this many seconds. */
  readonly maxSeconds: number;
  /** Fairness phase: ordinary users, the flood sizes run after the calm run, and their timing. */
  readonly fairUsers: number;
  readonly floodSessions: readonly number[];
  readonly fairDurationMs: number;
  readonly fairThinkMs: number;
  readonly fairAnswerMs: number;
}

const DEFAULTS: BenchOptions = {
  preset: 'default',
  phases: PHASES,
  modes: ['plain', 'streaming'],
  clients: 100,
  durationMs: 10_000,
  warmupMs: 2000,
  tokens: 50,
  rate: 'instant',
  turnsPerSession: 20,
  sessionTurns: 200,
  steadySeconds: 150,
  sessionTtlSeconds: undefined,
  scaleOut: 2,
  latencyRates: [10, 100, 1000],
  streamClients: 50,
  streamTokens: 100,
  streamRate: 200,
  costTurns: 400,
  costClients: 20,
  costTokens: [10, 1000],
  costRate: 2000,
  memorySessions: 200,
  connections: 10_000,
  sharedSession: false,
  settleMs: 2000,
  ceilingRequests: 100_000,
  ceilingClients: 50,
  workerConcurrency: undefined,
  pipelineRow: true,
  flushIntervalMs: 50,
  turnTimeoutMs: 30_000,
  targets: [],
  redisUrl: undefined,
  gatewayPid: null,
  keyPrefix: 'parley-bench:',
  redisPortFrom: 6390,
  cpuProf: false,
  outDir: 'bench/results',
  maxSeconds: 1800,
  fairUsers: 20,
  floodSessions: [1, 4],
  fairDurationMs: 10_000,
  fairThinkMs: 2000,
  fairAnswerMs: 50,
};

/** Tiny sizes for CI: proves every phase works in a few seconds; the figures mean nothing. */
const SMOKE: Partial<BenchOptions> = {
  preset: 'smoke',
  clients: 4,
  durationMs: 700,
  warmupMs: 200,
  tokens: 8,
  sessionTurns: 12,
  steadySeconds: 2,
  latencyRates: [10, 50],
  streamClients: 3,
  streamTokens: 20,
  streamRate: 200,
  costTurns: 12,
  costClients: 3,
  costTokens: [10, 100],
  costRate: 2000,
  memorySessions: 3,
  connections: 200,
  settleMs: 300,
  ceilingRequests: 2000,
  ceilingClients: 4,
  workerConcurrency: 16,
  turnTimeoutMs: 10_000,
  maxSeconds: 120,
  fairDurationMs: 1500,
};

export const HELP = `npm run bench -- [options]

Starts its own redis-server (first free port from 6390, no persistence), gateways
(src/gateway/main.ts), workers (bench/worker-main.ts) and a model server (bench/model-server.ts)
as separate processes: what users run, the OpenAI-compatible provider over HTTP in the default
configuration. A second throughput row puts the model double inside the worker, which isolates
the pipeline. Drives real WebSocket clients and writes bench/results/<timestamp>.json and .md.
Everything listens on 127.0.0.1 only and is stopped at the end, on Ctrl+C and on failure.

Size
  --smoke                  tiny sizes for CI (a few seconds; figures are meaningless)
  --clients N              closed-loop clients for throughput and the ws echo ceiling (100)
  --duration S             measured seconds per load run (10)
  --warmup S               seconds before measuring, per load run (2)
  --phases LIST            comma list of ${PHASES.join(',')} (all)
  --modes LIST             plain,streaming (both)
  --max-seconds S          hard limit for the whole run (1800)

Model double and pipeline
  --tokens K               tokens per answer in throughput/latency/memory (50; 4 characters each)
  --rate R|instant         model tokens per second in throughput runs (instant)
  --turns-per-session N    a client starts a new session after N turns; 0 = never (20)
  --session-turns N        long-session phase: each client's one session has N turns (200)
  --steady S               steady-load memory phase: seconds of load (150)
  --session-ttl S          SESSION_TTL_SECONDS of the systems (product default): shorter than
                           the steady run, Redis reaches the size its sessions keep it at
  --worker-concurrency N   WORKER_CONCURRENCY of the benchmark's workers (the product default)
  --skip-double            no second throughput row with the model double inside the worker
  --flush-interval MS      FLUSH_INTERVAL_MS, the batch window (50)
  --scale-out N            second throughput run with N gateways + N workers (2; 0 = skip)

Phases
  --latency-rates LIST     offered loads in turns/s, instant model (10,100,1000)
  --stream-clients N       streaming-overhead clients (50)
  --stream-tokens K        tokens per answer in the streaming-overhead run (100)
  --stream-rate R          model tokens/s in the streaming-overhead run (200)
  --cost-turns N           turns per Redis-cost variant (400: 20 clients x one 20-turn session)
  --cost-clients N         clients in the Redis-cost runs (20)
  --cost-tokens A,B        short and long answer of the Redis-cost comparison (10,1000)
  --cost-rate R            finite model rate of the Redis-cost comparison, tokens/s (2000)
  --memory-sessions N      sessions of 20 turns for Redis memory per session (200)
  --connections N          idle WebSocket connections on one gateway (10000)
  --shared-session         all idle connections share one session (default: one session each)
  --ceiling-requests N     requests per redis-benchmark command (100000)
  --ceiling-clients N      redis-benchmark connections, -c (50)

Running systems instead of the harness's own
  --target URL             a running gateway (repeatable); loopback addresses only
  --redis URL              its Redis (needed with --target), e.g. redis://127.0.0.1:6379 (no AUTH, no TLS)
  --gateway-pid PID        pid of the first target gateway, for its memory per connection
  --key-prefix P           the targets' KEY_PREFIX (parley-bench: for our own system)
  With targets the model cannot be reconfigured: the streaming phase and the answer-length
  comparison are skipped, and the figures are those of the target's model.

Diagnostics
  --cpu-prof               V8 CPU profiles of gateways and workers (results/<stamp>-profiles/)
  --out DIR                results folder (bench/results)
  --redis-port-from P      first port to try for the harness's redis-server (6390)
  --fair-users N            fairness: ordinary users, one address each (20)
  --flood-sessions LIST    fairness: flooding sessions (one address) of the runs after the calm one (1,4)
  --fair-duration S        fairness: measured seconds per run (10)
  --fair-think MS          fairness: mean think time of an ordinary user between messages (2000)
  --fair-answer-ms MS      fairness: the model's fixed time per answer, two slots (50)
  --help                   this text
`;

function positive(name: string, value: string, allowZero = false): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number < 0 || (!allowZero && number === 0)) throw new Error(`--${name} expects a number${allowZero ? ' >= 0' : ' > 0'} (got ${value})`);
  return number;
}

/** A whole number of at least `min` (most options 1; bench:model's --context 256). */
export function whole(name: string, value: string, min = 1): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) throw new Error(`--${name} expects a whole number >= ${min} (got ${value})`);
  return number;
}

export function wholeOr(name: string, value: string | undefined, fallback: number, min = 1): number {
  return value === undefined ? fallback : whole(name, value, min);
}

/** The parsed command line; or the help text, then exit 0 (for --help: parse returns null) or 2 (a mistake). */
export function parseOrExit<T>(parse: () => T | null, help: string): T {
  try {
    const options = parse();
    if (options === null) {
      console.log(help);
      process.exit(0);
    }
    return options;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${help}`);
    process.exit(2);
  }
}

function list<T extends string>(name: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((item) => item.trim()).filter((item) => item !== '');
  for (const item of items) if (!(allowed as readonly string[]).includes(item)) throw new Error(`--${name}: unknown "${item}"; expected ${allowed.join(', ')}`);
  return items as T[];
}

function loopbackUrl(name: string, value: string): string {
  const url = new URL(value);
  if (!isLoopbackHost(url.hostname)) throw new Error(`--${name} must point at this machine (127.0.0.1, localhost, ::1); got ${url.hostname}`);
  return value.replace(/\/$/, '');
}

const OPTION_SPEC = {
  help: { type: 'boolean' },
  smoke: { type: 'boolean' },
  clients: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  phases: { type: 'string' },
  modes: { type: 'string' },
  'max-seconds': { type: 'string' },
  tokens: { type: 'string' },
  rate: { type: 'string' },
  'turns-per-session': { type: 'string' },
  'session-turns': { type: 'string' },
  steady: { type: 'string' },
  'session-ttl': { type: 'string' },
  'worker-concurrency': { type: 'string' },
  'skip-double': { type: 'boolean' },
  'flush-interval': { type: 'string' },
  'scale-out': { type: 'string' },
  'latency-rates': { type: 'string' },
  'stream-clients': { type: 'string' },
  'stream-tokens': { type: 'string' },
  'stream-rate': { type: 'string' },
  'cost-turns': { type: 'string' },
  'cost-clients': { type: 'string' },
  'cost-tokens': { type: 'string' },
  'cost-rate': { type: 'string' },
  'memory-sessions': { type: 'string' },
  connections: { type: 'string' },
  'shared-session': { type: 'boolean' },
  'ceiling-requests': { type: 'string' },
  'ceiling-clients': { type: 'string' },
  target: { type: 'string', multiple: true },
  redis: { type: 'string' },
  'gateway-pid': { type: 'string' },
  'key-prefix': { type: 'string' },
  'cpu-prof': { type: 'boolean' },
  out: { type: 'string' },
  'redis-port-from': { type: 'string' },
  'fair-users': { type: 'string' },
  'flood-sessions': { type: 'string' },
  'fair-duration': { type: 'string' },
  'fair-think': { type: 'string' },
  'fair-answer-ms': { type: 'string' },
} as const;

/** Parses argv; returns null when --help was asked for. Throws with a clear message otherwise. */
export function parseOptions(argv: readonly string[]): BenchOptions | null {
  const { values: v } = parseArgs({ args: [...argv], options: OPTION_SPEC, strict: true, allowPositionals: false });
  if (v.help === true) return null;
  const base: BenchOptions = { ...DEFAULTS, ...(v.smoke === true ? SMOKE : {}) };
  const seconds = (name: string, value: string | undefined, fallback: number) => (value === undefined ? fallback : Math.round(positive(name, value) * 1000));
  const num = (name: string, value: string | undefined, fallback: number, allowZero = false) => wholeOr(name, value, fallback, allowZero ? 0 : 1);
  const targets = (v.target ?? []).map((url) => loopbackUrl('target', url));
  const redisUrl = v.redis === undefined ? undefined : loopbackUrl('redis', v.redis);
  if (targets.length > 0 && redisUrl === undefined) throw new Error('--target needs --redis (the Redis those gateways use)');
  const costTokens = v['cost-tokens'] === undefined ? base.costTokens : v['cost-tokens'].split(',').map((item) => whole('cost-tokens', item));
  if (costTokens.length !== 2) throw new Error('--cost-tokens expects two numbers, e.g. 10,1000');
  return {
    ...base,
    phases: v.phases === undefined ? base.phases : list('phases', v.phases, PHASES),
    modes: v.modes === undefined ? base.modes : list('modes', v.modes, ['plain', 'streaming'] as const),
    clients: num('clients', v.clients, base.clients),
    durationMs: seconds('duration', v.duration, base.durationMs),
    warmupMs: v.warmup === undefined ? base.warmupMs : Math.round(positive('warmup', v.warmup, true) * 1000),
    maxSeconds: num('max-seconds', v['max-seconds'], base.maxSeconds),
    tokens: num('tokens', v.tokens, base.tokens),
    rate: v.rate === undefined ? base.rate : v.rate === 'instant' ? 'instant' : positive('rate', v.rate),
    turnsPerSession: num('turns-per-session', v['turns-per-session'], base.turnsPerSession, true),
    sessionTurns: num('session-turns', v['session-turns'], base.sessionTurns),
    steadySeconds: num('steady', v.steady, base.steadySeconds),
    sessionTtlSeconds: v['session-ttl'] === undefined ? base.sessionTtlSeconds : whole('session-ttl', v['session-ttl']),
    workerConcurrency: v['worker-concurrency'] === undefined ? base.workerConcurrency : whole('worker-concurrency', v['worker-concurrency']),
    pipelineRow: v['skip-double'] !== true && base.pipelineRow,
    flushIntervalMs: num('flush-interval', v['flush-interval'], base.flushIntervalMs),
    scaleOut: num('scale-out', v['scale-out'], base.scaleOut, true),
    latencyRates: v['latency-rates'] === undefined ? base.latencyRates : v['latency-rates'].split(',').map((item) => positive('latency-rates', item)),
    streamClients: num('stream-clients', v['stream-clients'], base.streamClients),
    streamTokens: num('stream-tokens', v['stream-tokens'], base.streamTokens),
    streamRate: v['stream-rate'] === undefined ? base.streamRate : positive('stream-rate', v['stream-rate']),
    costTurns: num('cost-turns', v['cost-turns'], base.costTurns),
    costClients: num('cost-clients', v['cost-clients'], base.costClients),
    costTokens: [costTokens[0] ?? 10, costTokens[1] ?? 1000],
    costRate: v['cost-rate'] === undefined ? base.costRate : positive('cost-rate', v['cost-rate']),
    memorySessions: num('memory-sessions', v['memory-sessions'], base.memorySessions),
    connections: num('connections', v.connections, base.connections),
    sharedSession: v['shared-session'] === true,
    fairUsers: num('fair-users', v['fair-users'], base.fairUsers),
    floodSessions: v['flood-sessions'] === undefined ? base.floodSessions : v['flood-sessions'].split(',').map((item) => whole('flood-sessions', item)),
    fairDurationMs: seconds('fair-duration', v['fair-duration'], base.fairDurationMs),
    fairThinkMs: num('fair-think', v['fair-think'], base.fairThinkMs),
    fairAnswerMs: num('fair-answer-ms', v['fair-answer-ms'], base.fairAnswerMs),
    ceilingRequests: num('ceiling-requests', v['ceiling-requests'], base.ceilingRequests),
    ceilingClients: num('ceiling-clients', v['ceiling-clients'], base.ceilingClients),
    targets,
    redisUrl,
    gatewayPid: v['gateway-pid'] === undefined ? null : whole('gateway-pid', v['gateway-pid']),
    keyPrefix: v['key-prefix'] ?? (targets.length > 0 ? 'parley:' : base.keyPrefix),
    cpuProf: v['cpu-prof'] === true,
    outDir: v.out ?? base.outDir,
    redisPortFrom: num('redis-port-from', v['redis-port-from'], base.redisPortFrom),
  };
}
