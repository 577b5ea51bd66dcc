/**
 * The limits of this machine, measured in the same run:
 *
 * Redis: redis-benchmark (C, -P 1) against the same redis-server, one run per kind of command a
 * turn sends, with the real Lua scripts loaded by SCRIPT LOAD and run by EVALSHA on prepared
 * session data (a 20-record history for startTurn, like a session midway through 20 turns). Two
 * scripts would take a cheaper path when repeated with the same arguments (finishTurn's
 * compare-and-set would answer "stale", startTurn's idle path deletes the lease), so for those the
 * benchmark loads a variant whose check always passes / whose DEL is an EXISTS: the same number of
 * Redis commands on the same data. The turn's mix is the MONITOR tally of the Redis-cost phase.
 * Redis time per turn = sum over kinds of (round trips per turn / ops per second); the ceiling is
 * its inverse. Commands of other kinds (session creation, SUBSCRIBE, ...; well under one per turn)
 * are costed like SET NX.
 *
 * WebSocket: a bare `ws` echo server, driven by the same number of closed-loop clients with a
 * frame the size of a plain-mode answer: round trips per second this machine can do at all.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { sessionKeys } from '../../src/contracts/keys.js';
import { appendDelta, acceptMessage, finishTurn, startTurn, type LuaScript } from '../../src/store/scripts.js';
import { benchAnswer } from '../bench-model.js';
import type { PhaseContext } from './context.js';
import { echoReplySchema } from './ipc.js';
import { sleep, untilReady } from './processes.js';
import type { RawRedis } from './resp.js';
import { perSecond, round3, summarize, type Distribution } from './stats.js';

export interface CommandRate {
  readonly kind: string;
  readonly command: string;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly note: string | undefined;
}

export interface RedisCeiling {
  readonly clients: number;
  readonly requests: number;
  readonly rates: CommandRate[];
  /** Round trips per turn by kind (from the MONITOR tally), and the kind each was costed as. */
  readonly mix: Array<{ command: string; perTurn: number; costedAs: string; usPerTurn: number }>;
  readonly roundTripsPerTurn: number;
  /** Round trips per second Redis sustains for this mix. */
  readonly mixOpsPerSec: number;
  /** mixOpsPerSec / roundTripsPerTurn. */
  readonly turnsPerSec: number;
}

export interface WebSocketCeiling {
  readonly clients: number;
  readonly frameBytes: number;
  readonly roundTripsPerSec: number;
  readonly perSecond: Distribution;
  readonly latencyMs: Distribution;
}

const PREFIX = 'parley-bench-ceiling:';
const OWNER = 'bench-owner';
const TTL_MS = '3600000';
const EVENTS_CAP = '2000';
const HISTORY_RECORDS = 20;

function scriptCall(lua: LuaScript, sha: string, tag: string, extra: readonly string[]): string[] {
  const keys = sessionKeys(PREFIX, tag);
  return ['EVALSHA', sha, '7', keys.session, keys.messages, keys.events, keys.dedupe, keys.errors, keys.lease, keys.cancel, keys.live, TTL_MS, EVENTS_CAP, ...extra];
}

/** A variant of a real script with one statement swapped; null when the script no longer has it. */
function variant(lua: LuaScript, from: string, to: string): string | null {
  return lua.source.includes(from) ? lua.source.replace(from, to) : null;
}

interface Kind {
  readonly kind: string;
  readonly args: string[];
  readonly note?: string;
  readonly random?: number;
}

function record(seq: number, source: 'human' | 'bot', text: string): string {
  return JSON.stringify({ id: randomUUID(), msg: text, timestamp: new Date().toISOString(), source, seq, ...(source === 'bot' ? { status: 'done' } : {}) });
}

