/**
 * Phases about time: long sessions (does a turn get slower as its session grows? does the tail
 * follow the median?) and a steady load of some minutes (does memory grow?).
 */
import { loadavg } from 'node:os';
import { globalKeys } from '../../src/contracts/keys.js';
import { topology, type StackContext } from './context.js';
import { closedLoop, type TurnSample } from './load.js';
import { rssKiB, sleep } from './processes.js';
import { snapshot } from './redis-observe.js';
import { round3, summarize, type Distribution } from './stats.js';

export interface SessionBucket {
  /** Turns of the session, inclusive: [from, to]. */
  readonly from: number;
  readonly to: number;
  readonly latencyMs: Distribution;
}

export interface LongSessionsResult {
  readonly clients: number;
  readonly turnsPerClient: number;
  readonly warmupTurns: number;
  readonly seconds: number;
  readonly turnsPerSec: number;
  /** Every turn after the warm-up turns, send -> done. */
  readonly latencyMs: Distribution;
  readonly buckets: SessionBucket[];
  readonly errors: Record<string, number>;
}

function latencyOf(samples: readonly TurnSample[]): Distribution {
  return summarize(samples.filter((sample) => sample.ok).map((sample) => sample.doneAt - sample.sentAt));
}

/** The buckets the issue compares (11-30 against the last 20), plus warm-up and the middle. */
function bucketBounds(turns: number, warmup: number): Array<[number, number]> {
  const early: [number, number] = [warmup + 1, Math.min(turns, warmup + 20)];
  const late: [number, number] = [Math.max(early[1] + 1, turns - 19), turns];
  const bounds: Array<[number, number]> = [[1, warmup], early];
  if (late[0] > early[1] + 1) bounds.push([early[1] + 1, late[0] - 1]);
  if (late[0] <= late[1]) bounds.push(late);
  return bounds.filter(([from, to]) => from <= to);
}

