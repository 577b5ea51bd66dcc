/**
 * `npm run bench:model -- --smoke` works end to end: it starts its own Redis (or uses REDIS_URL when
 * there is no redis-server), a gateway and a worker with the real local model, measures all three
 * variants, writes its result files with sane numbers, and leaves no process behind. Nothing here
 * says anything about speed: that is what the full run is for.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { TEST_REDIS_URL } from '../support/redis.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MODEL_PATH = process.env.PARLEY_TEST_MODEL ?? fileURLToPath(new URL('../../../shared/models/stories260K.gguf', import.meta.url));
const SKIP = existsSync(MODEL_PATH)
  ? false
  : `test model absent at ${MODEL_PATH} (stories260K.gguf; set PARLEY_TEST_MODEL to its path) — skipping the bench:model smoke test`;

const VARIANTS = ['raw', 'provider', 'pipeline'] as const;

interface Sample {
  round: number;
  variant: string;
  tokens: number;
  chars: number;
  totalMs: number;
  ttftMs: number;
  lastTextMs: number;
  tokensPerSecond: number;
  pieces: number;
}

interface Result {
  benchmark: string;
  smoke: boolean;
  settings: { maxTokens: number; rounds: number; contextSize: number; threads: number; parallel: number; temperature: number };
  workerModel: Record<string, unknown>;
  processes: { redis: number | null; gateway: number; worker: number };
  summary: Record<string, { rounds: number; tokens: number; medianTokensPerSecond: number; medianTotalMs: number; medianTtftMs: number }>;
  ratios: Record<string, number>;
  targetMet: boolean;
  sameText: boolean;
  samples: Sample[];
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/model.ts', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString()));
    child.stderr.on('data', (data: Buffer) => (output += data.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`bench:model --smoke took more than ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('bench:model --smoke writes sane results and cleans up', { skip: SKIP }, async (t) => {
  const outDir = await mkdtemp(join(tmpdir(), 'parley-bench-smoke-'));
  try {
    const ownRedis = spawnSync('redis-server', ['--version']).status === 0;
    const env: NodeJS.ProcessEnv = { ...process.env, LLM_MODEL_PATH: MODEL_PATH };
    if (ownRedis) delete env.REDIS_URL;
    else env.REDIS_URL = TEST_REDIS_URL;
    const { code, output } = await run(['--smoke', '--out-dir', outDir], env, 120_000);
    assert.equal(code, 0, output);

    const files = readdirSync(outDir);
    const json = files.find((name) => /^model-.+\.json$/.test(name));
    assert.ok(json, `a model-<timestamp>.json in ${files.join(', ')}`);
    assert.ok(files.includes(json.replace(/\.json$/, '.md')), 'and its .md');
    const result = JSON.parse(readFileSync(join(outDir, json), 'utf8')) as Result;
    const md = readFileSync(join(outDir, json.replace(/\.json$/, '.md')), 'utf8');
    t.diagnostic(`smoke: pipeline/direct ${(result.ratios.pipelineOverRaw ?? 0).toFixed(3)} (not a measurement)`);

    assert.equal(result.benchmark, 'model');
    assert.equal(result.smoke, true);
    assert.ok(result.settings.rounds >= 1 && result.settings.maxTokens > 0);
    assert.equal(result.settings.temperature, 0);
    // The worker process ran the same model with the same settings as the direct variants.
    assert.equal(result.workerModel.file, MODEL_PATH);
    assert.equal(result.workerModel.contextSize, result.settings.contextSize);
    assert.equal(result.workerModel.threads, result.settings.threads);
    assert.equal(result.workerModel.parallel, result.settings.parallel);

    assert.equal(result.samples.length, VARIANTS.length * result.settings.rounds);
    for (const variant of VARIANTS) {
      const samples = result.samples.filter((sample) => sample.variant === variant);
      assert.equal(samples.length, result.settings.rounds, `${variant} measured every round`);
      for (const sample of samples) {
        assert.ok(sample.tokens > 0 && sample.tokens <= result.settings.maxTokens, `${variant}: ${sample.tokens} tokens`);
        assert.ok(sample.chars >= sample.tokens / 2, `${variant}: text of ${sample.chars} characters`);
        assert.ok(Number.isFinite(sample.tokensPerSecond) && sample.tokensPerSecond > 0, `${variant}: ${sample.tokensPerSecond} tokens/s`);
        assert.ok(sample.totalMs > 0 && sample.ttftMs >= 0 && sample.ttftMs <= sample.lastTextMs && sample.lastTextMs <= sample.totalMs, JSON.stringify(sample));
        assert.ok(sample.pieces >= 1);
      }
      const summary = result.summary[variant];
      assert.ok(summary && summary.rounds === result.settings.rounds && summary.medianTokensPerSecond > 0 && summary.medianTotalMs > 0);
    }
    // Greedy decoding: all three produced the same answer, so their rates compare like for like.
    assert.equal(result.sameText, true);
    const tokens = new Set(result.samples.map((sample) => sample.tokens));
    assert.equal(tokens.size, 1, `one token count for all: ${[...tokens].join(', ')}`);
    for (const [name, ratio] of Object.entries(result.ratios)) assert.ok(Number.isFinite(ratio) && ratio > 0, `${name} = ${ratio}`);
    assert.equal(typeof result.targetMet, 'boolean');
    assert.match(md, /pipeline ÷ direct \(node-llama-cpp\): \d+\.\d %/);
    assert.match(md, /smoke run/);

    // Nothing left running: Redis (when it started its own), gateway, worker.
    const pids = [result.processes.gateway, result.processes.worker, ...(result.processes.redis === null ? [] : [result.processes.redis])];
    assert.equal(result.processes.redis !== null, ownRedis, 'its own redis-server exactly when one is installed');
    for (let waited = 0; pids.some(isAlive) && waited < 3000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(pids.filter(isAlive), [], 'every child process has exited');
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});
