/**
 * Wire types shared with the server. Only types are imported, so nothing of the server's code
 * (or zod) ends up in the browser bundle.
 */
import type { ClientFrame, SessionView as ServerSessionView } from '../../../src/contracts/protocol.js';

export type { ClientFrame, ServerFrame, StoredEvent } from '../../../src/contracts/protocol.js';
export type { ErrorCode } from '../../../src/contracts/errors.js';

/** Every frame a client sends, the branch frames (edit, regenerate, switch) included. */
export type OutgoingFrame = ClientFrame;

/** A message of the history; `parent` is the turn it follows (absent in records from before branches). */
export type HistoryMessage = ServerSessionView['messages'][number];

/**
 * A session (or a person's conversation) with its history and the branch shown (`head`; absent
 * from a server without branches, which shows the one linear branch).
 */
export interface SessionView extends Omit<ServerSessionView, 'messages' | 'head'> {
  messages: HistoryMessage[];
  head?: number;
  /** Conversations only: the title the list shows. */
  title?: string;
}

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
