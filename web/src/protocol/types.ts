/**
 * Wire types shared with the server, derived from the contracts' schemas (protocol.ts, which the
 * web imports for validation too: it depends only on zod/mini and the dependency-free contracts).
 */
import type { SessionView } from '../../../src/contracts/protocol.js';

export type { ClientFrame, ServerFrame, SessionView, StoredEvent, TurnFailure } from '../../../src/contracts/protocol.js';
export type { ErrorCode } from '../../../src/contracts/errors.js';

/** A message of the history; `parent` is the turn it follows (absent in records from before branches). */
export type HistoryMessage = SessionView['messages'][number];

/** What the client needs from a socket; the browser adapter wraps a WebSocket, tests a fake. */
export interface SocketHandlers {
  onMessage(data: unknown): void;
  onClose(code: number, reason: string): void;
}

export interface SocketConnection {
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type OpenSocket = (token: string, handlers: SocketHandlers) => SocketConnection;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
