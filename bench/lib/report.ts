/** The readable summary of a run (Markdown), written next to the JSON and printed at the end. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResult } from '../harness.js';
import type { MemoryMark } from './phase-sessions.js';
import type { Distribution } from './stats.js';

const num = (value: number | null | undefined, digits = 1) => (value === null || value === undefined ? '–' : value.toLocaleString('en-US', { maximumFractionDigits: digits }));
const ms = (value: number) => num(value, 2);

/** A result file name: the time to the second, with characters every file system takes. */
export function stamp(date: Date): string {
  return date.toISOString().replace(/[:]/g, '-').replace(/\..*$/, '');
}

/** Writes <name>.json and <name>.md into outDir and prints the Markdown. */
export function writeResults(outDir: string, name: string, result: unknown, markdown: string): void {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(outDir, `${name}.md`), markdown);
  console.log(`\n${markdown}`);
}

export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function dist(d: Distribution): string[] {
  return [ms(d.p50), ms(d.p95), ms(d.p99), ms(d.max), num(d.count, 0)];
}

function errors(record: Record<string, number>): string {
  const entries = Object.entries(record);
  return entries.length === 0 ? '0' : entries.map(([code, count]) => `${code}: ${count}`).join(', ');
}

function header(result: BenchResult): string {
  const { meta } = result;
  const o = meta.options;
  return [
    `# Parley benchmark — ${meta.startedAt}`,
    '',
    `- Command: \`${meta.command}\` (${o.preset} sizes, ${meta.seconds} s)`,
    `- Machine: ${meta.machine.cpus} × ${meta.machine.cpuModel}, ${num(meta.machine.memoryGiB)} GiB, Linux ${meta.machine.kernel}, Node ${meta.machine.node}, Redis ${meta.machine.redis}; load average at start ${meta.machine.loadAverageAtStart.join(' / ')}`,
    `- System: ${meta.system === 'own' ? "the harness's own redis-server, gateways and workers on 127.0.0.1" : `targets ${o.targets.join(', ')}`}`,
    meta.system === 'own'
      ? `- Model: bench/model-server.ts (its own process) through the OpenAI-compatible provider over HTTP — what users run${o.pipelineRow ? '; a second throughput row puts the BenchModelDouble inside the worker (the pipeline alone)' : ''}. ${o.tokens} tokens of 4 characters per answer, ${o.rate === 'instant' ? 'instant' : `${o.rate} tokens/s`}; WORKER_CONCURRENCY=${o.workerConcurrency ?? 'default (32)'}, FLUSH_INTERVAL_MS=${o.flushIntervalMs}; a client starts a new session every ${o.turnsPerSession || '∞'} turns`
      : `- Model, workers and their settings: the target's; a client starts a new session every ${o.turnsPerSession || '∞'} turns`,
    `- Each load run: ${o.warmupMs / 1000} s warm-up, then ${o.durationMs / 1000} s measured. Latencies in ms.`,
  ].join('\n');
}

function targetsSection(result: BenchResult): string {
  const rows = result.targets.map((check) => [check.figure, check.target, check.measured, check.met === null ? '–' : check.met ? 'met' : '**missed**', check.caveat ?? '']);
  return `## Targets (issues 5 and 11)\n\n${table(['figure', 'target', 'measured', '', 'note'], rows)}`;
}

function throughputSection(result: BenchResult): string {
  if (result.throughput.length === 0) return '';
  const rows = result.throughput.map((run) => [
    run.label,
    num(run.clients, 0),
    num(run.turnsPerSec, 0),
    `${num(run.perSecond.min, 0)}–${num(run.perSecond.max, 0)}`,
    ms(run.latencyMs.p50),
    ms(run.latencyMs.p99),
    Object.entries(run.cpuPercent).map(([name, percent]) => `${name} ${num(percent, 0)}%`).join(', '),
    Object.entries(run.cpuUsPerTurn).map(([name, us]) => `${name} ${num(us, 0)}`).join(', '),
    errors(run.errors) + (run.wrongAnswers > 0 ? `, wrong answers: ${run.wrongAnswers}` : ''),
  ]);
  return `## 1. Throughput (closed loop, saturation)\n\n${table(['system, mode', 'clients', 'turns/s', 'per-second range', 'latency p50', 'p99', 'CPU (% of a core)', 'CPU µs per turn', 'errors'], rows)}`;
}

