/**
 * Phases that drive chat traffic: throughput at saturation (closed loop), latency at fixed
 * offered loads (open loop, instant model), and streaming overhead (finite-rate model, every
 * chunk's yield time against its arrival at the client).
 */
import { benchAnswer, TOKEN_CHARS, type BenchModelSettings, type YieldLog } from '../bench-model.js';
import type { Mode } from './client.js';
import { topology, type StackContext } from './context.js';
import { closedLoop, doneInWindow, openLoop, sentInWindow, type LoadOutcome, type TurnSample } from './load.js';
import { cpuSeconds, sleep } from './processes.js';
import { snapshot } from './redis-observe.js';
import type { ModelPath } from './stack.js';
import { perSecond, round3, summarize, type Distribution } from './stats.js';

export interface ThroughputRun {
  readonly label: string;
  /** http = the real path (provider over HTTP to the model server); double = model in the worker. */
  readonly model: ModelPath | 'target';
  readonly gateways: number;
  readonly workers: number | null;
  readonly mode: Mode;
  readonly clients: number;
  readonly tokens: number;
  readonly rate: BenchModelSettings['rate'];
  readonly durationS: number;
  /** Turns answered inside the measurement window. */
  readonly completed: number;
  readonly turnsPerSec: number;
  /** Turns per second of each whole second of the window. */
  readonly perSecond: Distribution;
  /** Send -> done of the turns sent in the window, ms (includes queueing at saturation). */
  readonly latencyMs: Distribution;
  readonly errors: Record<string, number>;
  /** Answers whose length was not the double's fixed answer (should be 0). */
  readonly wrongAnswers: number;
  /** CPU use during the window, % of one core, per process. */
  readonly cpuPercent: Record<string, number>;
  /** CPU time per answered turn, microseconds, per process: comparable across noisy runs. */
  readonly cpuUsPerTurn: Record<string, number>;
  /** Redis CPU time per answered turn, microseconds (INFO used_cpu_*). */
  readonly redisCpuUsPerTurn: number | null;
}

export interface LatencyRun {
  readonly mode: Mode;
  readonly offeredPerSec: number;
  readonly sentPerSec: number;
  readonly completedPerSec: number;
  /** Send -> done, ms: with the instant model this is all overhead of the system. */
  readonly latencyMs: Distribution;
  /** How late sends left against their schedule, ms (large values: the load generator fell behind). */
  readonly sendLagMs: Distribution;
  /**
   * Streaming mode: where the time goes, from the client's view. accepted = the gateway stored and
   * queued the message; start = a worker began the answer; done = the answer is committed. (An
   * event may overtake "accepted": it travels by pub/sub, "accepted" by the gateway's reply.)
   */
  readonly breakdownMs: { sendToAccepted: Distribution; sendToStart: Distribution; startToDone: Distribution } | null;
  readonly errors: Record<string, number>;
}

export interface StreamingResult {
  readonly clients: number;
  readonly tokens: number;
  readonly tokensPerSec: number;
  readonly batchWindowMs: number;
  readonly turns: number;
  /** Model yielded a chunk -> the client received the frame carrying it, ms, every chunk. */
  readonly overheadMs: Distribution;
  /** The same for each answer's first chunk (flushed at once, no batching wait). */
  readonly firstChunkMs: Distribution;
  /** Chunks after the first (they wait for the batch window). */
  readonly laterChunksMs: Distribution;
  /** Delta frames (= batches) per answer. */
  readonly deltaFramesPerTurn: Distribution;
  readonly unmatchedTurns: number;
  readonly errors: Record<string, number>;
}

interface CpuMark {
  readonly at: number;
  readonly processes: Map<string, number>;
  readonly harness: number;
  readonly redis: number;
}

async function cpuMark(ctx: StackContext): Promise<CpuMark> {
  const processes = new Map<string, number>();
  ctx.stack.gateways.forEach((gateway, index) => {
    const seconds = gateway.pid === null ? null : cpuSeconds(gateway.pid);
    if (seconds !== null) processes.set(`gateway-${index + 1}`, seconds);
  });
  ctx.stack.workerPids.forEach((pid, index) => {
    const seconds = cpuSeconds(pid);
    if (seconds !== null) processes.set(`worker-${index + 1}`, seconds);
  });
  const model = ctx.stack.modelServerPid === null ? null : cpuSeconds(ctx.stack.modelServerPid);
  if (model !== null) processes.set('model-server', model);
  const usage = process.cpuUsage();
  return { at: performance.now(), processes, harness: (usage.user + usage.system) / 1e6, redis: (await snapshot(ctx.admin)).cpuSeconds };
}