/** Loads scripts and writes the data each command kind runs against; returns the kinds. */
async function prepare(redis: RawRedis, tokens: number, requests: number): Promise<Kind[]> {
  const answer = benchAnswer(tokens);
  const question = 'bench message c1 t1';
  const load = async (source: string) => String(await redis.command('SCRIPT', 'LOAD', source));
  const session = (tag: string, fields: Record<string, string>) =>
    redis.command('HSET', sessionKeys(PREFIX, tag).session, ...Object.entries({ name: 'bench', start: new Date().toISOString(), ...fields }).flat());
  const lease = (tag: string) => redis.command('SET', sessionKeys(PREFIX, tag).lease, OWNER);

  await session('accept', { seq: '0', answered: '0' });
  await session('start', { seq: '1000000000', answered: '0' });
  await lease('start');
  for (let seq = 1; seq <= HISTORY_RECORDS / 2; seq += 1) {
    await redis.command('RPUSH', sessionKeys(PREFIX, 'start').messages, record(seq, 'human', question), record(seq, 'bot', answer));
  }
  await session('idle', { seq: '5', answered: '5' });
  await lease('idle');
  await session('delta', { seq: '1', answered: '0' });
  await lease('delta');
  await session('finish', { seq: '1', answered: '0' });
  await lease('finish');

  const idleSource = variant(startTurn, "redis.call('DEL', K_LEASE) return {'idle'}", "redis.call('EXISTS', K_LEASE) return {'idle'}");
  const finishSource = variant(finishTurn, "if counter('answered') + 1 ~= tonumber(ARGV[5]) then return {'stale'} end", "if counter('answered') + 1 == -1 then return {'stale'} end");
  const delta = JSON.stringify({ type: 'delta', seq: 1, text: answer.slice(0, 4) });
  const rest = JSON.stringify({ type: 'delta', seq: 1, text: answer.slice(4) });
  const terminal = JSON.stringify({ type: 'done', seq: 1, id: randomUUID(), timestamp: new Date().toISOString() });

  // The queue: entries with ids 1-1 .. n-1, read one per XREADGROUP, then acknowledged at random.
  const stream = `${PREFIX}readq`;
  const adds: Array<Promise<unknown>> = [];
  for (let index = 1; index <= requests + 10; index += 1) adds.push(redis.command('XADD', stream, `${index}-1`, 't', randomUUID()));
  await Promise.all(adds);
  await redis.command('XGROUP', 'CREATE', stream, 'g', '0');

  const kinds: Kind[] = [
    { kind: 'evalsha:acceptMessage', args: scriptCall(acceptMessage, await load(acceptMessage.source), 'accept', [randomUUID(), question, new Date().toISOString(), '', '1000000000', 'accept', '1000', '127.0.0.1', '', '']), note: 'without the queue key: the XADD is measured on its own' },
    { kind: 'evalsha:startTurn', args: scriptCall(startTurn, await load(startTurn.source), 'start', [OWNER, '200']), note: `history of ${HISTORY_RECORDS} records` },
    { kind: 'evalsha:appendDelta', args: scriptCall(appendDelta, await load(appendDelta.source), 'delta', [OWNER, '1', delta]) },
    { kind: 'xadd', args: ['XADD', `${PREFIX}queue`, '*', 't', randomUUID()] },
    { kind: 'xreadgroup', args: ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', stream, '>'], note: 'one entry per read' },
    { kind: 'xack', args: ['XACK', stream, 'g', '__rand_int__-1'], random: requests, note: 'random ids of the pending list' },
    { kind: 'set', args: ['SET', sessionKeys(PREFIX, 'nx').lease, OWNER, 'NX', 'PX', '10000'], note: 'SET NX PX (lease)' },
  ];
  if (idleSource !== null) kinds.push({ kind: 'evalsha:startTurn(idle)', args: scriptCall(startTurn, await load(idleSource), 'idle', [OWNER, '200']), note: 'variant: DEL of the lease is an EXISTS' });
  if (finishSource !== null) {
    kinds.push({
      kind: 'evalsha:finishTurn',
      args: scriptCall(finishTurn, await load(finishSource), 'finish', [OWNER, '1', rest, 'message', record(1, 'bot', answer), terminal]),
      note: 'variant: the compare-and-set always passes',
    });
  }
  return kinds;
}

/** Runs one redis-benchmark; returns ops/s and latency percentiles from its CSV line. */
function redisBenchmark(ctx: PhaseContext, kind: Kind): Promise<CommandRate> {
  const { options, redis } = ctx;
  const args = ['-h', redis.host, '-p', String(redis.port), '-c', String(options.ceilingClients), '-n', String(options.ceilingRequests), '-P', '1', '--csv'];
  if (kind.random !== undefined) args.push('-r', String(kind.random));
  return new Promise((resolve, reject) => {
    const child = spawn('redis-benchmark', [...args, ...kind.args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`redis-benchmark could not run (is redis-tools installed?): ${error.message}`));
    });
    child.once('exit', () => {
      clearTimeout(timer);
      const match = /"([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)","([\d.]+)"\s*$/m.exec(output);
      if (match === null || output.includes('Error from server')) {
        reject(new Error(`redis-benchmark ${kind.kind} failed: ${output.slice(-500)}`));
        return;
      }
      resolve({ kind: kind.kind, command: kind.args.slice(0, 2).join(' '), opsPerSec: Number(match[1]), p50Ms: Number(match[4]), p99Ms: Number(match[6]), note: kind.note });
    });
  });
}

