/**
 * Wire types shared with the server. Only types are imported, so nothing of the server's code
 * (or zod) ends up in the browser bundle.
 */
export type { ClientFrame, ServerFrame, SessionView, StoredEvent } from '../../../src/contracts/protocol.js';
export type { ErrorCode } from '../../../src/contracts/errors.js';

/** The part of the browser's WebSocket the client uses, so tests can pass a fake. */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** WebSocket.OPEN; spelled out because tests run where no WebSocket global exists. */
export const SOCKET_OPEN = 1;

export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
