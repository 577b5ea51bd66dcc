/**
 * The benchmark's model server: a fast OpenAI-compatible chat-completions server in a process of
 * its own, so the real path (worker -> OpenAI-compatible provider -> HTTP -> model) is what the
 * headline figures measure. It streams the same fixed answer as the BenchModelDouble (K tokens of
 * TOKEN_CHARS characters, one SSE event per token, as real servers send them) at a fixed rate or
 * all at once, and records each token's write time when asked, for the streaming-overhead phase.
 *
 * It speaks the worker double's IPC protocol (configure / yields), so the harness reconfigures
 * the model between phases the same way whichever path runs (until then: the double's defaults). Connections are kept alive for a
 * minute: a keep-alive timeout shorter than the client's would close sockets under it (the race
 * the provider's connection pool is built to avoid, measured separately, not here).
 *
 *   PORT=8080 node --import tsx bench/model-server.ts
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { benchAnswerTokens, DEFAULT_BENCH_MODEL, type BenchModelSettings, type YieldLog } from './bench-model.js';
import { workerRequestSchema, type WorkerReply } from './lib/ipc.js';
import { hrNowMs } from './lib/stats.js';

const requestSchema = z.object({
  messages: z.array(z.object({ role: z.string(), content: z.string() })),
});

let settings: BenchModelSettings = DEFAULT_BENCH_MODEL;
let yields = new Map<string, number[]>();

/** The SSE frame of one token: a constant prefix and suffix around JSON-escaped text. */
const EVENT_HEAD = 'data: {"id":"bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":';
const EVENT_TAIL = '},"finish_reason":null}]}\n\n';
const FINISH = 'data: {"id":"bench","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n';
const tokenEvent = (token: string) => `${EVENT_HEAD}${JSON.stringify(token)}${EVENT_TAIL}`;

function lastUserText(messages: ReadonlyArray<{ role: string; content: string }>): string {
  for (let index = messages.length - 1; index >= 0; index -= 1) {
    const message = messages[index];
    if (message?.role === 'user') return message.content;
  }
  return '';
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

async function complete(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const parsed = requestSchema.safeParse(JSON.parse(await readBody(request)));
  if (!parsed.success) {
    response.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"bad request"}}');
    return;
  }
  const current = settings;
  const times: number[] | undefined = current.recordYields ? [] : undefined;
  if (times !== undefined) yields.set(lastUserText(parsed.data.messages), times);
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const tokens = benchAnswerTokens(current.tokens);
  if (current.rate === 'instant') {
    // One write for the whole answer: the cheapest a model server can be.
    response.end(tokens.map(tokenEvent).join('') + FINISH);
    return;
  }
  const intervalMs = 1000 / current.rate;
  const startedAt = performance.now();
  let closed = false;
  response.once('close', () => (closed = true));
  for (let index = 0; index < tokens.length && !closed; index += 1) {
    // Due on a fixed schedule from the start, like the double: timer lateness does not slow the rate.
    const wait = startedAt + index * intervalMs - performance.now();
    if (wait >= 1) await new Promise((resolve) => setTimeout(resolve, wait));
    times?.push(hrNowMs());
    response.write(tokenEvent(tokens[index] ?? ''));
  }
  response.end(FINISH);
}

const server = createServer({ keepAlive: true, keepAliveTimeout: 60_000 }, (request, response) => {
  if (request.method === 'POST' && request.url === '/v1/chat/completions') {
    complete(request, response).catch(() => response.destroy());
  } else if (request.method === 'GET' && request.url === '/v1/models') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[{"id":"bench","object":"model"}]}');
  } else {
    response.writeHead(404).end();
  }
});
server.keepAliveTimeout = 60_000;

function reply(message: WorkerReply): void {
  process.send?.(message);
}

process.on('message', (raw: unknown) => {
  const request = workerRequestSchema.safeParse(raw);
  if (!request.success) return;
  if (request.data.type === 'configure') {
    settings = request.data.model;
    if (!settings.recordYields) yields.clear();
    reply({ type: 'configured' });
  } else {
    const log: YieldLog = Object.fromEntries(yields);
    yields = new Map();
    reply({ type: 'yields', log });
  }
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  reply({ type: 'listening', port });
  if (process.send === undefined) console.log(`model server on http://127.0.0.1:${port}/v1`);
});
process.once('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
