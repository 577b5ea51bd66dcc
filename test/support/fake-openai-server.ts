/**
 * TEST DOUBLE — a fake OpenAI-compatible language model server, for tests only.
 *
 * A local HTTP server (node:http on 127.0.0.1, random port) that speaks the chat-completions
 * streaming protocol (`POST /v1/chat/completions` with server-sent events, `GET /v1/models`).
 * Tests script its behaviour per request: streamed chunks with delays, a socket cut mid-stream,
 * HTTP errors with headers (Retry-After), raw bytes, or a request that never gets an answer.
 * By default it is a deterministic "echo model": `Echo #<user message count>: <last user message>`,
 * streamed word by word. It records every chat request it receives.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeMessage {
  readonly role: string;
  readonly content: string;
}

/** A chat-completions request as the fake received it. */
export interface FakeRequest {
  /** 0 for the first chat request this server received, then 1, 2, ... */
  readonly index: number;
  readonly messages: readonly FakeMessage[];
  /** The parsed JSON body (model, stream, max_tokens, ...). */
  readonly body: unknown;
  readonly headers: IncomingHttpHeaders;
  /** Date.now() when the request arrived. */
  readonly receivedAt: number;
}

/** How the connection of a request ended: answered fully, or closed by the client (or a cut). */
export type FakeCloseOutcome = 'completed' | 'client_closed';

export type FakeResponse =
  | {
      /** A normal streamed answer: one `delta.content` event per chunk, then finish_reason and [DONE]. */
      readonly kind: 'stream';
      readonly chunks: readonly string[];
      /** Wait before each chunk after the first (ms). */
      readonly delayMs?: number;
      /** Wait before the first content chunk (ms); headers and the role event go out at once. */
      readonly firstDelayMs?: number;
      /** Destroy the socket after this many content chunks: a connection reset mid-answer. */
      readonly cutAfter?: number;
      /** finish_reason of the last event; null sends none. Default "stop". */
      readonly finishReason?: string | null;
      /** Send `data: [DONE]` at the end. Default true. */
      readonly done?: boolean;
      /** Write the whole SSE text in pieces of this many bytes (1 = one byte per write). */
      readonly splitBytes?: number;
    }
  | {
      /** Exactly these writes (text or bytes) after 200 text/event-stream headers, then end. */
      readonly kind: 'raw';
      readonly writes: readonly (string | Uint8Array)[];
      readonly delayMs?: number;
      readonly contentType?: string;
    }
  | {
      /** An HTTP error: status, JSON body (default an OpenAI-style error) and extra headers. */
      readonly kind: 'error';
      readonly status: number;
      readonly body?: unknown;
      readonly headers?: Readonly<Record<string, string>>;
    }
  | {
      /** Never answer (not even headers) until the client gives up or the server closes. */
      readonly kind: 'hang';
    };

export interface FakeRespondInput {
  readonly messages: readonly FakeMessage[];
  readonly body: unknown;
  readonly index: number;
}

export type FakeRespond = (request: FakeRespondInput) => FakeResponse | Promise<FakeResponse>;

export interface FakeOpenAIOptions {
  /** Behaviour per request; default: the echo model. */
  readonly respond?: FakeRespond;
  /** Model id reported in chunks and by GET /v1/models. Default "fake-echo". */
  readonly model?: string;
}

export interface FakeOpenAI {
  /** Base URL ending in /v1, e.g. http://127.0.0.1:41234/v1 — use as LLM_BASE_URL. */
  readonly url: string;
  /** Every chat-completions request received, in order (GET /models is not recorded). */
  readonly requests: FakeRequest[];
  /** Replaces the behaviour for the following requests. */
  setRespond(respond: FakeRespond): void;
  /** Resolves when the connection of request `index` ends, saying who ended it. */
  waitForClose(index: number): Promise<FakeCloseOutcome>;
  /** Stops the server and destroys every open connection, hanging ones included. */
  close(): Promise<void>;
}

/** The echo model's answer to a conversation: what tests expect to receive. */
export function echoAnswer(messages: readonly FakeMessage[]): string {
  const users = messages.filter((message) => message.role === 'user');
  return `Echo #${users.length}: ${users.at(-1)?.content ?? ''}`;
}

/** Splits text into word chunks that keep their spaces, so the chunks join back exactly. */
export function wordChunks(text: string): string[] {
  return text.split(/(?<= )/).filter((chunk) => chunk !== '');
}

export const echoRespond: FakeRespond = ({ messages }) => ({ kind: 'stream', chunks: wordChunks(echoAnswer(messages)) });

