/**
 * A ModelProvider for any OpenAI-compatible chat-completions API (OpenAI, Hugging Face router,
 * vLLM, llama.cpp server, Ollama, LM Studio, OpenRouter, ...). It streams with server-sent events,
 * retries only what is safe to retry (nothing has reached the user yet), and turns every failure
 * into a ModelError with a stable code and a message a human can act on.
 *
 * The hot path is cheap on purpose (a worker runs it for every turn): one undici Pool per API
 * origin keeps connections alive and reuses them, bodies are Node streams read as they come, and
 * the SSE parser (eventsource-parser) hands over events without re-buffering the stream. See
 * docs/benchmarks.md ("The provider path") for the measured comparison with fetch.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Pool, type Dispatcher } from 'undici';
import { z } from 'zod';
import { backoffDelay } from '../contracts/backoff.js';
import { ErrorCodes, ModelError, type ErrorCode } from '../contracts/errors.js';
import type { ModelConfig } from '../config/config.js';
import { describeCause, type ChatTurn, type GenerateRequest, type ModelProvider, type ProviderLogger } from './provider.js';

export interface OpenAIProviderOptions {
  /** First retry waits about this long (ms); each further retry doubles it. Default 500. */
  readonly retryBaseMs?: number;
  /** Upper bound of one backoff wait (ms), Retry-After aside. Default 8000. */
  readonly retryMaxMs?: number;
  /** At start(), ask GET /models in the background and warn when it fails. Default true. */
  readonly probeModels?: boolean;
  /** Source of jitter in [0, 1); injectable so tests can be exact. */
  readonly random?: () => number;
}

const silentLogger: ProviderLogger = { info() {}, warn() {}, error() {} };

/** Server text we quote in error messages is cut here: enough to diagnose, never a wall of HTML. */
const MAX_DETAIL_CHARS = 300;
/** Error bodies are read up to this size; the rest is not needed for a message. */
const MAX_ERROR_BODY_BYTES = 16 * 1024;
/** A non-streaming JSON answer (a server that ignored `stream: true`) is read up to this size. */
const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;
const PROBE_TIMEOUT_MS = 5000;

const CONTEXT_OVERFLOW = [
  /context[ _-]?(length|window|size)/i,
  /maximum context/i,
  /too many tokens/i,
  /prompt is too long/i,
  /exceeds? (the )?(model'?s? )?(max(imum)?|token limit|context)/i,
  /input (is )?too long/i,
];

/**
 * Token estimate for remote models, whose tokenizer we do not have. Rule: ASCII characters count
 * 1/4 token each (≈ 4 characters per token for English with BPE tokenizers); every other code point
 * counts 1 token (CJK is ≈ 1 token per character, emoji and rare letters take 1–3). Rounded up.
 * It errs on the high side for non-English text, so a history window built with it fits the context.
 */
export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  // By UTF-16 unit, a surrogate pair taken as its one code point: half the CPU of a string
  // iterator, and every turn counts its whole history window again.
  for (let index = 0; index < text.length; index += 1) {
    const unit = text.charCodeAt(index);
    if (unit < 128) {
      ascii += 1;
      continue;
    }
    other += 1;
    const next = text.charCodeAt(index + 1);
    if (unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) index += 1;
  }
  return Math.ceil(ascii / 4) + other;
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

// ---------------------------------------------------------------------------------------------
// Wire schemas. Only the fields we use are declared; everything else is ignored, so servers that
// add fields (usage, logprobs, reasoning) keep working.

const apiErrorSchema = z.union([
  z.string(),
  z.object({
    message: z.string().nullish(),
    type: z.string().nullish(),
    code: z.union([z.string(), z.number()]).nullish(),
  }),
]);

const streamChunkSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z.object({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  error: apiErrorSchema.nullish(),
});

const completionSchema = z.object({
  choices: z.array(z.object({ message: z.object({ content: z.string().nullish() }).nullish() })).min(1),
});

/**
 * The text of the event nearly every token arrives in, `{"choices":[{"delta":{"content":"…"},
 * "finish_reason":null}]}`, checked by hand: the schema's parse cost more than all the rest of a
 * token's handling. Anything else (an error, a finish, no content, a surprise) returns undefined
 * and goes through streamChunkSchema.
 */
function plainDelta(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || 'error' in json) return undefined;
  const { choices } = json as { choices?: unknown };
  if (!Array.isArray(choices) || choices.length !== 1) return undefined;
  const choice: unknown = choices[0];
  if (typeof choice !== 'object' || choice === null) return undefined;
  const { delta, finish_reason: finish } = choice as { delta?: unknown; finish_reason?: unknown };
  if ((finish !== null && finish !== undefined) || typeof delta !== 'object' || delta === null) return undefined;
  const { content } = delta as { content?: unknown };
  return typeof content === 'string' ? content : undefined;
}

