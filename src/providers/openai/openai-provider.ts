/**
 * A ModelProvider for any OpenAI-compatible chat-completions API (OpenAI, Hugging Face router,
 * vLLM, llama.cpp server, Ollama, LM Studio, OpenRouter, ...). It streams with server-sent events,
 * retries only what is safe to retry (nothing has reached the user yet), and turns every failure
 * into a ModelError with a stable code and a message a human can act on (errors.ts).
 *
 * The hot path is cheap on purpose (a worker runs it for every turn): one undici Pool per API
 * origin keeps connections alive and reuses them, bodies are Node streams read as they come, and
 * the SSE parser (eventsource-parser) hands over events without re-buffering the stream. See
 * docs/benchmarks.md ("The provider path") for the measured comparison with fetch.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pool } from 'undici';
import { backoffDelay } from '../../contracts/backoff.js';
import { ErrorCodes, ModelError } from '../../contracts/errors.js';
import type { ModelConfig } from '../../config/config.js';
import { estimateTokens } from '../token-estimate.js';
import { describeCause, type GenerateRequest, type ModelProvider, type ProviderLogger } from '../provider.js';
import { readAnswer } from './answer.js';
import { isStaleConnection, OpenAIErrors, truncate } from './errors.js';
import { chatCompletionBody, createPool, endpointPath, MAX_ERROR_BODY_BYTES, readLimited, requestHeaders, safeUrl } from './http.js';
import { Watchdog } from './watchdog.js';

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
const PROBE_TIMEOUT_MS = 5000;

/** What one attempt achieved, read by the retry loop after a failure. */
interface Progress {
  /** Response headers with a 2xx status arrived. */
  responded: boolean;
  /** At least one chunk of text went to the consumer: from here on, never retry. */
  yielded: boolean;
}

export class OpenAICompatibleProvider implements ModelProvider {
  readonly name: string;
  private readonly logger: ProviderLogger;
  private readonly errors: OpenAIErrors;
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
    this.errors = new OpenAIErrors(config);
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 8000;
    this.probeModels = options.probeModels ?? true;
    this.random = options.random ?? Math.random;
  }

  async start(): Promise<void> {
    const base = this.baseUrl();
    this.logger.info({ provider: this.name, model: this.config.model ?? null, baseUrl: safeUrl(base) }, 'language model: OpenAI-compatible API');
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
    if (this.closed) throw this.errors.shuttingDown();
    const deadline = Date.now() + this.config.totalTimeoutMs;
    for (let attempt = 1; ; attempt += 1) {
      const progress: Progress = { responded: false, yielded: false };
      try {
        yield* this.attempt(request, progress, deadline);
        return;
      } catch (error) {
        if (request.signal.aborted) return;
        const failure = error instanceof ModelError ? error : this.errors.fail(ErrorCodes.modelFailed, describeCause(error));
        const delay = attempt === 1 && !progress.responded && isStaleConnection(failure.cause) ? 0 : this.retryDelay(attempt, failure.retryAfterMs);
        const mayRetry = failure.retryable && !progress.yielded && !this.closed && attempt <= this.config.maxRetries;
        if (!mayRetry || Date.now() + delay >= deadline) throw this.errors.final(failure, attempt, progress.yielded);
        this.logger.warn(
          { provider: this.name, attempt, code: failure.code, delayMs: delay, reason: failure.message },
          'language model request failed, retrying',
        );
        // Rejects only when the request is aborted: generate() then ends quietly.
        const slept = await sleep(delay, true, { signal: request.signal }).catch(() => false);
        if (!slept) return;
      }
    }
  }

  /** One HTTP request and its stream. Throws ModelError (or a raw error the caller classifies). */
  private async *attempt(request: GenerateRequest, progress: Progress, deadline: number): AsyncGenerator<string, void, undefined> {
    const controller = new AbortController();
    const watchdog = new Watchdog(() => controller.abort());
    this.active.add(controller);
    watchdog.startTotal(deadline);
    watchdog.arm('first_token', this.config.firstTokenTimeoutMs);
    try {
      const response = await this.connection().request({
        path: endpointPath(this.baseUrl(), '/chat/completions'),
        method: 'POST',
        headers: requestHeaders(this.config, 'text/event-stream'),
        body: chatCompletionBody(this.config, request.turns),
        signal: AbortSignal.any([request.signal, controller.signal]),
      });
      if (response.statusCode < 200 || response.statusCode > 299) throw await this.errors.http(response);
      progress.responded = true;
      for await (const texts of readAnswer(response, this.errors)) {
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
      this.active.delete(controller);
    }
  }

  /** Maps whatever ended an attempt to the error the caller should see. */
  private classify(error: unknown, watchdog: Watchdog, progress: Progress, signal: AbortSignal): unknown {
    if (signal.aborted) return error; // generate() ends quietly
    if (this.closed) return this.errors.shuttingDown();
    if (watchdog.expired !== undefined) return this.errors.timeout(watchdog.expired);
    if (error instanceof ModelError) return error;
    return this.errors.transport(error, progress.responded, safeUrl(this.baseUrl()));
  }

  /** The shared backoff (attempt 1 = the first retry); Retry-After wins when longer. */
  private retryDelay(attempt: number, retryAfterMs: number | undefined): number {
    const delay = backoffDelay(attempt - 1, this.random, { baseMs: this.retryBaseMs, maxMs: this.retryMaxMs });
    return Math.max(delay, retryAfterMs ?? 0);
  }

  private baseUrl(): string {
    const base = this.config.baseUrl?.trim();
    if (base === undefined || base === '') {
      throw this.errors.fail(ErrorCodes.modelNotConfigured, 'LLM_BASE_URL is not set: the OpenAI-compatible provider needs the API base URL, for example https://router.huggingface.co/v1');
    }
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      throw this.errors.fail(ErrorCodes.modelNotConfigured, `LLM_BASE_URL is not a valid URL: ${truncate(base, 100)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw this.errors.fail(ErrorCodes.modelNotConfigured, `LLM_BASE_URL must start with http:// or https:// (got ${url.protocol})`);
    }
    return base.replace(/\/+$/, '');
  }

  private connection(): Pool {
    this.pool ??= createPool(this.baseUrl());
    return this.pool;
  }

  private async probe(): Promise<void> {
    const controller = new AbortController();
    this.active.add(controller);
    try {
      const response = await this.connection().request({
        path: endpointPath(this.baseUrl(), '/models'),
        method: 'GET',
        headers: requestHeaders(this.config, 'application/json'),
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]),
      });
      const body = await readLimited(response.body, MAX_ERROR_BODY_BYTES).catch(() => '');
      const status = response.statusCode;
      if (status < 200 || status > 299) {
        this.logger.warn({ provider: this.name, status }, `language model API: GET /models answered HTTP ${status}${status === 401 || status === 403 ? ' (check LLM_API_KEY)' : ''}`);
      } else if (this.config.model !== undefined && body.length < MAX_ERROR_BODY_BYTES && !body.includes(JSON.stringify(this.config.model))) {
        this.logger.warn({ provider: this.name }, `language model API: model ${this.config.model} is not in GET /models (it may still work)`);
      }
    } catch (error) {
      if (!this.closed) {
        this.logger.warn({ provider: this.name, reason: this.errors.fail(ErrorCodes.modelUnavailable, describeCause(error)).message }, 'language model API not reachable yet (GET /models failed); requests will retry');
      }
    } finally {
      this.active.delete(controller);
    }
  }
}
