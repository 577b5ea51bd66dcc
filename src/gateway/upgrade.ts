/**
 * The WebSocket handshake of /chat, as the internet sends it: any request line, any headers. Every
 * upgrade request is either upgraded or refused with a 4xx before the upgrade; nothing here may
 * throw out of the 'upgrade' listener (an exception there would end the process, issue 9).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { WebSocketServer } from 'ws';
import { isValidToken } from '../contracts/keys.js';
import { CLOSE_UNAUTHENTICATED, STREAMING_SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from '../contracts/wire.js';
import { safeError, type Logger } from '../shared/logger.js';
import { ChatConnection, type ChatDependencies } from './chat-socket.js';
import { retryAfterSeconds, upgradeAddress } from './limits.js';

export interface UpgradeSettings {
  /** CORS_ORIGINS: other sites allowed to open a chat socket (and to call the HTTP API). */
  readonly allowedOrigins: readonly string[];
  /** TRUST_PROXY: X-Forwarded-Proto / X-Forwarded-Host describe what the browser saw. */
  readonly trustProxy: boolean;
}

/** Refused origins remembered for "log once"; past this many the memory starts over. */
const MAX_REMEMBERED_ORIGINS = 1000;
const MAX_LOGGED_ORIGIN_CHARS = 200;

function refuse(socket: Duplex, status: 400 | 403 | 404 | 405, text: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  socket.destroy();
}

/** Upgrades per address are rate-limited (RATE_UPGRADES_PER_MINUTE). */
function refuseTooMany(socket: Duplex, waitMs: number): void {
  if (socket.writable) {
    socket.end(`HTTP/1.1 429 Too Many Requests\r\nRetry-After: ${retryAfterSeconds(waitMs)}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
  socket.destroy();
}

/** Path and query of a request target, without `new URL` (which throws on `//x:abc/`, `//[`, ...). */
export function splitTarget(target: string): { path: string; query: URLSearchParams } {
  const mark = target.indexOf('?');
  const path = mark === -1 ? target : target.slice(0, mark);
  // URLSearchParams never throws: a malformed %-escape stays as it is (and is then no valid token).
  return { path, query: new URLSearchParams(mark === -1 ? '' : target.slice(mark + 1)) };
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text?.split(',')[0]?.trim();
}

/** The token from `?token=` (plain-mode clients) or from the subprotocol `parley.token.<token>`. */
export function requestToken(request: IncomingMessage, query: URLSearchParams): string | null {
  const fromQuery = query.get('token');
  if (fromQuery !== null) return fromQuery;
  const offered = (request.headers['sec-websocket-protocol'] ?? '').split(',').map((item) => item.trim());
  const carrier = offered.find((item) => item.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return carrier === undefined ? null : carrier.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
}

/**
 * OWASP's WebSocket advice: check Origin at the handshake, because browsers send cookies-free but
 * ambient requests from any page. Browsers of the same origin and clients that send no Origin
 * (native apps, scripts) are accepted; other sites only when listed.
 */
export class OriginPolicy {
  private readonly logged = new Set<string>();

  constructor(
    private readonly settings: UpgradeSettings,
    private readonly logger: Logger,
  ) {}

  allows(request: IncomingMessage): boolean {
    const origin = request.headers.origin;
    if (origin === undefined) return true;
    if (this.settings.allowedOrigins.includes(origin)) return true;
    const allowed = this.isSameOrigin(origin, request);
    if (!allowed) this.logRefusal(origin);
    return allowed;
  }

  private isSameOrigin(origin: string, request: IncomingMessage): boolean {
    let parsed: URL;
    try {
      parsed = new URL(origin);
    } catch {
      return false; // "null" (sandboxed frames, file: pages) and garbage
    }
    const proxied = this.settings.trustProxy;
    const scheme = (proxied ? firstHeader(request.headers['x-forwarded-proto']) : undefined) ?? ((request.socket as TLSSocket).encrypted ? 'https' : 'http');
    const host = (proxied ? firstHeader(request.headers['x-forwarded-host']) : undefined) ?? request.headers.host;
    if (host === undefined) return false;
    return parsed.protocol === `${scheme.toLowerCase()}:` && parsed.host === hostOf(scheme, host);
  }

  private logRefusal(origin: string): void {
    const shown = origin.slice(0, MAX_LOGGED_ORIGIN_CHARS);
    if (this.logged.has(shown)) return;
    if (this.logged.size >= MAX_REMEMBERED_ORIGINS) this.logged.clear();
    this.logged.add(shown);
    this.logger.warn({ origin: shown }, 'refused a chat socket from another site (403); if that site should be allowed, add its origin to CORS_ORIGINS');
  }
}

/** A Host header as URL.host writes it (lowercase, default port dropped), or '' when it is not one. */
function hostOf(scheme: string, host: string): string {
  try {
    return new URL(`${scheme}://${host}`).host;
  } catch {
    return '';
  }
}

/** Picks the subprotocol: parley.v1 when offered, never the token carrier. */
export function chooseProtocol(protocols: Set<string>): string | false {
  return protocols.has(STREAMING_SUBPROTOCOL) ? STREAMING_SUBPROTOCOL : false;
}

export function routeUpgrades(server: Server, wss: WebSocketServer, deps: ChatDependencies, settings: UpgradeSettings): void {
  const origins = new OriginPolicy(settings, deps.logger);
  // Node hands CONNECT to this event and, with no listener, drops the connection without a word.
  server.on('connect', (_request: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    refuse(socket, 405, 'Method Not Allowed');
  });
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A reset before the handshake ends emits 'error' on the socket; unheard, it would be fatal.
    socket.on('error', () => socket.destroy());
    try {
      const { path, query } = splitTarget(request.url ?? '/');
      if (path !== '/chat') return refuse(socket, 404, 'Not Found');
      if (!origins.allows(request)) return refuse(socket, 403, 'Forbidden');
      const token = requestToken(request, query);
      const address = upgradeAddress(request, settings.trustProxy);
      Promise.all([deps.limits.upgrades.take(address), deps.identity.resolvePerson(request.headers)]).then(
        ([waitMs, auth]) => {
          if (waitMs !== null) return refuseTooMany(socket, waitMs);
          wss.handleUpgrade(request, socket, head, (ws) => {
            if (!isValidToken(token) || (auth === null && !deps.anonymous)) {
              ws.close(CLOSE_UNAUTHENTICATED.code, CLOSE_UNAUTHENTICATED.reason);
              return;
            }
            wss.emit('connection', ws, request);
            new ChatConnection(ws, token, address, deps, auth);
          });
        },
        (error: unknown) => {
          deps.logger.warn({ err: safeError(error) }, 'upgrade limit or sign-in check failed');
          if (socket.writable) socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          socket.destroy();
        },
      );
    } catch (error) {
      // Never the URL or headers: they may carry the token.
      deps.logger.warn({ err: safeError(error) }, 'upgrade request failed');
      refuse(socket, 400, 'Bad Request');
    }
  });
}
