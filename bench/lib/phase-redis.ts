/**
 * Redis cost of a turn: commands (from INFO commandstats deltas, and a MONITOR tally that tells
 * round trips from commands run inside scripts), bytes in and out (total_net_*_bytes deltas
 * minus the harness's own traffic, which it counts), Redis CPU per turn; for answers of different
 * lengths and model rates, to show that the command count grows with batches, not tokens. Also
 * Redis memory per stored session of 20 turns.
 */
import { sessionKeys } from '../../src/contracts/keys.js';
import type { BenchModelSettings, TokenRate } from '../bench-model.js';
import type { StackContext } from './context.js';
import { closedLoop } from './load.js';
import { sleep } from './processes.js';
import { callDelta, snapshot, startMonitor, type Anatomy } from './redis-observe.js';
import type { RawRedis } from './resp.js';
import { round3, summarize } from './stats.js';

export interface CostVariant {
  readonly label: string;
  readonly tokens: number;
  readonly rate: TokenRate;
}

export interface CostResult extends CostVariant {
  readonly turns: number;
  readonly failed: number;
  /** Delta frames per answer seen by streaming clients: the number of batches. */
  readonly batchesPerTurn: number;
  /** Commands clients sent (round trips, MONITOR), per turn. */
  readonly roundTripsPerTurn: number;
  /** Every command Redis executed, including inside scripts (commandstats), per turn. */
  readonly commandsPerTurn: number;
  readonly evalshaPerTurn: number;
  readonly roundTripsByCommand: Record<string, number>;
  readonly commandsByName: Record<string, number>;
  readonly inputBytesPerTurn: number;
  readonly outputBytesPerTurn: number;
  /** Raw MONITOR tally, counts over the whole run (not per turn). */
  readonly anatomy: Anatomy;
}

export interface LengthCheck {
  readonly rate: TokenRate;
  readonly shortTokens: number;
  readonly longTokens: number;
  readonly extraBatches: number;
  readonly extraRoundTrips: number;
  readonly extraCommands: number;
  /** Extra round trips per extra batch: 1 means one appendDelta per batch and nothing else. */
  readonly roundTripsPerExtraBatch: number | null;
  /** True when the long answer costs at most one more round trip per extra batch (+0.5 noise). */
  readonly independentOfLength: boolean;
}

export interface MemoryResult {
  readonly sessions: number;
  readonly turnsPerSession: number;
  readonly tokens: number;
  readonly turnsCompleted: number;
  /** used_memory after - before, divided by sessions (includes Redis's per-key overhead). */
  readonly usedMemoryPerSessionBytes: number;
  /** MEMORY USAGE of the session's keys, summed, per session. */
  readonly keyBytesPerSession: number;
  readonly keyBytesByKey: Record<string, number>;
}

