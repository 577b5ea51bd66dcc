export interface BackoffOptions {
  /** Ceiling of the first retry, in ms. */
  readonly baseMs: number;
  /** Largest ceiling, however many attempts failed. */
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 500, maxMs: 15_000 };

/**
 * Delay before reconnect attempt `attempt` (0 = first retry): exponential growth with "equal
 * jitter", i.e. somewhere between half the ceiling and the ceiling. The random half spreads the
 * clients of a restarted gateway so they do not all come back in the same millisecond; the fixed
 * half keeps a client from hammering a server that is down.
 */
export function backoffDelay(attempt: number, random: () => number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt));
  const unit = Math.min(1, Math.max(0, random()));
  return Math.round(ceiling / 2 + (unit * ceiling) / 2);
}