function latencySection(result: BenchResult): string {
  if (result.latency.length === 0) return '';
  const rows = result.latency.map((run) => [run.mode, num(run.offeredPerSec, 0), num(run.completedPerSec, 0), ...dist(run.latencyMs), ms(run.sendLagMs.p99), errors(run.errors)]);
  const parts = [`## 2. Latency, send → done, instant model (open loop)\n\n${table(['mode', 'offered turns/s', 'completed/s', 'p50', 'p95', 'p99', 'max', 'turns', 'send lag p99', 'errors'], rows)}`];
  const split = result.latency.flatMap((run) =>
    run.breakdownMs === null
      ? []
      : [
          [`${num(run.offeredPerSec, 0)}/s`, 'send → accepted', ...dist(run.breakdownMs.sendToAccepted).slice(0, 3)],
          [`${num(run.offeredPerSec, 0)}/s`, 'send → start', ...dist(run.breakdownMs.sendToStart).slice(0, 3)],
          [`${num(run.offeredPerSec, 0)}/s`, 'start → done', ...dist(run.breakdownMs.startToDone).slice(0, 3)],
        ],
  );
  if (split.length > 0) parts.push(`Where the time goes (streaming mode; accepted = stored and queued by the gateway, start = a worker began, done = committed):\n\n${table(['load', 'segment', 'p50', 'p95', 'p99'], split)}`);
  return parts.join('\n\n');
}

function streamingSection(result: BenchResult): string {
  const s = result.streaming;
  if (s === null) return result.skipped.streaming === undefined ? '' : `## 3. Streaming overhead\n\nSkipped: ${result.skipped.streaming}`;
  const rows = [
    ['every chunk', ...dist(s.overheadMs)],
    ['first chunk of an answer', ...dist(s.firstChunkMs)],
    ['later chunks', ...dist(s.laterChunksMs)],
  ];
  return [
    '## 3. Streaming overhead: model yields a chunk → client receives it',
    '',
    `${s.clients} streaming clients, ${s.tokens} tokens per answer at ${s.tokensPerSec} tokens/s, batch window ${s.batchWindowMs} ms; ${s.turns} answers, ${num(s.deltaFramesPerTurn.mean, 1)} delta frames (batches) per answer.`,
    '',
    table(['chunks', 'p50', 'p95', 'p99', 'max', 'count'], rows),
  ].join('\n');
}

function redisSection(result: BenchResult): string {
  const r = result.redis;
  if (r === null) return '';
  const rows = r.cost.map((c) => [c.label, num(c.turns, 0), num(c.batchesPerTurn, 2), num(c.roundTripsPerTurn, 2), num(c.evalshaPerTurn, 2), num(c.commandsPerTurn, 1), num(c.inputBytesPerTurn, 0), num(c.outputBytesPerTurn, 0)]);
  const parts = [
    '## 4. Redis cost per turn',
    '',
    'Round trips = commands clients sent (MONITOR); commands = everything Redis executed including inside scripts (INFO commandstats); bytes from total_net_input/output_bytes minus the harness\'s own traffic.',
    '',
    table(['answer', 'turns', 'batches/turn', 'round trips/turn', 'EVALSHA/turn', 'commands/turn', 'bytes in/turn', 'bytes out/turn'], rows),
  ];
  const baseline = r.cost[0];
  if (baseline !== undefined) {
    parts.push('', `Round trips of one turn (${baseline.label}): ${Object.entries(baseline.roundTripsByCommand).map(([name, count]) => `${name} ${num(count, 2)}`).join(', ')}.`);
  }
  if (r.lengthChecks.length > 0) {
    const checks = r.lengthChecks.map((check) => [`${check.longTokens} vs ${check.shortTokens} tokens, ${check.rate === 'instant' ? 'instant' : `${check.rate} tokens/s`}`, num(check.extraBatches, 2), num(check.extraRoundTrips, 2), num(check.extraCommands, 1), num(check.roundTripsPerExtraBatch, 2), check.independentOfLength ? 'yes' : '**no**']);
    parts.push('', table(['longer answer', 'extra batches', 'extra round trips', 'extra commands', 'round trips per extra batch', 'independent of length'], checks));
  }
  if (r.memory !== null) {
    const m = r.memory;
    parts.push(
      '',
      `Memory: ${m.sessions} sessions × ${m.turnsPerSession} turns (${m.tokens}-token answers): **${num(m.usedMemoryPerSessionBytes / 1024, 1)} KiB per session** (used_memory delta); keys alone (MEMORY USAGE) ${num(m.keyBytesPerSession / 1024, 1)} KiB: ${Object.entries(m.keyBytesByKey).map(([name, bytes]) => `${name} ${num(bytes / 1024, 1)} KiB`).join(', ')}.`,
    );
  }
  if (r.slowlog.length > 0) {
    parts.push('', `SLOWLOG during throughput and latency: ${r.slowlog.length} commands over 1 ms; the slowest: ${r.slowlog.slice(0, 6).map((entry) => `${entry.command} ${num(entry.durationUs / 1000, 1)} ms`).join(', ')}. (O(1) commands here mean the redis-server thread lost its core mid-command.)`);
  }
  return parts.join('\n');
}

