/**
 * The gateway: HTTP API, WebSocket /chat and the web UI. Stateless — any number of them can run
 * behind a plain load balancer; everything about a session lives in Redis.
 */
import { existsSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { fileURLToPath } from 'node:url';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config/config.js';
import { AuthError, ErrorCodes, type ErrorCode } from '../contracts/errors.js';
import { globalKeys, queuePartitions } from '../contracts/keys.js';
import { CLOSE_GOING_AWAY } from '../contracts/wire.js';
import { AccountStore } from '../store/account-store.js';
import { connectRedis, createRedisClient, duplicateClient, type RedisConnection } from '../store/redis.js';
import { ConversationStore } from '../store/conversation-store.js';
import { PersonData } from '../store/person-data.js';
import { SessionStore, sessionStoreOptions } from '../store/session-store.js';
import { SocketRegistry } from '../store/socket-registry.js';
import { ServiceUnavailableError } from '../shared/deadline.js';
import { safeError, type Logger } from '../shared/logger.js';
import { redisProblems, startMetricsServer, type MetricsServer } from '../shared/metrics-server.js';
import { Identity } from './auth/identity.js';
import { registerOidcRoutes } from './auth/oidc.js';
import { registerAuthRoutes } from './auth/routes.js';
import { registerConversationRoutes } from './conversation-routes.js';
import { registerPersonRoutes } from './person-routes.js';
import { INVALID_NAME, registerRoutes } from './http-routes.js';
import { createLimits, retryAfterSeconds } from './limits.js';
import { LiveHub } from './live-hub.js';
import { QueueView } from './queue-view.js';
import { GatewayMetrics } from './metrics.js';
import { RedisHealth } from './redis-health.js';
import { chooseProtocol, routeUpgrades } from './upgrade.js';

export interface GatewayHandle {
  readonly url: string;
  readonly port: number;
  /** The private metrics listener (METRICS_PORT), when there is one. */
  readonly metricsUrl: string | undefined;
  /** Stops accepting, closes sockets with 1012 (reconnect), disconnects from Redis. */
  stop(): Promise<void>;
}

const HEARTBEAT_MS = 30_000;
const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

function buildHttp(config: Config, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Request logs would carry tokens in URLs; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    trustProxy: config.trustProxy,
    // A URL the router cannot read (a broken %-escape, an over-long path segment) is answered in
    // the API's shape, not Fastify's own {"error","code","message"}.
    frameworkErrors: (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
      void reply.code(status).send({ detail: 'The request URL could not be read', ...apiCode(request.url, ErrorCodes.invalidRequest) });
    },
  });
  // JSON is UTF-8 (RFC 8259): invalid bytes are refused rather than turned into U+FFFD, so a
  // name is stored as given or not at all.
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, raw, done) => {
    try {
      const body = utf8.decode(raw as Buffer);
      done(null, body.trim() === '' ? undefined : (JSON.parse(body) as unknown));
    } catch {
      done(Object.assign(new Error('The request body is not valid JSON'), { statusCode: 400 }), undefined);
    }
  });
  // Bodies of any other type carry nothing Parley reads (POST /token also takes the name from the
  // query string, see docs/protocol.md, "Compatibility"): accept and ignore them, so `POST /token?name=Ada` works whatever content type a
  // client sends (curl -d '', HTML forms, jQuery's $.post all send form-urlencoded).
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, undefined));
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof ServiceUnavailableError) {
      return reply.code(503).header('Retry-After', String(error.retryAfterSeconds)).send({ detail: error.message });
    }
    if (error instanceof AuthError) {
      if (error.retryAfterMs !== undefined) reply.header('Retry-After', retryAfterSeconds(error.retryAfterMs));
      return reply.code(error.status).send({ detail: error.message, code: error.code, ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }) });
    }
    const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    // Redacted: an error may quote the request URL, token included.
    if (status === 500) request.log.error({ err: safeError(error) }, 'request failed');
    if (status < 500 && request.url.startsWith('/token')) return reply.code(400).send(INVALID_NAME);
    const code = status === 500 ? ErrorCodes.internal : ErrorCodes.invalidRequest;
    return reply.code(status).send({ detail: status === 500 ? 'Internal server error' : error.message, ...apiCode(request.url, code) });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ detail: 'Not Found', ...apiCode(request.url, ErrorCodes.notFound) }));
  return app;
}

