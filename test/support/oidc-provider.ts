/**
 * A real OpenID Connect provider for tests: oidc-provider 8 on a random port, with one confidential
 * client (PKCE required) and its development login and consent pages, where any login name signs
 * in as the account of that name. The provider is created once the client's redirect URL is known
 * (the gateway's port), while its port is known before the gateway starts.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export const OIDC_CLIENT_ID = 'parley-test';
export const OIDC_CLIENT_SECRET = 'parley-test-secret-0123456789abcdef';

export interface TestOidcProvider {
  readonly issuer: string;
  /** Creates the provider with the client's redirect URLs; requests before that get 503. */
  configure(redirectUrls: readonly string[]): void;
  /** Claims the provider gives for a login name beyond sub (default: name, preferred_username, email). */
  claimsFor: (login: string) => Record<string, unknown>;
  close(): Promise<void>;
}

export async function startOidcProvider(): Promise<TestOidcProvider> {
  let handler: ((request: IncomingMessage, response: ServerResponse) => void) | undefined;
  const server = createServer((request, response) => {
    if (handler === undefined) {
      response.writeHead(503).end();
      return;
    }
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider: TestOidcProvider = {
    issuer,
    claimsFor: (login) => ({ name: `${login} Example`, preferred_username: login, email: `${login}@example.test`, email_verified: true }),
    configure(redirectUrls) {
      const oidc = new Provider(issuer, {
        clients: [
          {
            client_id: OIDC_CLIENT_ID,
            client_secret: OIDC_CLIENT_SECRET,
            redirect_uris: [...redirectUrls],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        pkce: { required: () => true },
        features: { devInteractions: { enabled: true } },
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'preferred_username'] },
        cookies: { keys: ['test-cookie-key-0123456789'] },
        findAccount: async (_context, id) => ({ accountId: id, claims: async () => ({ sub: id, ...provider.claimsFor(id) }) }),
      });
      handler = oidc.callback();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return provider;
}

/**
 * The public address of a deployment (a load balancer's): forwards every HTTP request to the
 * gateway `target` names. It listens before any gateway starts, so a gateway's OIDC_REDIRECT_URL
 * can name it; tests point it at a gateway once that has started.
 */
export interface FrontDoor {
  url: string;
  target: string;
  close(): Promise<void>;
}

export async function startFrontDoor(): Promise<FrontDoor> {
  const door: FrontDoor = { url: '', target: '', close: () => Promise.resolve() };
  const server = createServer((request, response) => {
    const upstream = httpRequest(`${door.target}${request.url ?? '/'}`, { method: request.method, headers: request.headers }, (reply) => {
      response.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(response);
    });
    upstream.on('error', () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  door.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  door.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return door;
}