function connectionsSection(result: BenchResult): string {
  const c = result.connections;
  if (c === null) return '';
  return [
    '## 5. Idle WebSocket connections on one gateway',
    '',
    c.freshGateway
      ? 'Streaming-mode sockets, opened 256 at a time, on a gateway started for this phase (its RSS before is a clean baseline); their sessions were created through another gateway. RSS per connection = VmRSS delta / connections.'
      : 'Sockets on the first target gateway; it may have served traffic before, so its heap may absorb part of the growth (RSS per connection can read low).',
    '',
    table(
      ['connections', 'sessions', 'time to open (upgrade)', 'time to ready', 'per second', 'gateway RSS before → after', 'RSS per connection', 'failed'],
      [[num(c.requested, 0), `${num(c.sessions, 0)}${c.sessionsShared ? ' (shared)' : ' (one each)'}`, `${num(c.openMs, 0)} ms`, `${num(c.readyMs, 0)} ms`, num(c.connectionsPerSec, 0), `${num(c.gatewayRssBeforeKiB, 0)} → ${num(c.gatewayRssAfterKiB, 0)} KiB`, c.rssPerConnectionKiB === null ? '–' : `${num(c.rssPerConnectionKiB, 2)} KiB`, `${c.failed}${c.firstError === undefined ? '' : ` (${c.firstError})`}`]],
    ),
  ].join('\n');
}

function ceilingSection(result: BenchResult): string {
  const c = result.ceiling;
  if (c === null) return '';
  const parts = ['## 6. Ceilings of this machine (same run)'];
  if (c.redis !== null) {
    const rates = c.redis.rates.map((rate) => [rate.kind, num(rate.opsPerSec, 0), ms(rate.p50Ms), ms(rate.p99Ms), rate.note ?? '']);
    const mix = c.redis.mix.map((entry) => [entry.command, num(entry.perTurn, 2), entry.costedAs, num(entry.usPerTurn, 1)]);
    parts.push(
      '',
      `redis-benchmark, ${c.redis.clients} connections, ${num(c.redis.requests, 0)} requests each, -P 1:`,
      '',
      table(['command', 'ops/s', 'p50', 'p99', 'note'], rates),
      '',
      table(['round trip of a turn', 'per turn', 'costed as', 'Redis µs/turn'], mix),
      '',
      `Redis-bound ceiling: ${num(c.redis.mixOpsPerSec, 0)} ops/s for this mix ÷ ${num(c.redis.roundTripsPerTurn, 2)} round trips per turn = **${num(c.redis.turnsPerSec, 0)} turns/s**. Cross-check from Redis CPU in the 1 + 1 plain run: ${num(c.redisCpuBasedTurnsPerSec, 0)} turns/s if Redis had a whole core.`,
    );
  }
  if (c.websocket !== null) {
    parts.push('', `WebSocket ceiling (bare ws echo server, ${c.websocket.clients} clients, ${c.websocket.frameBytes}-byte frames): **${num(c.websocket.roundTripsPerSec, 0)} round trips/s**, p50 ${ms(c.websocket.latencyMs.p50)} ms, p99 ${ms(c.websocket.latencyMs.p99)} ms.`);
  }
  parts.push('', `Our best 1 + 1 throughput: ${num(c.ourTurnsPerSec, 0)} turns/s = ${num(c.percentOfRedis)} % of the Redis ceiling, ${num(c.percentOfWebSocket)} % of the WebSocket ceiling.`);
  return parts.join('\n');
}

function profilesSection(result: BenchResult): string {
  if (result.profiles.length === 0) return '';
  const parts = ['## CPU profiles'];
  for (const profile of result.profiles) {
    parts.push('', `**${profile.file}** — ${num(profile.activeMs, 0)} ms active: ${profile.byOrigin.slice(0, 8).map((entry) => `${entry.origin} ${num(entry.percent)}%`).join(', ')}`, '');
    parts.push(table(['self %', 'function'], profile.topFunctions.slice(0, 10).map((entry) => [num(entry.percent), `\`${entry.function}\``])));
  }
  return parts.join('\n');
}

