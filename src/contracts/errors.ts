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
  invalidEventId: 'invalid_event_id',
  modelNotConfigured: 'model_not_configured',
  modelUnavailable: 'model_unavailable',
  modelAuth: 'model_auth',
  modelRateLimited: 'model_rate_limited',
  modelTimeout: 'model_timeout',
  modelFailed: 'model_failed',
  modelContextOverflow: 'model_context_overflow',
  shuttingDown: 'shutting_down',
  unavailable: 'unavailable',
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
