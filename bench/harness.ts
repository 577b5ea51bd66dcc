/**
 * The benchmark run: starts (or targets) the system, runs the selected phases in an order that
 * keeps them from disturbing each other, and returns one result object. bench/run.ts is the
 * command line around it; the smoke test runs that command.
 *
 * Order: with 1 gateway + 1 worker on the real path (model over HTTP): throughput, latency,
 * long sessions, streaming overhead, Redis cost and memory, steady-load memory, idle connections; then throughput with the model
 * double inside the worker (the pipeline alone); then the scale-out throughput run (N + N);
 * then the ceilings, with nothing else running.
 */
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { BenchModelSettings } from './bench-model.js';
import type { PhaseContext, StackContext } from './lib/context.js';
import type { BenchOptions, Phase } from './lib/options.js';
import { runConnections, type ConnectionsResult } from './lib/phase-connections.js';
import { runFairness, type FairnessResult } from './lib/phase-fairness.js';
import { runRedisCeiling, runWebSocketCeiling, type RedisCeiling, type WebSocketCeiling } from './lib/phase-ceiling.js';
import { runLatency, runStreamingOverhead, runThroughput, type LatencyRun, type StreamingResult, type ThroughputRun } from './lib/phase-load.js';
import { runLongSessions, runSteady, type LongSessionsResult, type SteadyResult } from './lib/phase-sessions.js';
import { lengthCheck, measureCost, measureMemory, type CostResult, type CostVariant, type LengthCheck, type MemoryResult } from './lib/phase-redis.js';
import type { ProcessGroup } from './lib/processes.js';
import { summarizeProfiles, type ProfileSummary } from './lib/profile.js';
import { scriptNamesBySha, snapshot } from './lib/redis-observe.js';
import { RawRedis } from './lib/resp.js';
import { redisEndpoint, startStack, targetStack, type Stack } from './lib/stack.js';
import { round3 } from './lib/stats.js';
import { evaluateTargets, type TargetCheck } from './lib/targets.js';

export interface SlowlogEntry {
  readonly durationUs: number;
  readonly command: string;
}

export interface BenchResult {
  readonly meta: {
    startedAt: string;
    finishedAt: string;
    seconds: number;
    command: string;
    system: 'own' | 'target';
    machine: { cpus: number; cpuModel: string; memoryGiB: number; kernel: string; node: string; loadAverageAtStart: number[]; redis: string };
    options: BenchOptions;
    /** The Redis the run used; own = started (and stopped) by the harness. */
    redis: { host: string; port: number; own: boolean };
  };
  readonly throughput: ThroughputRun[];
  readonly latency: LatencyRun[];
  readonly streaming: StreamingResult | null;
  readonly longSessions: LongSessionsResult | null;
  readonly steady: SteadyResult | null;
  readonly redis: { cost: CostResult[]; lengthChecks: LengthCheck[]; memory: MemoryResult | null; slowlog: SlowlogEntry[] } | null;
  readonly connections: ConnectionsResult | null;
  readonly ceiling: {
    redis: RedisCeiling | null;
    /** Turns/s if Redis had a whole core: throughput / Redis CPU share in the 1 + 1 plain run. */
    redisCpuBasedTurnsPerSec: number | null;
    websocket: WebSocketCeiling | null;
    /** Best 1 + 1 throughput of the real path in this run (turns/s) and its share of each ceiling. */
    ourTurnsPerSec: number | null;
    percentOfRedis: number | null;
    percentOfWebSocket: number | null;
  } | null;
  readonly fairness: FairnessResult | null;
  readonly targets: TargetCheck[];
  readonly profiles: ProfileSummary[];
  readonly skipped: Partial<Record<Phase | 'scale-out', string>>;
}

