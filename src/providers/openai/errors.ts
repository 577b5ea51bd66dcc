/**
 * Every failure of the OpenAI-compatible provider as a ModelError with a stable code and a message
 * a human can act on: HTTP statuses, the error bodies of the API dialects in use, errors inside
 * the stream, context overflow, timeouts, and whether (and after how long) a retry may help.
 */
import { z } from 'zod';
import { ErrorCodes, ModelError, type ErrorCode } from '../../contracts/errors.js';
import type { ModelConfig } from '../../config/config.js';
import { causeChain, describeCause } from '../provider.js';
import { MAX_ERROR_BODY_BYTES, readLimited, retryAfterOf, type Response } from './http.js';
import type { Expiry } from './watchdog.js';

/** Server text we quote in error messages is cut here: enough to diagnose, never a wall of HTML. */
const MAX_DETAIL_CHARS = 300;

const CONTEXT_OVERFLOW = [
  /context[ _-]?(length|window|size)/i,
  /maximum context/i,
  /too many tokens/i,
  /prompt is too long/i,
  /exceeds? (the )?(model'?s? )?(max(imum)?|token limit|context)/i,
  /input (is )?too long/i,
];

// Only the fields we use are declared; everything else is ignored, so servers that add fields
// keep working.
export const apiErrorSchema = z.union([
  z.string(),
  z.object({
    message: z.string().nullish(),
    type: z.string().nullish(),
    code: z.union([z.string(), z.number()]).nullish(),
  }),
]);
type ApiError = z.infer<typeof apiErrorSchema>;

/** Error bodies: OpenAI `{"error":{"message"}}`, HF `{"error":"...","estimated_time":20}`, others. */
const errorBodySchema = z.object({
  error: apiErrorSchema.nullish(),
  message: z.string().nullish(),
  detail: z.unknown().optional(),
  estimated_time: z.number().nullish(),
});

export function truncate(text: string, max = MAX_DETAIL_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/**
 * A kept-alive connection the server closed while we reused it (the keep-alive race): the
 * request never reached a model, so the retry need not wait out a backoff meant for an
 * overloaded server.
 */
export function isStaleConnection(error: unknown): boolean {
  for (const current of causeChain(error)) {
    const code = (current as { code?: unknown }).code;
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET') return true;
  }
  return false;
}

function isContextOverflow(text: string, code?: string | number | null): boolean {
  return code === 'context_length_exceeded' || CONTEXT_OVERFLOW.some((pattern) => pattern.test(text));
}

function apiErrorText(error: ApiError): string {
  if (typeof error === 'string') return error;
  return error.message ?? error.type ?? String(error.code ?? '');
}

/** The human part of an error body, whatever dialect the server speaks. */
function errorDetail(raw: string): { detail: string; code?: string | number | null; estimatedMs?: number } {
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

/** Builds the provider's ModelErrors; every one is built by `fail`, so none can carry the API key. */
export class OpenAIErrors {
  constructor(private readonly config: ModelConfig) {}

  fail(code: ErrorCode, message: string, retryable = false, retryAfterMs?: number, cause?: unknown): ModelError {
    const key = this.config.apiKey;
    const safe = key !== undefined && key.length >= 4 ? message.split(key).join('[redacted]') : message;
    return new ModelError(code, safe, retryable, retryAfterMs, cause === undefined ? undefined : { cause });
  }

  /** A non-2xx answer; `retryable` marks what another attempt may fix. */
  async http(response: Response): Promise<ModelError> {
    const status = response.statusCode;
    const raw = await readLimited(response.body, MAX_ERROR_BODY_BYTES).catch(() => '');
    const { detail, code, estimatedMs } = errorDetail(raw);
    const suffix = detail === '' ? '' : `: ${detail}`;
    const retryAfter = retryAfterOf(response) ?? estimatedMs;
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

  /** An error the API reported inside a 2xx answer (an SSE error event, an error JSON body). */
  api(error: ApiError): ModelError {
    const detail = apiErrorText(error);
    const code = typeof error === 'string' ? undefined : error.code;
    if (isContextOverflow(detail, code)) {
      return this.fail(ErrorCodes.modelContextOverflow, `The conversation does not fit the model's context: ${truncate(detail)}`);
    }
    return this.fail(ErrorCodes.modelFailed, `The language model reported an error: ${truncate(detail)}`);
  }

  /** The API error a JSON body carries, if it is one. */
  inBody(json: unknown): ModelError | undefined {
    const body = errorBodySchema.safeParse(json);
    return body.success && body.data.error ? this.api(apiErrorText(body.data.error)) : undefined;
  }

  unusable(what: string): ModelError {
    return this.fail(ErrorCodes.modelFailed, `The language model API answered something unusable: ${what}`);
  }

  timeout(kind: Expiry): ModelError {
    const { firstTokenTimeoutMs, idleTimeoutMs, totalTimeoutMs } = this.config;
    const messages: Record<Expiry, string> = {
      first_token: `The language model sent no answer within ${firstTokenTimeoutMs} ms (LLM_FIRST_TOKEN_TIMEOUT_MS)`,
      idle: `The language model stopped sending for more than ${idleTimeoutMs} ms in the middle of the answer (LLM_IDLE_TIMEOUT_MS)`,
      total: `The language model took longer than ${totalTimeoutMs} ms for the whole answer (LLM_TOTAL_TIMEOUT_MS)`,
    };
    return this.fail(ErrorCodes.modelTimeout, messages[kind]);
  }

  shuttingDown(): ModelError {
    return this.fail(ErrorCodes.shuttingDown, 'The language model provider is shutting down');
  }

  /** A request or read that failed below HTTP: before the response (unreachable) or during it. */
  transport(error: unknown, responded: boolean, url: string): ModelError {
    const reason = describeCause(error);
    if (responded) {
      // Retryable only while nothing was yielded; the retry loop checks that.
      return this.fail(ErrorCodes.modelFailed, `The model stream ended before the answer was complete (${reason})`, true, undefined, error);
    }
    return this.fail(ErrorCodes.modelUnavailable, `Could not reach the language model API at ${url}: ${reason}`, true, undefined, error);
  }

  /**
   * The error generate() throws once retrying is over, saying how many attempts were made.
   * `retryable` keeps the ModelError contract (another attempt *before the first token* may
   * succeed): once text went out, a retry would be a different answer, so it is false.
   */
  final(failure: ModelError, attempts: number, yielded: boolean): ModelError {
    const retryable = failure.retryable && !yielded;
    if (attempts === 1 && retryable === failure.retryable) return failure;
    const message = attempts === 1 ? failure.message : `${failure.message} (gave up after ${attempts} attempts)`;
    return this.fail(failure.code, message, retryable, failure.retryAfterMs, failure);
  }
}
