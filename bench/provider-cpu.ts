/**
 * CPU per answer of the model paths alone, without Redis, gateway or clients: the
 * OpenAI-compatible provider streaming from bench/model-server.ts (its own process) against the
 * BenchModelDouble, both drained by the same loop at the worker's default concurrency. This
 * process's CPU time per answer is the figure compared (issue 11: the provider within 1.3× of
 * the double), and the model server's new TCP connections per answer shows whether keep-alive
 * sockets are reused.
 *
 *   node --import tsx bench/provider-cpu.ts [answers=4000] [concurrency=32] [tokens=50]
 */
import { execFileSync, fork } from 'node:child_process';
import { loadConfig } from '../src/config/config.js';
import { OpenAICompatibleProvider } from '../src/providers/openai/openai-provider.js';
import type { ModelProvider } from '../src/providers/provider.js';
import { BenchModelDouble } from './bench-model.js';
import { workerReplySchema } from './lib/ipc.js';
import { summarize } from './lib/stats.js';

const [answers = 4000, concurrency = 32, tokens = 50] = process.argv.slice(2).map(Number);

/** TCP connections to the port, any state (TIME_WAIT included: closed ones count too). */
function connectionsTo(port: number): number {
  const out = execFileSync('ss', ['-Htan', `dport = :${port}`], { encoding: 'utf8' });
  return out.split('\n').filter((line) => line.trim() !== '').length;
}

async function drive(provider: ModelProvider, count: number): Promise<{ cpuUsPerAnswer: number; p50: number; p99: number; chars: number }> {
  let next = 0;
  let chars = 0;
  const times: number[] = [];
  const before = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next += 1;
        const started = performance.now();
        const turns = [{ role: 'system' as const, content: 'You are a benchmark.' }, { role: 'user' as const, content: `hello ${next}` }];
        for await (const text of provider.generate({ turns, signal: new AbortController().signal })) chars += text.length;
        times.push(performance.now() - started);
      }
    }),
  );
  const used = process.cpuUsage(before);
  const latency = summarize(times);
  return { cpuUsPerAnswer: Math.round((used.user + used.system) / count), p50: latency.p50, p99: latency.p99, chars };
}

const server = fork('bench/model-server.ts', [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const port = await new Promise<number>((resolve) =>
  server.on('message', (raw: unknown) => {
    const reply = workerReplySchema.safeParse(raw);
    if (reply.success && reply.data.type === 'listening') resolve(reply.data.port);
  }),
);
server.send({ type: 'configure', model: { tokens, rate: 'instant', recordYields: false } });

const config = loadConfig({ LLM_PROVIDER: 'openai', LLM_BASE_URL: `http://127.0.0.1:${port}/v1`, LLM_MODEL: 'bench' });
const http = new OpenAICompatibleProvider(config.model, undefined, { probeModels: false });
const double = new BenchModelDouble({ tokens, rate: 'instant', recordYields: false });

// Warm-up of both (JIT, connection pool), then alternate rounds so machine noise hits both alike.
await drive(http, 500);
await drive(double, 500);
const connectionsBefore = connectionsTo(port);
const rows: Array<{ path: string; cpuUsPerAnswer: number; p50: number; p99: number }> = [];
for (let round = 0; round < 3; round += 1) {
  rows.push({ path: 'http', ...(await drive(http, answers)) });
  rows.push({ path: 'double', ...(await drive(double, answers)) });
}
const newConnections = connectionsTo(port) - connectionsBefore;
const median = (path: string) => summarize(rows.filter((row) => row.path === path).map((row) => row.cpuUsPerAnswer)).p50;
console.log(JSON.stringify({ answers, concurrency, tokens, rows, medianCpuUs: { http: median('http'), double: median('double') }, ratio: Math.round((median('http') / median('double')) * 100) / 100, newConnectionsPerAnswer: Math.round((newConnections / (3 * answers)) * 1000) / 1000 }, null, 1));
await http.close();
server.kill('SIGTERM');