/** Every client keeps one session for `sessionTurns` turns, as fast as answers come (closed loop). */
export async function runLongSessions(ctx: StackContext): Promise<LongSessionsResult> {
  const { options } = ctx;
  const turns = options.sessionTurns;
  const warmup = Math.min(10, Math.floor(turns / 4));
  ctx.log(`long sessions: ${topology(ctx.stack.gateways.length, ctx.stack.workerPids.length || null)}, ${options.clients} clients × ${turns} turns, one session each`);
  const started = performance.now();
  const outcome = await closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode: 'plain',
    clients: options.clients,
    warmupMs: 0,
    // Bounded by the turn count; the window only has to outlast it.
    durationMs: options.maxSeconds * 1000,
    turnsPerSession: 0,
    turnsPerClient: turns,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-long`,
    signal: ctx.signal,
  });
  const seconds = (performance.now() - started) / 1000;
  const measured = outcome.samples.filter((sample) => sample.turnInSession > warmup);
  return {
    clients: options.clients,
    turnsPerClient: turns,
    warmupTurns: warmup,
    seconds: round3(seconds),
    turnsPerSec: round3(outcome.samples.filter((sample) => sample.ok).length / seconds),
    latencyMs: latencyOf(measured),
    buckets: bucketBounds(turns, warmup).map(([from, to]) => ({
      from,
      to,
      latencyMs: latencyOf(outcome.samples.filter((sample) => sample.turnInSession >= from && sample.turnInSession <= to)),
    })),
    errors: outcome.errors,
  };
}

export interface MemoryMark {
  /** Seconds since the steady load began (negative: before it, after the end: the settled mark). */
  readonly atSeconds: number;
  /** The machine's 1-minute load average then (other work on a shared machine shows here). */
  readonly loadAverage: number;
  /** RSS per process, MiB. */
  readonly rssMiB: Record<string, number>;
  readonly redisUsedMemoryMiB: number;
  readonly redisKeys: number;
  /** Sessions noted as possibly unanswered (the sweep's set): one per recent session until swept. */
  readonly unansweredNotes: number;
}

export interface SteadyResult {
  readonly seconds: number;
  readonly clients: number;
  readonly turns: number;
  readonly turnsPerSec: number;
  readonly before: MemoryMark;
  /** After a pause once the load stopped (allocation settles, sessions stay until their TTL). */
  readonly after: MemoryMark;
  /** Halfway through: growth between middle and end is what a longer run would add. */
  readonly middle: MemoryMark;
  /** Every tenth of the run, so growth shows as a trend rather than as two points. */
  readonly series: MemoryMark[];
  /** SESSION_TTL_SECONDS of the system: Redis keeps each session this long after its last use. */
  readonly sessionTtlSeconds: number | null;
  readonly errors: Record<string, number>;
}

async function memoryMark(ctx: StackContext, startedAt: number): Promise<MemoryMark> {
  const rssMiB: Record<string, number> = {};
  const mark = (name: string, pid: number | null) => {
    const kib = pid === null ? null : rssKiB(pid);
    if (kib !== null) rssMiB[name] = round3(kib / 1024);
  };
  ctx.stack.gateways.forEach((gateway, index) => mark(`gateway-${index + 1}`, gateway.pid));
  ctx.stack.workerPids.forEach((pid, index) => mark(`worker-${index + 1}`, pid));
  mark('redis', ctx.redis.pid);
  const info = await snapshot(ctx.admin);
  const keys = Number(await ctx.admin.command('DBSIZE'));
  const unansweredNotes = Number(await ctx.admin.command('ZCARD', globalKeys(ctx.options.keyPrefix).unanswered));
  const atSeconds = round3((performance.now() - startedAt) / 1000);
  return { atSeconds, loadAverage: round3(loadavg()[0] ?? 0), rssMiB, redisUsedMemoryMiB: round3(info.usedMemory / 2 ** 20), redisKeys: keys, unansweredNotes };
}

/** Marks every `everyMs` until `until` settles (the load's end). */
async function markEvery(ctx: StackContext, startedAt: number, everyMs: number, until: Promise<unknown>): Promise<MemoryMark[]> {
  const marks: MemoryMark[] = [];
  let done = false;
  void until.finally(() => (done = true));
  for (let next = everyMs; ; next += everyMs) {
    const wait = startedAt + next - performance.now();
    await Promise.race([sleep(Math.max(0, wait)), until]);
    if (done || ctx.signal.aborted) return marks;
    marks.push(await memoryMark(ctx, startedAt));
  }
}

/**
 * A steady load for `steadySeconds`: 20-turn sessions (new sessions keep arriving, as in real use),
 * memory read before, every tenth of the run, and after.
 */
export async function runSteady(ctx: StackContext): Promise<SteadyResult> {
  const { options } = ctx;
  const seconds = options.steadySeconds;
  ctx.log(`steady load: ${options.clients} clients for ${seconds} s, memory before / halfway / after`);
  const startedAt = performance.now();
  const before = await memoryMark(ctx, startedAt);
  const load = closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode: 'plain',
    clients: options.clients,
    warmupMs: 0,
    durationMs: seconds * 1000,
    turnsPerSession: options.turnsPerSession,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-steady`,
    signal: ctx.signal,
  });
  const series = await markEvery(ctx, startedAt, (seconds * 1000) / 10, load);
  const outcome = await load;
  await sleep(options.settleMs);
  const after = await memoryMark(ctx, startedAt);
  // Halfway: the mark nearest the middle of the run.
  const middle = series.reduce<MemoryMark>((best, mark) => (Math.abs(mark.atSeconds - seconds / 2) < Math.abs(best.atSeconds - seconds / 2) ? mark : best), before);
  const turns = outcome.samples.filter((sample) => sample.ok).length;
  return { seconds, clients: options.clients, turns, turnsPerSec: round3(turns / seconds), before, middle, after, series, sessionTtlSeconds: options.sessionTtlSeconds ?? null, errors: outcome.errors };
}
