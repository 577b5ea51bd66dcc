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