function cpuBetween(first: CpuMark, second: CpuMark): Record<string, number> {
  const seconds = (second.at - first.at) / 1000;
  const percent = (used: number) => round3((used / seconds) * 100);
  const result: Record<string, number> = {};
  for (const [name, value] of second.processes) result[name] = percent(value - (first.processes.get(name) ?? value));
  result.redis = percent(second.redis - first.redis);
  result['harness (clients)'] = percent(second.harness - first.harness);
  return result;
}

/** Runs `load` and takes CPU marks at the start and end of its measurement window. */
async function withCpuWindow(ctx: StackContext, warmupMs: number, durationMs: number, load: Promise<LoadOutcome>): Promise<{ outcome: LoadOutcome; marks: [CpuMark, CpuMark] | undefined }> {
  const marks = (async () => {
    await sleep(warmupMs);
    const first = await cpuMark(ctx);
    await sleep(durationMs);
    return [first, await cpuMark(ctx)] as [CpuMark, CpuMark];
  })();
  const outcome = await load;
  return { outcome, marks: await marks.catch(() => undefined) };
}

function latencies(samples: readonly TurnSample[]): Distribution {
  return summarize(samples.filter((sample) => sample.ok).map((sample) => sample.doneAt - sample.sentAt));
}

export async function runThroughput(ctx: StackContext, mode: Mode, workers: number | null): Promise<ThroughputRun> {
  const { options } = ctx;
  const gateways = ctx.stack.gateways.length;
  ctx.log(`throughput: ${topology(gateways, workers)}, ${mode}, model ${ctx.stack.modelPath ?? 'target'}, ${options.clients} clients, ${options.durationMs / 1000} s`);
  const load = closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode,
    clients: options.clients,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    turnsPerSession: options.turnsPerSession,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-tp${gateways}-${mode}-${ctx.stack.modelPath ?? 'target'}`,
    signal: ctx.signal,
  });
  const { outcome, marks } = await withCpuWindow(ctx, options.warmupMs, options.durationMs, load);
  const done = doneInWindow(outcome);
  // A targeted system's model is not ours to know: its answers are not checked.
  const expectedChars = ctx.stack.managedWorkers ? benchAnswer(ctx.baseModel.tokens).length : undefined;
  const cpuPercent = marks === undefined ? {} : cpuBetween(...marks);
  const redisCpuUsPerTurn = marks === undefined || done.length === 0 ? null : round3(((marks[1].redis - marks[0].redis) * 1e6) / done.length);
  const model = ctx.stack.modelPath ?? 'target';
  return {
    label: `${topology(gateways, workers)}, ${mode}, ${model === 'http' ? 'model over HTTP' : model === 'double' ? 'model double in the worker' : 'target'}`,
    model,
    gateways,
    workers,
    mode,
    clients: options.clients,
    tokens: ctx.baseModel.tokens,
    rate: ctx.baseModel.rate,
    durationS: options.durationMs / 1000,
    completed: done.length,
    turnsPerSec: round3(done.length / (options.durationMs / 1000)),
    perSecond: summarize(perSecond(done.map((sample) => sample.doneAt), outcome.windowStart, outcome.windowEnd)),
    latencyMs: latencies(sentInWindow(outcome)),
    errors: outcome.errors,
    wrongAnswers: expectedChars === undefined ? 0 : outcome.samples.filter((sample) => sample.ok && sample.chars !== expectedChars).length,
    cpuPercent,
    cpuUsPerTurn: Object.fromEntries(Object.entries(cpuPercent).map(([name, percent]) => [name, done.length === 0 ? 0 : round3((percent * 1e4 * (options.durationMs / 1000)) / done.length)])),
    redisCpuUsPerTurn,
  };
}

function breakdown(samples: readonly TurnSample[]): LatencyRun['breakdownMs'] {
  const complete = samples.filter((sample) => sample.ok && sample.acceptedAt !== undefined && sample.startAt !== undefined);
  return {
    sendToAccepted: summarize(complete.map((sample) => (sample.acceptedAt ?? 0) - sample.sentAt)),
    sendToStart: summarize(complete.map((sample) => (sample.startAt ?? 0) - sample.sentAt)),
    startToDone: summarize(complete.map((sample) => sample.doneAt - (sample.startAt ?? 0))),
  };
}

export async function runLatency(ctx: StackContext, mode: Mode, ratePerSec: number): Promise<LatencyRun> {
  const { options } = ctx;
  ctx.log(`latency: ${mode}, ${ratePerSec} turns/s offered, ${options.durationMs / 1000} s`);
  const outcome = await openLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode,
    ratePerSec,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    turnsPerSession: options.turnsPerSession,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-lat${ratePerSec}-${mode}`,
    signal: ctx.signal,
  });
  const inWindow = sentInWindow(outcome);
  const seconds = options.durationMs / 1000;
  // Let queues drain so the next run starts from an idle system.
  await sleep(300);
  return {
    mode,
    offeredPerSec: ratePerSec,
    sentPerSec: round3(inWindow.length / seconds),
    completedPerSec: round3(doneInWindow(outcome).length / seconds),
    latencyMs: latencies(inWindow),
    sendLagMs: summarize(inWindow.map((sample) => sample.lagMs)),
    breakdownMs: mode === 'streaming' ? breakdown(inWindow) : null,
    errors: outcome.errors,
  };
}

