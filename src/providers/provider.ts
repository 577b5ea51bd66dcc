/**
 * The one seam between Parley and a language model. A provider turns role-tagged turns into a
 * stream of text chunks and stops promptly when the signal aborts. Failures are ModelErrors with
 * a stable code, never text pretending to be an answer.
 */
export interface ChatTurn {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface GenerateRequest {
  /** System prompt first, then the history window, ending with the user's new message. */
  readonly turns: readonly ChatTurn[];
  /** Aborts generation (user pressed stop, worker shutting down, lease lost). */
  readonly signal: AbortSignal;
}

export interface ModelProvider {
  /** Name for logs, e.g. "openai:gpt-4o-mini" or "local:qwen2.5-0.5b-instruct". */
  readonly name: string;
  /** Prepares the model (load, download, check); throws a ModelError when it cannot. */
  start(): Promise<void>;
  /** Streams the answer as text chunks. Throws ModelError; ends quietly when the signal aborts. */
  generate(request: GenerateRequest): AsyncIterable<string>;
  /** Token count of a text, exact (local tokenizer) or a documented estimate (remote APIs). */
  countTokens(text: string): number;
  /** Frees the model; pending generations are aborted. */
  close(): Promise<void>;
}

/** The subset of a logger a provider needs; a pino Logger fits. */
export interface ProviderLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

/** An error and its causes, outermost first (five at most: a cause chain may loop). */
export function* causeChain(error: unknown): Generator<Error> {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 5; current = current.cause, depth++) yield current;
}

/**
 * What went wrong, from an error down its causes: fetch and undici say only "fetch failed" or
 * "other side closed"; the reason ("connect ECONNREFUSED 127.0.0.1:9") is in the cause chain.
 * A cause's code is named where its message does not say it.
 */
export function describeCause(error: unknown): string {
  const parts: string[] = [];
  for (const current of causeChain(error)) {
    const code = (current as { code?: unknown }).code;
    const text = typeof code === 'string' && !current.message.includes(code) ? `${code}: ${current.message}` : current.message;
    if (text !== '' && !parts.includes(text)) parts.push(text);
  }
  return parts.length === 0 ? String(error) : parts.join(': ');
}