/** Parley's own API answers with a stable code next to the text (docs/protocol.md); the original's API never did. */
function apiCode(url: string, code: ErrorCode): { code?: ErrorCode } {
  return url.startsWith('/api/v1/') ? { code } : {};
}

/** One year, as browsers' preload lists expect; sent only where the browser reached us over TLS. */
const HSTS = 'max-age=31536000; includeSubDomains';

async function registerWeb(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(helmet, {
    // HSTS over plain HTTP is ignored at best and wrong at worst (a LAN address with no TLS):
    // it is added below only for requests that came over https.
    hsts: false,
    // frame-ancestors 'none' and X-Frame-Options DENY say the same thing (SAMEORIGIN contradicted it).
    frameguard: { action: 'deny' },
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // 'self' covers ws:/wss: to this host (CSP 3); any other socket host is refused.
        connectSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
        scriptSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        // Plain http on a LAN address must keep working; TLS is the reverse proxy's business.
        upgradeInsecureRequests: null,
      },
    },
  });
  // request.protocol reads X-Forwarded-Proto only when TRUST_PROXY says the proxy is ours.
  app.addHook('onRequest', async (request, reply) => {
    if (request.protocol === 'https') reply.header('Strict-Transport-Security', HSTS);
  });
  if (config.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...config.corsOrigins], credentials: false, methods: ['GET', 'POST'] });
  }
  const webDir = config.webDir ?? DEFAULT_WEB_DIR;
  if (existsSync(webDir)) {
    await app.register(fastifyStatic, {
      root: webDir,
      // With preCompressed, @fastify/static 10 answers 404 for "/" to a browser that accepts br;
      // the page is served by its own route below instead.
      index: false,
      // The build writes .br/.gz next to each asset; hashed asset names never change content.
      preCompressed: true,
      cacheControl: false,
      setHeaders: (response, path) => {
        response.header('Cache-Control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
    app.get('/', (_request, reply) => reply.sendFile('index.html'));
  } else {
    app.get('/', async (_request, reply) => reply.type('text/plain').send('Parley gateway is running. The web UI is not built: run `npm run build:web`.'));
  }
}

function keepAlive(wss: WebSocketServer): NodeJS.Timeout {
  const alive = new WeakSet<WebSocket>();
  wss.on('connection', (ws) => {
    alive.add(ws);
    ws.on('pong', () => alive.add(ws));
  });
  const timer = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) ws.terminate();
      else {
        alive.delete(ws);
        ws.ping();
      }
    }
  }, HEARTBEAT_MS);
  timer.unref();
  return timer;
}

/**
 * Parley's state must never be evicted (a lost lease or queue entry loses answers), and Redis must
 * not grow without bound: BullMQ's advice is maxmemory with the noeviction policy. Managed Redis
 * may refuse CONFIG GET; that is not worth a warning.
 */
async function warnAboutEviction(redis: RedisConnection, logger: Logger): Promise<void> {
  try {
    const config = await redis.configGet(['maxmemory', 'maxmemory-policy']);
    if (config.maxmemory === '0') logger.warn('Redis has no maxmemory: a flood can grow it until the machine runs out of memory; set maxmemory');
    const policy = config['maxmemory-policy'];
    if (policy !== undefined && policy !== 'noeviction') {
      logger.warn({ policy }, 'Redis may evict keys (maxmemory-policy is not noeviction): sessions, leases and queue entries could vanish');
    }
  } catch {
    // CONFIG is often disabled on managed services.
  }
}

