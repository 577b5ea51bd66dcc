/**
 * Helper process of the connections phase: holds thousands of idle WebSocket connections to one
 * gateway, in a process of its own so the harness's file-descriptor limit and event loop stay out
 * of it (the harness starts it with a raised `ulimit -n`). Driven over IPC: create sessions, open
 * the sockets (reporting how long that took), keep them open, close them.
 */
import { WebSocket } from 'ws';
import { STREAMING_SUBPROTOCOL } from '../src/contracts/wire.js';
import { chatUrl, createSession, mapLimit } from './lib/client.js';
import { idleRequestSchema, type IdleReply } from './lib/ipc.js';

const sockets: WebSocket[] = [];
/** Sessions are created through one gateway, sockets may go to another (sessions live in Redis). */
let baseUrl = '';
let tokens: string[] = [];
let lastError: string | undefined;

function reply(message: IdleReply): void {
  process.send?.(message);
}

async function createSessions(url: string, count: number, shared: boolean): Promise<void> {
  const started = performance.now();
  let failed = 0;
  const wanted = shared ? 1 : count;
  const created = await mapLimit(Array.from({ length: wanted }, (_, index) => index), 64, async () =>
    createSession(url).catch(() => {
      failed += 1;
      return undefined;
    }),
  );
  const unique = created.filter((token): token is string => token !== undefined);
  tokens = Array.from({ length: count }, (_, index) => unique[index % Math.max(1, unique.length)] ?? '');
  reply({ type: 'sessions-ready', sessions: unique.length, ms: performance.now() - started, failed });
}

/** Opens one socket; resolves at "open" (upgrade done) and again at "ready" (gateway subscribed). */
function openOne(token: string, marks: { open: number; ready: number }): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(chatUrl(baseUrl, token), [STREAMING_SUBPROTOCOL], { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      resolve(false);
    }, 60_000);
    ws.once('open', () => {
      marks.open = performance.now();
    });
    ws.on('message', (data) => {
      if (String(data).includes('"type":"ready"')) {
        marks.ready = performance.now();
        clearTimeout(timer);
        resolve(true);
      }
    });
    ws.once('error', (error) => {
      clearTimeout(timer);
      lastError = error.message;
      resolve(false);
    });
    ws.once('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
    sockets.push(ws);
  });
}

async function openAll(concurrency: number): Promise<void> {
  const started = performance.now();
  let lastOpen = started;
  let lastReady = started;
  let opened = 0;
  let ready = 0;
  const results = await mapLimit(tokens, concurrency, async (token) => {
    const marks = { open: 0, ready: 0 };
    const ok = await openOne(token, marks);
    if (marks.open > 0) {
      opened += 1;
      lastOpen = Math.max(lastOpen, marks.open);
    }
    if (ok) {
      ready += 1;
      lastReady = Math.max(lastReady, marks.ready);
    }
    return ok;
  });
  reply({
    type: 'opened',
    opened,
    ready,
    failed: results.filter((ok) => !ok).length,
    openMs: lastOpen - started,
    readyMs: lastReady - started,
    ...(lastError === undefined ? {} : { firstError: lastError }),
  });
}

function closeAll(): void {
  for (const ws of sockets) ws.terminate();
  process.exit(0);
}

process.on('message', (raw: unknown) => {
  const request = idleRequestSchema.safeParse(raw);
  if (!request.success) return;
  if (request.data.type === 'sessions') void createSessions(request.data.url, request.data.count, request.data.shared);
  else if (request.data.type === 'open') {
    baseUrl = request.data.url;
    void openAll(request.data.concurrency);
  }
  else closeAll();
});
// The harness went away: do not keep thousands of sockets open on its behalf.
process.once('disconnect', closeAll);
