/**
 * The wire's plain values — subprotocols, close codes, frame types — with no dependencies, so the
 * browser bundle imports the very same constants as the gateway (schemas live in protocol.ts).
 */

/** WebSocket subprotocol that selects streaming mode. Without it a socket speaks plain mode. */
export const STREAMING_SUBPROTOCOL = 'parley.v1';

/**
 * A client may carry its token in the subprotocol list instead of the URL (which proxies and
 * browser histories log): `["parley.v1", "parley.token.<token>"]`. The server answers `parley.v1`.
 */
export const TOKEN_SUBPROTOCOL_PREFIX = 'parley.token.';

/** Close code and reason for a missing, unknown or expired token (kept as older clients know them). */
export const CLOSE_UNAUTHENTICATED = { code: 1008, reason: 'Session not authenticated or expired token' } as const;
/** Close code for a socket beyond MAX_SOCKETS_PER_SESSION: retry later (another one may close). */
export const CLOSE_TOO_MANY_SOCKETS = { code: 4008, reason: 'Too many open connections to this session' } as const;
/** Close code the gateway uses when it shuts down: the client should reconnect (to any gateway). */
export const CLOSE_GOING_AWAY = { code: 1012, reason: 'Gateway restarting, reconnect' } as const;

/** Frame types a streaming-mode client may send. */
export const CLIENT_FRAME_TYPES = ['message', 'stop', 'resume', 'ping', 'edit', 'regenerate', 'switch'] as const;