/** Error bodies: OpenAI `{"error":{"message"}}`, HF `{"error":"...","estimated_time":20}`, others. */
const errorBodySchema = z.object({
  error: apiErrorSchema.nullish(),
  message: z.string().nullish(),
  detail: z.unknown().optional(),
  estimated_time: z.number().nullish(),
});

// ---------------------------------------------------------------------------------------------
// Server-sent events: eventsource-parser (spec-complete: any line ending, comments, multi-line
// data), collecting the events one network read completes.

interface SseEvent {
  readonly event: string;
  readonly data: string;
}

class SseReader {
  private events: SseEvent[] = [];
  private readonly parser = createParser({
    onEvent: (message: EventSourceMessage) => this.events.push({ event: message.event ?? '', data: message.data }),
  });

  /** Feeds decoded text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    this.parser.feed(text);
    const events = this.events;
    if (events.length > 0) this.events = [];
    return events;
  }

  /** The stream ended: a last event counts even without its blank line (servers omit it). */
  end(): SseEvent[] {
    return this.push('\n\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Timeouts of one attempt. When a timer fires it records why and aborts the HTTP request; the
// failure that follows (a rejected request or read) is then reported as that timeout.

type Expiry = 'first_token' | 'idle' | 'total';

/**
 * The phase timer is lazy: a streamed answer re-arms it for every chunk, and clearing and
 * setting a timer per chunk cost more CPU than the rest of the chunk's handling. Re-arming only
 * moves a deadline; when the timer fires it checks the deadline and sleeps again if it moved.
 */
class Watchdog {
  expired: Expiry | undefined;
  private phase: 'first_token' | 'idle' | undefined;
  private phaseDeadline = 0;
  /** When the phase timer fires: it must never be later than the deadline. */
  private phaseTimerAt = 0;
  private phaseTimer: NodeJS.Timeout | undefined;
  private totalTimer: NodeJS.Timeout | undefined;

  constructor(private readonly abort: () => void) {}

  /** The whole generation's deadline (shared by all attempts). */
  startTotal(deadline: number): void {
    this.totalTimer = setTimeout(() => this.expire('total'), Math.max(0, deadline - Date.now()));
  }

  /** (Re)starts the first-token or idle timer. */
  arm(kind: 'first_token' | 'idle', ms: number): void {
    this.phase = kind;
    this.phaseDeadline = performance.now() + ms;
    // Moving the deadline later (every chunk of a stream) leaves the timer alone.
    if (this.phaseTimer !== undefined && this.phaseTimerAt <= this.phaseDeadline) return;
    this.schedule(ms);
  }

  /** Stops the phase timer, e.g. while the consumer holds a chunk: its slowness is not the model's. */
  disarm(): void {
    this.phase = undefined;
  }

  clear(): void {
    this.phase = undefined;
    if (this.phaseTimer !== undefined) clearTimeout(this.phaseTimer);
    this.phaseTimer = undefined;
    if (this.totalTimer !== undefined) clearTimeout(this.totalTimer);
    this.totalTimer = undefined;
  }

  private schedule(ms: number): void {
    if (this.phaseTimer !== undefined) clearTimeout(this.phaseTimer);
    this.phaseTimerAt = performance.now() + ms;
    this.phaseTimer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    this.phaseTimer = undefined;
    const phase = this.phase;
    if (phase === undefined) return;
    const left = this.phaseDeadline - performance.now();
    if (left > 0) this.schedule(left);
    else this.expire(phase);
  }

  private expire(kind: Expiry): void {
    this.expired ??= kind;
    this.abort();
  }
}

/** What one attempt achieved, read by the retry loop after a failure. */
interface Progress {
  /** Response headers with a 2xx status arrived. */
  responded: boolean;
  /** At least one chunk of text went to the consumer: from here on, never retry. */
  yielded: boolean;
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function truncate(text: string, max = MAX_DETAIL_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

type Body = Dispatcher.ResponseData['body'];
type ResponseHeaders = Dispatcher.ResponseData['headers'];

/** Reads at most `limit` bytes of a body as text; beyond that the connection is closed. */
async function readLimited(body: Body, limit: number): Promise<string> {
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

function header(headers: ResponseHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** OpenAI's `retry-after-ms` (milliseconds) first, then the standard `Retry-After`. */
function retryAfterOf(headers: ResponseHeaders): number | undefined {
  const ms = Number(header(headers, 'retry-after-ms') ?? Number.NaN);
  if (Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  return parseRetryAfter(header(headers, 'retry-after'));
}

/**
 * A kept-alive connection the server closed while we reused it (the keep-alive race): the
 * request never reached a model, so the retry need not wait out a backoff meant for an
 * overloaded server.
 */
function isStaleConnection(error: unknown): boolean {
  for (let current = error, depth = 0; depth < 5 && current instanceof Error; depth += 1, current = current.cause) {
    const code = (current as { code?: unknown }).code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return true;
  }
  return false;
}

function apiErrorText(error: z.infer<typeof apiErrorSchema>): string {
  if (typeof error === 'string') return error;
  return error.message ?? error.type ?? String(error.code ?? '');
}

function isContextOverflow(text: string, code?: string | number | null): boolean {
  return code === 'context_length_exceeded' || CONTEXT_OVERFLOW.some((pattern) => pattern.test(text));
}

export class OpenAICompatibleProvider implements ModelProvider {
  readonly name: string;
  private readonly logger: ProviderLogger;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly probeModels: boolean;
  private readonly random: () => number;
  /** HTTP requests in flight, aborted by close(). */
  private readonly active = new Set<AbortController>();
  private closed = false;
  /** Kept-alive connections to the API's origin, created on first use (start() needs no network). */
  private pool: Pool | undefined;

  constructor(
    private readonly config: ModelConfig,
    logger?: ProviderLogger,
    options: OpenAIProviderOptions = {},
  ) {
    this.name = `openai:${config.model ?? 'default'}`;
    this.logger = logger ?? silentLogger;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 8000;
    this.probeModels = options.probeModels ?? true;
    this.random = options.random ?? Math.random;
  }

  async start(): Promise<void> {
    const base = this.baseUrl();
    this.logger.info({ provider: this.name, model: this.config.model ?? null, baseUrl: this.safeUrl(base) }, 'language model: OpenAI-compatible API');
    // Not awaited: an API that is down at start-up may be up by the first message, and each
    // request reports its own failure. This only gives the operator an early hint.
    if (this.probeModels) void this.probe();
  }

  countTokens(text: string): number {
    return estimateTokens(text);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.active) controller.abort();
    this.active.clear();
    await this.pool?.destroy().catch(() => undefined);
  }

  async *generate(request: GenerateRequest): AsyncGenerator<string, void, undefined> {
    if (request.signal.aborted) return;
    if (this.closed) throw this.shuttingDown();
    const deadline = Date.now() + this.config.totalTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      const progress: Progress = { responded: false, yielded: false };
      try {
        yield* this.attempt(request, progress, deadline);
        return;
      } catch (error) {
        if (request.signal.aborted) return;
        const failure = error instanceof ModelError ? error : this.fail(ErrorCodes.modelFailed, describeCause(error));
        const delay = attempt === 1 && !progress.responded && isStaleConnection(failure.cause) ? 0 : this.retryDelay(attempt, failure.retryAfterMs);
        const mayRetry = failure.retryable && !progress.yielded && !this.closed && attempt <= this.config.maxRetries;
        if (!mayRetry || Date.now() + delay >= deadline) throw this.finalError(failure, attempt, progress.yielded);
        this.logger.warn(
          { provider: this.name, attempt, code: failure.code, delayMs: delay, reason: failure.message },
          'language model request failed, retrying',
        );
        if (!(await sleep(delay, request.signal))) return;
      }
    }
  }

  /** One HTTP request and its stream. Throws ModelError (or a raw error the caller classifies). */
  private async *attempt(request: GenerateRequest, progress: Progress, deadline: number): AsyncGenerator<string, void, undefined> {
    const controller = new AbortController();
    const watchdog = new Watchdog(() => controller.abort());
    const onAbort = () => controller.abort();
    request.signal.addEventListener('abort', onAbort, { once: true });
    this.active.add(controller);
    watchdog.startTotal(deadline);
    watchdog.arm('first_token', this.config.firstTokenTimeoutMs);
    try {
      const response = await this.connection().request({
        path: this.path('/chat/completions'),
        method: 'POST',
        headers: this.headers('text/event-stream'),
        body: JSON.stringify(this.requestBody(request.turns)),
        signal: controller.signal,
      });
      if (response.statusCode < 200 || response.statusCode > 299) throw await this.httpError(response);
      progress.responded = true;
      for await (const texts of this.readAnswer(response)) {
        for (const text of texts) {
          // The consumer's pace is not the model's: no idle timer while it holds the chunk.
          watchdog.disarm();
          progress.yielded = true;
          yield text;
          if (request.signal.aborted) return;
          watchdog.arm('idle', this.config.idleTimeoutMs);
        }
      }
    } catch (error) {
      throw this.classify(error, watchdog, progress, request.signal);
    } finally {
      watchdog.clear();
      request.signal.removeEventListener('abort', onAbort);
      this.active.delete(controller);
    }
  }

  /** Maps whatever ended an attempt to the error the caller should see. */
  private classify(error: unknown, watchdog: Watchdog, progress: Progress, signal: AbortSignal): unknown {
    if (signal.aborted) return error; // generate() ends quietly
    if (this.closed) return this.shuttingDown();
    if (watchdog.expired !== undefined) return this.timeoutError(watchdog.expired);
    if (error instanceof ModelError) return error;
    const reason = describeCause(error);
    if (progress.responded) {
      // Retryable only while nothing was yielded; the retry loop checks that.
      return this.fail(ErrorCodes.modelFailed, `The model stream ended before the answer was complete (${reason})`, true, undefined, error);
    }
    return this.fail(ErrorCodes.modelUnavailable, `Could not reach the language model API at ${this.safeUrl(this.baseUrl())}: ${reason}`, true, undefined, error);
  }

  /**
   * Yields the answer's text chunks, from SSE, or from a JSON body when the server ignored stream:
   * those of one network read together (each still a chunk of its own for the consumer), so a
   * token costs one generator step, not two.
   */
  private async *readAnswer(response: Dispatcher.ResponseData): AsyncGenerator<string[], void, undefined> {
    const { body } = response;
    const type = header(response.headers, 'content-type') ?? '';
    if (type.includes('application/json')) {
      const text = await this.readJsonAnswer(body);
      if (text !== '') yield [text];
      return;
    }
    // A proxy's or login page's HTML would otherwise look like an empty, truncated stream.
    if (type.includes('text/html')) {
      body.destroy();
      throw this.unusable(`an HTML page instead of an event stream (is LLM_BASE_URL the API's /v1 URL?)`);
    }
    // Decoded here: undici's body ignores setEncoding, and a character may span two reads.
    const decoder = new TextDecoder();
    const sse = new SseReader();
    const state = { finished: false, done: false };
    let trailing = 0;
    try {
      for await (const bytes of body as AsyncIterable<Buffer>) {
        // After [DONE] the rest of the body (usually nothing) is read, not cut: leaving the loop
        // early would destroy the stream and with it the kept-alive connection.
        if (state.done) {
          trailing += bytes.byteLength;
          if (trailing > MAX_ERROR_BODY_BYTES) break;
          continue;
        }
        yield* this.readEvents(sse.push(decoder.decode(bytes, { stream: true })), state);
      }
      if (!state.done) yield* this.readEvents([...sse.push(decoder.decode()), ...sse.end()], state);
    } finally {
      // An abort or a failure: the connection cannot be reused.
      if (!body.readableEnded) body.destroy();
    }
    if (!state.done && !state.finished) {
      throw this.fail(ErrorCodes.modelFailed, 'The model stream ended before the answer was complete (no [DONE] and no finish_reason)', true);
    }
  }

  /**
   * The texts of events up to [DONE] or up to an error event, which throws once the texts before
   * it went out: text that reached the consumer is what decides whether a retry is allowed.
   */
  private async *readEvents(events: readonly SseEvent[], state: { finished: boolean; done: boolean }): AsyncGenerator<string[], void, undefined> {
    const texts: string[] = [];
    let failure: unknown;
    try {
      for (const event of events) {
        const text = this.readEvent(event, state);
        if (text !== '') texts.push(text);
        if (state.done) break;
      }
    } catch (error) {
      failure = error;
    }
    if (texts.length > 0) yield texts;
    if (failure !== undefined) throw failure;
  }

  /** Interprets one SSE event; returns its text ('' when it has none). */
  private readEvent(event: SseEvent, state: { finished: boolean; done: boolean }): string {
    if (event.data.trim() === '[DONE]') {
      state.done = true;
      return '';
    }
    let json: unknown;
    try {
      json = JSON.parse(event.data);
    } catch {
      // `event: error` with a plain-text payload is still an error report, not garbage.
      if (event.event === 'error') throw this.apiError(event.data);
      throw this.unusable(`an event that is not JSON: ${truncate(event.data, 80)}`);
    }
    if (event.event === '') {
      const text = plainDelta(json);
      if (text !== undefined) return text;
    }
    const chunk = streamChunkSchema.safeParse(json);
    if (!chunk.success) throw this.unusable(`an unexpected event: ${truncate(event.data, 80)}`);
    const { error, choices } = chunk.data;
    if (error) throw this.apiError(apiErrorText(error), typeof error === 'string' ? undefined : error.code);
    if (event.event === 'error') throw this.apiError(event.data);
    const choice = choices?.[0];
    if (choice?.finish_reason) state.finished = true;
    // Role-only and empty deltas carry no text.
    return choice?.delta?.content ?? '';
  }

  private async readJsonAnswer(body: Body): Promise<string> {
    const text = await readLimited(body, MAX_JSON_BODY_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw this.unusable('a JSON body that does not parse');
    }
    const failure = errorBodySchema.safeParse(json);
    if (failure.success && failure.data.error) throw this.apiError(apiErrorText(failure.data.error));
    const completion = completionSchema.safeParse(json);
    if (!completion.success) throw this.unusable('a JSON body without choices');
    return completion.data.choices[0]?.message?.content ?? '';
  }

  /** A non-2xx answer as a ModelError; `retryable` marks what another attempt may fix. */
  private async httpError(response: Dispatcher.ResponseData): Promise<ModelError> {
    const status = response.statusCode;
    const raw = await readLimited(response.body, MAX_ERROR_BODY_BYTES).catch(() => '');
    const { detail, code, estimatedMs } = this.errorDetail(raw);
    const suffix = detail === '' ? '' : `: ${detail}`;
    const retryAfter = retryAfterOf(response.headers) ?? estimatedMs;
    if (status === 401 || status === 403) {
      return this.fail(ErrorCodes.modelAuth, `The language model API refused the credentials (HTTP ${status})${suffix}. Check LLM_API_KEY.`);
    }
    if (status === 429) {
      return this.fail(ErrorCodes.modelRateLimited, `The language model API is rate limiting requests (HTTP 429)${suffix}`, true, retryAfter);
    }
    if (status >= 500) {
      return this.fail(ErrorCodes.modelUnavailable, `The language model API is unavailable (HTTP ${status})${suffix}`, true, retryAfter);
    }
    if ((status === 400 || status === 413 || status === 422) && isContextOverflow(detail, code)) {
      return this.fail(ErrorCodes.modelContextOverflow, `The conversation does not fit the model's context (HTTP ${status})${suffix}`);
    }
    return this.fail(ErrorCodes.modelFailed, `The language model API rejected the request (HTTP ${status})${suffix}`);
  }

  /** The human part of an error body, whatever dialect the server speaks. */
  private errorDetail(raw: string): { detail: string; code?: string | number | null; estimatedMs?: number } {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      return { detail: truncate(raw) };
    }
    const body = errorBodySchema.safeParse(json);
    if (!body.success) return { detail: truncate(raw) };
    const { error, message, detail, estimated_time: estimated } = body.data;
    let text = raw;
    if (error) text = apiErrorText(error);
    else if (message) text = message;
    else if (typeof detail === 'string') text = detail;
    return {
      detail: truncate(text),
      code: error && typeof error !== 'string' ? error.code : undefined,
      // HF's 503 "model is loading" says how long loading should take: a natural Retry-After.
      estimatedMs: typeof estimated === 'number' && estimated > 0 ? Math.round(estimated * 1000) : undefined,
    };
  }

  private apiError(detail: string, code?: string | number | null): ModelError {
    if (isContextOverflow(detail, code)) {
      return this.fail(ErrorCodes.modelContextOverflow, `The conversation does not fit the model's context: ${truncate(detail)}`);
    }
    return this.fail(ErrorCodes.modelFailed, `The language model reported an error: ${truncate(detail)}`);
  }

  private unusable(what: string): ModelError {
    return this.fail(ErrorCodes.modelFailed, `The language model API answered something unusable: ${what}`);
  }

  private timeoutError(kind: Expiry): ModelError {
    const { firstTokenTimeoutMs, idleTimeoutMs, totalTimeoutMs } = this.config;
    const messages: Record<Expiry, string> = {
      first_token: `The language model sent no answer within ${firstTokenTimeoutMs} ms (LLM_FIRST_TOKEN_TIMEOUT_MS)`,
      idle: `The language model stopped sending for more than ${idleTimeoutMs} ms in the middle of the answer (LLM_IDLE_TIMEOUT_MS)`,
      total: `The language model took longer than ${totalTimeoutMs} ms for the whole answer (LLM_TOTAL_TIMEOUT_MS)`,
    };
    return this.fail(ErrorCodes.modelTimeout, messages[kind]);
  }

  private shuttingDown(): ModelError {
    return this.fail(ErrorCodes.shuttingDown, 'The language model provider is shutting down');
  }

  /**
   * The error generate() throws once retrying is over, saying how many attempts were made.
   * `retryable` keeps the ModelError contract (another attempt *before the first token* may
   * succeed): once text went out, a retry would be a different answer, so it is false.
   */
  private finalError(failure: ModelError, attempts: number, yielded: boolean): ModelError {
    const retryable = failure.retryable && !yielded;
    if (attempts === 1 && retryable === failure.retryable) return failure;
    const message = attempts === 1 ? failure.message : `${failure.message} (gave up after ${attempts} attempts)`;
    return this.fail(failure.code, message, retryable, failure.retryAfterMs, failure);
  }

  /** Every ModelError is built here, so no message can ever carry the API key. */
  private fail(code: ErrorCode, message: string, retryable = false, retryAfterMs?: number, cause?: unknown): ModelError {
    const key = this.config.apiKey;
    const safe = key !== undefined && key.length >= 4 ? message.split(key).join('[redacted]') : message;
    return new ModelError(code, safe, retryable, retryAfterMs, cause === undefined ? undefined : { cause });
  }

  /** The shared backoff (attempt 1 = the first retry); Retry-After wins when longer. */
  private retryDelay(attempt: number, retryAfterMs: number | undefined): number {
    const delay = backoffDelay(attempt - 1, this.random, { baseMs: this.retryBaseMs, maxMs: this.retryMaxMs });
    return Math.max(delay, retryAfterMs ?? 0);
  }

  private requestBody(turns: readonly ChatTurn[]): Record<string, unknown> {
    const { model, maxTokens, temperature, topP, stop } = this.config;
    return {
      ...(model === undefined ? {} : { model }),
      // Role-tagged turns, never "Human:/Bot:" text: the user cannot impersonate the assistant.
      messages: turns.map((turn) => ({ role: turn.role, content: turn.content })),
      stream: true,
      max_tokens: maxTokens,
      temperature,
      top_p: topP,
      ...(stop.length > 0 ? { stop: [...stop] } : {}),
    };
  }

  private headers(accept: string): Record<string, string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept };
    if (this.config.apiKey !== undefined) headers.authorization = `Bearer ${this.config.apiKey}`;
    return headers;
  }

  private baseUrl(): string {
    const base = this.config.baseUrl?.trim();
    if (base === undefined || base === '') {
      throw this.fail(ErrorCodes.modelNotConfigured, 'LLM_BASE_URL is not set: the OpenAI-compatible provider needs the API base URL, for example https://router.huggingface.co/v1');
    }
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw this.fail(ErrorCodes.modelNotConfigured, `LLM_BASE_URL is not a valid URL: ${truncate(base, 100)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw this.fail(ErrorCodes.modelNotConfigured, `LLM_BASE_URL must start with http:// or https:// (got ${url.protocol})`);
    }
    return base.replace(/\/+$/, '');
  }

  /** The pool for the API's origin. Our watchdog owns every timeout, so undici's are off. */
  private connection(): Pool {
    this.pool ??= new Pool(new URL(this.baseUrl()).origin, { headersTimeout: 0, bodyTimeout: 0 });
    return this.pool;
  }

  /** Path of an endpoint under the base URL (which may carry a path such as /v1 and a query). */
  private path(endpoint: string): string {
    const url = new URL(this.baseUrl());
    return `${url.pathname.replace(/\/+$/, '')}${endpoint}${url.search}`;
  }

  /** The URL without user:password, for logs and messages. */
  private safeUrl(base: string): string {
    const url = new URL(base);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString().replace(/\/+$/, '');
  }

  private async probe(): Promise<void> {
    const controller = new AbortController();
    this.active.add(controller);
    const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
    try {
      const response = await this.connection().request({ path: this.path('/models'), method: 'GET', headers: this.headers('application/json'), signal: controller.signal });
      const body = await readLimited(response.body, MAX_ERROR_BODY_BYTES).catch(() => '');
      const status = response.statusCode;
      if (status < 200 || status > 299) {
        this.logger.warn({ provider: this.name, status }, `language model API: GET /models answered HTTP ${status}${status === 401 || status === 403 ? ' (check LLM_API_KEY)' : ''}`);
      } else if (this.config.model !== undefined && body.length < MAX_ERROR_BODY_BYTES && !body.includes(JSON.stringify(this.config.model))) {
        this.logger.warn({ provider: this.name }, `language model API: model ${this.config.model} is not in GET /models (it may still work)`);
      }
    } catch (error) {
      if (!this.closed) {
        this.logger.warn({ provider: this.name, reason: this.fail(ErrorCodes.modelUnavailable, describeCause(error)).message }, 'language model API not reachable yet (GET /models failed); requests will retry');
      }
    } finally {
      clearTimeout(timer);
      this.active.delete(controller);
    }
  }
}
