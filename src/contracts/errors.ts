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
  /** An edit, regenerate or switch named a turn the session does not have. */
  unknownTurn: 'unknown_turn',
  /** No such route (Parley's own API under /api/v1/). */
  notFound: 'not_found',
  /** A conversation that does not exist or is not the caller's (the two look the same). */
  conversationNotFound: 'conversation_not_found',
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
  // Sign-in (HTTP API; see docs/protocol.md "People and sign-in")
  notSignedIn: 'not_signed_in',
  csrf: 'csrf',
  anonymousOff: 'anonymous_off',
  invalidCredentials: 'invalid_credentials',
  accountDisabled: 'account_disabled',
  invalidUsername: 'invalid_username',
  invalidPassword: 'invalid_password',
  invalidDisplayName: 'invalid_display_name',
  usernameTaken: 'username_taken',
  signupClosed: 'signup_closed',
  invalidInvite: 'invalid_invite',
  localAccountsOff: 'local_accounts_off',
  oidcOff: 'oidc_off',
  oidcFailed: 'oidc_failed',
  invalidRequest: 'invalid_request',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * What a user reads when an answer fails: one fixed text per code. The detail (upstream bodies,
 * paths, hosts) goes to the operator's log under a reference id the user can quote; showing it to
 * users would hand out the deployment's internals and other people's data (issue 9).
 */
export const USER_ERROR_TEXTS: Readonly<Record<ErrorCode, string>> = {
  invalid_name: 'Enter a valid name.',
  session_expired: 'Your session has expired. Start a new chat.',
  invalid_frame: 'The message could not be read.',
  unknown_frame_type: 'The message could not be read.',
  binary_frame: 'Binary messages are not accepted: send text.',
  empty_message: 'The message is empty.',
  message_too_long: 'The message is too long.',
  too_many_pending: 'Too many messages are waiting for an answer; wait for one to finish.',
  invalid_event_id: 'The position to resume from is not valid.',
  unknown_turn: 'That message is not part of this conversation.',
  not_found: 'There is nothing at this address.',
  conversation_not_found: 'That conversation does not exist.',
  model_not_configured: 'No language model is set up on this server yet. Ask its operator to configure one.',
  model_unavailable: 'The language model is unavailable right now. Try again in a moment.',
  model_auth: 'The server could not sign in to its language model. Ask its operator to check the configuration.',
  model_rate_limited: 'The language model is busy right now. Try again in a moment.',
  model_timeout: 'The language model took too long to answer. Try again.',
  model_failed: 'The language model could not answer this message. Try again or rephrase it.',
  model_context_overflow: 'The conversation is too long for the language model. Start a new chat.',
  shutting_down: 'The server is restarting. Try again in a moment.',
  unavailable: 'The service is temporarily unavailable. Try again in a moment.',
  rate_limited: 'Too many requests: wait a moment before sending more.',
  busy: 'The service is busy right now: try again in a little while.',
  internal_error: 'Something went wrong on the server. Try again in a moment.',
  not_signed_in: 'Sign in to continue.',
  csrf: 'The request did not carry this page\'s security token: reload the page and try again.',
  anonymous_off: 'Chatting without an account is turned off here: sign in to chat.',
  invalid_credentials: 'The user name or password is wrong.',
  account_disabled: 'This account is disabled. Ask the operator of this server.',
  invalid_username: 'Choose a user name of 3 to 64 letters, digits and . _ - @ + (starting with a letter or digit).',
  invalid_password: 'Choose a password of 8 to 256 characters.',
  invalid_display_name: 'Choose a display name of 1 to 100 characters, without control characters.',
  username_taken: 'That user name is taken: choose another.',
  signup_closed: 'New accounts cannot be created here.',
  invalid_invite: 'The invitation code is not valid (or was used already).',
  local_accounts_off: 'Sign-in with a password is turned off here.',
  oidc_off: 'Single sign-on is not set up on this server.',
  oidc_failed: 'Single sign-on did not complete. Try again.',
  invalid_request: 'The request could not be read.',
};

/** The user text of an error code (a stored code from an older version falls back to the generic one). */
export function userErrorText(code: ErrorCode): string {
  return USER_ERROR_TEXTS[code] ?? USER_ERROR_TEXTS.internal_error;
}

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
 * A request of the people API was refused; `status` is the HTTP status it is answered with (as
 * `{"detail": message, "code": code}`), `retryAfterMs` goes with 429.
 */
export class AuthError extends ParleyError {
  constructor(
    code: ErrorCode,
    readonly status: 400 | 401 | 403 | 404 | 409 | 429,
    message: string = userErrorText(code),
    readonly retryAfterMs?: number,
  ) {
    super(code, message);
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