/** Overhead of each token of one answer: arrival of the first delta frame that contains it - yield. */
function chunkOverheads(sample: TurnSample, yields: readonly number[], into: { first: number[]; later: number[] }): void {
  const marks = sample.deltas ?? [];
  let cursor = 0;
  for (let index = 0; index < yields.length; index += 1) {
    const needed = (index + 1) * TOKEN_CHARS;
    while (cursor < marks.length && (marks[cursor]?.endChar ?? 0) < needed) cursor += 1;
    const mark = marks[cursor];
    const yieldedAt = yields[index];
    if (mark === undefined || yieldedAt === undefined) return;
    (index === 0 ? into.first : into.later).push(mark.at - yieldedAt);
  }
}

export async function runStreamingOverhead(ctx: StackContext): Promise<StreamingResult> {
  const { options } = ctx;
  const model: BenchModelSettings = { tokens: options.streamTokens, rate: options.streamRate, recordYields: true };
  ctx.log(`streaming overhead: ${options.streamClients} clients, ${model.tokens} tokens at ${model.rate} tokens/s, batch window ${options.flushIntervalMs} ms`);
  await ctx.stack.configureModel(model);
  await ctx.stack.takeYieldLogs();
  const outcome = await closedLoop({
    urls: ctx.stack.gateways.map((gateway) => gateway.url),
    mode: 'streaming',
    clients: options.streamClients,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
    turnsPerSession: options.turnsPerSession,
    recordDeltas: true,
    turnTimeoutMs: options.turnTimeoutMs,
    tag: `${ctx.tag}-stream`,
    signal: ctx.signal,
  });
  const logs: YieldLog = await ctx.stack.takeYieldLogs();
  await ctx.stack.configureModel(ctx.baseModel);
  const into = { first: [] as number[], later: [] as number[] };
  const turns = sentInWindow(outcome).filter((sample) => sample.ok);
  let unmatched = 0;
  for (const sample of turns) {
    const yields = logs[sample.text];
    if (yields === undefined || yields.length === 0) unmatched += 1;
    else chunkOverheads(sample, yields, into);
  }
  return {
    clients: options.streamClients,
    tokens: model.tokens,
    tokensPerSec: options.streamRate,
    batchWindowMs: options.flushIntervalMs,
    turns: turns.length,
    overheadMs: summarize([...into.first, ...into.later]),
    firstChunkMs: summarize(into.first),
    laterChunksMs: summarize(into.later),
    deltaFramesPerTurn: summarize(turns.map((sample) => sample.deltaFrames)),
    unmatchedTurns: unmatched,
    errors: outcome.errors,
  };
}
