/**
 * The HTTP API: sessions (POST /token, GET|POST /refresh_token, kept as older clients use them:
 * see docs/protocol.md, "Compatibility"), Parley's own versioned session API (GET /api/v1/session),
 * health, readiness and (only with METRICS_TOKEN) metrics. Error bodies are `{"detail": ...}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { branchRecords } from '../contracts/branches.js';
import { ErrorCodes, userErrorText } from '../contracts/errors.js';
import { withDeadline } from '../shared/deadline.js';
import { bearerToken, noStore, sameSecret } from './http-util.js';
import { readinessBody } from '../shared/metrics-server.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { SessionStore, Viewer } from '../store/session-store.js';
import { retryAfterSeconds, type Limit } from './limits.js';
import type { GatewayMetrics } from './metrics.js';
import type { RedisHealth } from './redis-health.js';

export interface RouteDependencies {
  readonly store: SessionStore;
  readonly metrics: GatewayMetrics;
  readonly nameMaxChars: number;
  readonly health: RedisHealth;
  /** Longest a request waits for Redis before it is answered 503. */
  readonly deadlineMs: number;
  /** Reasons the gateway is not ready (empty when it is); see readinessBody. */
  readonly readiness: () => Promise<string[]>;
  /** METRICS_TOKEN: /metrics on this port for `Authorization: Bearer <it>`; undefined: no /metrics here. */
  readonly metricsToken: string | undefined;
  /** Session creation per client address. */
  readonly limitSessions: Limit;
  /** ANONYMOUS_CHAT: false refuses POST /token (403 anonymous_off). */
  readonly anonymous: boolean;
  /** The signed-in person behind a request (cookie or account token), by account id, or null. */
  readonly viewerOf: (headers: IncomingHttpHeaders) => Promise<Viewer>;
}

export const INVALID_NAME = { detail: { loc: 'name', msg: 'Enter a valid name' } } as const;
export const SESSION_EXPIRED = { detail: 'Session expired or does not exist' } as const;
export const ANONYMOUS_OFF = { detail: userErrorText(ErrorCodes.anonymousOff), code: ErrorCodes.anonymousOff } as const;

const fieldSource = z.object({}).catchall(z.unknown()).nullish();

/** A field from the query string or, failing that, a JSON body; undefined when absent or not text. */
function field(request: FastifyRequest, name: string): string | undefined {
  for (const source of [request.query, request.body]) {
    const value = fieldSource.safeParse(source).data?.[name];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

function withSpeakerPrefix<T extends { msg: string; source: 'human' | 'bot' }>(message: T): T {
  return { ...message, msg: `${message.source === 'human' ? 'Human' : 'Bot'}: ${message.msg}` };
}

/** A lone UTF-16 surrogate: not Unicode text, and it would come back from Redis as U+FFFD. */
export const LONE_SURROGATE = /\p{Surrogate}/u;

function validName(name: string | undefined, maxChars: number): name is string {
  return name !== undefined && name.trim() !== '' && [...name].length <= maxChars && !LONE_SURROGATE.test(name);
}

export function registerRoutes(app: FastifyInstance, deps: RouteDependencies): void {
  app.post('/token', { onSend: noStore }, async (request, reply) => {
    if (!deps.anonymous) return reply.code(403).send(ANONYMOUS_OFF);
    const name = field(request, 'name');
    if (!validName(name, deps.nameMaxChars)) return reply.code(400).send(INVALID_NAME);
    const waitMs = await withDeadline(deps.limitSessions.take(request.ip), deps.deadlineMs);
    if (waitMs !== null) {
      return reply
        .code(429)
        .header('Retry-After', retryAfterSeconds(waitMs))
        .send({ detail: `Too many new sessions from your address: try again in ${retryAfterSeconds(waitMs)} s`, retryAfterMs: waitMs });
    }
    const session = await withDeadline(deps.store.create(name), deps.deadlineMs);
    deps.metrics.sessions.inc();
    const { last_event_id: _unused, head: _none, ...original } = session;
    return original;
  });

  // A person's conversation reads as unknown to anyone but its owner, bare token or not.
  const readSession = async (request: FastifyRequest, token: string) =>
    withDeadline(
      deps.viewerOf(request.headers).then((viewer) => deps.store.read(token, viewer)),
      deps.deadlineMs,
    );

  // "Human: …" / "Bot: …" texts: older clients tell a message's side by them (see docs/protocol.md,
  // "Compatibility"). They know nothing of branches, so they get the branch shown, one line as always.
  const refresh = async (request: FastifyRequest, reply: FastifyReply) => {
    const view = await readSession(request, field(request, 'token') ?? bearerToken(request.headers) ?? '');
    if (view === null) return reply.code(400).send(SESSION_EXPIRED);
    return { ...view, messages: branchRecords(view.messages, view.head).map(withSpeakerPrefix) };
  };
  app.get('/refresh_token', { onSend: noStore }, refresh);
  app.post('/refresh_token', { onSend: noStore }, refresh);

  // Parley's own API: clean message text; the token preferably in `Authorization: Bearer`.
  app.get('/api/v1/session', { onSend: noStore }, async (request, reply) => {
    const view = await readSession(request, bearerToken(request.headers) ?? field(request, 'token') ?? '');
    if (view === null) return reply.code(400).send(SESSION_EXPIRED);
    return view;
  });

  app.get('/healthz', async (_request, reply) => {
    if (await deps.health.check()) return { status: 'ok' };
    return reply.code(503).send({ status: 'unavailable', detail: 'Redis does not answer' });
  });

  app.get('/readyz', { onSend: noStore }, async (_request, reply) => {
    const { status, body } = await readinessBody(deps.readiness);
    return reply.code(status).send(body);
  });

  const { metricsToken } = deps;
  if (metricsToken === undefined) return; // metrics live on the private METRICS_PORT listener
  app.get('/metrics', { onSend: noStore }, async (request, reply) => {
    if (!sameSecret(bearerToken(request.headers), metricsToken)) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ detail: 'Not authenticated' });
    }
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
