/**
 * The private listener of a gateway or worker: Prometheus metrics and readiness, on METRICS_HOST
 * (127.0.0.1 by default), never on the public port — metrics describe the whole deployment
 * (traffic, errors, queue) and are nobody else's business (issue 9).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { PING_DEADLINE_MS, withDeadline } from './deadline.js';
import { safeError, type Logger } from './logger.js';

export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Resolves with the reasons the process is not ready (empty when it is). */
  readonly readiness: () => Promise<string[]>;
  readonly logger: Logger;
}

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Readiness problems of Redis: a fixed text, never the driver's message (it names the Redis host
 * and port, and the gateway answers /readyz on its public port too).
 */
export async function redisProblems(ping: () => Promise<unknown>): Promise<string[]> {
  try {
    await withDeadline(ping(), PING_DEADLINE_MS);
    return [];
  } catch {
    return [`Redis does not answer within ${PING_DEADLINE_MS} ms`];
  }
}

/** The readiness answer both listeners share: 200 {"status":"ready"} or 503 with the reasons. */
export async function readinessBody(readiness: () => Promise<string[]>): Promise<{ status: number; body: { status: string; problems?: string[] } }> {
  const problems = await readiness().catch((error: unknown) => [safeError(error).message]);
  return problems.length === 0 ? { status: 200, body: { status: 'ready' } } : { status: 503, body: { status: 'unavailable', problems } };
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const answer = async () => {
      if (request.method === 'GET' && path === '/metrics') {
        const text = await options.registry.metrics();
        response.writeHead(200, { 'content-type': options.registry.contentType, 'cache-control': 'no-store' }).end(text);
      } else if (request.method === 'GET' && path === '/readyz') {
        const { status, body } = await readinessBody(options.readiness);
        response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
      } else {
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
      }
    };
    answer().catch((error: unknown) => {
      options.logger.warn({ err: safeError(error) }, 'metrics request failed');
      if (!response.headersSent) response.writeHead(503).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  options.logger.info({ url }, 'metrics listening');
  return {
    url,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
