/**
 * `npm run bench -- --smoke` works end to end: it starts its own Redis, gateways and workers,
 * runs every phase in a tiny size, writes a JSON result with every section filled with sane,
 * non-zero figures and a Markdown summary, and leaves no process behind. Nothing here asserts
 * speed: CI machines vary, and the targets are judged by people reading full runs.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import type { BenchResult } from '../../bench/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const outDir = mkdtempSync(join(tmpdir(), 'parley-bench-smoke-'));
after(() => rmSync(outDir, { recursive: true, force: true }));

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'bench', '--', '--smoke', '--out', outDir], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const timer = setTimeout(() => child.kill('SIGINT'), 150_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const positive = (value: number | null | undefined, what: string) => assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${what} should be > 0, got ${value}`);

test('npm run bench -- --smoke measures every section and cleans up', { timeout: 180_000 }, async () => {
  const { code, output } = await runSmoke();
  assert.equal(code, 0, `the smoke run failed:\n${output.slice(-4000)}`);
  const files = readdirSync(outDir);
  const json = files.find((file) => file.endsWith('.json'));
  assert.ok(json !== undefined && files.includes(json.replace(/\.json$/, '.md')), `expected a .json and a .md in ${files.join(', ')}`);
  const result = JSON.parse(readFileSync(join(outDir, json), 'utf8')) as BenchResult;
  assert.match(readFileSync(join(outDir, json.replace(/\.json$/, '.md')), 'utf8'), /## Targets/);

  // 1. Throughput: plain and streaming, 1 + 1 and 2 + 2 over HTTP (the real path), and 1 + 1 with
  // the model double inside the worker; every turn answered correctly.
  assert.deepEqual(result.throughput.map((run) => `${run.gateways}:${run.mode}:${run.model}`).sort(), [
    '1:plain:double',
    '1:plain:http',
    '1:streaming:double',
    '1:streaming:http',
    '2:plain:http',
    '2:streaming:http',
  ]);
  for (const run of result.throughput) {
    positive(run.turnsPerSec, `${run.label} turns/s`);
    positive(run.latencyMs.p50, `${run.label} latency p50`);
    assert.deepEqual(run.errors, {}, `${run.label} errors`);
    assert.equal(run.wrongAnswers, 0, `${run.label} wrong answers`);
  }

  // 2. Latency at each offered load, both modes.
  assert.equal(result.latency.length, 4);
  for (const run of result.latency) {
    positive(run.latencyMs.count, `latency samples at ${run.offeredPerSec}/s`);
    positive(run.latencyMs.p99, `latency p99 at ${run.offeredPerSec}/s`);
    assert.ok(run.latencyMs.p50 <= run.latencyMs.p99);
    assert.deepEqual(run.errors, {});
  }

  // 2b. Long sessions: every bucket of turns measured. 4b. Memory before and after a steady load.
  const long = result.longSessions;
  assert.ok(long !== null);
  assert.ok(long.buckets.length >= 2 && long.buckets.every((bucket) => bucket.latencyMs.count > 0), 'every bucket of turns measured');
  assert.deepEqual(long.errors, {});
  const steady = result.steady;
  assert.ok(steady !== null);
  positive(steady.turns, 'steady-load turns');
  positive(steady.after.redisUsedMemoryMiB, 'Redis used_memory after the steady load');
  positive(steady.after.rssMiB['worker-1'], 'worker RSS after the steady load');

  // 3. Streaming overhead: every answer matched with the model's yield times.
  const streaming = result.streaming;
  assert.ok(streaming !== null);
  positive(streaming.overheadMs.count, 'chunks measured');
  positive(streaming.firstChunkMs.p50, 'first-chunk overhead');
  positive(streaming.deltaFramesPerTurn.mean, 'batches per answer');
  assert.equal(streaming.unmatchedTurns, 0);

  // 4. Redis cost of five answer variants, the length comparison, memory per session.
  const redis = result.redis;
  assert.ok(redis !== null);
  assert.equal(redis.cost.length, 5);
  for (const cost of redis.cost) {
    positive(cost.turns, `${cost.label} turns`);
    positive(cost.roundTripsPerTurn, `${cost.label} round trips`);
    positive(cost.evalshaPerTurn, `${cost.label} EVALSHA`);
    assert.ok(cost.commandsPerTurn >= cost.roundTripsPerTurn, `${cost.label}: commands include round trips`);
    positive(cost.inputBytesPerTurn, `${cost.label} bytes in`);
    positive(cost.outputBytesPerTurn, `${cost.label} bytes out`);
    assert.ok((cost.anatomy.scripts.finishTurn?.calls ?? 0) > 0, 'MONITOR saw finishTurn');
  }
  assert.equal(redis.lengthChecks.length, 2);
  assert.ok(redis.memory !== null);
  assert.equal(redis.memory.turnsCompleted, redis.memory.sessions * redis.memory.turnsPerSession);
  positive(redis.memory.usedMemoryPerSessionBytes, 'used_memory per session');
  positive(redis.memory.keyBytesPerSession, 'key bytes per session');

  // 5. Idle connections: all opened, gateway memory read.
  const connections = result.connections;
  assert.ok(connections !== null);
  assert.equal(connections.ready, connections.requested);
  positive(connections.readyMs, 'time to open');
  positive(connections.gatewayRssBeforeKiB, 'gateway RSS');
  assert.ok(Number.isFinite(connections.rssPerConnectionKiB));

  // 6. Ceilings.
  const ceiling = result.ceiling;
  assert.ok(ceiling?.redis != null && ceiling.websocket !== null);
  assert.ok(ceiling.redis.rates.length >= 7);
  for (const rate of ceiling.redis.rates) positive(rate.opsPerSec, `redis-benchmark ${rate.kind}`);
  positive(ceiling.redis.turnsPerSec, 'Redis-bound ceiling');
  positive(ceiling.websocket.roundTripsPerSec, 'WebSocket ceiling');
  positive(ceiling.percentOfRedis, 'share of the Redis ceiling');

  assert.ok(result.targets.length >= 8, 'every target is listed');

  // Nothing left running: the harness's redis-server is gone.
  assert.equal(await portAnswers(result.meta.redis.port), false, 'the benchmark redis-server still answers');
});
