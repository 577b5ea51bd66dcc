/**
 * The one retry policy of every reconnecting or retrying part (the browser's socket, the Redis
 * clients, the model provider): capped exponential growth with "equal jitter". Dependency-free,
 * so the web imports it as it is.
 */
export interface BackoffOptions {
  /** Ceiling of the first retry (attempt 0), in ms. */
  readonly baseMs: number;
  /** Largest ceiling, however many attempts failed. */
  readonly maxMs: number;
}

/**
 * Delay before retry `attempt` (0 = first retry): somewhere between half the ceiling and the
 * ceiling. The random half spreads the clients of a restarted server so they do not all come back
 * in the same millisecond; the fixed half keeps a client from hammering a server that is down.
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  const unit = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling / 2 + (unit * ceiling) / 2);
}