export async function startGateway(config: Config, logger: Logger): Promise<GatewayHandle> {
  const redis = await connectRedis(createRedisClient(config.redis, logger), config.redis);
  const subscriber = await connectRedis(duplicateClient(redis, logger), config.redis);
  const metrics = new GatewayMetrics();
  const store = new SessionStore(redis, sessionStoreOptions(config));
  const limits = createLimits(redis, config.keyPrefix, config.rateLimits);
  const keys = globalKeys(config.keyPrefix);
  const partitions = queuePartitions(config.keyPrefix, config.queuePartitions);
  void warnAboutEviction(redis, logger);
  const sweepMs = Math.min(30_000, Math.max(250, (config.sessionTtlSeconds * 1000) / 4));
  const hub = new LiveHub(redis, subscriber, config.keyPrefix, logger, sweepMs, config.redis.cluster);
  const app = buildHttp(config, logger);
  await registerWeb(app, config);
  const accounts = new AccountStore(redis, { prefix: config.keyPrefix, sessionDays: config.auth.sessionDays });
  const identity = await Identity.attach(app, accounts, config.requestDeadlineMs);
  const viewerOf = async (headers: IncomingHttpHeaders) => (await identity.resolvePerson(headers))?.person.id ?? null;
  const conversations = new ConversationStore(redis, store, config.keyPrefix);
  const health = new RedisHealth(() => redis.ping(), (state) => hub.announce(state), logger);
  health.start();
  const readiness = () => redisProblems(() => redis.ping());
  registerRoutes(app, {
    store,
    metrics,
    nameMaxChars: config.nameMaxChars,
    health,
    deadlineMs: config.requestDeadlineMs,
    readiness,
    metricsToken: config.metricsToken,
    limitSessions: limits.sessions,
    anonymous: config.auth.anonymous,
    viewerOf,
  });
  registerAuthRoutes(app, { accounts, identity, auth: config.auth, limits, deadlineMs: config.requestDeadlineMs });
  registerOidcRoutes(app, { accounts, auth: config.auth, limits, deadlineMs: config.requestDeadlineMs, logger });
  registerConversationRoutes(app, { conversations, identity, limitCreate: limits.sessions, deadlineMs: config.requestDeadlineMs });
  registerPersonRoutes(app, { personData: new PersonData(redis, accounts, conversations, config.keyPrefix), identity, auth: config.auth });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.wsMaxFrameBytes,
    handleProtocols: chooseProtocol,
  });
  const heartbeat = keepAlive(wss);
  routeUpgrades(app.server, wss, {
    store,
    conversations,
    redis,
    hub,
    partitions,
    messageMaxChars: config.messageMaxChars,
    pipelineWakeUp: !config.redis.cluster,
    health,
    logger,
    metrics,
    limits,
    queueView: new QueueView(redis, { queues: partitions.map((partition) => partition.queue), group: keys.group, capacity: keys.capacity }),
    maxQueueWaitMs: config.maxQueueWaitMs,
    sockets: new SocketRegistry(redis, { prefix: config.keyPrefix, maxPerSession: config.maxSocketsPerSession, sessionTtlSeconds: config.sessionTtlSeconds }),
    identity,
    accounts,
    anonymous: config.auth.anonymous,
  }, { allowedOrigins: config.corsOrigins, trustProxy: config.trustProxy });

  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`;
  logger.info({ url }, 'gateway listening');
  const metricsServer: MetricsServer | undefined =
    config.metricsPort === undefined
      ? undefined
      : await startMetricsServer({ host: config.metricsHost, port: config.metricsPort, registry: metrics.registry, readiness, logger });

  return {
    url,
    port,
    metricsUrl: metricsServer?.url,
    stop: async () => {
      await metricsServer?.close();
      clearInterval(heartbeat);
      health.stop();
      hub.close();
      const closing = app.close();
      for (const ws of wss.clients) ws.close(CLOSE_GOING_AWAY.code, CLOSE_GOING_AWAY.reason);
      wss.close();
      await closing;
      await subscriber.unsubscribe().catch(() => undefined);
      subscriber.destroy();
      redis.destroy();
      logger.info('gateway stopped');
    },
  };
}

