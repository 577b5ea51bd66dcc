/**
 * The HTTP API kept from the original (POST /token, GET|POST /refresh_token) plus health and
 * metrics. Error bodies keep the original's `{"detail": ...}` shape.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SessionStore } from '../store/session-store.js';
import { retryAfterSeconds, type Limit } from './limits.js';
import type { GatewayMetrics } from './metrics.js';

export interface RouteDependencies {
  readonly store: SessionStore;
  readonly metrics: GatewayMetrics;
  readonly nameMaxChars: number;
  readonly ping: () => Promise<void>;
  /** Session creation per client address. */
  readonly limitSessions: Limit;
}

export const INVALID_NAME = { detail: { loc: 'name', msg: 'Enter a valid name' } } as const;
export const SESSION_EXPIRED = { detail: 'Session expired or does not exist' } as const;

const fieldSource = z.object({}).catchall(z.unknown()).nullish();

/** A field from the query string or, failing that, a JSON body; undefined when absent or not text. */
function field(request: FastifyRequest, name: string): string | undefined {
  for (const source of [request.query, request.body]) {
    const value = fieldSource.safeParse(source).data?.[name];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

/** A lone UTF-16 surrogate: not Unicode text, and it would come back from Redis as U+FFFD. */
export const LONE_SURROGATE = /\p{Surrogate}/u;

function validName(name: string | undefined, maxChars: number): name is string {
  return name !== undefined && name.trim() !== '' && [...name].length <= maxChars && !LONE_SURROGATE.test(name);
}

export function registerRoutes(app: FastifyInstance, deps: RouteDependencies): void {
  app.post('/token', async (request, reply) => {
    const name = field(request, 'name');
    if (!validName(name, deps.nameMaxChars)) return reply.code(400).send(INVALID_NAME);
    const waitMs = await deps.limitSessions.take(request.ip);
    if (waitMs !== null) {
      return reply
        .code(429)
        .header('Retry-After', retryAfterSeconds(waitMs))
        .send({ detail: `Too many new sessions from your address: try again in ${retryAfterSeconds(waitMs)} s`, retryAfterMs: waitMs });
    }
    const session = await deps.store.create(name);
    deps.metrics.sessions.inc();
    const { last_event_id: _unused, ...original } = session;
    return original;
  });

  const refresh = async (request: FastifyRequest, reply: { code(status: number): { send(body: unknown): unknown } }) => {
    const view = await deps.store.read(field(request, 'token') ?? '');
    if (view === null) return reply.code(400).send(SESSION_EXPIRED);
    return view;
  };
  app.get('/refresh_token', refresh);
  app.post('/refresh_token', refresh);

  app.get('/healthz', async (_request, reply) => {
    try {
      await deps.ping();
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'unavailable', detail: 'Redis does not answer' });
    }
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
