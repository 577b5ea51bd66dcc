/**
 * Redis commands carry no timeout of their own (a timer per command cost too much on the hot
 * path, see src/store/redis.ts). Where a person waits on Redis (health checks, HTTP requests),
 * the wait is bounded here instead; the command itself still completes or fails later.
 */
import { ErrorCodes, ParleyError } from '../contracts/errors.js';

/** How long a health or readiness probe waits for Redis's PING before it says "not answering". */
export const PING_DEADLINE_MS = 1000;

/** Redis did not answer within the deadline: the service is degraded, try again shortly. */
export class ServiceUnavailableError extends ParleyError {
  constructor(readonly retryAfterSeconds = 2) {
    super(ErrorCodes.unavailable, 'The service is temporarily unavailable; try again in a moment.');
  }
}

/** Resolves or rejects with `work`, or rejects with ServiceUnavailableError after `ms`. */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new ServiceUnavailableError()), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
