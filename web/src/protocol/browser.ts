/** The browser's side effects, wired into the framework-free client. */
import { STREAMING_SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from '../../../src/contracts/wire.js';
import type { ChatClientOptions } from './chat-client.js';
import { createAccountApi, type AccountApi } from './account-api.js';
import { createSessionApi, type SessionApi } from './session-api.js';
import type { OpenSocket, Timers } from './types.js';

/** The gateway serves the page, the API and the socket from one origin. No token in the URL. */
export function chatSocketUrl(location: Pick<Location, 'protocol' | 'host'>): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/chat`;
}

/** The token rides in the subprotocol list (the server answers parley.v1 only, never echoing it). */
export function chatSocketProtocols(token: string): string[] {
  return [STREAMING_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`];
}

export const openBrowserSocket: OpenSocket = (token, handlers) => {
  const socket = new WebSocket(chatSocketUrl(window.location), chatSocketProtocols(token));
  socket.onmessage = (event) => handlers.onMessage(event.data);
  socket.onclose = (event) => handlers.onClose(event.code, event.reason);
  return {
    send(data) {
      // Frames written before the socket opens would throw; the client resends after `ready`.
      if (socket.readyState === WebSocket.OPEN) socket.send(data);
    },
    close(code, reason) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.close(code, reason);
    },
  };
};

const browserTimers: Timers = {
  setTimeout: (callback, ms) => window.setTimeout(callback, ms),
  clearTimeout: (handle) => window.clearTimeout(handle as number | undefined),
};

/**
 * crypto.randomUUID exists only in secure contexts, and a self-hosted gateway is often plain
 * http on a LAN; getRandomValues works everywhere.
 */
export function randomClientId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `c-${Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')}`;
}

export const sessionApi: SessionApi = createSessionApi((input, init) => window.fetch(input, init));

export const accountApi: AccountApi = createAccountApi((input, init) => window.fetch(input, init));

export function browserClientOptions(): Omit<ChatClientOptions, 'token' | 'initialSession' | 'outbox' | 'api'> {
  return { openSocket: openBrowserSocket, timers: browserTimers, random: Math.random, newClientId: randomClientId };
}