function perTurn(record: Record<string, number> | Map<string, number>, turns: number): Record<string, number> {
  const entries = record instanceof Map ? [...record] : Object.entries(record);
  return Object.fromEntries(entries.sort(([, a], [, b]) => b - a).map(([name, count]) => [name, round3(count / Math.max(1, turns))]));
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

export async function measureCost(ctx: StackContext, variant: CostVariant): Promise<CostResult> {
  const { options } = ctx;
  const model: BenchModelSettings = { tokens: variant.tokens, rate: variant.rate, recordYields: false };
  ctx.log(`redis cost: ${variant.label}: ${options.costTurns} turns, ${options.costClients} clients`);
  if (ctx.stack.managedWorkers) await ctx.stack.configureModel(model);
  const ignore = new Set([`${ctx.redis.host}:${ctx.admin.localPort}`]);
  const admin = ctx.admin;
  // Harness traffic between the two snapshots is counted by Redis too and subtracted below: the
  // first INFO's reply, the MONITOR command and its feed, the second INFO command.
  const received0 = admin.receivedBytes;
  const before = await snapshot(admin);
  const firstReply = admin.receivedBytes - received0;
  const monitor = await startMonitor(ctx.redis.host, ctx.redis.port, ignore);
  const outcome = await closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode: 'streaming',
    clients: options.costClients,
    warmupMs: 0,
    durationMs: 300_000,
    maxTurns: options.costTurns,
    turnsPerSession: options.turnsPerSession,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-cost-${variant.tokens}-${variant.rate}`,
    signal: ctx.signal,
  });
  // Let the last commits, acks and pub/sub deliveries land before the second snapshot.
  await sleep(300);
  const monitorIn = monitor.connection.sentBytes;
  const monitorOut = monitor.connection.receivedBytes;
  const sent1 = admin.sentBytes;
  const after = await snapshot(admin);
  const secondInfo = admin.sentBytes - sent1;
  monitor.connection.close();
  const anatomy = monitor.tally.result();
  const ok = outcome.samples.filter((sample) => sample.ok);
  const turns = ok.length;
  const calls = callDelta(before, after);
  const inputBytes = after.inputBytes - before.inputBytes - secondInfo - monitorIn;
  const outputBytes = after.outputBytes - before.outputBytes - firstReply - monitorOut;
  const roundTrips = sum(Object.values(anatomy.topLevel));
  return {
    ...variant,
    turns,
    failed: outcome.samples.length - turns,
    batchesPerTurn: round3(summarize(ok.map((sample) => sample.deltaFrames)).mean),
    roundTripsPerTurn: round3(roundTrips / Math.max(1, turns)),
    commandsPerTurn: round3(sum(calls.values()) / Math.max(1, turns)),
    evalshaPerTurn: round3(((calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0)) / Math.max(1, turns)),
    roundTripsByCommand: perTurn(anatomy.topLevel, turns),
    commandsByName: perTurn(calls, turns),
    inputBytesPerTurn: round3(inputBytes / Math.max(1, turns)),
    outputBytesPerTurn: round3(outputBytes / Math.max(1, turns)),
    anatomy,
  };
}

/** Compares a short and a long answer at the same model rate. */
export function lengthCheck(short: CostResult, long: CostResult): LengthCheck {
  const extraBatches = round3(long.batchesPerTurn - short.batchesPerTurn);
  const extraRoundTrips = round3(long.roundTripsPerTurn - short.roundTripsPerTurn);
  return {
    rate: short.rate,
    shortTokens: short.tokens,
    longTokens: long.tokens,
    extraBatches,
    extraRoundTrips,
    extraCommands: round3(long.commandsPerTurn - short.commandsPerTurn),
    roundTripsPerExtraBatch: extraBatches >= 0.5 ? round3(extraRoundTrips / extraBatches) : null,
    independentOfLength: extraRoundTrips <= Math.max(0, extraBatches) + 0.5,
  };
}

function fields(reply: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!Array.isArray(reply)) return map;
  for (let index = 0; index + 1 < reply.length; index += 2) map.set(String(reply[index]), reply[index + 1]);
  return map;
}

/**
 * Drops queue entries every worker has acknowledged — what the workers' own periodic trim does —
 * so the queue's length is the same at both memory snapshots and does not count as session memory.
 */
async function trimQueue(redis: RawRedis, prefix: string): Promise<void> {
  const queue = `${prefix}queue`;
  const group = `${prefix}workers`;
  const groups = await redis.command('XINFO', 'GROUPS', queue).catch(() => []);
  const ours = (Array.isArray(groups) ? groups : []).map(fields).find((entry) => entry.get('name') === group);
  if (ours === undefined) return;
  const pending = await redis.command('XPENDING', queue, group);
  const oldestPending = Array.isArray(pending) && typeof pending[1] === 'string' ? pending[1] : undefined;
  await redis.command('XTRIM', queue, 'MINID', oldestPending ?? String(ours.get('last-delivered-id')));
}

const SESSION_KEY_NAMES = ['session', 'messages', 'events', 'dedupe', 'errors', 'lease', 'cancel'] as const;

async function keyBytes(redis: RawRedis, prefix: string, tokens: readonly string[]): Promise<Record<string, number>> {
  const totals: Record<string, number> = {};
  for (const token of tokens) {
    const keys = sessionKeys(prefix, token);
    const sizes = await Promise.all(SESSION_KEY_NAMES.map((name) => redis.command('MEMORY', 'USAGE', keys[name], 'SAMPLES', '0')));
    SESSION_KEY_NAMES.forEach((name, index) => {
      const size = sizes[index];
      if (typeof size === 'number') totals[name] = (totals[name] ?? 0) + size;
    });
  }
  return totals;
}

export async function measureMemory(ctx: StackContext): Promise<MemoryResult> {
  const { options } = ctx;
  const turnsPerSession = 20;
  ctx.log(`redis memory: ${options.memorySessions} sessions of ${turnsPerSession} turns, ${ctx.baseModel.tokens} tokens per answer`);
  if (ctx.stack.managedWorkers) await ctx.stack.configureModel(ctx.baseModel);
  await trimQueue(ctx.admin, options.keyPrefix);
  await sleep(500);
  const before = await snapshot(ctx.admin);
  const outcome = await closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode: 'plain',
    clients: options.memorySessions,
    turnsPerClient: turnsPerSession,
    warmupMs: 0,
    durationMs: 300_000,
    turnsPerSession,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-memory`,
    signal: ctx.signal,
  });
  // Sockets are closed: gateways unsubscribe; then the queue is trimmed as before.
  await sleep(500);
  await trimQueue(ctx.admin, options.keyPrefix);
  await sleep(200);
  const after = await snapshot(ctx.admin);
  const sessions = outcome.sessions.length;
  const byKey = await keyBytes(ctx.admin, options.keyPrefix, outcome.sessions);
  return {
    sessions,
    turnsPerSession,
    tokens: ctx.baseModel.tokens,
    turnsCompleted: outcome.samples.filter((sample) => sample.ok).length,
    usedMemoryPerSessionBytes: Math.round((after.usedMemory - before.usedMemory) / Math.max(1, sessions)),
    keyBytesPerSession: Math.round(sum(Object.values(byKey)) / Math.max(1, sessions)),
    keyBytesByKey: Object.fromEntries(Object.entries(byKey).map(([name, bytes]) => [name, Math.round(bytes / Math.max(1, sessions))])),
  };
}