export interface RunHooks {
  readonly log: (line: string) => void;
  readonly signal: AbortSignal;
  /** Folder for child logs and profiles of this run. */
  readonly workDir: string;
  readonly command: string;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function want(options: BenchOptions, phase: Phase): boolean {
  return options.phases.includes(phase);
}

async function slowlog(admin: RawRedis): Promise<SlowlogEntry[]> {
  const reply = await admin.command('SLOWLOG', 'GET', '128').catch(() => []);
  await admin.command('SLOWLOG', 'RESET').catch(() => undefined);
  if (!Array.isArray(reply)) return [];
  const names = scriptNamesBySha();
  return reply.flatMap((entry) => {
    if (!Array.isArray(entry)) return [];
    const args = Array.isArray(entry[3]) ? entry[3].map(String) : [];
    // Name scripts, not their SHA; keys are left out (they only carry a session token).
    const command = args[0]?.toUpperCase() === 'EVALSHA' ? `EVALSHA ${names.get(args[1] ?? '') ?? args[1] ?? ''}` : (args[0] ?? '').toUpperCase();
    return [{ durationUs: Number(entry[2]), command }];
  }).sort((a, b) => b.durationUs - a.durationUs);
}

function costVariants(options: BenchOptions, base: BenchModelSettings): CostVariant[] {
  const [short, long] = options.costTokens;
  return [
    { label: `baseline: ${base.tokens} tokens, ${base.rate === 'instant' ? 'instant' : `${base.rate} tokens/s`}`, tokens: base.tokens, rate: base.rate },
    { label: `${short} tokens, instant`, tokens: short, rate: 'instant' },
    { label: `${long} tokens, instant`, tokens: long, rate: 'instant' },
    { label: `${short} tokens, ${options.costRate} tokens/s`, tokens: short, rate: options.costRate },
    { label: `${long} tokens, ${options.costRate} tokens/s`, tokens: long, rate: options.costRate },
  ];
}

/** The phases that need the 1 + 1 system, in order. */
async function singleStackPhases(ctx: StackContext, result: Mutable<BenchResult>): Promise<void> {
  const { options } = ctx;
  const workers = ctx.stack.managedWorkers ? ctx.stack.workerPids.length : null;
  if (want(options, 'throughput')) for (const mode of options.modes) result.throughput.push(await runThroughput(ctx, mode, workers));
  if (want(options, 'latency')) {
    for (const mode of options.modes) for (const rate of options.latencyRates) result.latency.push(await runLatency(ctx, mode, rate));
  }
  if (want(options, 'sessions')) result.longSessions = await runLongSessions(ctx);
  const slow = await slowlog(ctx.admin);
  if (want(options, 'streaming')) {
    if (ctx.stack.managedWorkers) result.streaming = await runStreamingOverhead(ctx);
    else result.skipped.streaming = 'needs the harness own workers (the yield times come from the model double)';
  }
  if (want(options, 'redis') || want(options, 'ceiling')) {
    const variants = ctx.stack.managedWorkers && want(options, 'redis') ? costVariants(options, ctx.baseModel) : costVariants(options, ctx.baseModel).slice(0, 1);
    const cost: CostResult[] = [];
    for (const variant of variants) cost.push(await measureCost(ctx, variant));
    const [, shortInstant, longInstant, shortRate, longRate] = cost;
    const lengthChecks = [shortInstant && longInstant ? lengthCheck(shortInstant, longInstant) : undefined, shortRate && longRate ? lengthCheck(shortRate, longRate) : undefined];
    const memory = want(options, 'redis') ? await measureMemory(ctx) : null;
    result.redis = { cost, lengthChecks: lengthChecks.filter((check): check is LengthCheck => check !== undefined), memory, slowlog: slow };
  }
  if (want(options, 'steady')) result.steady = await runSteady(ctx);
  if (want(options, 'connections')) result.connections = await runConnections(ctx);
}

async function scaleOutPhase(ctx: PhaseContext, result: Mutable<BenchResult>, stack: Stack): Promise<void> {
  const scaled: StackContext = { ...ctx, stack };
  for (const mode of ctx.options.modes) result.throughput.push(await runThroughput(scaled, mode, stack.workerPids.length));
}

async function ceilingPhase(ctx: PhaseContext, result: Mutable<BenchResult>): Promise<void> {
  const baseline = result.redis?.cost[0];
  const redis = baseline === undefined ? null : await runRedisCeiling(ctx, baseline.roundTripsByCommand);
  const websocket = await runWebSocketCeiling(ctx);
  // The real path's rows: the double in the worker is not what users run.
  const single = result.throughput.filter((run) => run.gateways === 1 && run.model !== 'double');
  const best = single.length === 0 ? null : Math.max(...single.map((run) => run.turnsPerSec));
  const plain = single.find((run) => run.mode === 'plain') ?? single[0];
  const redisShare = plain?.cpuPercent.redis;
  result.ceiling = {
    redis,
    redisCpuBasedTurnsPerSec: plain === undefined || redisShare === undefined || redisShare <= 0 ? null : round3(plain.turnsPerSec / (redisShare / 100)),
    websocket,
    ourTurnsPerSec: best,
    percentOfRedis: best === null || redis === null || redis.turnsPerSec === 0 ? null : round3((best / redis.turnsPerSec) * 100),
    percentOfWebSocket: best === null || websocket.roundTripsPerSec === 0 ? null : round3((best / websocket.roundTripsPerSec) * 100),
  };
}

function machine(redisVersion: string): BenchResult['meta']['machine'] {
  const cpuList = cpus();
  return {
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model ?? 'unknown',
    memoryGiB: round3(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadavg().map(round3),
    redis: redisVersion,
  };
}

export async function runBenchmark(options: BenchOptions, hooks: RunHooks, group: ProcessGroup): Promise<BenchResult> {
  const startedAt = new Date();
  const own = options.targets.length === 0;
  const redis = await redisEndpoint(group, options.redisUrl, options.redisPortFrom);
  const admin = await RawRedis.connect(redis.host, redis.port);
  const baseModel: BenchModelSettings = { tokens: options.tokens, rate: options.rate, recordYields: false };
  const ctx: PhaseContext = { options, redis, admin, group, signal: hooks.signal, tag: startedAt.getTime().toString(36), baseModel, log: hooks.log };
  const profileDir = options.cpuProf ? join(hooks.workDir, 'profiles') : undefined;
  const stackSettings = { redis, keyPrefix: options.keyPrefix, model: baseModel, modelPath: 'http' as const, workerConcurrency: options.workerConcurrency, flushIntervalMs: options.flushIntervalMs, sessionTtlSeconds: options.sessionTtlSeconds, cpuProfDir: profileDir };
  const result: Mutable<BenchResult> = {
    meta: { startedAt: startedAt.toISOString(), finishedAt: '', seconds: 0, command: hooks.command, system: own ? 'own' : 'target', machine: machine((await snapshot(admin)).version), options, redis: { host: redis.host, port: redis.port, own: redis.pid !== null } },
    throughput: [],
    latency: [],
    streaming: null,
    longSessions: null,
    steady: null,
    redis: null,
    connections: null,
    ceiling: null,
    fairness: null,
    targets: [],
    profiles: [],
    skipped: {},
  };
  try {
    // Every other phase needs the 1 + 1 system: the ceiling takes its command mix from a turn measured there.
    if (options.phases.some((phase) => phase !== 'fairness')) {
      hooks.log(own ? 'starting 1 gateway + 1 worker' : `using ${options.targets.join(', ')}`);
      const stack = own ? await startStack(group, { ...stackSettings, label: '1x1', gateways: 1, workers: 1 }) : targetStack(options.targets, options.gatewayPid);
      try {
        await singleStackPhases({ ...ctx, stack }, result);
      } finally {
        await stack.stop();
      }
    }
    if (want(options, 'throughput') && options.pipelineRow && own) {
      hooks.log('starting 1 gateway + 1 worker with the model double inside the worker');
      const stack = await startStack(group, { ...stackSettings, modelPath: 'double', label: '1x1-double', gateways: 1, workers: 1 });
      try {
        for (const mode of options.modes) result.throughput.push(await runThroughput({ ...ctx, stack }, mode, 1));
      } finally {
        await stack.stop();
      }
    }
    if (want(options, 'throughput') && options.scaleOut > 1 && own) {
      hooks.log(`starting ${options.scaleOut} gateways + ${options.scaleOut} workers`);
      const stack = await startStack(group, { ...stackSettings, label: `${options.scaleOut}x${options.scaleOut}`, gateways: options.scaleOut, workers: options.scaleOut });
      try {
        await scaleOutPhase(ctx, result, stack);
      } finally {
        await stack.stop();
      }
    } else if (want(options, 'throughput') && !own) result.skipped['scale-out'] = 'targets: the harness does not start processes';
    if (want(options, 'ceiling')) await ceilingPhase(ctx, result);
    if (want(options, 'fairness')) {
      if (own) result.fairness = await runFairness(ctx);
      else result.skipped.fairness = 'needs the harness own workers (a model of fixed speed, a per-address cap)';
    }
  } finally {
    admin.close();
  }
  if (profileDir !== undefined) result.profiles = summarizeProfiles(profileDir);
  result.targets = evaluateTargets(result);
  const finishedAt = new Date();
  result.meta.finishedAt = finishedAt.toISOString();
  result.meta.seconds = round3((finishedAt.getTime() - startedAt.getTime()) / 1000);
  return result;
}
