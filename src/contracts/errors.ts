/**
 * Stable error codes. They travel on the wire (WebSocket error frames, event streams) next to a
 * human message, so clients can branch on the code and show the message.
 */
export const ErrorCodes = {
  invalidName: 'invalid_name',
  sessionExpired: 'session_expired',
  invalidFrame: 'invalid_frame',
  unknownFrameType: 'unknown_frame_type',
  binaryFrame: 'binary_frame',
  emptyMessage: 'empty_message',
  messageTooLong: 'message_too_long',
  tooManyPending: 'too_many_pending',
  /** A rate limit refused the request; the frame carries `retryAfterMs`. */
  rateLimited: 'rate_limited',
  /** The estimated wait is over MAX_QUEUE_WAIT_MS; the frame carries `retryAfterMs`. */
  busy: 'busy',
  invalidEventId: 'invalid_event_id',
  modelNotConfigured: 'model_not_configured',
  modelUnavailable: 'model_unavailable',
  modelAuth: 'model_auth',
  modelRateLimited: 'model_rate_limited',
  modelTimeout: 'model_timeout',
  modelFailed: 'model_failed',
  modelContextOverflow: 'model_context_overflow',
  shuttingDown: 'shutting_down',
  internal: 'internal_error',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Base of every error Parley raises on purpose: a stable `code` plus a message for humans. */
export class ParleyError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A configuration value is missing or invalid; raised once at start-up. */
export class ConfigError extends ParleyError {
  constructor(readonly problems: readonly string[]) {
    super(ErrorCodes.internal, `Invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

/** Input from a client broke a rule; safe to show to that client. */
export class ValidationError extends ParleyError {}

/** The token is unknown, malformed or its session has expired. */
export class SessionExpiredError extends ParleyError {
  constructor() {
    super(ErrorCodes.sessionExpired, 'Session expired or does not exist');
  }
}

/**
 * The language model could not answer. `retryable` tells the worker whether another attempt
 * (before the first token) may succeed; `retryAfterMs` carries the server's Retry-After.
 */
export class ModelError extends ParleyError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly retryable = false,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** This worker no longer holds the session lease: another worker owns the session now. */
export class LeaseLostError extends ParleyError {
  constructor(token: string) {
    super(ErrorCodes.internal, `Lease on session ${token.slice(0, 8)}… lost`);
  }
}