/** The kind a round trip of the turn's mix is costed as. */
function costedAs(command: string, measured: ReadonlyMap<string, CommandRate>): string {
  if (measured.has(command)) return command;
  if (command === 'evalsha:startTurn(idle)') return 'evalsha:startTurn';
  if (command.startsWith('evalsha:')) return 'evalsha:appendDelta';
  return 'set';
}

export async function runRedisCeiling(ctx: PhaseContext, mixPerTurn: Record<string, number>): Promise<RedisCeiling> {
  ctx.log(`ceiling: redis-benchmark, ${ctx.options.ceilingRequests} requests per command, ${ctx.options.ceilingClients} connections`);
  await ctx.admin.deleteKeys(PREFIX);
  try {
    const kinds = await prepare(ctx.admin, ctx.baseModel.tokens, ctx.options.ceilingRequests);
    const rates: CommandRate[] = [];
    for (const kind of kinds) {
      if (ctx.signal.aborted) break;
      rates.push(await redisBenchmark(ctx, kind));
    }
    const measured = new Map(rates.map((rate) => [rate.kind, rate]));
    const mix = Object.entries(mixPerTurn).map(([command, perTurn]) => {
      const as = costedAs(command, measured);
      const ops = measured.get(as)?.opsPerSec ?? 0;
      return { command, perTurn, costedAs: as, usPerTurn: ops > 0 ? round3((perTurn * 1e6) / ops) : 0 };
    });
    const roundTripsPerTurn = round3(mix.reduce((total, entry) => total + entry.perTurn, 0));
    const usPerTurn = mix.reduce((total, entry) => total + entry.usPerTurn, 0);
    const turnsPerSec = usPerTurn > 0 ? round3(1e6 / usPerTurn) : 0;
    return {
      clients: ctx.options.ceilingClients,
      requests: ctx.options.ceilingRequests,
      rates,
      mix,
      roundTripsPerTurn,
      mixOpsPerSec: round3(turnsPerSec * roundTripsPerTurn),
      turnsPerSec,
    };
  } finally {
    await ctx.admin.deleteKeys(PREFIX);
  }
}

/** The frame a plain-mode client receives for one answer of `tokens` tokens. */
function plainAnswerFrame(tokens: number): string {
  return JSON.stringify({ id: randomUUID(), msg: benchAnswer(tokens), timestamp: new Date().toISOString(), source: 'bot' });
}

/** One closed-loop echo client; pushes [completion time, round trip ms] per echo. */
async function echoClient(url: string, frame: string, until: number, signal: AbortSignal, done: Array<[number, number]>): Promise<void> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let echoed: (() => void) | undefined;
  ws.on('message', () => echoed?.());
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  while (performance.now() < until && !signal.aborted) {
    const sentAt = performance.now();
    const answer = new Promise<void>((resolve) => (echoed = resolve));
    ws.send(frame);
    await Promise.race([answer, closed]);
    if (ws.readyState !== WebSocket.OPEN) break;
    const now = performance.now();
    done.push([now, now - sentAt]);
  }
  ws.close();
}

export async function runWebSocketCeiling(ctx: PhaseContext): Promise<WebSocketCeiling> {
  const { options } = ctx;
  ctx.log(`ceiling: bare ws echo server, ${options.clients} clients, ${options.durationMs / 1000} s`);
  const managed = ctx.group.spawn('ws-echo', process.execPath, ['--import', 'tsx', 'bench/echo-server.ts'], { ipc: true, raiseFdLimit: true });
  try {
    const listening = new Promise<number>((resolve) =>
      managed.child.on('message', (raw: unknown) => {
        const reply = echoReplySchema.safeParse(raw);
        if (reply.success) resolve(reply.data.port);
      }),
    );
    const port = await untilReady(managed, listening, 30_000, 'listening');
    const frame = plainAnswerFrame(ctx.baseModel.tokens);
    const start = performance.now();
    const windowStart = start + options.warmupMs;
    const windowEnd = windowStart + options.durationMs;
    const done: Array<[number, number]> = [];
    await Promise.all(Array.from({ length: options.clients }, () => echoClient(`ws://127.0.0.1:${port}`, frame, windowEnd, ctx.signal, done)));
    const inWindow = done.filter(([at]) => at >= windowStart && at < windowEnd);
    return {
      clients: options.clients,
      frameBytes: Buffer.byteLength(frame),
      roundTripsPerSec: round3(inWindow.length / (options.durationMs / 1000)),
      perSecond: summarize(perSecond(inWindow.map(([at]) => at), windowStart, windowEnd)),
      latencyMs: summarize(inWindow.map(([, ms]) => ms)),
    };
  } finally {
    await ctx.group.stop(managed, 3000);
    await sleep(100);
  }
}