function fairnessSection(result: BenchResult): string {
  const f = result.fairness;
  if (f === null) return '';
  const rows = f.runs.map((run) => [
    run.floodSessions === 0 ? 'no flood' : `${run.floodSessions} flooding session${run.floodSessions === 1 ? '' : 's'}`,
    num(run.ordinaryTurns, 0),
    ms(run.answerMs.p50),
    ms(run.answerMs.p99),
    ms(run.waitMs.p50),
    ms(run.waitMs.p99),
    num(run.jain, 3),
    num(run.floodAnswers, 0),
    errors(run.errors),
  ]);
  return [
    '## 7. Fairness under a flood (issue 10)',
    '',
    `A model of fixed speed (${f.answerMsEach} ms an answer) with two slots; ${f.users} ordinary users, one address each, a message every ~${f.thinkMs / 1000} s; flooding sessions from one address keep 20 messages waiting each; MAX_ACTIVE_PER_ADDRESS=${f.maxActivePerAddress}; ${f.durationS} s per run. Answer = send → done (the model's own time included); wait = send → start.`,
    '',
    table(['run', 'ordinary turns', 'answer p50', 'answer p99', 'wait p50', 'wait p99', "Jain's index", 'flood answers', 'errors'], rows),
    '',
    `Flooded / calm time to answer of ordinary users: p50 × ${num(f.ratioP50, 2)}, p99 × ${num(f.ratioP99, 2)}.`,
  ].join('\n');
}

function longSessionsSection(result: BenchResult): string {
  const l = result.longSessions;
  if (l === null) return '';
  const rows = l.buckets.map((bucket) => [`${bucket.from}–${bucket.to}${bucket.to <= l.warmupTurns ? ' (warm-up)' : ''}`, ...dist(bucket.latencyMs)]);
  return [
    '## 2b. Long sessions: does a turn get slower as its session grows? (model over HTTP, plain)',
    '',
    `${l.clients} clients × ${l.turnsPerClient} turns, one session each, closed loop: ${num(l.turnsPerSec, 0)} turns/s over ${num(l.seconds, 1)} s. After the first ${l.warmupTurns} turns: p50 ${ms(l.latencyMs.p50)} ms, p99 ${ms(l.latencyMs.p99)} ms; errors ${errors(l.errors)}.`,
    '',
    table(['turns of the session', 'p50', 'p95', 'p99', 'max', 'turns'], rows),
  ].join('\n');
}

function steadySection(result: BenchResult): string {
  const st = result.steady;
  if (st === null) return '';
  const names = Object.keys(st.after.rssMiB);
  const marks = [st.before, ...st.series, st.after];
  const heading = ['', ...st.series.map((mark) => `${num(mark.atSeconds, 0)} s`)];
  const columns = (of: (mark: MemoryMark) => number | undefined, digits: number) => marks.map((mark) => num(of(mark), digits));
  const rows = [
    ...names.map((name) => [`RSS ${name} (MiB)`, ...columns((mark) => mark.rssMiB[name], 1)]),
    ['Redis used_memory (MiB)', ...columns((mark) => mark.redisUsedMemoryMiB, 1)],
    ['Redis keys', ...columns((mark) => mark.redisKeys, 0)],
    ['unanswered notes (ZCARD)', ...columns((mark) => mark.unansweredNotes, 0)],
    ['load average (1 min)', ...columns((mark) => mark.loadAverage, 1)],
  ];
  const ttl = st.sessionTtlSeconds === null ? 'the default SESSION_TTL_SECONDS' : `SESSION_TTL_SECONDS=${st.sessionTtlSeconds}`;
  return [
    '## 4b. Memory under steady load (model over HTTP)',
    '',
    `${st.clients} clients for ${st.seconds} s, a new session every ${result.meta.options.turnsPerSession || '∞'} turns: ${num(st.turns, 0)} turns (${num(st.turnsPerSec, 0)}/s); errors ${errors(st.errors)}. Redis holds every session until its TTL (${ttl}): its growth is data, bounded by the sessions started per TTL, not a leak; with a TTL shorter than the run it levels off.`,
    '',
    table(['', 'before', ...heading.slice(1), `after (+${num(result.meta.options.settleMs / 1000, 1)} s)`], rows),
  ].join('\n');
}

export function renderMarkdown(result: BenchResult): string {
  const skipped = Object.entries(result.skipped).map(([phase, reason]) => `- ${phase}: ${reason}`);
  return [
    header(result),
    targetsSection(result),
    throughputSection(result),
    latencySection(result),
    longSessionsSection(result),
    streamingSection(result),
    redisSection(result),
    steadySection(result),
    connectionsSection(result),
    ceilingSection(result),
    fairnessSection(result),
    profilesSection(result),
    skipped.length === 0 ? '' : `## Skipped\n\n${skipped.join('\n')}`,
  ]
    .filter((section) => section !== '')
    .join('\n\n')
    .concat('\n');
}