/** One SSE event carrying a chat.completion.chunk. */
export function sseChunk(delta: Record<string, unknown>, finishReason: string | null = null, model = 'fake-echo'): string {
  const chunk = {
    id: 'chatcmpl-fake',
    object: 'chat.completion.chunk',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, finish_reason: finishReason }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

export const SSE_DONE = 'data: [DONE]\n\n';

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Writes and waits until the bytes were handed to the socket, so a later cut cannot swallow them. */
function write(response: ServerResponse, data: string): Promise<void> {
  return new Promise((resolve) => response.write(data, () => resolve()));
}

function parseMessages(body: unknown): FakeMessage[] {
  if (typeof body !== 'object' || body === null || !('messages' in body) || !Array.isArray(body.messages)) return [];
  return body.messages.map((message: unknown) => {
    const record = (typeof message === 'object' && message !== null ? message : {}) as Record<string, unknown>;
    return { role: String(record.role ?? ''), content: typeof record.content === 'string' ? record.content : JSON.stringify(record.content) };
  });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of request) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

function sendJson(response: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const model = options.model ?? 'fake-echo';
  let respond = options.respond ?? echoRespond;
  const requests: FakeRequest[] = [];
  const closes = new Map<number, Promise<FakeCloseOutcome>>();

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { error: { message: `fake server bug: ${String(error)}` } });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '').split('?')[0];
    if (request.method === 'GET' && path === '/v1/models') {
      sendJson(response, 200, { object: 'list', data: [{ id: model, object: 'model', owned_by: 'parley-tests' }] });
      return;
    }
    if (request.method !== 'POST' || path !== '/v1/chat/completions') {
      sendJson(response, 404, { error: { message: `fake server: no route ${request.method} ${path}` } });
      return;
    }
    const text = await readBody(request);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      sendJson(response, 400, { error: { message: 'fake server: body is not JSON' } });
      return;
    }
    const index = requests.length;
    const messages = parseMessages(body);
    requests.push({ index, messages, body, headers: request.headers, receivedAt: Date.now() });
    closes.set(index, new Promise((resolve) => response.on('close', () => resolve(response.writableFinished ? 'completed' : 'client_closed'))));
    const behaviour = await respond({ messages, body, index });
    const streaming = typeof body === 'object' && body !== null && 'stream' in body && body.stream === true;
    await perform(behaviour, response, streaming);
  }

  async function perform(behaviour: FakeResponse, response: ServerResponse, streaming: boolean): Promise<void> {
    switch (behaviour.kind) {
      case 'hang':
        return;
      case 'error':
        sendJson(response, behaviour.status, behaviour.body ?? { error: { message: `fake error ${behaviour.status}`, type: 'fake_error' } }, behaviour.headers);
        return;
      case 'raw':
        await writeRaw(behaviour, response);
        return;
      case 'stream':
        if (streaming) await writeStream(behaviour, response);
        else sendCompletion(behaviour, response);
    }
  }

  async function writeRaw(behaviour: Extract<FakeResponse, { kind: 'raw' }>, response: ServerResponse): Promise<void> {
    response.writeHead(200, { 'content-type': behaviour.contentType ?? 'text/event-stream', 'cache-control': 'no-cache' });
    response.flushHeaders();
    for (const [position, write] of behaviour.writes.entries()) {
      if (position > 0 && behaviour.delayMs) await delay(behaviour.delayMs);
      if (response.destroyed) return;
      response.write(write);
    }
    response.end();
  }

  async function writeStream(behaviour: Extract<FakeResponse, { kind: 'stream' }>, response: ServerResponse): Promise<void> {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    if (behaviour.splitBytes !== undefined) {
      await writeSplit(streamText(behaviour), behaviour.splitBytes, response);
      return;
    }
    await write(response, sseChunk({ role: 'assistant', content: '' }, null, model));
    for (const [position, chunk] of behaviour.chunks.entries()) {
      if (behaviour.cutAfter !== undefined && position >= behaviour.cutAfter) {
        response.socket?.destroy();
        return;
      }
      const wait = position === 0 ? behaviour.firstDelayMs : behaviour.delayMs;
      if (wait) await delay(wait);
      if (response.destroyed) return;
      await write(response, sseChunk({ content: chunk }, null, model));
    }
    if (behaviour.cutAfter !== undefined && behaviour.cutAfter <= behaviour.chunks.length) {
      response.socket?.destroy();
      return;
    }
    const finish = behaviour.finishReason === undefined ? 'stop' : behaviour.finishReason;
    if (finish !== null) response.write(sseChunk({}, finish, model));
    if (behaviour.done ?? true) response.write(SSE_DONE);
    response.end();
  }

  /** The whole SSE text of a streamed answer, for byte-split writes. */
  function streamText(behaviour: Extract<FakeResponse, { kind: 'stream' }>): string {
    const events = [sseChunk({ role: 'assistant', content: '' }, null, model), ...behaviour.chunks.map((chunk) => sseChunk({ content: chunk }, null, model))];
    const finish = behaviour.finishReason === undefined ? 'stop' : behaviour.finishReason;
    if (finish !== null) events.push(sseChunk({}, finish, model));
    if (behaviour.done ?? true) events.push(SSE_DONE);
    return events.join('');
  }

  async function writeSplit(text: string, size: number, response: ServerResponse): Promise<void> {
    const bytes = Buffer.from(text, 'utf8');
    for (let offset = 0; offset < bytes.length; offset += Math.max(1, size)) {
      if (response.destroyed) return;
      response.write(bytes.subarray(offset, offset + Math.max(1, size)));
      // Yield to the event loop so the writes really leave as separate network chunks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    response.end();
  }

  function sendCompletion(behaviour: Extract<FakeResponse, { kind: 'stream' }>, response: ServerResponse): void {
    sendJson(response, 200, {
      id: 'chatcmpl-fake',
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: behaviour.chunks.join('') }, finish_reason: behaviour.finishReason ?? 'stop' }],
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setRespond(next) {
      respond = next;
    },
    waitForClose(index) {
      const closed = closes.get(index);
      if (closed === undefined) return Promise.reject(new Error(`fake server: no request #${index} yet`));
      return closed;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
