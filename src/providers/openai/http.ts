/**
 * The HTTP side of the OpenAI-compatible API on undici: the connection pool, the request's path,
 * headers and body, and reading response bodies and headers.
 */
import { Pool, type Dispatcher } from 'undici';
import type { ModelConfig } from '../../config/config.js';
import type { ChatTurn } from '../provider.js';

export type Response = Dispatcher.ResponseData;
export type Body = Response['body'];

/** Error bodies are read up to this size; the rest is not needed for a message. */
export const MAX_ERROR_BODY_BYTES = 16 * 1024;

/** Kept-alive connections to the API's origin. Our watchdog owns every timeout, so undici's are off. */
export function createPool(baseUrl: string): Pool {
  return new Pool(new URL(baseUrl).origin, { headersTimeout: 0, bodyTimeout: 0 });
}

/** Path of an endpoint under the base URL (which may carry a path such as /v1 and a query). */
export function endpointPath(baseUrl: string, endpoint: string): string {
  const url = new URL(baseUrl);
  return `${url.pathname.replace(/\/+$/, '')}${endpoint}${url.search}`;
}

/** The URL without user:password, for logs and messages. */
export function safeUrl(baseUrl: string): string {
  const url = new URL(baseUrl);
  url.username = '';
  url.password = '';
  url.search = '';
  return url.toString().replace(/\/+$/, '');
}

export function requestHeaders(config: ModelConfig, accept: string): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept };
  if (config.apiKey !== undefined) headers.authorization = `Bearer ${config.apiKey}`;
  return headers;
}

export function chatCompletionBody(config: ModelConfig, turns: readonly ChatTurn[]): string {
  const { model, maxTokens, temperature, topP, stop } = config;
  return JSON.stringify({
    ...(model === undefined ? {} : { model }),
    // Role-tagged turns, never "Human:/Bot:" text: the user cannot impersonate the assistant.
    messages: turns.map((turn) => ({ role: turn.role, content: turn.content })),
    stream: true,
    max_tokens: maxTokens,
    temperature,
    top_p: topP,
    ...(stop.length > 0 ? { stop: [...stop] } : {}),
  });
}

/** Reads at most `limit` bytes of a body as text; beyond that the connection is closed. */
export async function readLimited(body: Body, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength;
      text += decoder.decode(chunk, { stream: true });
      if (bytes >= limit) break;
    }
  } finally {
    // A body read to its end leaves the connection to the pool.
    if (!body.readableEnded) body.destroy();
  }
  return text + decoder.decode();
}

export function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** OpenAI's `retry-after-ms` (milliseconds) first, then the standard `Retry-After`. */
export function retryAfterOf(response: Response): number | undefined {
  const ms = Number(header(response, 'retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  return parseRetryAfter(header(response, 'retry-after'));
}

/**
 * Retry-After as milliseconds: delay-seconds ("120", decimals tolerated) or an HTTP date.
 * Undefined when absent or unparseable; never negative.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
